"""Uploading records into a batch job's input slices.

Records are gathered into slices of ``slice_size`` and inserted many slices per
transaction, so memory stays flat whatever the size of the source. If the upload
raises, every slice it inserted is removed again: no half upload is left behind.

What the upload learns about the records (the format from the file's name, the header,
a query's column names) is stored with the input category before the first slice is
inserted, so no worker can see a slice before the settings that read it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from itertools import chain, islice
from typing import TYPE_CHECKING, Any

from rjbatch.batch.sliced import SlicedInput
from rjbatch.errors import RjbatchError

if TYPE_CHECKING:
    from rjbatch.batch.job import BatchJob

SLICES_PER_INSERT = 20
#: how often an upload's lease stores how many records it has uploaded so far
COUNT_SECONDS = 1.0
Progress = Callable[[int, int], None]  # (records so far, source bytes read so far)
logger = logging.getLogger("rjbatch.upload")


class UploadLease:
    """An upload into a stored job holds a lease, renewed by a thread every second.

    ``upload_owner``, ``upload_expires_at`` and ``upload_records`` say who uploads, until
    when its last heartbeat holds, and how far it got. A job whose lease ran out lost its
    uploader (killed, or its machine gone): ``fail_stalled_uploads`` fails it, keeping its
    slices, instead of leaving it unfinished for ever with workers waiting on it.
    """

    def __init__(self, job: BatchJob, writer: SliceWriter) -> None:
        self.job = job
        self.writer = writer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _changes(self) -> dict[str, Any]:
        from rjbatch import clock, config

        seconds = config.settings.heartbeat_seconds * config.settings.zombie_heartbeats
        return {"upload_expires_at": clock.now() + timedelta(seconds=seconds),
                "upload_records": (self.job.record_count or 0) + self.writer.record_count}

    def start(self) -> None:
        job = self.job
        if not job.is_persisted or job.record_count is not None or self._thread is not None:
            return  # a new job is stored with its lease by save(); a finished upload needs none
        from rjbatch import config, servers

        changes = {"upload_owner": servers.default_server_name(), **self._changes()}
        for name, value in changes.items():
            setattr(job, name, value)
        job.save(validate=False)
        # the lease runs for heartbeats, but the count it carries is kept fresh: a killed
        # uploader's job then says how far it got, to the second
        interval = min(config.settings.heartbeat_seconds, COUNT_SECONDS)
        self._thread = threading.Thread(target=self._renew, args=(interval,), daemon=True,
                                        name=f"rjbatch upload lease {job.id}")
        self._thread.start()

    def _renew(self, interval: float) -> None:
        from rjbatch import config

        store, job_id = config.get_store(), self.job.id
        while not self._stop.wait(interval):
            try:
                store.update_job(job_id, self._changes(), where={"record_count": None})
            except Exception:  # noqa: BLE001 - a missed renewal is logged; the next one may work
                logger.exception("could not renew the upload lease of job %s", job_id)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @staticmethod
    def release(job: BatchJob) -> None:
        """The upload is over: no lease (saved with the record count)."""
        job.upload_owner = None
        job.upload_expires_at = None
        job.upload_records = None


def fail_stalled_uploads() -> list[str]:
    """Fail every batch job whose uploader stopped renewing its lease; their ids.

    The job keeps the slices that were stored (for inspection, or a retry of those), its
    ``record_count`` becomes what was uploaded, and its exception says where it stopped.
    """
    from rjbatch import clock
    from rjbatch.batch.job import BatchJob

    failed = []
    stalled = BatchJob.where(record_count=None, upload_expires_at__lt=clock.now(),
                             state__in=["queued", "running"])
    for job in list(stalled):
        records = job.upload_records or 0
        message = (f"the upload did not finish: its uploader {job.upload_owner} stopped renewing its lease, "
                   f"which expired {job.upload_expires_at:%Y-%m-%d %H:%M:%S} UTC, after {records:,} records "
                   f"(its last count); the slices stored are kept, and a retry processes only those")
        if job.fail_upload(message):
            logger.warning("job %s failed: %s", job.id, message)
            failed.append(job.id)
    return failed


class UploadError(RjbatchError):
    """The source could not be uploaded (nothing of it was kept)."""


class SliceWriter:
    """``with job.upload() as writer: writer.write(record)`` (or ``writer << record``)."""

    def __init__(self, job: BatchJob, category: str = "main", slice_size: int | None = None,
                 on_progress: Progress | None = None) -> None:
        self.job = job
        self.category = category
        self.sliced: SlicedInput = job.sliced_input(category)
        self.slice_size = slice_size or self.sliced.settings.slice_size
        self.on_progress = on_progress
        self.record_count = 0
        self.bytes_read = 0
        self._buffer: list[Any] = []
        self._pending: list[dict] = []
        self._first_id: int | None = None
        self._next_id = 0
        self.lease = UploadLease(job, self)
        #: what the upload adds to ``record_count`` when not one per record (an integer range)
        self.counted: int | None = None

    def __enter__(self) -> SliceWriter:
        self._first_id = self._next_id = self.sliced.next_id()
        self.lease.start()
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
        self._pending.append(self.sliced.make_slice(self._next_id, first, records))
        self._next_id += 1
        self.record_count += len(records)
        if len(self._pending) >= SLICES_PER_INSERT:
            self._flush()

    def _flush(self) -> None:
        self.sliced.insert(self._pending)
        self._pending = []
        if self.on_progress:
            self.on_progress(self.record_count, self.bytes_read)

    def close(self) -> int:
        """Insert what is left and add the count to the job's ``record_count``."""
        if self._buffer:
            self._cut()
        self._flush()
        self.lease.stop()
        job = self.job
        if self.category == "main":
            job.record_count = (job.record_count or 0) + (self.record_count if self.counted is None else self.counted)
        UploadLease.release(job)
        if job.is_persisted:
            job.save(validate=False)
        return self.record_count

    def abandon(self) -> None:
        """Remove every slice this writer inserted."""
        self.lease.stop()
        self._pending = []
        self._buffer = []
        if self._first_id is not None:
            self.sliced.delete_from(self._first_id)


