"""Writing one output category to a file, through the codecs its file name picks.

The category's stored settings decide everything, never the job's class: a tabular
category is written with a header and rows in the format the name asks for (csv, psv,
json lines, fixed width, xlsx, parquet; else the category's own format), a plain one a
line per record. The target appears only once everything was written (a temporary file
renamed over it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rjbatch.batch.sliced import CSV_FORM
from rjbatch.errors import RjbatchError

if TYPE_CHECKING:
    from rjbatch.batch.sliced import SlicedOutput


class DownloadError(RjbatchError):
    """The output cannot be downloaded (yet)."""


def write(output: SlicedOutput, target: Any = None, *, header_line: str | None = None,
          streams: Any = None, file_name: str | None = None, delimiter: str = "\n",
          encoding: str = "utf-8", on_progress: Any = None) -> int:
    """Write a category's output; returns the number of records written (header excluded)."""
    from rjbatch.codecs import LineWriter, open_write
    from rjbatch.codecs.formats import format_from_file_name

    settings = output.settings
    if target is None:
        target = settings.file_name
        if target is None:
            raise DownloadError(f"no file to download category {output.category!r} of job {output.job_id} to")
    name = file_name or (os.fspath(target) if isinstance(target, str | os.PathLike) else None)
    if settings.serializer == "bzip2":
        if header_line is not None:
            raise DownloadError("a bzip2 category is written as stored: it takes no header line")
        count = 0
        with open_write(target, file_name=name, streams=streams if streams is not None else []) as out:
            for piece in output.slices():
                out.write(piece["data"])
                count += piece["record_count"]
        return count
    fmt = format_from_file_name(name) if name else None
    tabular = _tabular(output, fmt) if output.is_tabular else None
    if tabular is None and fmt in ("xlsx", "parquet"):
        raise DownloadError(f"category {output.category!r} of job {output.job_id} holds plain records, "
                            f"not rows: it cannot be written as {fmt} (make the job TabularOutput)")
    if tabular is not None and tabular.is_binary:
        return _write_whole_file(output, tabular, target, name, streams)
    if header_line is None and tabular is not None and tabular.columns:
        header_line = tabular.render_header()
    copy_csv = tabular is not None and tabular.format == "csv" and tabular.columns == settings.columns
    count = 0
    to_text = _json_text if fmt == "json" else _plain_text
    with LineWriter(target, file_name=name, streams=streams, delimiter=delimiter, encoding=encoding,
                    to_text=to_text) as writer:
        if header_line is not None:
            writer.write(header_line)
        for piece in output.slices():
            if copy_csv and piece["serializer"].partition(":")[2] == CSV_FORM:
                lines = output.decode(piece)  # rendered by the worker under these columns
            elif tabular is not None:
                lines = _render(tabular, output.records_of(piece))
            else:
                lines = output.records_of(piece)  # the writer spells what is not text
            count += writer.write_many(lines)
            if on_progress:
                on_progress(count)
    return count


def _tabular(output: SlicedOutput, fmt: str | None) -> Any:
    from rjbatch.codecs.tabular import Tabular

    settings = output.settings
    fmt = fmt or settings.format or "csv"
    options = settings.format_options if fmt == settings.format else None
    if fmt == "fixed":
        if not (options or {}).get("layout"):
            raise DownloadError(
                f"category {output.category!r} of job {output.job_id} has no fixed-width layout: give the "
                "output category format 'fixed' and format_options={'layout': [...]} (see docs/codecs.md)")
        return Tabular(fmt, format_options=options)
    return Tabular(fmt, columns=output.columns() or [], format_options=options)


def _render(tabular: Any, records: list[Any]) -> list[Any]:
    """Rows in the target format; a string a job returned is taken as a rendered line."""
    if not any(isinstance(record, str) for record in records):
        return tabular.render_many(records)
    return [record if isinstance(record, str) else tabular.render(record) for record in records]


def _plain_text(record: Any) -> str:
    """A plain record that is not a string: dicts and lists as JSON, None empty."""
    from rjbatch.codecs.tabular.jsonl import json_line

    if record is None:
        return ""
    return json_line(record) if isinstance(record, dict | list) else str(record)


def _json_text(record: Any) -> str:
    """A plain record in a .jsonl file: strings as they are (JSON text already), else JSON."""
    from rjbatch.codecs.tabular.jsonl import json_line

    return record if isinstance(record, str) else json_line(record)


def _rows(output: SlicedOutput) -> Iterator[Any]:
    for block in output.blocks():
        for record in block:
            if record is not None:
                yield record


def _write_whole_file(output: SlicedOutput, tabular: Any, target: Any, name: str | None, streams: Any) -> int:
    """xlsx and parquet: rows written by their own writers through the chain."""
    from rjbatch.codecs import open_write
    from rjbatch.codecs.tabular import write_parquet, write_xlsx

    with open_write(target, file_name=name, streams=streams) as out:
        if tabular.format == "parquet":
            return write_parquet(out, _rows(output), columns=tabular.columns)
        rows = (tabular.to_row(record) for record in _rows(output))
        return write_xlsx(out, rows, header=tabular.columns)
