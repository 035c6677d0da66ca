"""``Tabular``: one format plus its columns, turning lines into dicts and dicts into lines.

A batch job builds one on upload (where the header row is parsed and cleansed), stores
``settings()`` with the job, and rebuilds it in every worker with ``Tabular.from_settings``;
the columns then count as preset, so workers never look for a header.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .delimited import (
    csv_dicts,
    csv_line,
    csv_lines,
    csv_row,
    csv_rows,
    is_blank,
    psv_line,
    psv_row,
)
from .errors import MalformedLine, MissingHeader, TabularError, UnknownFormat
from .fixed import FixedLayout
from .header import DUPLICATE_COLUMNS, RowMapper, resolve_duplicates, restrict_columns
from .jsonl import json_line, json_value

#: Every format a ``Tabular`` understands.
FORMATS = ("csv", "psv", "json", "fixed", "xlsx", "parquet")
_ALIASES = {"jsonl": "json", "ndjson": "json", "xlsm": "xlsx"}
#: Formats whose files start with a header row.
HEADER_FORMATS = frozenset({"csv", "psv", "xlsx"})
#: Formats read and written as whole files (``read_xlsx``...), not as lines of text.
BINARY_FORMATS = frozenset({"xlsx", "parquet"})
HEADER_CLEANSERS = ("default", "none")
_JSON_KINDS = {str: "a string", int: "a number", float: "a number", bool: "true or false"}
_JSON_KINDS[type(None)] = "null"


class Tabular:
    """Parses and renders the records of one tabular format.

    ``columns`` preset the column names (the file then has no header row, and the names
    are used as given, never cleansed). Otherwise csv, psv and xlsx take their columns from
    the first row through ``parse_header``, which cleanses them (unless
    ``header_cleanser="none"``) and applies ``allowed_columns``, ``required_columns`` and
    ``skip_unknown``. ``skip_unknown`` defaults to False: a column outside
    ``allowed_columns`` raises ``InvalidHeader`` instead of being dropped quietly.

    A column name that occurs twice (after cleansing: ``Name`` and ``name``), in a header
    row or in preset ``columns``, raises ``InvalidHeader`` naming it and its positions
    (``duplicate column 'name' (columns 2, 3, 4)``), since a dict would keep only one of
    the values; ``duplicate_columns="rename"`` names the later ones ``name_2``, ``name_3``.
    """

    def __init__(
        self,
        format: str = "csv",
        *,
        columns: Sequence[str] | None = None,
        allowed_columns: Sequence[str] | None = None,
        required_columns: Sequence[str] | None = None,
        skip_unknown: bool = False,
        header_cleanser: str = "default",
        format_options: Mapping[str, Any] | None = None,
        duplicate_columns: str = "error",
    ) -> None:
        name = str(format or "csv").lower()
        name = _ALIASES.get(name, name)
        if name not in FORMATS:
            raise UnknownFormat(f"Unknown tabular format {format!r}; expected one of {FORMATS}")
        if header_cleanser not in HEADER_CLEANSERS:
            raise TabularError(
                f"header_cleanser must be one of {HEADER_CLEANSERS}, not {header_cleanser!r}"
            )
        if duplicate_columns not in DUPLICATE_COLUMNS:
            raise TabularError(
                f"duplicate_columns must be one of {DUPLICATE_COLUMNS}, not {duplicate_columns!r}"
            )
        self.format = name
        self.duplicate_columns = duplicate_columns
        self.allowed_columns = None if allowed_columns is None else list(allowed_columns)
        self.required_columns = None if required_columns is None else list(required_columns)
        self.skip_unknown = bool(skip_unknown)
        self.header_cleanser = header_cleanser
        #: Original names of the header columns that ``allowed_columns`` rejected.
        self.rejected_columns: list[str] = []
        options = dict(format_options or {})
        self.fixed: FixedLayout | None = None
        if name == "fixed":
            self.fixed = FixedLayout(options.pop("layout", None), options.pop("truncate", True))
        if options:
            raise TabularError(f"The {name} format accepts no format_options {sorted(options)}")
        self._mapper: RowMapper | None = None
        self._columns: list[str] | None = None
        if self.fixed is not None:
            if columns is not None and list(columns) != self.fixed.keys:
                raise TabularError("The fixed format takes its columns from the layout's keys")
            self.columns = self.fixed.keys
        elif columns is not None:
            self.columns = ["" if column is None else str(column) for column in columns]

    # -- columns ----------------------------------------------------------------------------

    @property
    def columns(self) -> list[str] | None:
        """The column names (cleansed, when they came from a header row); None until known."""
        return self._columns

    @columns.setter
    def columns(self, columns: Sequence[str] | None) -> None:
        # duplicates raise, or are renamed (duplicate_columns): never silently merged
        if columns is None:
            self._columns = self._mapper = None
            return
        self._columns = resolve_duplicates(columns, self.duplicate_columns)
        self._mapper = RowMapper(self._columns)

    @property
    def has_header_row(self) -> bool:
        """True for formats whose files start with a header row (csv, psv, xlsx)."""
        return self.format in HEADER_FORMATS

    @property
    def header_required(self) -> bool:
        """True while a header row must still be read before any data (no columns yet)."""
        return self.format in HEADER_FORMATS and self._columns is None

    @property
    def is_binary(self) -> bool:
        """True for xlsx and parquet, which are read and written as files, not lines."""
        return self.format in BINARY_FORMATS

    def parse_header(
        self, line_or_row: str | Sequence[Any], *, line_number: int | None = None
    ) -> list[str] | None:
        """Read the header row, set ``columns`` and return them; None for a blank line.

        Raises ``InvalidHeader`` for unknown (unless ``skip_unknown``), duplicated (unless
        ``duplicate_columns="rename"``) or missing columns.
        """
        row: list[Any] | None  # a spreadsheet's header row may hold any cell values
        if isinstance(line_or_row, str):
            if self.format == "csv":
                row = csv_row(line_or_row, line_number)
            elif self.format == "psv":
                row = psv_row(line_or_row)
            else:
                raise TabularError(f"The {self.format} format has no header line to parse")
        elif isinstance(line_or_row, Sequence):
            row = list(line_or_row)
            while row and row[-1] is None:  # a spreadsheet row padded with empty cells
                row.pop()
            row = row or None
        else:
            raise TabularError(f"A header is a line or a list, not {type(line_or_row).__name__}")
        if row is None:
            return None
        columns, rejected = restrict_columns(
            row,
            cleanse=self.header_cleanser == "default",
            allowed_columns=self.allowed_columns,
            required_columns=self.required_columns,
            skip_unknown=self.skip_unknown,
            duplicate_columns=self.duplicate_columns,
        )
        self.columns = columns
        self.rejected_columns = rejected
        return columns

    # -- parsing ----------------------------------------------------------------------------

    def parse(self, line: Any, *, line_number: int | None = None) -> dict[str, Any] | None:
        """One line as a dict; None for a blank line (only ASCII white space).

        A list or dict (an xlsx row, a parquet record) goes to ``parse_row``.
        """
        if not isinstance(line, str):
            return self.parse_row(line)
        fmt = self.format
        row: list[str | None] | list[str] | None
        if fmt == "csv":
            row = csv_row(line, line_number)
        elif fmt == "psv":
            row = psv_row(line)
        elif is_blank(line):
            return None
        elif fmt == "json":
            return self._json_record(json_value(line, line_number), line_number)
        elif self.fixed is not None:
            return self.fixed.parse(line, line_number)
        else:
            raise TabularError(
                f"{fmt} is not a line format: read it with read_{fmt}() and pass rows to parse_row()"
            )
        if row is None:
            return None
        return self._require_mapper(line_number).to_dict(row) if row else None

    def parse_many(
        self, lines: Sequence[str], *, line_number: int | None = None
    ) -> list[dict[str, Any] | None]:
        """Parse a slice of lines at once (one ``None`` per blank line); the fast path.

        ``line_number`` is the number of ``lines[0]``, used in error messages; without it
        errors name the 1-based position in ``lines``.
        """
        first = 1 if line_number is None else line_number
        mapper = self._mapper
        if self.format == "csv":
            if mapper is not None:
                return csv_dicts(lines, first, mapper)
            rows = csv_rows(lines, first)
        elif self.format == "psv":
            rows = [psv_row(line) for line in lines]
        else:
            parse = self.parse
            return [parse(line, line_number=first + index) for index, line in enumerate(lines)]
        if mapper is None:
            for index, row in enumerate(rows):
                if row:
                    raise self._missing_header(first + index)
            return [None] * len(rows)
        return mapper.to_dicts(rows)

    def parse_row(self, values: Sequence[Any] | Mapping[str, Any] | None) -> dict[str, Any] | None:
        """A row that is already split (an xlsx row, a JSON array) or a dict, as a dict.

        A list is matched to the columns by position; a dict is narrowed to the columns
        when they are known (missing keys become None). An empty row is None.
        """
        if values is None:
            return None
        if isinstance(values, Mapping):
            if not values:
                return None
            if self._mapper is None:
                return dict(values)
            get = values.get
            return {key: get(key) for key in self._mapper.keys}
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TabularError(f"A row is a list or a dict, not {type(values).__name__}")
        if not values:
            return None
        return self._require_mapper(None).to_dict(list(values))

    def _json_record(self, value: Any, line_number: int | None) -> dict[str, Any]:
        if isinstance(value, dict):
            if self._mapper is None:
                return value
            get = value.get
            return {key: get(key) for key in self._mapper.keys}
        if isinstance(value, list) and self._mapper is not None:
            return self._mapper.to_dict(value)
        if isinstance(value, list):
            found = "an array (give columns= to read arrays)"
        else:
            found = _JSON_KINDS.get(type(value), "a scalar")
        raise MalformedLine(
            f"A JSON record must be an object, not {found}", line_number=line_number
        )

    def _require_mapper(self, line_number: int | None) -> RowMapper:
        if self._mapper is None:
            raise self._missing_header(line_number)
        return self._mapper

    def _missing_header(self, line_number: int | None) -> MissingHeader:
        return MissingHeader(
            f"The {self.format} format needs its columns (a header row or columns=) before "
            "rows can be read",
            line_number=line_number,
        )

    # -- rendering --------------------------------------------------------------------------

    def to_row(self, record: Mapping[str, Any] | Sequence[Any]) -> list[Any]:
        """The record's values in column order, for row-based writers such as ``write_xlsx``."""
        if isinstance(record, Mapping):
            if self._mapper is None:
                return list(record.values())
            return self._mapper.to_values(record)
        return list(record)

    def render(self, record: Mapping[str, Any] | Sequence[Any] | None) -> str:
        """One record as one line, without a line ending; an empty record is ``""``.

        A dict is narrowed to ``columns`` (extra keys ignored, missing ones empty); a list is
        written as is. csv and psv need ``columns`` to render a dict.
        """
        if not record:
            return ""
        if isinstance(record, (str, bytes)):
            raise TabularError(
                f"A record to render is a dict or a list, not {type(record).__name__}"
            )
        fmt = self.format
        if fmt == "csv" or fmt == "psv":
            if isinstance(record, Mapping):
                if self._mapper is None:
                    raise MissingHeader(f"The {fmt} format needs columns= to render a dict")
                values = self._mapper.to_values(record)
            else:
                values = list(record)
            return csv_line(values) if fmt == "csv" else psv_line(values)
        if fmt == "json":
            if isinstance(record, Mapping):
                if self._mapper is not None:
                    get = record.get
                    record = {key: get(key) for key in self._mapper.keys}
            elif self._mapper is not None:
                record = self._mapper.to_dict(list(record))
            else:
                raise MissingHeader("The json format needs columns= to render a list")
            return json_line(record)
        if self.fixed is not None:
            return self.fixed.render(record)
        raise TabularError(
            f"{fmt} is not a line format: write it with write_{fmt}() (to_row() gives the values)"
        )

    def render_many(self, records: Iterable[Any]) -> list[str]:
        """Render many records; the fast path of a download (the same lines as ``render``)."""
        if self.format == "csv" and self._mapper is not None:
            return self._render_csv_many(records if isinstance(records, list) else list(records))
        render = self.render
        return [render(record) for record in records]

    def _render_csv_many(self, records: list[Any]) -> list[str]:
        mapper = self._mapper
        assert mapper is not None
        if records and records[0].__class__ is dict and len(set(map(type, records))) == 1:
            # Only exact dicts (a dict subclass may answer [] unlike get(): defaultdict).
            try:
                rows = mapper.values_of_dicts(records)
                sparse = False
            except KeyError:  # some record lacks a column
                rows = mapper.values_of_sparse_dicts(records)
                sparse = True
            if rows is None:  # fewer than two columns
                rows = list(map(mapper.to_values, records))
                sparse = True
            lines = csv_lines(rows, mapper.width)
            if sparse and {} in records:  # an empty record is an empty line
                for index, record in enumerate(records):
                    if not record:
                        lines[index] = ""
            return lines
        # Mixed records: dicts and other mappings become rows; lists, empty records (and
        # anything render() rejects) go through render() in order.
        to_values, render = mapper.to_values, self.render
        lines = [""] * len(records)
        indexes: list[int] = []
        rows = []
        for index, record in enumerate(records):
            if record and (record.__class__ is dict or isinstance(record, Mapping)):
                indexes.append(index)
                rows.append(to_values(record))
            else:
                lines[index] = render(record)
        for index, line in zip(indexes, csv_lines(rows, mapper.width), strict=True):
            lines[index] = line
        return lines

    def render_header(self) -> str | None:
        """The header line for csv and psv (names as given, never cleansed); None otherwise."""
        if self.format not in ("csv", "psv"):
            return None
        if self._columns is None:
            raise MissingHeader(f"The {self.format} format needs columns= to render a header")
        return csv_line(self._columns) if self.format == "csv" else psv_line(self._columns)

    # -- storing ----------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """Plain, JSON-serializable settings; ``Tabular.from_settings`` rebuilds this object."""
        format_options: dict[str, Any] | None = None
        if self.fixed is not None:
            format_options = {"layout": self.fixed.layout(), "truncate": self.fixed.truncate}
        return {
            "format": self.format,
            "columns": None if self._columns is None else list(self._columns),
            "allowed_columns": self.allowed_columns,
            "required_columns": self.required_columns,
            "skip_unknown": self.skip_unknown,
            "header_cleanser": self.header_cleanser,
            "format_options": format_options,
            "duplicate_columns": self.duplicate_columns,
        }

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Tabular:
        """Rebuild a ``Tabular`` from ``settings()``; its columns count as preset."""
        return cls(**dict(settings))

    def __repr__(self) -> str:
        return f"Tabular({self.format!r}, columns={self._columns!r})"
