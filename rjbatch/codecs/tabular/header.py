"""Header rows: cleansing column names, allowed/required columns, rows to dicts.

The rules are IOStreams' (reference/iostreams.md §3.3-3.5) so that a file a Ruby job accepted
is read into the same keys here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

from .errors import InvalidHeader

#: A column rejected by ``allowed_columns`` is renamed to this prefix + its original name, so
#: that it keeps its position but never becomes a key.
REJECTED_PREFIX = "__rejected__"

# Ruby's String#strip: ASCII white space and NUL, nothing else (NBSP and U+3000 stay).
_RUBY_STRIP = " \t\n\v\f\r\x00"
_WHITESPACE_RUN = re.compile(r"[ \t\r\n\f\v]+")
_DASH_RUN = re.compile(r"-+")
_NON_WORD_RUN = re.compile(r"[^A-Za-z0-9_]+")


def cleanse_column(name: Any) -> str:
    """Cleanse one column name the way IOStreams does (§3.3).

    Strip ASCII white space, lower-case, turn white-space runs and dash runs into ``_``,
    then delete every character that is not an ASCII letter, digit or ``_`` (so ``Café``
    becomes ``caf``: non-ASCII letters are deleted, exactly as in Ruby).
    """
    text = "" if name is None else str(name)
    text = text.strip(_RUBY_STRIP).lower()
    text = _WHITESPACE_RUN.sub("_", text)
    text = _DASH_RUN.sub("_", text)
    return _NON_WORD_RUN.sub("", text)


def cleanse_header(names: Iterable[Any]) -> list[str]:
    """Cleanse every column name of a header row, keeping order and duplicates."""
    return [cleanse_column(name) for name in names]


def _display(names: Iterable[Any]) -> str:
    return ", ".join(repr("" if name is None else str(name)) for name in names)


def restrict_columns(
    names: Sequence[Any],
    *,
    cleanse: bool = True,
    allowed_columns: Sequence[str] | None = None,
    required_columns: Sequence[str] | None = None,
    skip_unknown: bool = False,
) -> tuple[list[str], list[str]]:
    """Turn a parsed header row into column names; return ``(columns, rejected)``.

    ``rejected`` holds the original names of the columns not in ``allowed_columns``; they
    stay in ``columns`` as ``"__rejected__" + name`` so positions are kept. Raises
    ``InvalidHeader`` for unknown columns (unless ``skip_unknown``), when every column is
    unknown, and for ``required_columns`` that are missing.
    """
    originals = ["" if name is None else str(name) for name in names]
    cleansed = cleanse_header(originals) if cleanse else list(originals)
    rejected: list[str] = []
    columns: list[str] = []
    allowed = None if allowed_columns is None else set(allowed_columns)
    for original, name in zip(originals, cleansed, strict=True):
        if allowed is None or name in allowed:
            columns.append(name)
        else:
            rejected.append(original)
            columns.append(REJECTED_PREFIX + original)
    if rejected and not skip_unknown:
        raise InvalidHeader(f"Unknown columns after cleansing: {_display(rejected)}")
    if columns and len(rejected) == len(columns):
        raise InvalidHeader(f"All columns are unknown after cleansing: {_display(rejected)}")
    if required_columns:
        present = set(columns)
        missing = [name for name in required_columns if name not in present]
        if missing:
            raise InvalidHeader(f"Missing columns after cleansing: {_display(missing)}")
    return columns, rejected


def is_skipped(column: str) -> bool:
    """True for columns that never become keys: blank names and rejected columns."""
    return not column or column.startswith(REJECTED_PREFIX)


class RowMapper:
    """Turns parsed rows (lists of values) into dicts for one list of columns.

    Precomputes everything it can, because it runs once per record on the hot path:
    short rows are padded with ``None``, extra values are dropped, blank and rejected
    columns are skipped, and a duplicated column keeps the position of its first
    occurrence with the value of its last (what a dict does anyway, and what Ruby does).
    """

    __slots__ = ("columns", "keys", "width", "direct", "_pick")

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = list(columns)
        self.width = len(self.columns)
        wanted = [i for i, column in enumerate(self.columns) if not is_skipped(column)]
        self.keys = [self.columns[i] for i in wanted]
        #: True when every column is a key, so a row zips straight into a dict.
        self.direct = len(wanted) == self.width
        if len(wanted) == self.width:
            self._pick = None  # every column is a key: zip the row directly
        elif not wanted:  # every column blank or rejected
            self._pick = lambda row: ()
        elif len(wanted) == 1:
            index = wanted[0]
            self._pick = lambda row: (row[index],)
        else:
            self._pick = itemgetter(*wanted)

    def to_dict(self, row: list[Any]) -> dict[str, Any]:
        """The dict for one row (a short row is padded with None first)."""
        if len(row) < self.width:
            row = row + [None] * (self.width - len(row))
        if self._pick is None:
            return dict(zip(self.keys, row))  # noqa: B905 - the hot path
        return dict(zip(self.keys, self._pick(row)))  # noqa: B905

    def to_values(self, record: dict[str, Any]) -> list[Any]:
        """The record's values in column order; missing keys and skipped columns give None."""
        if self.direct:
            return list(map(record.get, self.columns))
        get = record.get
        return [None if is_skipped(column) else get(column) for column in self.columns]
