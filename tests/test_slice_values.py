"""Every value a data job meets comes back from a slice exactly: same value, same type."""

from __future__ import annotations

import math
import uuid
from collections import OrderedDict, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import bson
import pytest
from bson.codec_options import CodecOptions

from rjbatch.batch import slices
from rjbatch.batch.slices import SliceEncodingError, decode, encode
from rjbatch.codecs import Cipher, set_ciphers

NEW_YORK = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")
ODD_OFFSET = timezone(-timedelta(hours=3, minutes=30, seconds=7, microseconds=5))

VALUES = {
    "str": "héllo wörld",
    "empty str": "",
    "int": -42,
    "int64 max": 2**63 - 1,
    "int64 min": -(2**63),
    "float": 1.25,
    "negative zero": -0.0,
    "infinity": float("inf"),
    "nan": float("nan"),
    "true": True,
    "false": False,
    "none": None,
    "bytes": b"\x00\xff\x80 bytes",
    "empty bytes": b"",
    "dict": {"a": 1, "b": "x"},
    "list": [1, "x", None],
    "empty dict": {},
    "empty list": [],
    "decimal with scale": Decimal("12.50"),
    "negative decimal zero": Decimal("-0.00"),
    "decimal 34 digits": Decimal("1234567890123456789012345678901.234"),
    "decimal beyond decimal128 digits": Decimal("1" * 40),
    "decimal trailing zeros beyond 34 digits": Decimal("1." + "0" * 39),
    "decimal beyond decimal128 exponent": Decimal("1E+7000"),
    "decimal tiny exponent": Decimal("1E-6176"),
    "decimal nan": Decimal("NaN"),
    "decimal negative nan": Decimal("-NaN"),
    "decimal signaling nan": Decimal("sNaN"),
    "decimal nan with payload": Decimal("NaN123"),
    "decimal infinity": Decimal("Infinity"),
    "decimal negative infinity": Decimal("-Infinity"),
    "date": date(2024, 2, 29),
    "date min": date.min,
    "date max": date.max,
    "naive time": time(12, 30, 1, 5),
    "midnight": time(0, 0),
    "time with offset": time(23, 59, 59, 999999, tzinfo=ODD_OFFSET),
    "time in a zone": time(8, 15, tzinfo=PARIS),
    "time with fold": time(1, 30, fold=1),
    "naive datetime": datetime(2024, 1, 2, 3, 4, 5, 123456),
    "datetime min": datetime.min,
    "datetime max": datetime.max,
    "utc datetime": datetime(2024, 1, 2, 3, 4, 5, 999, tzinfo=UTC),
    "datetime with odd offset": datetime(1969, 7, 20, 20, 17, 40, 1, tzinfo=ODD_OFFSET),
    "zoned datetime": datetime(2024, 7, 1, 9, 0, 0, 1, tzinfo=NEW_YORK),
    "zoned datetime, second of two 01:30": datetime(2024, 11, 3, 1, 30, tzinfo=NEW_YORK, fold=1),
    "zoned datetime in the spring gap": datetime(2024, 3, 10, 2, 30, tzinfo=NEW_YORK),
    "naive datetime with fold": datetime(2024, 11, 3, 1, 30, fold=1),
    "timedelta": timedelta(days=-3, seconds=5, microseconds=7),
    "timedelta max": timedelta.max,
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "int beyond 64 bits": 2**64,
    "negative int beyond 64 bits": -(2**100) - 1,
    "int beyond the str digit limit": 7**6000,
}


def placed(value, where: str) -> list:
    """A slice's records with ``value`` at one place, beside plain values."""
    return {
        "top level": ["plain", value, 1],
        "in a dict": [{"name": "a", "value": value, "n": 1}, {"name": "b", "value": 2, "n": 2}],
        "in a list": [["a", value], ["b", 2]],
        "nested": [{"a": [{"b": [value, {"c": value}]}], "d": "x"}],
    }[where]


def same(expected, actual) -> bool:
    """Equal and of the same type, all the way down (NaNs, -0.0, Decimal scale, tzinfo and fold too)."""
    if isinstance(expected, tuple):  # tuples come back as lists, dict subclasses as dicts
        expected = list(expected)
    elif isinstance(expected, dict) and type(expected) is not dict:
        expected = dict(expected)
    if type(expected) is not type(actual):
        return False
    if isinstance(expected, dict):
        return list(expected) == list(actual) and all(same(expected[k], actual[k]) for k in expected)
    if isinstance(expected, list):
        return len(expected) == len(actual) and all(map(same, expected, actual))
    if isinstance(expected, Decimal):
        return expected.as_tuple() == actual.as_tuple()
    if isinstance(expected, float):
        if math.isnan(expected):
            return math.isnan(actual)
        return expected == actual and math.copysign(1, expected) == math.copysign(1, actual)
    if isinstance(expected, datetime | time):
        return (expected == actual and expected.fold == actual.fold
                and expected.replace(tzinfo=None) == actual.replace(tzinfo=None)
                and type(expected.tzinfo) is type(actual.tzinfo)
                and expected.utcoffset() == actual.utcoffset()
                and getattr(expected.tzinfo, "key", None) == getattr(actual.tzinfo, "key", None))
    return expected == actual


