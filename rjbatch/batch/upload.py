"""Uploading records into a batch job's input slices.

Records are gathered into slices of ``slice_size`` and inserted many slices per
transaction, so memory stays flat whatever the size of the source. If the upload
raises, every slice it inserted is removed again: no half upload is left behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

from rjbatch.batch import slices as slice_codec
from rjbatch.errors import RjbatchError

if TYPE_CHECKING:
    from rjbatch.batch.job import BatchJob

SLICES_PER_INSERT = 20
Progress = Callable[[int, int], None]  # (records so far, source bytes read so far)


class UploadError(RjbatchError):
    """The source could not be uploaded (nothing of it was kept)."""


class SliceWriter:
    """``with job.upload() as writer: writer.write(record)`` (or ``writer << record``)."""

    def __init__(self, job: BatchJob, category: str = "main", slice_size: int | None = None,
                 on_progress: Progress | None = None) -> None:
        self.job = job
        self.category = category
        settings = job.input_category(category)
        self.slice_size = slice_size or settings.slice_size
        self.serializer = settings.serializer
        self.store = job._store()
        self.on_progress = on_progress
        self.record_count = 0
        self.bytes_read = 0
        self._buffer: list[Any] = []
        self._pending: list[dict] = []
        self._first_id: int | None = None
        self._next_id = 0

    def __enter__(self) -> SliceWriter:
        self._first_id = self._next_id = self.store.next_slice_id(self.job.id, self.category)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abandon()
            return
        self.close()

    def write(self, record: Any) -> None:
        self._buffer.append(record)
        if len(self._buffer) >= self.slice_size:
            self._cut()

    __lshift__ = write

    def write_many(self, records: list[Any]) -> None:
        """Add many records at once: no per-record work beyond list slicing."""
        buffer = self._buffer
        size = self.slice_size
        start = 0
        if buffer:
            start = size - len(buffer)
            buffer.extend(records[:start])
            if len(buffer) < size:
                return
            self._cut()
        end = len(records)
        while end - start >= size:
            self._add_slice(records[start:start + size])
            start += size
        if start < end:
            self._buffer = records[start:]

    def _cut(self) -> None:
        self._add_slice(self._buffer)
        self._buffer = []

    def _add_slice(self, records: list[Any]) -> None:
        first = self.record_count + 1
        self._pending.append(slice_codec.make_slice(self._next_id, first, records, self.serializer))
        self._next_id += 1
        self.record_count += len(records)
        if len(self._pending) >= SLICES_PER_INSERT:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self.store.insert_slices(self.job.id, self.category, self._pending)
            self._pending = []
        if self.on_progress:
            self.on_progress(self.record_count, self.bytes_read)

    def close(self) -> int:
        """Insert what is left and add the count to the job's ``record_count``."""
        if self._buffer:
            self._cut()
        self._flush()
        job = self.job
        if self.category == "main":
            job.record_count = (job.record_count or 0) + self.record_count
            if job.is_persisted:
                job.update_attribute("record_count", job.record_count)
        return self.record_count

    def abandon(self) -> None:
        """Remove every slice this writer inserted."""
        self._pending = []
        self._buffer = []
        if self._first_id is not None:
            self.store.delete_slices(self.job.id, self.category, "input", from_id=self._first_id)


def _is_path(source: Any) -> bool:
    return isinstance(source, str | os.PathLike)


def upload(job: BatchJob, source: Any, *, category: str = "main", on_progress: Progress | None = None,
           slice_size: int | None = None, **options: Any) -> int:
    """Upload a path, URI, binary file object, range, or iterable of records."""
    if isinstance(source, range):
        if options:
            raise UploadError(f"an integer range takes no file options: {sorted(options)}")
        return upload_integer_range(job, source.start, source.stop - 1, category=category, step=source.step)
    if _is_path(source) or hasattr(source, "read"):
        return upload_file(job, source, category=category, on_progress=on_progress,
                           slice_size=slice_size, **options)
    if options:
        raise UploadError(f"options {sorted(options)} only apply to files")
    if isinstance(source, dict) or not isinstance(source, Iterable):
        raise UploadError(f"cannot upload a {type(source).__name__}: give a path, URI, file object, "
                          "iterable of records or range")
    with SliceWriter(job, category, slice_size, on_progress) as writer:
        for chunk in _chunks(iter(source), 10_000):
            writer.write_many(chunk)
    return writer.record_count


