"""How a slice's records are stored: BSON ``{"r": [...]}``, compressed by default.

Serializers: ``compress`` (zlib, the default), ``none``, ``encrypt`` (Symmetric
Encryption with a random IV, key from configuration), and ``bzip2`` for output
categories whose records are lines of text (one bzip2 stream per slice, so a download
is a plain concatenation of the streams).

Records come back as they went in (same value, same type), at any depth in dicts and
lists: ``str int float bool None bytes dict list``, ``UUID``, ``Decimal`` (scale, NaN and
Infinity included), ``date``, ``time`` and ``datetime`` (naive stays naive; aware keeps its
offset and microseconds; a ``zoneinfo.ZoneInfo`` zone comes back as the same key, any other
tzinfo as a fixed ``datetime.timezone`` offset), ``timedelta`` and ints beyond 64 bits.
Tuples come back as lists, dict subclasses as dicts. Anything else raises
``SliceEncodingError`` naming its type and where it is.

Values BSON has no type for are stored as ``Decimal128`` (a Decimal that fits it exactly)
or as BSON binary with a user-defined subtype (0x80-0x87, the ``_TAG_*`` constants). BSON
does have a datetime, but it drops naive/aware, the offset and the microseconds, so when a
slice holds one its datetimes are tagged too (``_scan`` finds them at C speed; only then
are the records walked in Python). pymongo reads a BSON int64 back as ``bson.Int64``, so a
slice with an int beyond 32 bits is decoded converting those to int.

A slice that needs any of this is stored as ``{"t": true, "r": [...]}``, and only such
slices are decoded with the type decoders (which cost on every value): plain slices cost
what they always did and are byte for byte what earlier versions wrote (which still read
as before: a BSON datetime comes back aware, in UTC). In a ``{"t": true}`` slice a
``bson.Binary`` with subtype 0x80-0x87 is read as a tag, and a ``bson.Decimal128`` or
``bson.Int64`` comes back as Decimal or int.
"""

from __future__ import annotations

import bz2
import gc
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from decimal import Context, Decimal
from functools import lru_cache
from operator import countOf
from re import Pattern
from struct import Struct
from struct import error as struct_error
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import bson
from bson.binary import Binary, UuidRepresentation
from bson.codec_options import CodecOptions, TypeDecoder, TypeRegistry
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.regex import Regex

from rjbatch.errors import RjbatchError

SERIALIZERS = ("compress", "none", "encrypt", "bzip2")


class SliceEncodingError(RjbatchError):
    """A record cannot be stored in a slice (a value of a type slices cannot hold)."""


# -- tagged values: BSON binary with a user-defined subtype, one per kind -----------------
_TAG_DATETIME = 0x80        # naive or fixed offset, fold 0: isoformat()
_TAG_DATETIME_ZONED = 0x81  # "isoformat()|fold|ZoneInfo key (or empty)"
_TAG_DATE = 0x82            # isoformat()
_TAG_TIME = 0x83            # naive or fixed offset, fold 0: isoformat()
_TAG_TIME_ZONED = 0x84      # "isoformat()|fold|ZoneInfo key (or empty)"
_TAG_DECIMAL = 0x85         # a Decimal that Decimal128 cannot hold exactly: str()
_TAG_INT = 0x86             # an int beyond 64 bits: little-endian two's complement
_TAG_TIMEDELTA = 0x87       # days, seconds, microseconds: three little-endian int32

# a slice holding tagged values is {"t": true, "r": [...]}: this element right after the length
_TAGGED_MARK = b"\x08t\x00\x01"
_TIMEDELTA = Struct("<iii")


class _State(threading.local):
    tagged = False  # set when the slice being encoded needs the type decoders to read back


_state = _State()


class _Unstorable(Exception):
    """Raised by the fallback encoder; turned into a SliceEncodingError saying where."""

    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value


def _tag_datetime(value: datetime) -> Binary:
    _state.tagged = True
    if type(value) is not datetime:  # a subclass: keep what a datetime has
        value = datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                         value.microsecond, value.tzinfo, fold=value.fold)
    zone = value.tzinfo
    if zone is None or type(zone) is timezone:
        if not value.fold:
            return Binary(value.isoformat().encode(), _TAG_DATETIME)
        return Binary(f"{value.isoformat()}|1|".encode(), _TAG_DATETIME_ZONED)
    if isinstance(zone, ZoneInfo) and zone.key:
        return Binary(f"{value.isoformat()}|{value.fold}|{zone.key}".encode(), _TAG_DATETIME_ZONED)
    offset = value.utcoffset()  # another tzinfo (pytz, dateutil...): its offset at that time
    value = value.replace(tzinfo=None if offset is None else timezone(offset), fold=0)
    return Binary(value.isoformat().encode(), _TAG_DATETIME)