@pytest.fixture
def cipher(monkeypatch):
    monkeypatch.delenv("RJBATCH_ENCRYPTION_CONFIG", raising=False)
    set_ciphers([Cipher(key=bytes(range(32)), iv=bytes(range(100, 116)), version=7)])
    yield
    set_ciphers(None)


@pytest.fixture(params=["compress", "none", "encrypt"])
def serializer(request):
    if request.param == "encrypt":
        request.getfixturevalue("cipher")
    return request.param


def round_trip(records: list, serializer: str = "compress") -> list:
    return decode(encode(records, serializer), serializer)


# -- every value, everywhere ---------------------------------------------------------------
@pytest.mark.parametrize("where", ["top level", "in a dict", "in a list", "nested"])
@pytest.mark.parametrize("name", list(VALUES))
def test_every_value_comes_back_the_same_through_a_slice(name, where, serializer):
    records = placed(VALUES[name], where)
    assert same(records, round_trip(records, serializer))


def test_all_the_values_together_in_one_slice_come_back_the_same(serializer):
    records = [dict(VALUES), list(VALUES.values()), *VALUES.values()] * 3
    assert same(records, round_trip(records, serializer))


# -- datetimes -----------------------------------------------------------------------------
def test_naive_datetime_stays_naive_through_a_slice():
    [back] = round_trip([datetime(2024, 5, 6, 7, 8, 9, 123456)])
    assert back == datetime(2024, 5, 6, 7, 8, 9, 123456) and back.tzinfo is None


def test_aware_datetime_keeps_its_offset_and_microseconds():
    original = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    [back] = round_trip([original])
    assert back == original and back.utcoffset() == timedelta(hours=5, minutes=30)
    assert back.microsecond == 123456 and back.hour == 7


def test_zoneinfo_datetime_comes_back_in_the_same_zone_and_fold():
    first, second = (datetime(2024, 11, 3, 1, 30, tzinfo=NEW_YORK, fold=fold) for fold in (0, 1))
    back = round_trip([first, second])
    assert [value.tzinfo for value in back] == [NEW_YORK, NEW_YORK]
    assert [value.fold for value in back] == [0, 1]
    assert [value.utcoffset() for value in back] == [timedelta(hours=-4), timedelta(hours=-5)]


def test_a_zone_unknown_where_the_slice_is_read_keeps_the_offset(monkeypatch):
    data = encode([datetime(2024, 7, 1, 9, 0, tzinfo=NEW_YORK)])

    def missing(key):
        raise ZoneInfoNotFoundError(key)

    monkeypatch.setattr(slices, "ZoneInfo", missing)
    [back] = decode(data)
    assert back == datetime(2024, 7, 1, 9, 0, tzinfo=timezone(timedelta(hours=-4)))


def test_another_tzinfo_comes_back_as_its_fixed_offset():
    class Plus2(tzinfo):
        def utcoffset(self, dt):
            return timedelta(hours=2)

        def dst(self, dt):
            return timedelta(0)

    original = datetime(2024, 1, 1, 12, 0, 0, 7, tzinfo=Plus2())
    [back] = round_trip([original])
    assert back == original and back.tzinfo == timezone(timedelta(hours=2)) and back.microsecond == 7


def test_a_datetime_subclass_comes_back_as_a_datetime():
    class Stamp(datetime):
        pass

    [back] = round_trip([{"at": Stamp(2024, 1, 1, 0, 0, 0, 5)}])
    assert type(back["at"]) is datetime and back["at"] == datetime(2024, 1, 1, 0, 0, 0, 5)


def test_a_bson_datetime_written_before_tags_still_reads_as_aware_utc():
    old = bson.encode({"r": [datetime(2024, 1, 1, 12, 0)]})  # what earlier versions stored
    assert decode(old, "none") == [datetime(2024, 1, 1, 12, 0, tzinfo=UTC)]


