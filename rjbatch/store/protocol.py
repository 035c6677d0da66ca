"""The store protocol: what every backend (SQLite, PostgreSQL, MongoDB) must do.

Plain dicts and bytes in and out; no job classes inside. A job document is a dict of
field name to stored value (JSON types plus timezone-aware datetimes) with three
special keys: ``_id`` (24-hex string), ``_type`` (the class's import path) and
``_classes`` (the class names of its job ancestry, so a query on a parent class finds
its subclasses even when they are not imported). Every datetime a store is given,
in a job, a slice, a server or a dirmon entry, at the top level or nested in dicts and
lists, comes back as a timezone-aware UTC ``datetime`` (millisecond precision), never
as text: callers need not parse timestamps.

The protocol comes in parts, one per kind of record: :class:`JobStore`,
:class:`SliceStore`, :class:`ServerStore` and :class:`DirmonStore`; :class:`Store` is
all of them, and what the rest of the code asks for.

Filters are a small Mongo-like language, the one Rocket Job's worker filters use:
``{"state": "queued", "priority": {"$lte": 25}, "_id": {"$nin": [...]},
"_type": {"$regex": "Report"}, "_class": "ReportJob", "$or": [...]}``. Operators:
``$eq $ne $in $nin $lt $lte $gt $gte $exists $regex $not`` (with ``$regex``), ``$or``,
``$and``. Dotted names reach into dict fields (``statistics.rows``).

Keys: a dot in a filter name, a sort key, a ``count_jobs_by`` field or an
``increment_job`` key always means nesting (``statistics.by_name.O'Brien`` is
``{"statistics": {"by_name": {"O'Brien": n}}}``, as in Rocket Job), so a job's own
(top-level) field names have no dot. Every other character is data: quotes, ``$``,
backslashes, ``%``, unicode and newlines round-trip exactly in keys and values on every
store (how each keeps them is its business: SQL parameters, or MongoDB's key escape).
The NUL character is the one exception a backend may refuse (see ``docs/stores.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from rjbatch.errors import StoreError

Doc = dict[str, Any]
Filter = dict[str, Any]
Order = Sequence[tuple[str, int]]  # (field, 1 ascending | -1 descending)


def check_field_names(doc: Doc) -> None:
    """Refuse a job field name a store would read as a path (``a.b``) or cannot name at all.

    Stores read a dotted name as a path into dict fields, so a top-level field called
    ``a.b`` would be written as one thing and found as another.
    """
    for name in doc:
        if not isinstance(name, str) or not name or "." in name:
            raise StoreError(f"invalid job field name {name!r}: a field name is a non-empty "
                             "string without '.' (a dot addresses a field inside a dict field)")


@runtime_checkable
class JobStore(Protocol):
    """Jobs: what the job layer, the worker's claim loop and the listings need.

    Its own part because it is the hot path: a backend's speed is decided by
    ``claim_job`` and ``update_job``, and the claim must stay one atomic statement.
    """

    def insert_job(self, doc: Doc) -> None:
        """Insert a new job document (``_id`` already set)."""

    def update_job(self, job_id: str, changes: Doc, where: Filter | None = None) -> bool:
        """Set only these fields, atomically; with ``where``, only if the job still matches.

        Returns whether a job was changed (False: gone, or ``where`` no longer holds).
        """

    def update_jobs(self, filter: Filter, changes: Doc) -> int:
        """Set fields on every matching job; returns how many were changed."""

    def increment_job(self, job_id: str, increments: dict[str, float]) -> bool:
        """Add to numbers at dotted paths of the document, atomically (statistics)."""

    def find_job(self, job_id: str) -> Doc | None: ...

    def find_jobs(
        self, filter: Filter, order: Order = (), limit: int | None = None, skip: int = 0
    ) -> list[Doc]: ...

    def iter_jobs(self, filter: Filter, order: Order = (), batch_size: int = 500) -> Iterator[Doc]:
        """Stream matching jobs without holding them all in memory."""

    def count_jobs(self, filter: Filter) -> int: ...

    def count_jobs_by(self, field: str, filter: Filter) -> dict[Any, int]:
        """Counts grouped by one field's value (``state`` for the state counts)."""

    def delete_job(self, job_id: str) -> bool: ...

    def delete_jobs(self, filter: Filter) -> int: ...

    def claim_job(self, worker_name: str, now: datetime, filter: Filter | None = None,
                  finished: Sequence[str] = ()) -> Doc | None:
        """Atomically take the next job a worker may run, in one statement.

        ``finished``: ids of this worker's jobs that completed and are to be removed
        (still ``running`` in the store); they are deleted in the same transaction.

        Candidates: queued jobs whose ``run_at`` is empty or due, and running batch jobs
        in sub_state ``processing``; ``filter`` narrows them. Order: priority, then id.
        The claimed job gets ``state = running``, ``worker_name`` and, if it was queued,
        ``started_at = now``; the returned
        document shows it after the claim, with ``_claimed_from`` holding the state it
        had before (``queued``, or ``running`` for a batch job being joined).
        """

    def next_run_at(self, now: datetime) -> datetime | None:
        """When the earliest scheduled (queued, future ``run_at``) job falls due."""

    def data_version(self) -> int:
        """A number that changes whenever another connection commits (cheap to poll)."""

    def wait_for_change(self, timeout: float, stop: Callable[[], bool] | None = None) -> bool:
        """Block until another process may have added work, ``timeout`` passes, or ``stop()``.

        How is the backend's business: SQLite watches ``PRAGMA data_version``,
        PostgreSQL listens for a notification. True when something changed.
        """



