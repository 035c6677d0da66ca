"""Header rows: cleansing column names, allowed/required columns, rows to dicts.

The rules are IOStreams' (docs/codecs.md, Header rows) so that a file a Ruby job accepted
is read into the same keys here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import compress, repeat
from operator import getitem, itemgetter, not_
from typing import Any

from .errors import InvalidHeader

#: A generated row builder (``_compile_builders``): rows of exactly the columns' width to
#: dicts. Its list never holds None but is typed as ``RowMapper.to_dicts`` returns it: the
#: builders are that method's fast path, and their lists are handed out as its result.
Builder = Callable[[Iterable[Any]], list[dict[str, Any] | None]]

#: A column rejected by ``allowed_columns`` is renamed to this prefix + its original name, so
#: that it keeps its position but never becomes a key.
REJECTED_PREFIX = "__rejected__"

# Ruby's String#strip: ASCII white space and NUL, nothing else (NBSP and U+3000 stay).
_RUBY_STRIP = " \t\n\v\f\r\x00"
_WHITESPACE_RUN = re.compile(r"[ \t\r\n\f\v]+")
_DASH_RUN = re.compile(r"-+")
_NON_WORD_RUN = re.compile(r"[^A-Za-z0-9_]+")


def cleanse_column(name: Any) -> str:
    """Cleanse one column name the way IOStreams does.

    Strip ASCII white space, lower-case, turn white-space runs and dash runs into ``_``,
    then delete every character that is not an ASCII letter, digit or ``_`` (so ``Café``
    becomes ``caf``: non-ASCII letters are deleted, exactly as in Ruby).
    """
    text = "" if name is None else str(name)
    text = text.strip(_RUBY_STRIP).lower()
    text = _WHITESPACE_RUN.sub("_", text)
    text = _DASH_RUN.sub("_", text)
    return _NON_WORD_RUN.sub("", text)


def cleanse_header(names: Iterable[Any], *, duplicate_columns: str | None = None) -> list[str]:
    """Cleanse every column name of a header row, keeping order.

    Cleansing can make two names equal (``Name`` and ``name``). ``duplicate_columns=None``
    keeps such duplicates; ``"error"`` or ``"rename"`` handles them as ``resolve_duplicates``
    does (``restrict_columns`` always does).
    """
    originals = list(names)
    cleansed = [cleanse_column(name) for name in originals]
    if duplicate_columns is None:
        return cleansed
    return resolve_duplicates(cleansed, duplicate_columns, originals=originals)


#: What to do with a column name that occurs twice: raise, or number the later ones.
DUPLICATE_COLUMNS = ("error", "rename")


def resolve_duplicates(
    columns: Sequence[str], mode: str = "error", *, originals: Sequence[Any] | None = None
) -> list[str]:
    """The columns with no key twice: ``mode="error"`` raises, ``"rename"`` numbers them.

    A duplicated key would silently keep one value for several columns. ``error`` raises
    ``InvalidHeader`` naming each duplicated column and its 1-based positions, e.g.
    ``duplicate column 'name' (columns 2, 3, 4)`` (with the names before cleansing when
    ``originals`` differ). ``rename`` keeps the first and names the others ``name_2``,
    ``name_3``, ... skipping names already in the header. Blank and rejected columns are
    never keys, so they may repeat.
    """
    if mode not in DUPLICATE_COLUMNS:
        raise InvalidHeader(f"duplicate_columns must be one of {DUPLICATE_COLUMNS}, not {mode!r}")
    columns = list(columns)
    if len(set(columns)) == len(columns):
        return columns
    positions: dict[str, list[int]] = {}
    for index, column in enumerate(columns):
        if not is_skipped(column):
            positions.setdefault(column, []).append(index)
    repeated = {name: where for name, where in positions.items() if len(where) > 1}
    if not repeated:
        return columns
    if mode == "error":
        raise InvalidHeader(_duplicates_message(repeated, originals))
    taken = set(positions)
    for name, where in repeated.items():
        number = 1
        for index in where[1:]:
            number += 1
            while f"{name}_{number}" in taken:
                number += 1
            columns[index] = f"{name}_{number}"
            taken.add(columns[index])
    return columns


def _duplicates_message(repeated: dict[str, list[int]], originals: Sequence[Any] | None) -> str:
    parts = []
    for name, where in repeated.items():
        text = f"duplicate column {name!r} (columns {', '.join(str(i + 1) for i in where)})"
        if originals is not None:
            before = ["" if originals[i] is None else str(originals[i]) for i in where]
            if any(original != name for original in before):
                text += f" from header names {_display(before)}"
        parts.append(text)
    return "; ".join(parts) + " (duplicate_columns='rename' numbers them)"


def _display(names: Iterable[Any]) -> str:
    return ", ".join(repr("" if name is None else str(name)) for name in names)


def restrict_columns(
    names: Sequence[Any],
    *,
    cleanse: bool = True,
    allowed_columns: Sequence[str] | None = None,
    required_columns: Sequence[str] | None = None,
    skip_unknown: bool = False,
    duplicate_columns: str = "error",
) -> tuple[list[str], list[str]]:
    """Turn a parsed header row into column names; return ``(columns, rejected)``.

    ``rejected`` holds the original names of the columns not in ``allowed_columns``; they
    stay in ``columns`` as ``"__rejected__" + name`` so positions are kept. Raises
    ``InvalidHeader`` for unknown columns (unless ``skip_unknown``), when every column is
    unknown, for a column that occurs twice after cleansing (unless
    ``duplicate_columns="rename"``, see ``resolve_duplicates``), and for
    ``required_columns`` that are missing.
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
    columns = resolve_duplicates(columns, duplicate_columns, originals=originals)
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
    """Turns parsed rows (lists of values) into dicts for one list of columns, and back.

    Precomputes everything it can, because it runs once per record on the hot path:
    short rows are padded with ``None``, extra values are dropped, and blank and rejected
    columns are skipped. A key that occurs twice raises ``InvalidHeader`` (a dict would keep
    one value for both columns without a word; Ruby does that): ``resolve_duplicates``
    renames them first when that is wanted.
    """

    __slots__ = (
        "columns",
        "keys",
        "width",
        "direct",
        "_pick",
        "_build",
        "_build_lazy",
        "_build_split",
        "_getter",
        "_template",
        "_nones",
    )

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = list(columns)
        self.width = len(self.columns)
        wanted = [i for i, column in enumerate(self.columns) if not is_skipped(column)]
        self.keys = [self.columns[i] for i in wanted]
        if len(set(self.keys)) != len(self.keys):
            resolve_duplicates(self.columns, "error")  # raises, naming the columns
        #: True when every column is a key, so a row zips straight into a dict.
        self.direct = len(wanted) == self.width
        #: the values of the key columns, in ``keys`` order (None: the row as it is)
        self._pick: Callable[[list[Any]], Sequence[Any]] | None
        if len(wanted) == self.width:
            self._pick = None  # every column is a key: zip the row directly
        elif not wanted:  # every column blank or rejected
            self._pick = lambda row: ()
        elif len(wanted) == 1:
            index = wanted[0]
            self._pick = lambda row: (row[index],)
        else:
            self._pick = itemgetter(*wanted)
        self._build, self._build_lazy, self._build_split = _compile_builders(self.columns)
        # Rendering: one C-level lookup of every column. A skipped column is looked up in
        # ``_nones`` merged over the record, so that it is always None, as in to_values().
        self._getter = itemgetter(*self.columns) if self.width >= 2 else None
        self._template: dict[str, Any] = dict.fromkeys(self.columns)
        self._nones: dict[str, Any] = {
            column: None for column in self.columns if is_skipped(column)
        }

    def __reduce__(self) -> tuple[Any, ...]:
        # The generated builders cannot be pickled: rebuild them from the columns.
        return (RowMapper, (self.columns,))

    def to_dict(self, row: list[Any]) -> dict[str, Any]:
        """The dict for one row (a short row is padded with None first)."""
        if len(row) < self.width:
            row = row + [None] * (self.width - len(row))
        if self._pick is None:
            return dict(zip(self.keys, row))  # noqa: B905 - the hot path
        return dict(zip(self.keys, self._pick(row)))  # noqa: B905

    def to_dicts(self, rows: list[Any], empty_is_none: bool = False) -> list[dict[str, Any] | None]:
        """``to_dict`` of every row, ``None`` for a ``None`` (blank) or empty row.

        With ``empty_is_none`` every ``""`` value stands for an unquoted empty field and
        becomes ``None``. Rows of exactly ``width`` values take one generated list
        comprehension (constant keys: about twice as fast as ``dict(zip())``); the others,
        if any, go row by row and the two lists are merged back in order.
        """
        build = self._build_lazy if empty_is_none else self._build
        if build is None or not rows:
            return self._to_dicts_one_by_one(rows, empty_is_none)
        width = self.width
        first, last = rows[0], rows[-1]
        if first is not None and last is not None and len(first) == len(last) == width:
            try:
                return build(rows)
            except (TypeError, ValueError):  # a blank line or a row of another width
                pass
        fits = [row is not None and len(row) == width for row in rows]
        built = build(compress(rows, fits))
        others = self._to_dicts_one_by_one(list(compress(rows, map(not_, fits))), empty_is_none)
        # fits[i] picks the list that row i's dict comes from: others (0) or built (1).
        sources = (iter(others), iter(built))
        return list(map(next, map(getitem, repeat(sources), fits)))

    def _to_dicts_one_by_one(
        self, rows: list[Any], empty_is_none: bool
    ) -> list[dict[str, Any] | None]:
        to_dict = self.to_dict
        if empty_is_none:
            return [
                to_dict([value or None for value in row] if "" in row else row) if row else None
                for row in rows
            ]
        return [to_dict(row) if row else None for row in rows]

    def dicts_of_plain_lines(self, lines: Iterable[str]) -> list[dict[str, Any] | None] | None:
        """Dicts of CSV lines without quotes or line breaks, split on ``,`` (``""`` is None).

        Each line is split, unpacked and dropped at once: no list of rows stays alive for
        the garbage collector to walk through while the dicts are made. None when there are
        fewer than two columns (a blank line would not stand out); raises ValueError for a
        line of another width (or a blank line): the caller then goes row by row.
        """
        build = self._build_split
        if build is None or self.width < 2:
            return None
        return build(lines)

    def dicts_of_lazy_rows(self, rows: Iterable[list[str]]) -> list[dict[str, Any] | None] | None:
        """``to_dicts(rows, True)`` of rows of exactly ``width`` values, consumed as they come.

        None when no builder could be made; raises ValueError for a row of another width.
        """
        build = self._build_lazy
        return None if build is None else build(rows)

    def to_values(self, record: Mapping[str, Any]) -> list[Any]:
        """The record's values in column order; missing keys and skipped columns give None."""
        if self.direct:
            return list(map(record.get, self.columns))
        get = record.get
        return [None if is_skipped(column) else get(column) for column in self.columns]

    def values_of_dicts(self, records: list[dict[str, Any]]) -> list[Sequence[Any]] | None:
        """``to_values`` of many exact ``dict`` records, as tuples, in C; the render hot path.

        None when there are fewer than two columns (the caller then uses ``to_values``).
        Raises KeyError when a record lacks a column: ``values_of_sparse_dicts`` then.
        """
        getter = self._getter
        if getter is None:
            return None
        nones = self._nones
        if not nones:
            return list(map(getter, records))
        return [getter({**record, **nones}) for record in records]

    def values_of_sparse_dicts(self, records: list[dict[str, Any]]) -> list[Sequence[Any]]:
        """``values_of_dicts`` for records that may lack columns (they give None); only
        after ``values_of_dicts`` raised KeyError (so there are two columns or more)."""
        getter = self._getter
        assert getter is not None
        template, nones = self._template, self._nones
        return [getter({**template, **record, **nones}) for record in records]