@pytest.mark.parametrize("records", [
    pytest.param([{"a": 1, "b": "x"}] * 50 + [{"a": 1, "b": datetime(2024, 1, 1)}], id="last row"),
    pytest.param([{"b": "x", "a": 1}] * 3 + [{"a": datetime(2024, 1, 1), "b": "x"}], id="keys in another order"),
    pytest.param([{"a": 1}, {"a": 2, "b": datetime(2024, 1, 1)}], id="rows of different widths"),
    pytest.param([{"n": None}] * 9 + [{"n": datetime(2024, 1, 1)}], id="in a column of None"),
    pytest.param([{"n": 1.5}] * 9 + [{"n": datetime(2024, 1, 1)}], id="in a column of floats"),
    pytest.param([{"n": True}] * 9 + [{"n": datetime(2024, 1, 1)}], id="in a column of bools"),
    pytest.param([{"n": None, "s": "x"}] * 9 + [{"n": None, "s": datetime(2024, 1, 1)}], id="in a str column"),
    pytest.param([{"n": "x"}, {"n": None}, {"n": datetime(2024, 1, 1)}], id="str column with None"),
    pytest.param([[1, "a"], [2, datetime(2024, 1, 1)]], id="rows as lists"),
    pytest.param([(1, datetime(2024, 1, 1))], id="in a tuple"),
    pytest.param([OrderedDict(at=datetime(2024, 1, 1))], id="in a dict subclass"),
    pytest.param([{"a": defaultdict(list, at=[datetime(2024, 1, 1)])}], id="in a defaultdict in a dict"),
    pytest.param(["x", datetime(2024, 1, 1)], id="among str records"),
    pytest.param([{"deep": [[[[[[{"at": datetime(2024, 1, 1)}]]]]]]}], id="deep"),
    pytest.param([{"u": uuid.uuid4(), "d": {"at": datetime(2024, 1, 1)}}], id="beside a uuid"),
])
def test_a_datetime_is_found_wherever_it_is(records):
    assert slices._scan(records) & slices._DATETIMES
    assert same(records, round_trip(records))


@pytest.mark.parametrize("records", [
    pytest.param([f"line {n}" for n in range(100)], id="str"),
    pytest.param([{"a": str(n), "b": "x"} for n in range(100)], id="dicts of str"),
    pytest.param([{"i": n, "f": n / 3, "none": None, "s": "x", "b": n % 2 == 0} for n in range(100)],
                 id="dicts int/float/None/str/bool"),
    pytest.param([{"i": n if n % 7 else None, "s": "x" if n % 5 else None} for n in range(100)],
                 id="None now and then"),
    pytest.param([[n, "x", None] for n in range(100)], id="rows as lists"),
    pytest.param([{"n": 2**31 - 1, "m": -(2**31)}] * 10, id="ints of 32 bits"),
    pytest.param([1, 2**31 - 1, None, 2.5], id="numbers as records"),
    pytest.param([], id="no records"),
])
def test_a_slice_of_plain_values_is_neither_walked_nor_marked(records):
    assert slices._scan(records) == 0
    assert encode(records, "none") == bson.encode({"r": records})


def test_decimals_dates_and_uuids_need_no_walk_but_the_encoder_tags_them():
    records = [{"d": Decimal("1.5"), "day": date(2024, 1, 1), "u": uuid.uuid4()}] * 10
    assert slices._scan(records) == 0
    assert encode(records, "none")[4:8] == slices._TAGGED_MARK and same(records, round_trip(records))


def test_the_values_of_dicts_and_lists_are_listed_in_c():
    """On CPython, gc.get_referents flattens a level of a slice (the fast datetime check)."""
    assert slices._items is slices._items_by_gc


def test_without_gc_referents_datetimes_are_still_found(monkeypatch):
    monkeypatch.setattr(slices, "_items", slices._items_in_python)
    records = [{"a": 1, "b": [{"c": datetime(2024, 1, 1, 0, 0, 0, 1)}]}]
    assert slices._scan(records) & slices._DATETIMES and same(records, round_trip(records))
    assert slices._scan([{"a": 1, "b": ["x", None]}]) == 0


# -- decimals, bytes, tuples, tags ---------------------------------------------------------
def test_decimal_keeps_its_scale():
    [back] = round_trip([Decimal("12.50")])
    assert str(back) == "12.50" and type(back) is Decimal


def test_a_decimal_that_fits_is_a_bson_decimal128_and_one_that_does_not_is_tagged():
    raw = bson.decode(encode([Decimal("12.50"), Decimal("1" * 40)], "none"), CodecOptions())
    assert raw["r"][0] == bson.Decimal128("12.50")
    assert isinstance(raw["r"][1], bson.Binary) and raw["r"][1].subtype == slices._TAG_DECIMAL


def test_bytes_stay_bytes_even_beside_tagged_values():
    payload = b"2024-01-01T00:00:00"  # what a tagged datetime's bytes look like
    back = round_trip([payload, {"b": payload, "at": datetime(2024, 1, 1)}, date(2024, 1, 1)])
    assert same([payload, {"b": payload, "at": datetime(2024, 1, 1)}, date(2024, 1, 1)], back)


