"""Typed job fields: coercion on assignment and conversion to plain stored values.

A field is a data descriptor on the job class; the values live in the job's
``_values`` dict and every assignment is coerced, so a bad value fails where it is
set, naming the field, instead of later inside a worker.

Type checkers see a field's values with their kind: ``field(int, default=0)`` is a
``Field[int]`` and ``job.user_count`` an ``int`` (see :func:`field` for when ``None``
is part of the type, and :class:`Field` for what an assignment accepts).
"""

from __future__ import annotations

import base64
import datetime as dt
import inspect
import re
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, Literal, Never, TypeVar, overload

from bson import ObjectId

from rjbatch.errors import ValidationError

T = TypeVar("T")

_MISSING = object()
_TRUE = {"true", "t", "yes", "y", "1", "on"}
_FALSE = {"false", "f", "no", "n", "0", "off", ""}


def to_utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC with millisecond precision; a naive datetime is taken as UTC."""
    if value.tzinfo is dt.UTC and value.microsecond % 1000 == 0:
        return value  # already so: what every store gives back
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    else:
        value = value.astimezone(dt.UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def parse_datetime(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.strip())  # 3.11 reads the "Z" suffix too
    if value.tzinfo is dt.UTC and value.microsecond % 1000 == 0:
        return value  # already what the store writes: UTC, milliseconds
    return to_utc(value)


def format_datetime(value: dt.datetime) -> str:
    """The stored text form: ISO 8601, UTC, milliseconds, sortable as a string."""
    value = to_utc(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _coerce_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | Decimal | ObjectId):
        return str(value)
    raise ValueError(f"expected a string, got {type(value).__name__}")


def _coerce_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal) and value == int(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected an integer, got {value!r}")


def _coerce_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number, got bool")
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a number, got {value!r}")


def _coerce_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise ValueError(f"expected true or false, got {value!r}")


def _coerce_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("expected a decimal, got bool")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float | str):
        try:
            return Decimal(str(value).strip())
        except InvalidOperation:
            pass
    raise ValueError(f"expected a decimal, got {value!r}")


def _coerce_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise ValueError(f"expected a date (YYYY-MM-DD), got {value!r}")


def _coerce_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return to_utc(value)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except ValueError:
            pass
    if isinstance(value, int | float) and not isinstance(value, bool):
        return to_utc(dt.datetime.fromtimestamp(value, dt.UTC))
    raise ValueError(f"expected a datetime, got {value!r}")


def _coerce_timedelta(value: Any) -> dt.timedelta:
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return dt.timedelta(seconds=float(value))
    if isinstance(value, str):
        text = value.strip()
        try:
            return dt.timedelta(seconds=float(text))
        except ValueError:
            parts = text.split(":")
            if len(parts) == 3 and all(p.replace(".", "", 1).isdigit() for p in parts):
                hours, minutes, seconds = (float(p) for p in parts)
                return dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)
    raise ValueError(f"expected a duration (seconds or HH:MM:SS), got {value!r}")


def _coerce_dict(value: Any) -> dict:
    if isinstance(value, dict):
        return value
    raise ValueError(f"expected a dict, got {type(value).__name__}")


def _coerce_list(value: Any) -> list:
    if isinstance(value, list):
        return value
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise ValueError(f"expected a list, got {type(value).__name__}")


def _coerce_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise ValueError(f"expected bytes, got {type(value).__name__}")


def _coerce_object_id(value: Any) -> ObjectId:
    if isinstance(value, ObjectId):
        return value
    if isinstance(value, str) and ObjectId.is_valid(value):
        return ObjectId(value)
    raise ValueError(f"expected an ObjectId (24 hex digits), got {value!r}")


def _coerce_range(value: Any) -> range:
    if isinstance(value, range):
        return value
    if isinstance(value, list | tuple) and len(value) in (2, 3):
        return range(*(_coerce_int(v) for v in value))
    raise ValueError(f"expected a range, got {value!r}")


def _coerce_pattern(value: Any) -> re.Pattern:
    if isinstance(value, re.Pattern):
        return value
    try:
        if isinstance(value, str):
            return re.compile(value)
        if isinstance(value, dict):
            return re.compile(value["pattern"], value.get("flags", 0))
    except (re.error, KeyError) as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    raise ValueError(f"expected a regular expression, got {value!r}")


def _any(value: Any) -> Any:
    return value


_COERCERS: dict[Any, Callable[[Any], Any]] = {
    str: _coerce_str,
    int: _coerce_int,
    float: _coerce_float,
    bool: _coerce_bool,
    Decimal: _coerce_decimal,
    dt.date: _coerce_date,
    dt.datetime: _coerce_datetime,
    dt.timedelta: _coerce_timedelta,
    dict: _coerce_dict,
    list: _coerce_list,
    bytes: _coerce_bytes,
    ObjectId: _coerce_object_id,
    range: _coerce_range,
    re.Pattern: _coerce_pattern,
    object: _any,
    None: _any,
}


def plain(value: Any) -> Any:
    """Turn nested values into what every store keeps (JSON types plus aware datetimes)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dt.datetime):
        return to_utc(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | ObjectId):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if hasattr(value, "to_dict"):
        return plain(value.to_dict())
    raise ValueError(f"cannot store a {type(value).__name__}")


