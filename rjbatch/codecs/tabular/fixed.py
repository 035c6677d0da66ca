"""Fixed-width lines described by a layout, as IOStreams parses and renders them.

A layout is a list of dicts: ``{"key": "name", "size": 10}``, ``{"size": 3}`` (a filler, never
a key), ``{"key": "age", "size": 4, "type": "integer"}``,
``{"key": "weight", "size": 7, "type": "float", "decimals": 2}`` and, last only,
``{"key": "rest", "size": "remainder"}`` for a variable-length tail (docs/codecs.md, Formats).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .delimited import ruby_float, ruby_str
from .errors import (
    InvalidLayout,
    InvalidLineLength,
    MalformedLine,
    TabularError,
    ValueTooLong,
    excerpt,
)

REMAINDER = "remainder"
TYPES = ("string", "integer", "float")
_STRIP = " \t\n\v\f\r\x00"  # Ruby's String#strip
_ENTRY_KEYS = {"key", "size", "type", "decimals"}


@dataclass(frozen=True)
class FixedColumn:
    """One layout entry. ``size`` is ``None`` for the remainder column."""

    key: str | None
    size: int | None
    type: str = "string"
    decimals: int = 2

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> FixedColumn:
        if not isinstance(entry, Mapping):
            raise InvalidLayout(f"A fixed layout entry must be a dict, not {entry!r}")
        unknown = set(entry) - _ENTRY_KEYS
        if unknown:
            raise InvalidLayout(f"Unknown keys {sorted(unknown)} in fixed layout entry {entry!r}")
        if "size" not in entry:
            raise InvalidLayout(f"Missing required 'size' in fixed layout entry {entry!r}")
        size = entry["size"]
        if size == REMAINDER or size == -1:
            size = None
        elif isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise InvalidLayout(
                f"Size {size!r} must be a positive integer or 'remainder': {entry!r}"
            )
        kind = entry.get("type") or "string"
        if kind not in TYPES:
            raise InvalidLayout(f"Unknown type {kind!r} in fixed layout entry {entry!r}")
        decimals = entry.get("decimals", 2)
        if isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0:
            raise InvalidLayout(f"Decimals {decimals!r} must be a whole number: {entry!r}")
        key = entry.get("key")
        if key is not None and not isinstance(key, str):
            raise InvalidLayout(f"Key {key!r} must be a string: {entry!r}")
        return cls(key=key or None, size=size, type=kind, decimals=decimals)

    def to_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"size": REMAINDER if self.size is None else self.size}
        if self.key is not None:
            entry["key"] = self.key
        if self.type != "string":
            entry["type"] = self.type
            if self.type == "float":
                entry["decimals"] = self.decimals
        return entry


def _parse_integer(text: str) -> int:
    return int(text)


def _parse_float(text: str) -> float:
    return float(text)


class FixedLayout:
    """Parses and renders the lines of one layout."""

    def __init__(self, layout: Sequence[Mapping[str, Any]], truncate: bool = True) -> None:
        if isinstance(layout, (str, bytes)) or not isinstance(layout, Sequence) or not layout:
            raise InvalidLayout(
                "The fixed format needs a non-empty 'layout' list in format_options"
            )
        self.columns = [FixedColumn.from_entry(entry) for entry in layout]
        for column in self.columns[:-1]:
            if column.size is None:
                raise InvalidLayout("Only the last fixed layout entry can have size 'remainder'")
        self.truncate = bool(truncate)
        has_remainder = self.columns[-1].size is None
        #: The length every line must have; ``None`` when the last column is a remainder.
        self.line_length: int | None = (
            None if has_remainder else sum(column.size or 0 for column in self.columns)
        )
        self.keys = [column.key for column in self.columns if column.key is not None]
        repeated = sorted({key for key in self.keys if self.keys.count(key) > 1})
        if repeated:
            raise InvalidLayout(f"Duplicate keys {repeated} in the fixed layout")
        slices: list[tuple[str, int, int | None, Callable[[str], Any] | None]] = []
        start = 0
        for column in self.columns:
            end = None if column.size is None else start + column.size
            if column.key is not None:
                convert = {"string": None, "integer": _parse_integer, "float": _parse_float}
                slices.append((column.key, start, end, convert[column.type]))
            if end is not None:
                start = end
        self._slices = slices

    def layout(self) -> list[dict[str, Any]]:
        """The layout as plain dicts, for storing in a job."""
        return [column.to_entry() for column in self.columns]

    # -- parsing ----------------------------------------------------------------------------

    def parse(self, line: str, line_number: int | None = None) -> dict[str, Any]:
        """The keyed columns of one line: strings stripped, numbers converted, blank -> None."""
        length = len(line)
        if self.line_length is not None and length != self.line_length:
            raise InvalidLineLength(
                f"Fixed-width line has {length} characters but the layout "
                f"needs {self.line_length}: {excerpt(line)}",
                line_number=line_number,
            )
        record: dict[str, Any] = {}
        for key, start, end, convert in self._slices:
            if start > length:  # only possible with a remainder: the line is too short
                record[key] = None
                continue
            text = line[start:end].strip(_STRIP)
            if convert is None:
                record[key] = text
            elif not text:
                record[key] = None
            else:
                try:
                    record[key] = convert(text)
                except ValueError:
                    kind = "an integer" if convert is _parse_integer else "a number"
                    raise MalformedLine(
                        f"Fixed-width column {key!r} is not {kind}: {text!r}",
                        line_number=line_number,
                    ) from None
        return record

    # -- rendering --------------------------------------------------------------------------

    def render(self, record: Mapping[str, Any] | Sequence[Any]) -> str:
        """One line for a record; a list is taken in the order of the layout's keys."""
        if not isinstance(record, Mapping):
            record = dict(zip(self.keys, record, strict=False))
        return "".join(self._render_column(column, record) for column in self.columns)

    def _render_column(self, column: FixedColumn, record: Mapping[str, Any]) -> str:
        size = column.size
        if column.key is None:
            return "" if size is None else " " * size
        value = record.get(column.key)
        if column.type == "string":
            text = "" if value is None else ruby_str(value)
            if size is None:
                return text
            if len(text) > size:
                if self.truncate:
                    return text[:size]
                raise self._too_long(column, value)
            return text.ljust(size)
        if column.type == "integer":
            number = _to_number(value, column, int)
            text = str(number) if size is None else f"{number:0{size}d}"
        else:
            number = _to_number(value, column, float)
            if size is None:
                return ruby_float(number)
            text = f"{number:0{size}.{column.decimals}f}"
        if size is not None and len(text) > size:
            raise self._too_long(column, value)
        return text

    @staticmethod
    def _too_long(column: FixedColumn, value: Any) -> ValueTooLong:
        return ValueTooLong(
            f"Value {value!r} is too long for fixed-width column {column.key!r} of size {column.size}"
        )


def _to_number(value: Any, column: FixedColumn, kind: type) -> Any:
    """``None`` and blank text are 0; numbers and numeric text convert; anything else raises."""
    if value is None:
        return kind(0)
    try:
        if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
            return kind(value)
        if isinstance(value, str):
            text = value.strip(_STRIP)
            if not text:
                return kind(0)
            return kind(Decimal(text)) if kind is int else kind(text)
    except (ValueError, InvalidOperation, OverflowError):  # "abc", NaN as an integer, ...
        pass
    raise TabularError(f"Value {value!r} for {column.type} column {column.key!r} is not a number")