def _is_path(source: Any) -> bool:
    return isinstance(source, str | os.PathLike)


def _remember(job: BatchJob, category: str, **settings: Any) -> None:
    """Store what the upload found about its records, before any slice of them."""
    job.update_category("input", category, **settings)
    if job.is_persisted:
        job.update_attribute("input_categories", job.input_categories)


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
    chunks = _chunks(iter(source), 10_000)
    settings = job.input_category(category)
    if settings.is_tabular:
        chunks = _tabular_records(job, category, chunks)
    with SliceWriter(job, category, slice_size, on_progress) as writer:
        for chunk in chunks:
            writer.write_many(chunk)
    return writer.record_count


def _tabular_records(job: BatchJob, category: str, chunks: Iterator[list[Any]]) -> Iterator[list[Any]]:
    """Records given to a tabular category: lines take the first as their header; rows
    (lists under preset columns, or dicts) are stored as they are."""
    settings = job.input_category(category)
    first = next(chunks, None)
    if first is None:
        return
    sample = next((r for r in first if r is not None), None)
    chunks = chain([first], chunks)
    if not isinstance(sample, str):
        _remember(job, category, format="rows")
        yield from chunks
        return
    fmt = settings.format if settings.format not in ("auto", "xlsx", "parquet", "rows") else "csv"
    tabular = settings.tabular(fmt)
    yield from _after_header(job, tabular, chunks, category)


