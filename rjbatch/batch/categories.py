"""Input and output categories of a batch job, and the record format each one stores.

A batch job reads its records from input categories (``main`` is processed) and
writes results to output categories. Definitions are made on the class, copied onto
each job, and may be changed per job. The copy stored with the job is what every
process reads: a worker, a downloader or Mission Control that never imported the job's
class parses and renders the category exactly as one that did.

The record format is part of those settings:

- ``InputCategory.format``: ``None`` — records reach ``perform`` as stored; ``"auto"`` —
  tabular, the format taken from the uploaded file's name at upload (csv when it names
  none); ``csv psv json fixed`` — stored lines that each worker parses into dicts under
  ``columns``; ``xlsx parquet rows`` — rows stored already split (lists under ``columns``,
  or dicts) that reach ``perform`` as dicts.
- ``OutputCategory.format``: ``None`` — plain records, written a line each; a tabular
  format (``csv`` by default) — ``perform`` returns dicts, rendered under ``columns``
  (when ``None``: the input's columns followed by every new key, in first-seen order) in
  the format the download's file name asks for, else in this one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from rjbatch.batch.slices import SERIALIZERS
from rjbatch.errors import ValidationError

MODES = ("line", "array", "hash")
#: Input formats stored as text lines that workers parse.
LINE_FORMATS = ("csv", "psv", "json", "fixed")
#: Input formats stored as rows already split: lists under ``columns``, or dicts.
ROW_FORMATS = ("xlsx", "parquet", "rows")
INPUT_FORMATS = (None, "auto", *LINE_FORMATS, *ROW_FORMATS)
OUTPUT_FORMATS = (None, "csv", "psv", "json", "fixed", "xlsx", "parquet")
DUPLICATE_COLUMNS = ("error", "rename")
#: How a header names a column outside ``allowed_columns`` (the tabular codecs' own prefix,
#: repeated here so reading settings needs no import of the codecs; a test keeps them equal).
REJECTED_PREFIX = "__rejected__"

#: Turns a slice's stored records into ``perform``'s arguments: (records, first record number).
Parser = Callable[[list[Any], int], list[Any]]


@dataclass
class InputCategory:
    """Where records come from: how they were uploaded and how each is parsed."""

    name: str = "main"
    serializer: str = "compress"
    slice_size: int = 100
    format: str | None = None
    format_options: dict[str, Any] = field(default_factory=dict)
    columns: list[str] | None = None     # the header, once known (or preset: no header row)
    allowed_columns: list[str] | None = None
    required_columns: list[str] | None = None
    skip_unknown: bool = False  # a column outside allowed_columns fails the upload (Rocket Job's default)
    header_cleanser: str = "default"
    duplicate_columns: str = "error"
    mode: str = "line"
    file_name: str | None = None

    def validate(self) -> None:
        if self.serializer not in ("compress", "none", "encrypt"):
            raise ValidationError({"input_categories": [
                f"{self.name}: serializer must be compress, none or encrypt"]})
        if self.slice_size < 1:
            raise ValidationError({"slice_size": ["must be at least 1"]})
        if self.mode not in MODES:
            raise ValidationError({"input_categories": [f"{self.name}: mode must be line, array or hash"]})
        if self.format not in INPUT_FORMATS:
            raise ValidationError({"input_categories": [
                f"{self.name}: format must be one of {', '.join(str(f) for f in INPUT_FORMATS)}"]})
        if self.duplicate_columns not in DUPLICATE_COLUMNS:
            raise ValidationError({"input_categories": [
                f"{self.name}: duplicate_columns must be error or rename"]})

    @property
    def is_tabular(self) -> bool:
        return self.format is not None

    def tabular(self, fmt: str | None = None) -> Any:
        """A ``Tabular`` for this category's format, or for ``fmt`` (an upload's file name).

        Rows stored already split are read with ``parse_row``, which every format has.
        """
        from rjbatch.codecs.tabular import Tabular

        name = fmt or self.format
        if name in (None, "auto", "rows"):
            name = "csv"
        options: dict[str, Any] = {}
        if self.duplicate_columns != "error":
            options["duplicate_columns"] = self.duplicate_columns
        return Tabular(
            name, columns=self.columns, allowed_columns=self.allowed_columns,
            required_columns=self.required_columns, skip_unknown=self.skip_unknown,
            header_cleanser=self.header_cleanser, format_options=self.format_options or None, **options,
        )

    def parser(self) -> Parser | None:
        """How a worker turns stored records into ``perform``'s arguments (None: as stored)."""
        if self.format is None:
            return None
        tabular = self.tabular()
        line_offset = 1 if self.format in ("csv", "psv", "auto") else 0

        def parse(records: list[Any], first_record_number: int) -> list[Any]:
            sample = next((r for r in records if r is not None), None)
            if isinstance(sample, str):
                return tabular.parse_many(records, line_number=first_record_number + line_offset)
            if isinstance(sample, list | tuple | dict):
                return [None if row is None else tabular.parse_row(row) for row in records]
            return records

        return parse


@dataclass
class OutputCategory:
    """Where results go: ``nils`` keeps None results (dropped by default)."""

    name: str = "main"
    serializer: str = "compress"
    nils: bool = False
    format: str | None = None
    format_options: dict[str, Any] = field(default_factory=dict)
    columns: list[str] | None = None
    file_name: str | None = None

    def validate(self) -> None:
        if self.serializer not in SERIALIZERS:
            raise ValidationError({"output_categories": [
                f"{self.name}: serializer must be one of {', '.join(SERIALIZERS)}"]})
        if self.format not in OUTPUT_FORMATS:
            raise ValidationError({"output_categories": [
                f"{self.name}: format must be one of {', '.join(str(f) for f in OUTPUT_FORMATS)}"]})
        if self.serializer == "bzip2" and self.format is not None:
            raise ValidationError({"output_categories": [
                f"{self.name}: a bzip2 category stores lines of text: it cannot be tabular"]})

    @property
    def is_tabular(self) -> bool:
        return self.format is not None


def to_dict(category: InputCategory | OutputCategory) -> dict[str, Any]:
    return asdict(category)


def from_dict(kind: type, data: dict[str, Any] | str) -> Any:
    if isinstance(data, str):
        return kind(name=data)
    known = {f.name for f in fields(kind)}
    unknown = set(data) - known
    if unknown:
        raise ValidationError({f"{kind.__name__}": [f"unknown settings {sorted(unknown)}"]})
    return kind(**data)


def merge(categories: list[Any], kind: type, changes: list[dict[str, Any]]) -> list[Any]:
    """Merge per-job settings into class-defined categories by name (``main`` by default)."""
    by_name = {c.name: c for c in categories}
    for change in changes:
        name = change.get("name", "main")
        if name in by_name:
            for key, value in change.items():
                if not hasattr(by_name[name], key):
                    raise ValidationError({kind.__name__: [f"{name}: unknown setting {key!r}"]})
                setattr(by_name[name], key, value)
        else:
            by_name[name] = from_dict(kind, {**change, "name": name})
    return list(by_name.values())