def _tag_time(value: time) -> Binary:
    if type(value) is not time:
        value = time(value.hour, value.minute, value.second, value.microsecond, value.tzinfo,
                     fold=value.fold)
    zone = value.tzinfo
    if zone is None or type(zone) is timezone:
        if not value.fold:
            return Binary(value.isoformat().encode(), _TAG_TIME)
        return Binary(f"{value.isoformat()}|1|".encode(), _TAG_TIME_ZONED)
    if isinstance(zone, ZoneInfo) and zone.key:  # a time has no offset in a zone: keep the key
        return Binary(f"{value.isoformat()}|{value.fold}|{zone.key}".encode(), _TAG_TIME_ZONED)
    offset = value.utcoffset()
    value = value.replace(tzinfo=None if offset is None else timezone(offset), fold=0)
    return Binary(value.isoformat().encode(), _TAG_TIME)


def _tag_date(value: date) -> Binary:
    return Binary(date.isoformat(value).encode(), _TAG_DATE)


def _tag_timedelta(value: timedelta) -> Binary:
    return Binary(_TIMEDELTA.pack(value.days, value.seconds, value.microseconds), _TAG_TIMEDELTA)


def _tag_int(value: int) -> Binary:
    value = int(value)
    return Binary(value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True), _TAG_INT)


_EXACT = Context(prec=34)


def _encode_decimal(value: Decimal) -> Decimal128 | Binary:
    """Decimal128 when it holds the value exactly (coefficient, exponent and all), else a tag.

    Built from the BID fields directly: pymongo's ``Decimal128(value)`` is 4x slower, and
    would silently drop trailing zeros of a coefficient beyond 34 digits.
    """
    sign, digits, exponent = value.as_tuple()
    if type(exponent) is int:
        if len(digits) <= 34 and -6176 <= exponent <= 6111:
            coefficient = abs(int(_EXACT.scaleb(value, -exponent)))
            high = (sign << 63) | ((exponent + 6176) << 49) | (coefficient >> 64)
            # (high, low) words: the form pickling uses; bson's stubs do not list it
            return Decimal128((high, coefficient & 0xFFFFFFFFFFFFFFFF))  # type: ignore[arg-type]
    elif exponent == "F" or not digits:  # infinities; NaNs without a diagnostic payload
        return Decimal128(value)
    return Binary(str(value).encode(), _TAG_DECIMAL)


_FALLBACK: dict[type, Callable[[Any], Any]] = {
    Decimal: _encode_decimal, date: _tag_date, time: _tag_time, timedelta: _tag_timedelta,
    int: _tag_int,  # only ints beyond 64 bits get here
}


def _fallback(value: Any) -> Any:
    """Called by the BSON encoder for the values it has no type for (never for plain ones)."""
    _state.tagged = True
    encoder = _FALLBACK.get(type(value))
    if encoder is None:  # a subclass of one of them, or unstorable
        encoder = next((found for base, found in _FALLBACK.items() if isinstance(value, base)), None)
        if encoder is None:
            raise _Unstorable(value)
    return encoder(value)


def _untag_datetime(data: bytes) -> datetime:
    return datetime.fromisoformat(data.decode())


def _untag_zoned(kind: type[datetime] | type[time]) -> Callable[[bytes], Any]:
    def untag(data: bytes) -> Any:
        text, fold, key = data.decode().split("|")
        value = kind.fromisoformat(text)
        if key:
            try:
                value = value.replace(tzinfo=ZoneInfo(key))
            except ZoneInfoNotFoundError:  # not on this machine: keep the offset it had
                pass
        return value.replace(fold=1) if fold == "1" else value
    return untag


_UNTAG: dict[int, Callable[[bytes], Any]] = {
    _TAG_DATETIME: _untag_datetime,
    _TAG_DATETIME_ZONED: _untag_zoned(datetime),
    _TAG_DATE: lambda data: date.fromisoformat(data.decode()),
    _TAG_TIME: lambda data: time.fromisoformat(data.decode()),
    _TAG_TIME_ZONED: _untag_zoned(time),
    _TAG_DECIMAL: lambda data: Decimal(data.decode()),
    _TAG_INT: lambda data: int.from_bytes(data, "little", signed=True),
    _TAG_TIMEDELTA: lambda data: timedelta(*_TIMEDELTA.unpack(data)),
}


