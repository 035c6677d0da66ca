"""The owners of a batch job's slices: one per category, input or output.

Rocket Job's ``Sliced::Input`` and ``Sliced::Output``. Each is built from the store, the
job id and the category's stored settings, never from the job's class, so a worker, a
downloader or Mission Control that has not imported the class reads and renders what
one that has would. Outside the store, only these classes touch slices: they own paging
(one policy), decoding (every serializer gives records), counts, writing, downloads and
failed records.

Output slices come in two forms. A worker stores a slice of a tabular category as CSV
lines when nothing is lost by it (every row a dict holding exactly the category's
columns, every value a string or None, which CSV keeps apart); a CSV download of those
slices is then a plain copy. Any other slice keeps the values ``perform`` returned.
Reading gives the same records either way. The form is marked in the slice's serializer
(``compress:csv``), so the store knows nothing of it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from rjbatch.batch import slices as slice_codec
from rjbatch.batch.categories import InputCategory, OutputCategory, Parser
from rjbatch.errors import RjbatchError
from rjbatch.job.exception import JobException
from rjbatch.job.states import SliceState
from rjbatch.store.protocol import Doc, Store

#: Slices per store read: small at first (a first page of big slices reads little),
#: doubling to a bound (a far page takes few round trips, memory stays bounded).
FIRST_READ, MAX_READ = 2, 128
CSV_FORM = "csv"
_DICT_ONLY = {dict}


@dataclass(frozen=True)
class InputCounts:
    """Input slices and the records they hold, by state."""

    queued: int = 0
    running: int = 0
    failed: int = 0
    queued_records: int = 0
    running_records: int = 0
    failed_records: int = 0

    @classmethod
    def from_store(cls, counts: dict[str, tuple[int, int]]) -> InputCounts:
        values: dict[str, int] = {}
        for state, (slices, records) in counts.items():
            values[state] = slices
            values[f"{state}_records"] = records
        return cls(**values)

    @property
    def slices(self) -> int:
        return self.queued + self.running + self.failed

    def by_state(self) -> dict[str, tuple[int, int]]:
        """``{state: (slices, records)}`` of the states that hold slices."""
        found = {"queued": (self.queued, self.queued_records), "running": (self.running, self.running_records),
                 "failed": (self.failed, self.failed_records)}
        return {state: pair for state, pair in found.items() if pair[0]}

    @property
    def records(self) -> int:
        return self.queued_records + self.running_records + self.failed_records


@dataclass(frozen=True)
class OutputCounts:
    slices: int = 0
    records: int = 0


class FailedRecord(tuple):
    """``(record, exception)``, as ``for record, exc in job.input.failed_records()`` takes it.

    ``record_number`` is its number in the upload (from 1); ``key`` is what
    ``update_failed_record`` and ``delete_failed_record`` take (the slice's id).
    """

    record: Any
    exception: JobException
    record_number: int
    key: int

    def __new__(cls, record: Any, exception: JobException, record_number: int, key: int) -> FailedRecord:
        self = super().__new__(cls, (record, exception))
        self.record, self.exception, self.record_number, self.key = record, exception, record_number, key
        return self

    def __repr__(self) -> str:
        return f"FailedRecord(#{self.record_number}, {self.record!r}, {self.exception.class_name})"


class SliceNotFound(RjbatchError, LookupError):
    """No failed slice of that key (fixed meanwhile, retried, or never there)."""


class Sliced:
    """What input and output slices share: the store, the settings, paging and decoding."""

    kind = ""

    def __init__(self, store: Store, job_id: str, settings: InputCategory | OutputCategory,
                 job_label: str = "BatchJob") -> None:
        self.store = store
        self.job_id = job_id
        self.settings = settings
        self.category = settings.name
        self.job_label = job_label

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.job_label} {self.job_id} {self.category!r}>"

    def _read(self, state: str | None, after: int, limit: int) -> list[Doc]:
        raise NotImplementedError

    def slices(self, state: str | None = None) -> Iterator[Doc]:
        """Stored slices in upload order, read a few at a time (their bytes, not decoded)."""
        after, size = 0, FIRST_READ
        while True:
            batch = self._read(state, after, size)
            yield from batch
            if len(batch) < size:
                return
            after = batch[-1]["id"]
            size = min(size * 2, MAX_READ)

    def decode(self, piece: Doc) -> list[Any]:
        """A slice's records as stored (a bzip2 slice: its lines, bytes where not UTF-8)."""
        serializer = piece["serializer"].partition(":")[0]
        records = slice_codec.decode(piece["data"], serializer)
        if serializer == "bzip2":
            lines = records[0]["binary"].split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
            return [_text(line) for line in lines]
        return records

    def records_of(self, piece: Doc) -> list[Any]:
        """A slice's records as ``perform`` returned them (input: as uploaded)."""
        return self.decode(piece)

    def delete(self) -> int:
        return self.store.delete_slices(self.job_id, self.category, self.kind)


class SlicedInput(Sliced):
    """A batch job's input slices of one category: counts, claims, failed records, retries."""

    kind = "input"
    settings: InputCategory

    def _read(self, state: str | None, after: int, limit: int) -> list[Doc]:
        return self.store.read_input_slices(self.job_id, self.category, state, after, limit)

    # -- counts -------------------------------------------------------------------------
    def counts(self) -> InputCounts:
        return InputCounts.from_store(self.store.count_slices(self.job_id, self.category))

    def count(self) -> int:
        return self.counts().slices

    def queued_count(self) -> int:
        return self.counts().queued

    def running_count(self) -> int:
        return self.counts().running

    def failed_count(self) -> int:
        return self.counts().failed

    def records(self, piece: Doc) -> list[Any]:
        return self.decode(piece)

    # -- writing (the uploader) ---------------------------------------------------------
    def next_id(self) -> int:
        return self.store.next_slice_id(self.job_id, self.category)

    def insert(self, pieces: Sequence[Doc]) -> None:
        if pieces:
            self.store.insert_slices(self.job_id, self.category, pieces)

    def make_slice(self, slice_id: int, first_record_number: int, records: list[Any]) -> Doc:
        return slice_codec.make_slice(slice_id, first_record_number, records, self.settings.serializer)

    def delete_from(self, first_id: int) -> int:
        """Remove the slices from ``first_id`` on (an upload that failed)."""
        return self.store.delete_slices(self.job_id, self.category, "input", from_id=first_id)

    # -- working (the workers) ----------------------------------------------------------
    def parser(self) -> Parser | None:
        return self.settings.parser()

    def claim(self, worker_name: str, now: datetime, limit: int) -> list[Doc]:
        return self.store.claim_slices(self.job_id, self.category, worker_name, now, limit)

    def release(self, pieces: Sequence[Doc]) -> None:
        self.store.release_slices(self.job_id, self.category, [p["id"] for p in pieces])

    def complete(self, done: Sequence[tuple[int, dict[str, Doc]]], worker_name: str | None = None) -> list[int]:
        """Commit finished slices; with ``worker_name``, only those it still holds (the
        ids of the others, requeued meanwhile, come back and nothing of them is written)."""
        return self.store.complete_slices(self.job_id, self.category, done, worker_name)

    def fail(self, piece: Doc, index: int, exception: Doc, outputs: dict[str, Doc],
             worker_name: str | None = None) -> bool:
        return self.store.fail_slice(self.job_id, self.category, piece["id"], index + 1, exception, outputs,
                                     worker_name)

    def outputs_before_failure(self, slice_id: int, outputs: dict[str, SlicedOutput]) -> dict[str, list[Any]]:
        """The records a failed slice wrote before its failing record, per output category
        (a retry resumes there and appends to them)."""
        stored = self.store.output_slices_for(self.job_id, slice_id)
        return {name: outputs[name].records_of(piece) for name, piece in stored.items() if name in outputs}

    def requeue(self, worker_or_server: str) -> int:
        return self.store.requeue_job_slices(self.job_id, self.category, worker_or_server)

    def retry_failed(self) -> int:
        return self.store.retry_failed_slices(self.job_id, self.category)

    # -- failed records -----------------------------------------------------------------
    def failed_records(self) -> Iterator[FailedRecord]:
        """Each failed record with its exception, record number and key."""
        for piece in self.slices("failed"):
            found = self._failing(piece)
            if found is not None:
                yield found[1]

    def failed_record(self, key: int | FailedRecord) -> FailedRecord:
        """One failed record by its key; ``SliceNotFound`` when it is no longer failed."""
        return self._failed_slice(key)[1][1]

    def update_failed_record(self, key: int | FailedRecord, value: Any) -> None:
        """Replace a failed record (fix bad data, then retry the job)."""
        piece, (records, failed) = self._failed_slice(key)
        records[(piece.get("processing_record_number") or 1) - 1] = value
        self._rewrite(piece, records)

    def delete_failed_record(self, key: int | FailedRecord) -> None:
        """Drop a failed record; the slice goes back to the queue, to resume with the record
        after it (at once while the job runs, with ``retry`` once it failed). Its key is
        then no longer a failed record: deleting it again raises ``SliceNotFound``."""
        piece, (records, _failed) = self._failed_slice(key)
        del records[(piece.get("processing_record_number") or 1) - 1]
        self._rewrite(piece, records, state=SliceState.QUEUED)

    def group_exceptions(self) -> list[dict[str, Any]]:
        """Failed slices grouped by exception class: count and distinct messages."""
        groups: dict[str, dict[str, Any]] = {}
        for piece in self.slices("failed"):
            exception = JobException.coerce(piece["exception"])
            group = groups.setdefault(exception.class_name,
                                      {"class_name": exception.class_name, "count": 0, "messages": []})
            group["count"] += 1
            if exception.message not in group["messages"]:
                group["messages"].append(exception.message)
        return list(groups.values())

    def _failing(self, piece: Doc) -> tuple[list[Any], FailedRecord] | None:
        records = self.decode(piece)
        index = (piece.get("processing_record_number") or 1) - 1
        if not 0 <= index < len(records):
            return None
        number = (piece.get("first_record_number") or 1) + index
        return records, FailedRecord(records[index], JobException.coerce(piece["exception"]), number, piece["id"])

    def _failed_slice(self, key: int | FailedRecord) -> tuple[Doc, tuple[list[Any], FailedRecord]]:
        slice_id = key.key if isinstance(key, FailedRecord) else int(key)
        batch = self.store.read_input_slices(self.job_id, self.category, "failed", slice_id - 1, 1)
        piece = batch[0] if batch and batch[0]["id"] == slice_id else None
        found = self._failing(piece) if piece is not None else None
        if piece is None or found is None:
            raise SliceNotFound(f"job {self.job_id} has no failed record with key {slice_id}")
        return piece, found

    def _rewrite(self, piece: Doc, records: list[Any], state: SliceState | None = None) -> None:
        changes: Doc = {"data": slice_codec.encode(records, piece["serializer"]), "record_count": len(records)}
        if state is not None:
            changes["state"] = state.value
        if not self.store.update_input_slice(self.job_id, self.category, piece["id"], changes):
            raise SliceNotFound(f"job {self.job_id} has no failed record with key {piece['id']}")


class SlicedOutput(Sliced):
    """A batch job's output of one category: its records in upload order, counts, downloads.

    ``base_columns`` are the input's columns: a tabular category without columns of its
    own renders them first, then every new key its records hold, in first-seen order.
    """

    kind = "output"
    settings: OutputCategory

    def __init__(self, store: Store, job_id: str, settings: OutputCategory, job_label: str = "BatchJob",
                 base_columns: list[str] | None = None) -> None:
        super().__init__(store, job_id, settings, job_label)
        self.base_columns = base_columns
        self._csv: Any = None
        self._getter: Any = None

    def _read(self, state: str | None, after: int, limit: int) -> list[Doc]:
        return self.store.read_output_slices(self.job_id, self.category, after, limit)

    @property
    def is_tabular(self) -> bool:
        return self.settings.is_tabular

    def counts(self) -> OutputCounts:
        slices, records = self.store.count_output_slices(self.job_id, self.category)
        return OutputCounts(slices, records)

    def count(self) -> int:
        """The number of records stored."""
        return self.counts().records

    # -- reading ------------------------------------------------------------------------
    def records_of(self, piece: Doc) -> list[Any]:
        records = self.decode(piece)
        if piece["serializer"].partition(":")[2] == CSV_FORM:
            return self._csv_tabular().parse_many(records)
        return records

    def blocks(self) -> Iterator[list[Any]]:
        """Each slice's records, in upload order."""
        for piece in self.slices():
            yield self.records_of(piece)

    def records(self) -> Iterator[Any]:
        """Every record, in upload order, as ``perform`` returned it."""
        for block in self.blocks():
            yield from block

    def columns(self) -> list[str] | None:
        """A tabular category's columns: its own, else the input's and every new key."""
        if self.settings.columns:
            return list(self.settings.columns)
        if not self.is_tabular:
            return None
        columns = list(self.base_columns or [])
        seen = set(columns)
        for piece in self.slices():
            if piece["serializer"].partition(":")[2] == CSV_FORM:
                continue  # rendered under the category's own columns
            for record in self.decode(piece):
                if isinstance(record, dict) and not seen.issuperset(record):
                    for key in record:
                        if key not in seen:
                            seen.add(key)
                            columns.append(key)
        return columns or None

    def download(self, target: Any = None, **options: Any) -> int:
        """Write the records to a path, URI or file object through the codecs its name picks."""
        from rjbatch.batch import download

        return download.write(self, target, **options)

    # -- writing (the workers) ----------------------------------------------------------
    def encode(self, records: list[Any], first_record_number: int) -> Doc:
        """A slice to store: CSV lines where nothing is lost by it, else the records."""
        serializer = self.settings.serializer
        lines = self._as_csv(records) if self.settings.columns and records and serializer != "bzip2" else None
        if lines is not None:
            records, serializer = lines, f"{serializer}:{CSV_FORM}"
        return {"first_record_number": first_record_number, "record_count": len(records),
                "serializer": serializer, "data": slice_codec.encode(records, serializer.partition(":")[0])}

    def _as_csv(self, records: list[Any]) -> list[str] | None:
        """The rows as CSV lines when every row is a dict of exactly the columns and every
        value a string or None (which CSV keeps apart); else None. C-speed checks only."""
        from rjbatch.codecs.tabular.delimited import csv_lines

        columns = self.settings.columns or []
        width = len(columns)
        if set(map(type, records)) != _DICT_ONLY or sum(map(len, records)) != len(records) * width:
            return None  # not all dicts, or some row has keys beyond the columns
        if self._getter is None:
            self._getter = itemgetter(*columns)
        try:
            rows = list(map(self._getter, records))
        except KeyError:  # a row lacks a column
            return None
        if width == 1:
            rows = [(value,) for value in rows]
        return csv_lines(rows, width, text_only=True)

    def _csv_tabular(self) -> Any:
        if self._csv is None:
            from rjbatch.codecs.tabular import Tabular

            self._csv = Tabular("csv", columns=self.settings.columns or [])
        return self._csv


def requeue_slices_of(store: Store, worker_or_server: str) -> int:
    """A dead worker's or server's running slices, of every job, back to queued."""
    return store.requeue_running_slices(worker_or_server)


def delete_job_slices(store: Store, job_id: str) -> int:
    """Every slice of a job, input and output (an abort, a destroy)."""
    return store.delete_slices(job_id)


def _text(line: bytes) -> str | bytes:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line
