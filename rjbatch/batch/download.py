"""Reading a batch job's output: as records in upload order, or written to a file.

A download goes through the codecs chosen by the target's file name, into a temporary
file renamed over the target only when everything was written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rjbatch.batch import slices as slice_codec
from rjbatch.errors import RjbatchError

if TYPE_CHECKING:
    from rjbatch.batch.job import BatchJob


class DownloadError(RjbatchError):
    """The output cannot be downloaded (yet)."""


def output_slices(job: BatchJob, category: str) -> Iterator[dict]:
    job.output_category(category)  # unknown categories fail here, by name
    store = job._store()
    after = 0
    while True:
        batch = store.read_output_slices(job.id, category, after, 100)
        yield from batch
        if len(batch) < 100:
            return
        after = batch[-1]["id"]


def record_blocks(job: BatchJob, category: str) -> Iterator[list[Any]]:
    for piece in output_slices(job, category):
        yield slice_codec.decode(piece["data"], piece["serializer"])


def records(job: BatchJob, category: str = "main") -> Iterator[Any]:
    for block in record_blocks(job, category):
        yield from block


def download(job: BatchJob, target: Any = None, category: str = "main", *, header_line: str | None = None,
             streams: Any = None, file_name: str | None = None, delimiter: str = "\n",
             encoding: str = "utf-8", on_progress: Any = None, allow_partial: bool = False) -> int:
    """Write a category's output; returns the number of records written (header excluded).

    ``allow_partial``: write what is stored so far even while the job is processing
    (Mission Control's download); its records of unprocessed slices are missing.
    """
    from rjbatch.codecs import LineWriter, open_write

    settings = job.output_category(category)
    if job.is_running and job.sub_state == "processing" and not allow_partial:
        raise DownloadError(f"cannot download job {job.id} while it is still processing")
    if target is None:
        target = settings.file_name
        if target is None:
            raise DownloadError(f"no file to download category {category!r} of job {job.id} to")
    name = file_name or (os.fspath(target) if isinstance(target, str | os.PathLike) else None)
    if settings.serializer == "bzip2":
        if header_line is not None:
            raise DownloadError("a bzip2 category is written as stored: it takes no header line")
        count = 0
        with open_write(target, file_name=name, streams=streams if streams is not None else []) as out:
            for piece in output_slices(job, category):
                out.write(piece["data"])
                count += piece["record_count"]
        return count
    if hasattr(job, "_output_tabular") and category == "main" and name:
        tabular = job._output_tabular(category, name)
        if tabular.is_binary:
            return _download_binary(job, tabular, target, name, streams, category)
    if header_line is None and hasattr(job, "_output_header_line"):
        header_line = job._output_header_line(category, name)
    count = 0
    with LineWriter(target, file_name=name, streams=streams, delimiter=delimiter, encoding=encoding) as writer:
        if header_line is not None:
            writer.write(header_line)
        for block in record_blocks(job, category):
            if hasattr(job, "_render_for_download"):
                block = job._render_for_download(category, block, name)
            count += writer.write_many(block)
            if on_progress:
                on_progress(count)
    return count


def _download_binary(job: BatchJob, tabular: Any, target: Any, name: str, streams: Any, category: str) -> int:
    """xlsx and parquet output: rows written by their own writers through the chain."""
    from rjbatch.codecs import open_write
    from rjbatch.codecs.tabular import write_parquet, write_xlsx

    with open_write(target, file_name=name, streams=streams) as out:
        if tabular.format == "parquet":
            return write_parquet(out, job.output_rows(category), columns=tabular.columns)
        rows = (tabular.to_row(record) for record in job.output_rows(category))
        return write_xlsx(out, rows, header=tabular.columns)