class _TagDecoder(TypeDecoder):
    bson_type = Binary

    def transform_bson(self, value: Binary) -> Any:
        untag = _UNTAG.get(value.subtype)
        return value if untag is None else untag(value)


class _Int64Decoder(TypeDecoder):
    """BSON int64 -> int (pymongo gives its ``Int64`` subclass), so type(value) is int."""

    bson_type = Int64
    # the builtin itself, no Python frame per value; the stubs want a method
    transform_bson = staticmethod(int)  # type: ignore[assignment]


class _Decimal128Decoder(TypeDecoder):
    """Decimal128 -> Decimal, exactly; 4x faster than ``Decimal128.to_decimal`` for finite values."""

    bson_type = Decimal128

    def transform_bson(self, value: Decimal128) -> Decimal:
        high, low = value.__getstate__()
        if high & 0x6000000000000000 == 0x6000000000000000:  # infinity, NaN, or non-canonical
            return value.to_decimal()
        coefficient = ((high & 0x1FFFFFFFFFFFF) << 64) | low
        if coefficient >= 10**34:  # non-canonical: zero
            return value.to_decimal()
        sign = "-" if high >> 63 else ""
        return Decimal(f"{sign}{coefficient}E{((high >> 49) & 0x3FFF) - 6176}")


_ENCODE: CodecOptions[dict[str, Any]] = CodecOptions(type_registry=TypeRegistry(fallback_encoder=_fallback),
                       uuid_representation=UuidRepresentation.STANDARD)
# tz_aware: a BSON datetime (written by earlier versions, or by Ruby) comes back aware UTC
_DECODE_PLAIN: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True, uuid_representation=UuidRepresentation.STANDARD)
_DECODE_TAGGED: CodecOptions[dict[str, Any]] = CodecOptions(type_registry=TypeRegistry([_TagDecoder(), _Decimal128Decoder(),
                                                         _Int64Decoder()]),
                              tz_aware=True, uuid_representation=UuidRepresentation.STANDARD)


# -- finding datetimes at C speed ----------------------------------------------------------
# types that cannot hold a datetime (the BSON encoder or _fallback deals with them)
_FLAT = frozenset({str, int, float, bool, type(None), bytes, Decimal, date, time, timedelta, UUID,
                   Decimal128, ObjectId, Int64, Binary, Regex, Pattern})
_FLAT_OR_CONTAINER = _FLAT | {dict, list, tuple}
_DICTS, _LISTS = frozenset({dict}), frozenset({list})
_NUMBERS = frozenset({int, float, bool})
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_DATETIMES, _LONGS = 1, 2  # what _scan finds
_MAX_DEPTH = 100  # MongoDB's own nesting limit; deeper (or self-containing) records are walked


def _referents_are_items() -> bool:
    """Whether ``gc.get_referents`` lists every value of dicts and item of lists and tuples.

    CPython's do (dict values, and keys too when they are not all str): that flattens a
    level of a slice in C, at a few ns a value. Checked once at import: on a Python where
    it does not hold, the flattening is done in Python.
    """
    probe: list[Any] = [datetime(2000, 1, 1), date(2000, 1, 1), None, 1, 1.5, "s", b"b", Decimal(1), [], {}]
    wanted = set(map(id, probe))
    containers = ({str(number): value for number, value in enumerate(probe)}, probe, tuple(probe))
    return all(wanted <= set(map(id, gc.get_referents(container))) for container in containers)


def _items_in_python(values: list) -> list:
    items: list = []
    for value in values:
        if type(value) is dict:
            items.extend(value.values())
        elif type(value) is list or type(value) is tuple:
            items.extend(value)
    return items


def _items_by_gc(values: list) -> list:
    return gc.get_referents(*values)


_items: Callable[[list], list] = _items_by_gc if _referents_are_items() else _items_in_python


def _all_str(values: list) -> bool:
    try:
        "".join(values)  # the commonest case, checked at memcpy speed
    except TypeError:
        return False
    return True