def _chunks(iterator: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while chunk := list(islice(iterator, size)):
        yield chunk


def upload_file(job: BatchJob, source: Any, *, category: str = "main", file_name: str | None = None,
                streams: Any = None, stream_mode: str | None = None, delimiter: str | None = None,
                buffer_size: int = 65536, encoding: str = "utf-8", encode_replace: str | None = None,
                encode_cleaner: Any = None, embedded_within: Any = "auto", zip_entry: str | None = None,
                on_progress: Progress | None = None, slice_size: int | None = None) -> int:
    """Stream a file through its codecs into slices; tabular formats and headers go to the category."""
    from rjbatch.codecs.errors import CodecError
    from rjbatch.codecs.tabular import InvalidHeader

    try:
        return _upload_file(job, source, category, file_name, streams, stream_mode, delimiter, buffer_size,
                            encoding, encode_replace, encode_cleaner, embedded_within, zip_entry, on_progress,
                            slice_size)
    except CodecError as exc:
        if exc.file_name:
            raise
        # a header or row error found without the file at hand: name it (header: line 1)
        where = file_name or (os.fspath(source) if _is_path(source) else None)
        line = exc.line_number if exc.line_number is not None else (1 if isinstance(exc, InvalidHeader) else None)
        raise type(exc)(exc.reason, file_name=where, line_number=line) from exc


def _upload_file(job: BatchJob, source: Any, category: str, file_name: str | None, streams: Any,
                 stream_mode: str | None, delimiter: str | None, buffer_size: int, encoding: str,
                 encode_replace: str | None, encode_cleaner: Any, embedded_within: Any, zip_entry: str | None,
                 on_progress: Progress | None, slice_size: int | None) -> int:
    from rjbatch.codecs import LineReader, open_read
    from rjbatch.codecs.tabular import Tabular, format_from_file_name

    settings = job.input_category(category)
    mode = stream_mode or settings.mode
    with open_read(source, file_name=file_name, streams=streams, zip_entry=zip_entry) as stream:
        name = stream.file_name or (os.fspath(source) if _is_path(source) else None)
        named = format_from_file_name(name) if name else None
        tabular = None
        if settings.is_tabular:
            fmt = settings.format if settings.format not in ("auto", "rows") else (named or "csv")
            tabular = settings.tabular(fmt)
            _remember(job, category, format=fmt, file_name=os.path.basename(name) if name else None)
        elif mode != "line":
            tabular = Tabular(named or "csv", columns=settings.columns)
        with SliceWriter(job, category, slice_size, on_progress) as writer:
            if tabular is not None and tabular.is_binary:
                _write_rows(job, writer, tabular, _binary_rows(tabular, stream), category, mode, stream)
            else:
                if embedded_within == "auto" and tabular is not None:
                    # the format decides, not the file name (in.zip may hold a CSV)
                    embedded_within = '"' if tabular.format == "csv" else None
                reader = LineReader(
                    stream, file_name=name, delimiter=delimiter, buffer_size=buffer_size,
                    encoding=encoding, encode_replace=encode_replace, encode_cleaner=encode_cleaner,
                    embedded_within=embedded_within,
                    # a CSV split into the files of a zip repeats its header in each
                    skip_repeated_header=tabular is not None and tabular.header_required,
                )
                blocks = reader.blocks()
                if tabular is not None:
                    blocks = _after_header(job, tabular, blocks, category)
                    if mode == "array":
                        blocks = ([tabular.to_row(r) for r in tabular.parse_many(b) if r is not None]
                                  for b in blocks)
                    elif mode == "hash":
                        blocks = ([r for r in tabular.parse_many(b) if r is not None] for b in blocks)
                for block in blocks:
                    writer.bytes_read = stream.raw_bytes_read
                    writer.write_many(block)
                writer.bytes_read = stream.raw_bytes_read
        if name and not settings.is_tabular:
            _remember(job, category, file_name=os.path.basename(name))
    return writer.record_count


def _after_header(job: BatchJob, tabular: Any, blocks: Iterable[list[str]], category: str) -> Iterator[list[str]]:
    """Take the header from the first non-blank line (unless columns are preset)."""
    blocks = iter(blocks)
    if not tabular.header_required:
        yield from blocks
        return
    for block in blocks:
        for index, line in enumerate(block):
            if line.strip():
                tabular.parse_header(line, line_number=1)
                _remember(job, category, columns=list(tabular.columns))
                rest = block[index + 1:]
                if rest:
                    yield rest
                yield from blocks
                return


def _binary_rows(tabular: Any, stream: Any) -> Iterator[Any]:
    from rjbatch.codecs.tabular import read_parquet, read_xlsx

    if tabular.format == "parquet":
        return read_parquet(stream)
    return read_xlsx(stream)


def _write_rows(job: BatchJob, writer: SliceWriter, tabular: Any, rows: Iterator[Any], category: str,
                mode: str, stream: Any) -> None:
    """xlsx rows (lists) or parquet rows (dicts); the first xlsx row is the header."""
    rows = iter(rows)
    tabular_job = job.input_category(category).is_tabular
    if tabular.format == "xlsx" and tabular.header_required:
        for row in rows:
            if row and any(cell not in (None, "") for cell in row):
                tabular.parse_header(row, line_number=1)
                if tabular_job:
                    _remember(job, category, columns=list(tabular.columns))
                break
    elif tabular.format == "parquet" and not tabular.columns:
        first = next(rows, None)
        if first is None:
            return
        tabular.columns = list(first)
        if tabular_job:
            _remember(job, category, columns=list(tabular.columns))
        rows = chain([first], rows)
    for chunk in _chunks(rows, 1000):
        if mode == "hash" or (tabular.format == "xlsx" and mode != "array" and not tabular_job):
            chunk = [tabular.parse_row(row) for row in chunk]
        writer.bytes_read = stream.raw_bytes_read
        writer.write_many(chunk)


def upload_query(job: BatchJob, query: Any, connection: Any = None, *, category: str = "main",
                 params: Any = None, batch_size: int = 1000, **options: Any) -> int:
    """Rows of a DB-API cursor, SQL text run on ``connection``, or an SQLAlchemy query.

    A tabular category stores the cursor's column names and gets each row as a dict;
    otherwise one column gives a bare value per record and several give a list. An
    SQLAlchemy ``Engine`` is used through a connection of its own, closed at the end.
    """
    if hasattr(connection, "connect") and not hasattr(connection, "execute"):  # an Engine
        with connection.connect() as opened:
            return upload_query(job, query, opened, category=category, params=params,
                                batch_size=batch_size, **options)
    cursor = _cursor(query, connection, params)
    tabular = job.input_category(category).is_tabular
    if tabular:
        _remember(job, category, format="rows", columns=_column_names(cursor))
    with SliceWriter(job, category, **options) as writer:
        while chunk := cursor.fetchmany(batch_size):
            if tabular:
                writer.write_many([list(row) for row in chunk])
            else:
                writer.write_many([row[0] if len(row) == 1 else list(row) for row in chunk])
    return writer.record_count


def _cursor(query: Any, connection: Any, params: Any) -> Any:
    """Something with ``fetchmany``: the cursor given, or one that runs the query."""
    if hasattr(query, "fetchmany"):
        return query
    if isinstance(query, str):
        if connection is None:
            raise UploadError("SQL text needs a connection: upload_query(sql, connection=conn)")
        if hasattr(connection, "exec_driver_sql"):
            return connection.exec_driver_sql(query, params or ())
        cursor = connection.cursor()
        cursor.execute(query, params or ())
        return cursor
    if hasattr(query, "compile") or hasattr(query, "__clause_element__"):
        if connection is None or not hasattr(connection, "execute"):
            raise UploadError("an SQLAlchemy query needs an SQLAlchemy connection")
        return connection.execute(query, params) if params else connection.execute(query)
    raise UploadError(f"cannot upload rows from a {type(query).__name__}")


def _column_names(cursor: Any) -> list[str]:
    """The result's column names: SQLAlchemy's ``keys()``, else DB-API's ``description``."""
    if hasattr(cursor, "keys") and callable(cursor.keys):
        return [str(key) for key in cursor.keys()]
    description = getattr(cursor, "description", None)
    if not description:
        raise UploadError("the query's cursor has no column names (no description)")
    return [str(column[0]) for column in description]


def upload_mongo_query(job: BatchJob, collection: Any, filter: dict, projection: list[str] | None,
                       *, category: str = "main", **options: Any) -> int:
    """Documents of a pymongo collection, ``projection`` naming the fields kept.

    A tabular category gets each document as a dict (all of it without a projection);
    otherwise one field (default ``_id``) gives a bare value and several a list.
    """
    tabular = job.input_category(category).is_tabular
    columns = list(projection) if projection else ([] if tabular else ["_id"])
    fields = {name: 1 for name in columns} if columns else None
    cursor = collection.find(filter, fields, batch_size=1000)
    if tabular:
        _remember(job, category, format="rows", columns=columns or None)
    with SliceWriter(job, category, **options) as writer:
        for chunk in _chunks(iter(cursor), 1000):
            if tabular and not columns:
                writer.write_many([{k: _plain(v) if k == "_id" else v for k, v in doc.items()} for doc in chunk])
            elif tabular or len(columns) > 1:
                writer.write_many([[_plain(doc.get(c)) for c in columns] for doc in chunk])
            else:
                writer.write_many([_plain(doc.get(columns[0])) for doc in chunk])
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
    with SliceWriter(job, category, slice_size=1) as writer:
        writer.write_many(pairs)
        writer.counted = last - start + 1  # a range counts its integers, not its pairs
    return writer.counted