def _chunks(iterator: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while chunk := list(islice(iterator, size)):
        yield chunk


def upload_file(job: BatchJob, source: Any, *, category: str = "main", file_name: str | None = None,
                streams: Any = None, stream_mode: str | None = None, delimiter: str | None = None,
                buffer_size: int = 65536, encoding: str = "utf-8", encode_replace: str | None = None,
                encode_cleaner: Any = None, embedded_within: Any = "auto", zip_entry: str | None = None,
                on_progress: Progress | None = None, slice_size: int | None = None) -> int:
    """Stream a file through its codecs into slices; tabular headers go to the category."""
    from rjbatch.codecs import LineReader, open_read

    settings = job.input_category(category)
    mode = stream_mode or settings.mode
    with open_read(source, file_name=file_name, streams=streams, zip_entry=zip_entry) as stream:
        name = stream.file_name or (os.fspath(source) if _is_path(source) else None)
        tabular = job._input_tabular(category, name) if hasattr(job, "_input_tabular") else None
        if tabular is None and mode != "line":
            from rjbatch.codecs.tabular import Tabular, format_from_file_name

            tabular = Tabular(settings.format if settings.format not in (None, "auto")
                              else format_from_file_name(name) or "csv", columns=settings.columns)
        with SliceWriter(job, category, slice_size, on_progress) as writer:
            if tabular is not None and tabular.is_binary:
                rows = _binary_rows(tabular, stream)
                _write_rows(job, writer, tabular, rows, category, mode, stream)
            else:
                if embedded_within == "auto" and tabular is not None:
                    # the format decides, not the file name (in.zip may hold a CSV)
                    embedded_within = '"' if tabular.format == "csv" else None
                reader = LineReader(
                    stream, file_name=name, delimiter=delimiter, buffer_size=buffer_size,
                    encoding=encoding, encode_replace=encode_replace, encode_cleaner=encode_cleaner,
                    embedded_within=embedded_within,
                )
                blocks = reader.blocks()
                if tabular is not None:
                    blocks = _after_header(job, tabular, blocks, category, reader)
                    if mode == "array":
                        blocks = ([tabular.to_row(r) for r in tabular.parse_many(b) if r is not None]
                                  for b in blocks)
                    elif mode == "hash":
                        blocks = ([r for r in tabular.parse_many(b) if r is not None] for b in blocks)
                for block in blocks:
                    writer.bytes_read = stream.raw_bytes_read
                    writer.write_many(block)
                writer.bytes_read = stream.raw_bytes_read
        if name:
            job.update_category("input", category, file_name=os.path.basename(name))
            if job.is_persisted:
                job.update_attribute("input_categories", job.input_categories)
    return writer.record_count


def _after_header(job: BatchJob, tabular: Any, blocks: Iterator[list[str]], category: str,
                  reader: Any) -> Iterator[list[str]]:
    """Take the header from the first non-blank line (unless columns are preset)."""
    if not tabular.header_required:
        yield from blocks
        return
    for block in blocks:
        for index, line in enumerate(block):
            if line.strip():
                tabular.parse_header(line, line_number=1)
                _remember_columns(job, tabular, category)
                rest = block[index + 1:]
                if rest:
                    yield rest
                yield from blocks
                return


def _remember_columns(job: BatchJob, tabular: Any, category: str) -> None:
    job.update_category("input", category, columns=list(tabular.columns), format=tabular.format)
    if job.is_persisted:
        job.update_attribute("input_categories", job.input_categories)


def _binary_rows(tabular: Any, stream: Any) -> Iterator[Any]:
    from rjbatch.codecs.tabular import read_parquet, read_xlsx

    if tabular.format == "parquet":
        return read_parquet(stream)
    return read_xlsx(stream)


def _write_rows(job: BatchJob, writer: SliceWriter, tabular: Any, rows: Iterator[Any], category: str,
                mode: str, stream: Any) -> None:
    """xlsx rows (lists) or parquet rows (dicts); the first xlsx row is the header."""
    rows = iter(rows)
    if tabular.format == "xlsx" and tabular.header_required:
        for row in rows:
            if row and any(cell not in (None, "") for cell in row):
                tabular.parse_header(row, line_number=1)
                _remember_columns(job, tabular, category)
                break
    elif tabular.format == "parquet" and not tabular.columns:
        first = next(rows, None)
        if first is None:
            return
        tabular.columns = list(first)
        _remember_columns(job, tabular, category)
        rows = _prepend(first, rows)
    for chunk in _chunks(rows, 1000):
        if mode == "hash" or (tabular.format == "xlsx" and mode != "array" and not hasattr(job, "_input_tabular")):
            chunk = [tabular.parse_row(row) for row in chunk]
        writer.bytes_read = stream.raw_bytes_read
        writer.write_many(chunk)


def _prepend(first: Any, rows: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rows


def upload_query(job: BatchJob, query: Any, connection: Any = None, *, category: str = "main",
                 params: Any = None, batch_size: int = 1000, **options: Any) -> int:
    """Rows of a DB-API cursor, SQL text run on ``connection``, or an SQLAlchemy selectable.

    One column gives a bare value per record; several give a list.
    """
    rows = _query_rows(query, connection, params, batch_size)
    with SliceWriter(job, category, **options) as writer:
        for chunk in rows:
            writer.write_many([row[0] if len(row) == 1 else list(row) for row in chunk])
    return writer.record_count


def _query_rows(query: Any, connection: Any, params: Any, batch_size: int) -> Iterator[list[Any]]:
    if hasattr(query, "fetchmany"):
        cursor = query
    elif isinstance(query, str):
        if connection is None:
            raise UploadError("SQL text needs a connection: upload_query(sql, connection=conn)")
        if hasattr(connection, "exec_driver_sql"):
            cursor = connection.exec_driver_sql(query, params or ())
        else:
            cursor = connection.cursor()
            cursor.execute(query, params or ())
    elif hasattr(query, "compile") or hasattr(query, "__clause_element__"):
        if connection is None or not hasattr(connection, "execute"):
            raise UploadError("an SQLAlchemy query needs an SQLAlchemy connection")
        cursor = connection.execute(query, params) if params else connection.execute(query)
    else:
        raise UploadError(f"cannot upload rows from a {type(query).__name__}")
    while True:
        chunk = cursor.fetchmany(batch_size)
        if not chunk:
            return
        yield [tuple(row) for row in chunk]


def upload_mongo_query(job: BatchJob, collection: Any, filter: dict, projection: list[str] | None,
                       *, category: str = "main", **options: Any) -> int:
    """Documents of a pymongo collection; ``projection`` names the fields kept (default ``_id``)."""
    columns = list(projection or ["_id"])
    cursor = collection.find(filter, {name: 1 for name in columns}, batch_size=1000)
    with SliceWriter(job, category, **options) as writer:
        for chunk in _chunks(iter(cursor), 1000):
            if len(columns) == 1:
                writer.write_many([_plain(doc.get(columns[0])) for doc in chunk])
            else:
                writer.write_many([[_plain(doc.get(c)) for c in columns] for doc in chunk])
    return writer.record_count


def _plain(value: Any) -> Any:
    from bson import ObjectId

    return str(value) if isinstance(value, ObjectId) else value


def upload_integer_range(job: BatchJob, start: int, last: int, *, category: str = "main",
                         reverse: bool = False, step: int = 1) -> int:
    """Slices of ``[from, to]`` id ranges, one pair per slice (``reverse``: highest first)."""
    if step != 1:
        raise UploadError("integer ranges upload with a step of 1")
    if last < start:
        return 0  # Rocket Job returned a negative count here
    size = job.input_category(category).slice_size
    if reverse:  # counted down from the top: 5..44 by 10 gives [35,44] [25,34] [15,24] [5,14]
        pairs = [[max(high - size + 1, start), high] for high in range(last, start - 1, -size)]
    else:
        pairs = [[low, min(low + size - 1, last)] for low in range(start, last + 1, size)]
    store = job._store()
    first_id = next_id = store.next_slice_id(job.id, category)
    serializer = job.input_category(category).serializer
    try:
        batch: list[dict] = []
        for number, pair in enumerate(pairs, 1):
            batch.append(slice_codec.make_slice(next_id, number, [pair], serializer))
            next_id += 1
            if len(batch) >= 1000:
                store.insert_slices(job.id, category, batch)
                batch = []
        store.insert_slices(job.id, category, batch)
    except BaseException:
        store.delete_slices(job.id, category, "input", from_id=first_id)
        raise
    count = last - start + 1
    if category == "main":
        job.record_count = (job.record_count or 0) + count
        if job.is_persisted:
            job.update_attribute("record_count", job.record_count)
    return count