def _shortcut(values: list) -> int | None:
    """0, or _LONGS, when ``values`` are proved plain at C speed; None when not proved.

    For a list of one type, give or take some None: ``str.join`` proves strs, packing
    as C ints proves ints (of 32 bits, or of 64: _LONGS), counting types proves floats,
    and ``sum`` proves other numbers (adding one to a datetime, a list or a dict raises).
    """
    try:
        first = next(filter(None, values), None)
        if first is None:  # all falsy: None, "", 0, empty containers; never a datetime
            return 0
        kind = type(first)
        if kind is str:
            try:
                "".join(values)
            except TypeError:
                "".join(filter(None, values))  # strs with some None among them
            return 0
        if kind is float:
            if countOf(map(type, values), float) == len(values):
                return 0
        elif kind is int or kind is bool:
            found = _pack_ints(values)
            if found is None:
                found = _pack_ints(list(filter(None, values)))  # without None, if that was it
            if found is not None:
                return found
        else:
            return None
        # numbers with None among them, ints among floats, or ints beyond 32 bits
        if type(sum(filter(None, values))) in _NUMBERS:
            return _longs(values, set(map(type, values)))
    except (TypeError, ValueError, OverflowError):
        pass
    return None


def _pack_ints(numbers: list) -> int | None:
    """0 when ``numbers`` are all ints of 32 bits, _LONGS when of 64, else None: C packs them."""
    for packer, found in ((_int32s, 0), (_int64s, _LONGS)):
        try:
            packer(len(numbers)).pack(*numbers)
            return found
        except struct_error:
            pass
    return None


@lru_cache(maxsize=64)
def _int32s(count: int) -> Struct:
    return Struct(f"{count}i")


@lru_cache(maxsize=64)
def _int64s(count: int) -> Struct:
    return Struct(f"{count}q")


def _longs(values: list, kinds: set[type]) -> int:
    """_LONGS when an int among ``values`` is beyond 32 bits (BSON stores it as an int64)."""
    if int not in kinds:
        return 0
    ints = list(filter(int.__instancecheck__, values))
    return _LONGS if min(ints) < _INT32_MIN or max(ints) > _INT32_MAX else 0


def _settle(column: list) -> int | None:
    """``_shortcut``, else by the types in ``column``: None when a value is not plain."""
    found = _shortcut(column)
    if found is None:
        kinds = set(map(type, column))
        if kinds <= _FLAT:
            found = _longs(column, kinds)
    return found


def _scan(records: list) -> int:
    """What ``records`` may hold that plain BSON would not give back: _DATETIMES, _LONGS.

    Without a Python-level loop: looks one nesting level at a time (the records, then
    every value of the dicts and lists among them, flattened by ``_items``, and so on).
    The values of dicts (or lists) of one width are settled a column at a time:
    ``values[k::width]`` is one key's values when the keys are in one order, and every
    value is in some column whatever the order. A level that is not plain is checked by
    type; _DATETIMES also stands for a type the scan does not look inside (a dict
    subclass, say): then ``_tag_datetimes`` walks the records.
    """
    found, values, width = 0, records, 0
    for _ in range(_MAX_DEPTH):
        if _all_str(values):
            return found
        if width > 1 and not len(values) % width:
            settled = [_settle(values[start::width]) for start in range(width)]
            known = [kind for kind in settled if kind is not None]
            if len(known) == len(settled):
                return found | max(known)
        else:
            settled_all = _shortcut(values)
            if settled_all is not None:
                return found | settled_all
        kinds = set(map(type, values))
        if not kinds <= _FLAT_OR_CONTAINER:
            return found | _DATETIMES
        found |= _longs(values, kinds)
        if kinds <= _FLAT:
            return found
        width = len(values[0]) if kinds == _DICTS or kinds == _LISTS else 0
        values = _items(values)
    return found | _DATETIMES