def test_tuples_come_back_as_lists():
    assert round_trip([(1, 2), {"t": (3, (4, 5))}]) == [[1, 2], {"t": [3, [4, 5]]}]


def test_a_user_dict_that_looks_like_the_tagged_slice_marker_stays_a_dict():
    records = [{"t": True, "r": [1, 2]}, {"$binary": {"base64": "AA==", "subType": "80"}}, {"r": "x"}]
    for extra in ([], [Decimal("1.5")], [datetime(2024, 1, 1)]):
        assert same(records + extra, round_trip(records + extra))


def test_a_plain_slice_is_stored_exactly_as_before():
    records = ["a", {"b": 1, "c": [1.5, None, b"x"]}]
    assert encode(records, "none") == bson.encode({"r": records})


def test_a_slice_with_tagged_values_still_has_its_records_under_r():
    raw = bson.decode(encode(["a", date(2024, 1, 1)], "none"))
    assert raw["t"] is True and raw["r"][0] == "a"


@pytest.mark.parametrize("records", [
    pytest.param([{"id": 1_700_000_000_000 + n, "s": "x"} for n in range(10)], id="an int64 column"),
    pytest.param([{"id": n, "s": "x"} for n in range(10)] + [{"id": -(2**31) - 1, "s": "x"}], id="one below"),
    pytest.param([{"v": "x"}, {"v": 2**40}, {"v": None}], id="in a column of str"),
    pytest.param([{"v": 1.5}, {"v": 2**40}], id="in a column of floats"),
    pytest.param([[1, [2, [2**33]]]], id="nested in lists"),
    pytest.param(["x", 2**62], id="among str records"),
    pytest.param([2**63 - 1], id="alone"),
])
def test_an_int_beyond_32_bits_comes_back_an_int_not_a_bson_int64(records):
    assert slices._scan(records) & slices._LONGS
    back = round_trip(records)
    assert same(records, back)


def test_ints_beyond_64_bits_come_back():
    values = [2**64, -(2**64) - 1, 10**100, {"n": [2**200]}]
    assert round_trip(values) == values


def test_threads_encoding_at_once_mark_only_their_own_slices():
    plain = [{"n": n, "s": "x"} for n in range(200)]
    rich = [{"n": n, "at": datetime(2024, 1, 1, 0, 0, 0, n)} for n in range(200)]

    def work(number: int) -> bool:
        records = rich if number % 2 else plain
        data = encode(records, "none")
        return (data[4:8] == slices._TAGGED_MARK) == bool(number % 2) and same(records, decode(data, "none"))

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(400)))


# -- what cannot be stored -----------------------------------------------------------------
@pytest.mark.parametrize(("records", "named", "where"), [
    ([object()], "object", "record 0"),
    (["a", {"tags": {1, 2}}], "set", "record 1, key 'tags'"),
    ([{"a": [1, {"b": frozenset()}]}], "frozenset", "record 0, at ['a'][1]['b']"),
    ([1, 2, 3j], "complex", "record 2"),
    ([{"at": datetime(2024, 1, 1), "bad": bytearray(b"x")}], "bytearray", "record 0, key 'bad'"),
    ([{"d": Decimal(1), "e": Ellipsis}], "ellipsis", "record 0, key 'e'"),
])
def test_an_unstorable_value_raises_slice_encoding_error_naming_its_type(records, named, where):
    with pytest.raises(SliceEncodingError) as raised:
        encode(records)
    message = str(raised.value)
    assert f"type {named} " in message and where in message and "\n" not in message


def test_a_dict_with_a_key_that_is_not_a_str_names_the_record():
    with pytest.raises(SliceEncodingError, match=r"record 1 .*string keys"):
        encode(["a", {1: "x"}])


def test_a_record_that_contains_itself_raises_slice_encoding_error():
    record: list = [1]
    record.append(record)
    with pytest.raises(SliceEncodingError, match="contains itself"):
        encode([record])


# -- the serializers -----------------------------------------------------------------------
def test_bzip2_stores_lines_of_text_as_before():
    assert decode(encode(["a", "b"], "bzip2"), "bzip2") == [{"binary": b"a\nb\n"}]


def test_an_unknown_serializer_is_refused():
    with pytest.raises(SliceEncodingError, match="unknown slice serializer 'lz4'"):
        encode(["a"], "lz4")


def test_make_slice_counts_and_encodes_the_records():
    piece = slices.make_slice(3, 201, [{"at": datetime(2024, 1, 1, 0, 0, 0, 1)}], "compress")
    assert piece["record_count"] == 1 and piece["first_record_number"] == 201
    assert decode(piece["data"], piece["serializer"]) == [{"at": datetime(2024, 1, 1, 0, 0, 0, 1)}]