def _to_storage(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    if kind is dt.datetime:
        return value
    if kind is bytes:
        return base64.b64encode(value).decode("ascii")
    if kind is range:
        return [value.start, value.stop, value.step]
    if kind is dt.timedelta:
        return value.total_seconds()
    if kind is re.Pattern:
        return {"pattern": value.pattern, "flags": value.flags & ~re.UNICODE}
    return plain(value)


def _from_storage(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    if kind is bytes and isinstance(value, str):
        return base64.b64decode(value)
    if kind is dt.datetime and isinstance(value, dt.datetime):
        return to_utc(value)
    return coercer(kind)(value)


def coercer(kind: Any) -> Callable[[Any], Any]:
    if kind in _COERCERS:
        return _COERCERS[kind]
    if isinstance(kind, type) and hasattr(kind, "coerce"):
        return kind.coerce
    raise TypeError(f"unsupported field type {kind!r}")


# What an assignment to a field of each kind accepts: the values its coercer turns into
# the kind (``"12"`` into an int field, an ISO string into a datetime field, ...). For
# type checkers only: ``bool`` is an ``int`` to them, so a bool given to an int field,
# which coercion refuses, still fails only when it is set.
_StrInput = str | int | float | Decimal | ObjectId
_IntInput = int | float | Decimal | str
_FloatInput = float | Decimal | str
_BoolInput = bool | int | str
_DecimalInput = Decimal | float | str
_DateInput = dt.date | str
_DatetimeInput = dt.datetime | dt.date | str | float
_TimedeltaInput = dt.timedelta | float | Decimal | str
_ListInput = list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any]
_BytesInput = bytes | bytearray | memoryview
_ObjectIdInput = ObjectId | str
_RangeInput = range | list[Any] | tuple[Any, ...]
_PatternInput = re.Pattern[Any] | str | dict[str, Any]


def _is_factory(default: Any) -> bool:
    """Is this default called per job? A function, or a container type (``default=list``);
    any other class is a value (a field may hold a class)."""
    return callable(default) and (not isinstance(default, type) or default in (list, dict, set))


class Field(Generic[T]):
    """A typed job field. Create with :func:`field`.

    ``Field[T]`` is a descriptor. On a job, ``job.name`` is a ``T`` to type checkers;
    on the class, ``JobClass.name`` is the class's default (``T``, or ``None`` for a
    required field without one), or the field itself when the default is a callable.
    ``job.name = value`` accepts a ``T`` or what coercion turns into one (``"12"``
    for an int field, an ISO 8601 string for a datetime field, a tuple for a list
    field, ...). ``None`` is accepted only where it is part of ``T``: a field declared
    without a default, or with ``default=None`` (at run time any field takes ``None``).
    """

    __slots__ = (
        "kind", "default", "copy_on_restart", "user_editable", "required", "choices",
        "name", "owner", "_coerce", "_default_takes_job", "_dynamic", "description",
    )

    def __init__(
        self,
        kind: type[T] | None = None,
        default: Any = None,
        *,
        copy_on_restart: bool = False,
        user_editable: bool = False,
        required: bool = False,
        choices: Iterable[Any] | None = None,
        description: str | None = None,
    ) -> None:
        self.kind: Any = kind
        self._coerce = coercer(kind)
        self.copy_on_restart = copy_on_restart
        self.user_editable = user_editable
        self.required = required
        self.choices = tuple(choices) if choices is not None else None
        self.description = description
        self.name = ""
        self.owner: type | None = None
        self._set_default(default)

    def _set_default(self, default: Any) -> None:
        self.default = default
        self._dynamic = _is_factory(default)
        self._default_takes_job = False
        if self._dynamic and not isinstance(default, type):
            try:
                self._default_takes_job = len(inspect.signature(default).parameters) > 0
            except (TypeError, ValueError):
                self._default_takes_job = False

    def with_default(self, default: Any) -> Field[T]:
        """A copy with another default: how a subclass overrides a parent's setting."""
        copy: Field[T] = Field.__new__(Field)
        for slot in Field.__slots__:
            setattr(copy, slot, getattr(self, slot))
        copy._set_default(default)
        return copy

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.owner = owner

    @property
    def has_dynamic_default(self) -> bool:
        return self._dynamic

    def static_default(self) -> Any:
        value = self.default
        if isinstance(value, dict | list):
            value = type(value)(value)  # never share a mutable default between jobs
        return value

    def dynamic_default(self, job: Any) -> Any:
        return self.default(job) if self._default_takes_job else self.default()

    def coerce(self, value: Any) -> Any:
        if value is None:
            return None
        try:
            return self._coerce(value)
        except ValueError as exc:
            owner = self.owner.__name__ if self.owner else ""
            raise ValidationError({self.name: [str(exc)]}, owner) from None

    def to_storage(self, value: Any) -> Any:
        return _to_storage(self.kind, value)

    def from_storage(self, value: Any) -> Any:
        try:
            return _from_storage(self.kind, value)
        except (ValueError, TypeError):
            return value  # keep what the store holds rather than lose it

    @overload
    def __get__(self, job: None, owner: type | None = None) -> T | Field[T] | None: ...
    @overload
    def __get__(self, job: object, owner: type | None = None) -> T: ...
    def __get__(self, job: Any, owner: type | None = None) -> Any:
        if job is None:
            return self if self.has_dynamic_default else self.default
        try:
            return job._values[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    # One signature per kind that coercion widens, each with and without None (a field is
    # invariant in T, so Field[int] matches only the first int one); any other: a T.
    @overload
    def __set__(self: Field[str], job: object, value: _StrInput) -> None: ...
    @overload
    def __set__(self: Field[str | None], job: object, value: _StrInput | None) -> None: ...
    @overload
    def __set__(self: Field[bool], job: object, value: _BoolInput) -> None: ...
    @overload
    def __set__(self: Field[bool | None], job: object, value: _BoolInput | None) -> None: ...
    @overload
    def __set__(self: Field[int], job: object, value: _IntInput) -> None: ...
    @overload
    def __set__(self: Field[int | None], job: object, value: _IntInput | None) -> None: ...
    @overload
    def __set__(self: Field[float], job: object, value: _FloatInput) -> None: ...
    @overload
    def __set__(self: Field[float | None], job: object, value: _FloatInput | None) -> None: ...
    @overload
    def __set__(self: Field[Decimal], job: object, value: _DecimalInput) -> None: ...
    @overload
    def __set__(self: Field[Decimal | None], job: object, value: _DecimalInput | None) -> None: ...
    @overload
    def __set__(self: Field[dt.datetime], job: object, value: _DatetimeInput) -> None: ...
    @overload
    def __set__(
        self: Field[dt.datetime | None], job: object, value: _DatetimeInput | None
    ) -> None: ...
    @overload
    def __set__(self: Field[dt.date], job: object, value: _DateInput) -> None: ...
    @overload
    def __set__(self: Field[dt.date | None], job: object, value: _DateInput | None) -> None: ...
    @overload
    def __set__(self: Field[dt.timedelta], job: object, value: _TimedeltaInput) -> None: ...
    @overload
    def __set__(
        self: Field[dt.timedelta | None], job: object, value: _TimedeltaInput | None
    ) -> None: ...
    @overload
    def __set__(self: Field[list[Any]], job: object, value: _ListInput) -> None: ...
    @overload
    def __set__(self: Field[list[Any] | None], job: object, value: _ListInput | None) -> None: ...
    @overload
    def __set__(self: Field[bytes], job: object, value: _BytesInput) -> None: ...
    @overload
    def __set__(self: Field[bytes | None], job: object, value: _BytesInput | None) -> None: ...
    @overload
    def __set__(self: Field[ObjectId], job: object, value: _ObjectIdInput) -> None: ...
    @overload
    def __set__(
        self: Field[ObjectId | None], job: object, value: _ObjectIdInput | None
    ) -> None: ...
    @overload
    def __set__(self: Field[range], job: object, value: _RangeInput) -> None: ...
    @overload
    def __set__(self: Field[range | None], job: object, value: _RangeInput | None) -> None: ...
    @overload
    def __set__(self: Field[re.Pattern[Any]], job: object, value: _PatternInput) -> None: ...
    @overload
    def __set__(
        self: Field[re.Pattern[Any] | None], job: object, value: _PatternInput | None
    ) -> None: ...
    @overload
    def __set__(self, job: object, value: T) -> None: ...
    def __set__(self, job: Any, value: Any) -> None:
        value = self.coerce(value)
        values = job._values
        if self.name not in values or values[self.name] != value or isinstance(value, dict | list):
            values[self.name] = value
            job._changed.add(self.name)

    def __repr__(self) -> str:
        kind = getattr(self.kind, "__name__", self.kind)
        return f"<field {self.name}: {kind} = {self.default!r}>"


@overload
def field(
    kind: None = None,
    default: Any = None,
    *,
    copy_on_restart: bool = False,
    user_editable: bool = False,
    required: bool = False,
    choices: Iterable[Any] | None = None,
    description: str | None = None,
) -> Field[Any]: ...
# required=True without a default: listed before the overload it overlaps, so it wins
@overload
def field(  # pyright: ignore[reportOverlappingOverload]
    kind: type[T],
    default: None = None,
    *,
    copy_on_restart: bool = False,
    user_editable: bool = False,
    required: Literal[True],
    choices: Iterable[Any] | None = None,
    description: str | None = None,
) -> Field[T]: ...
@overload
def field(
    kind: type[T],
    default: None = None,
    *,
    copy_on_restart: bool = False,
    user_editable: bool = False,
    required: bool = False,
    choices: Iterable[Any] | None = None,
    description: str | None = None,
) -> Field[T | None]: ...
@overload
def field(
    kind: type[T],
    default: T | Callable[[], T] | Callable[[Never], T],
    *,
    copy_on_restart: bool = False,
    user_editable: bool = False,
    required: bool = False,
    choices: Iterable[Any] | None = None,
    description: str | None = None,
) -> Field[T]: ...
def field(
    kind: Any = None,
    default: Any = None,
    *,
    copy_on_restart: bool = False,
    user_editable: bool = False,
    required: bool = False,
    choices: Iterable[Any] | None = None,
    description: str | None = None,
) -> Any:
    """Declare a job field: ``user_count = field(int, default=0)``.

    ``default`` may be a callable, evaluated per job after the other values are set
    (it may take the job as its one argument).

    To a type checker the field is a ``Field[kind]``, so ``job.user_count`` is an
    ``int``, and ``field(list)`` a ``Field[list[Any]]``. A field whose default is
    ``None`` (no default, or ``default=None``) holds ``None`` until it is set, so it is
    a ``Field[kind | None]``: ``run_at = field(datetime)`` makes ``job.run_at`` a
    ``datetime | None``. A ``required=True`` field without a default is a
    ``Field[kind]``: validation refuses to save a job without it, so every stored job
    (and so every job a worker performs) has one; a new job reads ``None`` until it is
    given. Without a kind (``field()``, any JSON value) the field is a ``Field[Any]``.
    The types are for checkers only: at run time any field still takes ``None``, and
    every value is coerced as before.
    """
    return Field(
        kind, default, copy_on_restart=copy_on_restart, user_editable=user_editable,
        required=required, choices=choices, description=description,
    )


class computed(property):  # noqa: N801 - used as a decorator, like property
    """A property that replaces an inherited stored field with a value worked out on read.

    ``BatchJob.percent_complete`` is one: it is counted from the slices left, so it is
    never stale and never costs a write per slice.
    """