def _tag_datetimes(value: Any) -> Any:
    """``value`` with every datetime in it tagged; dicts and lists are copied, tuples become lists."""
    kind = type(value)
    if kind is dict:
        return {key: item if type(item) in _FLAT else _tag_datetimes(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [item if type(item) in _FLAT else _tag_datetimes(item) for item in value]
    if isinstance(value, datetime):
        return _tag_datetime(value)
    if isinstance(value, Mapping) and not hasattr(value, "_type_marker"):  # not SON, RawBSONDocument
        return {key: _tag_datetimes(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_tag_datetimes(item) for item in value]
    return value


# -- errors --------------------------------------------------------------------------------
_SUPPORTED = ("str, int, float, bool, None, bytes, Decimal, date, time, datetime, timedelta, UUID, "
              "and dicts and lists of them")


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _path_to(container: Any, target: Any, depth: int = 0) -> list | None:
    """The keys and indexes leading to ``target`` (the object itself) inside ``container``."""
    if depth > _MAX_DEPTH:
        return None
    pairs: Iterable[tuple[Any, Any]]
    if isinstance(container, Mapping):
        pairs = container.items()
    elif isinstance(container, list | tuple):
        pairs = enumerate(container)
    else:
        return None
    for key, item in pairs:
        if item is target:
            return [key]
        path = _path_to(item, target, depth + 1)
        if path is not None:
            return [key, *path]
    return None


def _where(path: list) -> str:
    number, *rest = path
    if not rest:
        return f"record {number}"
    if len(rest) == 1 and isinstance(rest[0], str):
        return f"record {number}, key {rest[0]!r}"
    return f"record {number}, at {''.join(f'[{step!r}]' for step in rest)}"


def _encoding_error(records: list, error: Exception) -> SliceEncodingError:
    if isinstance(error, _Unstorable):
        path = _path_to(records, error.value)
        where = f" ({_where(path)})" if path else ""
        return SliceEncodingError(f"cannot store a value of type {_type_name(error.value)} in a slice"
                                  f"{where}: a slice holds {_SUPPORTED}")
    if isinstance(error, RecursionError):
        return SliceEncodingError("cannot store a record in a slice: it is nested too deeply, "
                                  "or contains itself")
    for number, record in enumerate(records):  # which record, then
        try:
            bson.encode({"r": [record]}, codec_options=_ENCODE)
        except Exception as exc:  # any reason: it is reported
            return SliceEncodingError(f"cannot store record {number} in a slice: {exc}")
    return SliceEncodingError(f"cannot store the records in a slice: {error}")


# -- the serializers -----------------------------------------------------------------------
def _to_bson(records: list[Any]) -> bytes:
    """The BSON of ``{"r": records}``, or ``{"t": true, "r": tagged}`` when a value needed a tag."""
    original = records
    try:
        found = _scan(records)
        _state.tagged = bool(found & _LONGS)  # decoded as int, not bson.Int64
        if found & _DATETIMES:
            records = _tag_datetimes(records)
        data = bson.encode({"r": records}, codec_options=_ENCODE)
    except (_Unstorable, bson.errors.BSONError, TypeError, ValueError, OverflowError,
            RecursionError) as exc:
        raise _encoding_error(original, exc) from None
    if not _state.tagged:
        return data
    return (len(data) + len(_TAGGED_MARK)).to_bytes(4, "little") + _TAGGED_MARK + data[4:]


def encode(records: list[Any], serializer: str = "compress") -> bytes:
    """The stored bytes of a slice's records (``decode`` gives them back)."""
    if serializer == "bzip2":
        text = "".join(f"{record}\n" for record in records)
        return bz2.compress(text.encode("utf-8"))
    if serializer not in SERIALIZERS:
        raise SliceEncodingError(f"unknown slice serializer {serializer!r} (one of {', '.join(SERIALIZERS)})")
    data = _to_bson(records)
    if serializer == "compress":
        return zlib.compress(data, 1)
    if serializer == "none":
        return data
    from rjbatch.codecs import encrypt_bytes

    return encrypt_bytes(data, compress=True)


def decode(data: bytes, serializer: str = "compress") -> list[Any]:
    """The records ``encode`` stored (tuples as lists); ``bzip2`` gives ``[{"binary": text}]``."""
    if serializer == "compress":
        data = zlib.decompress(data)
    elif serializer == "encrypt":
        from rjbatch.codecs import decrypt_bytes

        data = decrypt_bytes(data)
    elif serializer == "bzip2":
        return [{"binary": bz2.decompress(data)}]
    if data[4:8] == _TAGGED_MARK:
        return bson.decode(data, _DECODE_TAGGED)["r"]
    return bson.decode(data, _DECODE_PLAIN)["r"]


def make_slice(slice_id: int, first_record_number: int, records: list[Any], serializer: str) -> dict:
    """A slice row as the stores insert it, its records encoded."""
    return {"id": slice_id, "first_record_number": first_record_number,
            "record_count": len(records), "serializer": serializer, "data": encode(records, serializer)}