#: Above this many columns the generated row builders are not worth compiling.
_MAX_GENERATED_COLUMNS = 2000


def _compile_builders(
    columns: list[str],
) -> tuple[Builder | None, Builder | None, Builder | None]:
    """Three functions turning rows of exactly ``len(columns)`` values into dicts.

    ``build`` is ``[{"a": _0, "b": _1} for _0, _1, in rows]``: the keys are constants (repr
    of each name, so any name is safe), and a skipped column is unpacked but left out (keys
    are unique: ``RowMapper`` refuses duplicates).
    ``build_lazy`` turns ``""`` into None as well, and ``build_split`` is ``build_lazy`` of
    lines split on ``,``. They raise ValueError for a row of another width (TypeError for a
    ``None``); the caller then goes row by row.
    """
    width = len(columns)
    if not 0 < width <= _MAX_GENERATED_COLUMNS or any(c.__class__ is not str for c in columns):
        return None, None, None
    names = [f"_{index}" for index in range(width)]
    targets = ", ".join(names) + ","
    kept = [
        (repr(column), name)
        for column, name in zip(columns, names, strict=True)
        if not is_skipped(column)
    ]
    plain = ", ".join(f"{key}: {name}" for key, name in kept)
    lazy = ", ".join(f"{key}: {name} or None" for key, name in kept)
    source = (
        f"def build(rows):\n    return [{{{plain}}} for {targets} in rows]\n"
        f"def build_lazy(rows):\n    return [{{{lazy}}} for {targets} in rows]\n"
        f"def build_split(lines):\n"
        f"    return [{{{lazy}}} for {targets} in map(split, lines, repeat(','))]\n"
    )
    namespace: dict[str, Any] = {"split": str.split, "repeat": repeat}
    exec(compile(source, "<rjbatch.codecs.tabular row builder>", "exec"), namespace)
    return namespace["build"], namespace["build_lazy"], namespace["build_split"]
