"""Tabular formats: csv, psv, json, fixed width, xlsx and parquet records as dicts.

Line formats (csv, psv, json, fixed) are parsed and rendered a line at a time by
``Tabular``, so a batch job can upload raw lines and let each worker parse its own slice.
xlsx and parquet are whole-file formats with their own readers and writers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..formats import EXTENSIONS, format_from_file_name
from .errors import (
    InvalidHeader,
    InvalidLayout,
    InvalidLineLength,
    MalformedLine,
    MissingHeader,
    TabularError,
    UnknownFormat,
    ValueTooLong,
)
from .header import (
    DUPLICATE_COLUMNS,
    REJECTED_PREFIX,
    cleanse_column,
    cleanse_header,
    resolve_duplicates,
)
from .jsonl import read_json
from .table import BINARY_FORMATS, FORMATS, HEADER_FORMATS, Tabular

if TYPE_CHECKING:
    from .parquet import read_parquet, write_parquet
    from .xlsx import read_xlsx, write_xlsx

def __getattr__(name: str) -> Any:
    """Load the xlsx and parquet modules (openpyxl, pyarrow) only when they are used."""
    if name in ("read_xlsx", "write_xlsx"):
        from . import xlsx

        return getattr(xlsx, name)
    if name in ("read_parquet", "write_parquet"):
        from . import parquet

        return getattr(parquet, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BINARY_FORMATS",
    "DUPLICATE_COLUMNS",
    "EXTENSIONS",
    "FORMATS",
    "HEADER_FORMATS",
    "REJECTED_PREFIX",
    "InvalidHeader",
    "InvalidLayout",
    "InvalidLineLength",
    "MalformedLine",
    "MissingHeader",
    "Tabular",
    "TabularError",
    "UnknownFormat",
    "ValueTooLong",
    "cleanse_column",
    "cleanse_header",
    "format_from_file_name",
    "read_json",
    "read_parquet",
    "read_xlsx",
    "resolve_duplicates",
    "write_parquet",
    "write_xlsx",
]