@runtime_checkable
class SliceStore(Protocol):
    """Slices of batch jobs: upload, claim, complete, fail, retry, download.

    Apart from jobs because only batch jobs use it, and because slices live in their
    own tables or collections, where the volume is (millions of records per job).
    """

    # A slice is a dict: id (int, upload order from 1), first_record_number,
    # record_count, serializer (str), data (bytes); input slices also carry state
    # (queued | running | failed), worker_name, started_at, failure_count,
    # processing_record_number and exception (a dict).

    def insert_slices(self, job_id: str, category: str, slices: Sequence[Doc]) -> None:
        """Add input slices (in one transaction)."""

    def next_slice_id(self, job_id: str, category: str) -> int:
        """One past the highest slice id used so far, input or output."""

    def claim_slices(
        self, job_id: str, category: str, worker_name: str, now: datetime, limit: int
    ) -> list[Doc]:
        """Atomically take up to ``limit`` queued slices, lowest ids first."""

    def release_slices(self, job_id: str, category: str, ids: Sequence[int]) -> None:
        """Put claimed slices back, untouched (a throttle said wait)."""

    def complete_slices(self, job_id: str, category: str, done: Sequence[tuple[int, dict[str, Doc]]],
                        worker_name: str | None = None) -> list[int]:
        """In one transaction: delete each input slice and write (replace) its outputs.

        ``done`` holds ``(slice id, {output category: output slice})``. Replacing, not
        appending, is what keeps output exact when a slice is processed twice. With
        ``worker_name`` (the fence), only the slices still ``running`` under that worker
        are completed; the ids of the others (requeued meanwhile, perhaps taken by another
        worker) are returned and nothing of them is written.
        """

    def fail_slice(
        self, job_id: str, category: str, slice_id: int, processing_record_number: int,
        exception: Doc, outputs: dict[str, Doc], worker_name: str | None = None,
    ) -> bool:
        """In one transaction: mark the input slice failed and write its partial outputs.

        With ``worker_name``, only while that worker holds the slice; False when it did not.
        """

    def retry_failed_slices(self, job_id: str, category: str) -> int:
        """Failed input slices back to queued (keeping where they failed)."""

    def requeue_running_slices(self, worker_or_server: str) -> int:
        """A dead worker's or server's running slices back to queued, across every job."""

    def requeue_job_slices(self, job_id: str, category: str, worker_or_server: str) -> int:
        """One job's running slices of a worker or server back to queued."""

    def count_slices(self, job_id: str, category: str) -> dict[str, tuple[int, int]]:
        """Input slices by state: ``{state: (slices, records)}``."""

    def count_output_slices(self, job_id: str, category: str) -> tuple[int, int]:
        """(slices, records) of one output category."""

    def read_input_slices(
        self, job_id: str, category: str, state: str | None = None, after_id: int = 0,
        limit: int = 100,
    ) -> list[Doc]: ...

    def update_input_slice(self, job_id: str, category: str, slice_id: int, changes: Doc) -> bool:
        """Change an input slice (its data, to fix a failed record before a retry)."""

    def read_output_slices(
        self, job_id: str, category: str, after_id: int = 0, limit: int = 100
    ) -> list[Doc]:
        """Output slices in id (upload) order, from ``after_id`` on."""

    def output_slices_for(self, job_id: str, slice_id: int) -> dict[str, Doc]:
        """Every category's output slice with this id (to append when a slice resumes)."""

    def delete_slices(self, job_id: str, category: str | None = None, kind: str | None = None,
                      from_id: int = 0) -> int:
        """Drop a job's slices: all, one category, only ``input`` or ``output``, from an id on."""



@runtime_checkable
class DirmonStore(Protocol):
    """Directory-monitor entries: which files to pick up and which job gets them.

    Apart because it is a small, separate record kind, read by the dirmon job and edited
    from the CLI and Mission Control, never on a worker's hot path.
    """

    def save_dirmon_entry(self, doc: Doc) -> None:
        """Insert or replace an entry (keyed by ``_id``); its ``pattern`` must be unique."""

    def find_dirmon_entries(self, filter: Filter | None = None) -> list[Doc]: ...

    def delete_dirmon_entry(self, entry_id: str) -> bool: ...



@runtime_checkable
class ServerStore(Protocol):
    """Worker servers' records (heartbeats, states) and the store's own upkeep.

    Apart because servers are the control plane: zombie detection and Mission Control's
    server pages read them, while jobs and slices carry the work.
    """

    def save_server(self, doc: Doc) -> None:
        """Insert or replace the record of a server (keyed by ``name``)."""

    def find_server(self, name: str) -> Doc | None: ...

    def find_servers(self) -> list[Doc]: ...

    def update_server(self, name: str, changes: Doc, where: Filter | None = None) -> bool:
        """Change a server's record (heartbeat, state); False if it is gone."""

    def delete_server(self, name: str) -> bool: ...


@runtime_checkable
class Store(JobStore, SliceStore, ServerStore, DirmonStore, Protocol):
    """Everything the job layer, the workers and the web UI ask of a database.

    The union of the parts, so callers keep asking for one ``Store``; a function that
    needs less can ask for the part it uses (``SliceStore`` for the slice helpers).
    """

    url: str

    def vacuum(self) -> str:
        """Give back the space of removed jobs and slices where the backend does not by itself;
        a line saying what was done."""

    def close(self) -> None: ...
