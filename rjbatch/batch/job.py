"""Batch jobs: many records in slices, processed by every worker that joins, in order.

Life of a batch job: upload (records become slices of ``slice_size``) → a worker
starts the job and runs ``before_batch`` → workers claim slices, call
``perform(record)`` for each, and store each slice's output under the input slice's id
→ when no slice is left, one worker runs ``after_batch`` and completes the job.
A failing record fails only its slice; the job fails when only failed slices are left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, ClassVar

from rjbatch import clock
from rjbatch import state as states
from rjbatch.batch import slices as slice_codec
from rjbatch.batch.categories import InputCategory, OutputCategory, from_dict, merge, to_dict
from rjbatch.batch.result import Result, Results
from rjbatch.errors import InvalidTransition, RjbatchError, ValidationError
from rjbatch.exception import JobException
from rjbatch.fields import computed, field
from rjbatch.job import Job

BEFORE, PROCESSING, AFTER = "before", "processing", "after"


class UnknownCategory(RjbatchError, KeyError):
    """A result was sent to, or a download asked for, a category the job does not have."""

    def __str__(self) -> str:
        return str(self.args[0])


class WorkContext:
    """What a worker lends a batch job: stop requests, its claim filter, its re-check time."""

    def __init__(self, should_stop: Callable[[], bool] | None = None, exclude: Callable[[str], None] | None = None,
                 re_check_seconds: float = 60.0, wait_for_upload: bool = True,
                 defer_deletes: bool = False) -> None:
        self.should_stop = should_stop or (lambda: False)
        self.exclude = exclude or (lambda job_id: None)
        self.re_check_seconds = re_check_seconds
        self.wait_for_upload = wait_for_upload  # False when nothing else can upload meanwhile
        # a completed job's record may be removed by the worker's next claim
        self.defer_deletes = defer_deletes


class BatchJob(Job):
    """A job whose ``perform(record)`` runs once per uploaded record."""

    slice_size: ClassVar[int] = 100
    collect_nil_output: ClassVar[bool] = False
    slices_per_claim: ClassVar[int | None] = None  # None: about 1,000 records per claim

    record_count = field(int)
    sub_state = field(str, choices=(BEFORE, PROCESSING, AFTER))
    input_categories = field(list, ["main"])
    output_categories = field(list, [])
    throttle_running_workers = field(int, user_editable=True, copy_on_restart=True)
    statistics = field(dict, {})

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._normalize_categories()

    # -- categories ---------------------------------------------------------------------
    def _normalize_categories(self) -> None:
        """Turn the class's shorthand (names, ``collect_output``...) into full settings."""
        inputs = []
        for entry in self.input_categories or ["main"]:
            category = from_dict(InputCategory, entry) if not isinstance(entry, InputCategory) else entry
            if isinstance(entry, str) and category.name == "main":
                category.slice_size = type(self).slice_size
            inputs.append(category)
        if not any(c.name == "main" for c in inputs):
            inputs.insert(0, InputCategory(slice_size=type(self).slice_size))
        outputs = []
        for entry in self.output_categories or []:
            category = from_dict(OutputCategory, entry) if not isinstance(entry, OutputCategory) else entry
            if isinstance(entry, str) and category.name == "main":
                category.nils = type(self).collect_nil_output
            outputs.append(category)
        if self.collect_output and not any(c.name == "main" for c in outputs):
            outputs.insert(0, OutputCategory(nils=type(self).collect_nil_output))
        for category in inputs + outputs:
            category.validate()
        self.input_categories = [to_dict(c) for c in inputs]
        self.output_categories = [to_dict(c) for c in outputs]

    def input_category(self, name: str = "main") -> InputCategory:
        for entry in self.input_categories:
            if entry["name"] == name:
                return from_dict(InputCategory, entry)
        raise UnknownCategory(f"{type(self).__name__} has no input category {name!r}")

    def output_category(self, name: str = "main") -> OutputCategory:
        for entry in self.output_categories:
            if entry["name"] == name:
                return from_dict(OutputCategory, entry)
        raise UnknownCategory(f"{type(self).__name__} has no output category {name!r}")

    def update_category(self, kind: str, name: str, **settings: Any) -> None:
        """Change one category's settings on this job (e.g. the columns of its header)."""
        if kind == "input":
            self.input_categories = [to_dict(c) for c in merge(
                [from_dict(InputCategory, e) for e in self.input_categories], InputCategory,
                [{"name": name, **settings}])]
        else:
            self.output_categories = [to_dict(c) for c in merge(
                [from_dict(OutputCategory, e) for e in self.output_categories], OutputCategory,
                [{"name": name, **settings}])]

    # -- reading progress ---------------------------------------------------------------
    @property
    def input(self) -> Input:
        """The main input category's slices: counts, failed records, retries."""
        return Input(self, "main")

    @computed
    def percent_complete(self) -> int:
        """From the records still in input slices: exact, and never stale."""
        if self.is_completed:
            return 100
        if not self.record_count:
            return 0
        counts = self._store().count_slices(self.id, "main")
        remaining = sum(records for _, records in counts.values())
        if remaining > self.record_count:
            return 0
        return int((1 - remaining / self.record_count) * 100)

    def status(self) -> dict[str, Any]:
        data = super().status()
        if self.is_new_record:
            return data
        data["percent_complete"] = self.percent_complete
        counts = self._store().count_slices(self.id, "main")
        data["queued_slices"] = counts.get("queued", (0, 0))[0]
        if not self.is_queued:
            data["active_slices"] = counts.get("running", (0, 0))[0]
            data["failed_slices"] = counts.get("failed", (0, 0))[0]
            data["failed_records"] = counts.get("failed", (0, 0))[0] and self.input.failed_count()
            for category in self.output_categories:
                slices, records = self._store().count_output_slices(self.id, category["name"])
                data[f"output_records_{category['name']}"] = records
                data[f"output_slices_{category['name']}"] = slices
        seconds = self.seconds
        percent = data["percent_complete"]
        if self.is_running and percent >= 5:
            data["est_remaining_duration"] = _duration(seconds / percent * 100 - seconds)
        if self.is_completed and self.record_count and seconds:
            data["records_per_second"] = round(self.record_count / seconds, 1)
        if self.sub_state == PROCESSING:
            data.pop("worker_name", None)
        data.pop("input_categories", None)
        data.pop("output_categories", None)
        return data

    # -- uploading ----------------------------------------------------------------------
    def upload(self, source: Any = None, **options: Any) -> Any:
        """Load records: a path, URI, file object, iterable or range; no source → a writer.

        Returns the number of records uploaded (the writer form returns a context).
        """
        from rjbatch.batch import upload

        if source is None:
            return upload.SliceWriter(self, **options)
        return upload.upload(self, source, **options)

    def upload_query(self, query: Any, connection: Any = None, **options: Any) -> int:
        """Rows of a DB-API cursor, SQL text, or an SQLAlchemy selectable."""
        from rjbatch.batch import upload

        return upload.upload_query(self, query, connection, **options)

    def upload_mongo_query(self, collection: Any, filter: dict | None = None,
                           projection: list[str] | None = None, **options: Any) -> int:
        from rjbatch.batch import upload

        return upload.upload_mongo_query(self, collection, filter or {}, projection, **options)

    def upload_integer_range(self, start: int, last: int, category: str = "main") -> int:
        from rjbatch.batch import upload

        return upload.upload_integer_range(self, start, last, category=category)

    def upload_integer_range_in_reverse_order(self, start: int, last: int, category: str = "main") -> int:
        from rjbatch.batch import upload

        return upload.upload_integer_range(self, start, last, category=category, reverse=True)

    # -- downloading --------------------------------------------------------------------
    def output(self, category: str = "main") -> Iterator[Any]:
        """Every result of a category, in upload order."""
        from rjbatch.batch import download

        return download.records(self, category)

    def download(self, target: Any = None, category: str = "main", **options: Any) -> int:
        """Write a category's output to a path, URI or file object; returns the record count."""
        from rjbatch.batch import download

        return download.download(self, target, category, **options)

    # -- statistics ---------------------------------------------------------------------
    def statistics_inc(self, key: str | dict[str, int | float], increment: int | float = 1) -> None:
        """Count something per record; kept on the job, summed across workers."""
        pending = self.__dict__.setdefault("_pending_stats", [])
        items = key.items() if isinstance(key, dict) else [(key, increment)]
        index = self.__dict__.get("_record_index")
        for name, amount in items:
            if name and amount:
                pending.append((index, name, amount))

    @property
    def current_record_number(self) -> int | None:
        """The number, in the whole upload, of the record being performed (from 1)."""
        index = self.__dict__.get("_record_index")
        first = self.__dict__.get("_slice_first")
        return None if index is None or first is None else first + index

    def _add_statistics(self, pending: dict[str, int | float]) -> None:
        """Sum a slice's increments into the stored statistics (atomic across workers)."""
        if self.is_persisted:
            self._store().increment_job(self.id, {f"statistics.{k}": v for k, v in pending.items()})
        stats = self.statistics if self.statistics is not None else {}
        snapshot = self._snapshot.get("statistics")
        for target in (stats, snapshot) if isinstance(snapshot, dict) else (stats,):
            for name, amount in pending.items():
                node = target
                *parents, leaf = name.split(".")
                for parent in parents:
                    node = node.setdefault(parent, {})
                node[leaf] = node.get(leaf, 0) + amount
        self._values["statistics"] = stats

    # -- state machine ------------------------------------------------------------------
    @property
    def is_pausable(self) -> bool:
        return self.state in (states.QUEUED, states.PAUSED) or (
            self.is_running and self.sub_state == PROCESSING
        )

    def _resumes_running(self) -> bool:
        return self.started_at is not None and self.sub_state == PROCESSING

    def _target(self, event: str, *args: Any) -> str | None:
        if event == "retry" and self.is_failed:
            return states.RUNNING if self.sub_state in (PROCESSING, AFTER) else states.QUEUED
        if event == "requeue" and self.is_running:
            name = args[0] if args else None
            if self.sub_state == PROCESSING:
                return states.RUNNING  # other workers may still hold slices: it stays running
            if name is not None and not states.worker_belongs_to(self.worker_name, name):
                return None
            return states.RUNNING if self.sub_state == AFTER else states.QUEUED
        return super()._target(event, *args)

    def _before_event(self, event: str, *args: Any) -> None:
        super()._before_event(event, *args)
        if event == "start" and not self.sub_state:
            self.sub_state = BEFORE
        elif event == "complete":
            self.sub_state = None
        elif event == "retry":
            if self.sub_state in (PROCESSING, AFTER):
                self.sub_state = PROCESSING
            else:
                self.sub_state = None
                self.started_at = None

    def _after_transition(self, event: str, *args: Any) -> None:
        if event == "requeue":
            name = args[0] if args else None
            if self.sub_state == PROCESSING:
                self.worker_name = None
                if name:
                    self._store().requeue_job_slices(self.id, "main", name)
                return
            if self.sub_state == AFTER:
                self.sub_state = PROCESSING  # the next worker runs after_batch again
                self.worker_name = None
                return
            self.sub_state = None
        super()._after_transition(event, *args)

    def _after_event(self, event: str, *args: Any) -> None:
        if event == "retry" and not self.is_new_record:
            self._store().retry_failed_slices(self.id, "main")
        elif event == "abort" and not self.is_new_record:
            self._store().delete_slices(self.id)  # aborting throws the slices away
        super()._after_event(event, *args)

    def _delete_owned(self) -> None:
        self._store().delete_slices(self.id)

    # -- working ------------------------------------------------------------------------
    def perform_now(self) -> Any:
        """Run before_batch, every uploaded slice and after_batch in this process.

        A failing record fails its slice, as with workers; once every slice has run the
        job is failed and the first record's exception is raised again.
        """
        self._validate_or_raise()
        worker_name = "inline:0:0"
        if self.may("start"):
            self._fire("start", worker_name, persist=self.is_persisted)
        errors: list[BaseException] = []
        self._work(worker_name, WorkContext(), errors=errors)
        if errors and self.is_failed:
            raise errors[0]
        return None

    def _work(self, worker_name: str, context: WorkContext | None = None,
              errors: list[BaseException] | None = None) -> bool:
        """A worker's time on this job; True when it should look for other work at once."""
        context = context or WorkContext()
        if not self.is_running:
            raise InvalidTransition("work on", self.state, type(self).__name__)
        if self.sub_state in (None, BEFORE):
            if not self._run_before_batch(worker_name):
                return True
            if self._check_completion(worker_name):
                return True
        elif self.sub_state == AFTER:
            if self._check_completion(worker_name):
                return True
        return self._process_slices(worker_name, context, errors)

    def _run_before_batch(self, worker_name: str) -> bool:
        try:
            if self._callbacks.by_kind["before_batch"]:
                if self.is_persisted:
                    self._save()
                self._callbacks.run(self, "before_batch")
            self.sub_state = PROCESSING
            if self.is_persisted:
                self._save()
        except Exception as exc:
            self._fail_with(exc, worker_name)
            return False
        return self.is_running

    def _process_slices(self, worker_name: str, context: WorkContext,
                        errors: list[BaseException] | None) -> bool:
        store = self._store()
        started = time.monotonic()
        per_claim = self.slices_per_claim or max(1, min(10, 1000 // self.input_category().slice_size))
        processor = _SliceProcessor(self, worker_name, errors)
        while not context.should_stop():
            if self.is_persisted and not self._refresh_for_claim():
                return True  # paused, aborted or failed meanwhile: leave it
            claimed = store.claim_slices(self.id, "main", worker_name, clock.now(), per_claim)
            if claimed:
                claimed = self._apply_worker_throttle(claimed, context)
                if not claimed:
                    return True
                processor.run(claimed)
                if time.monotonic() - started >= context.re_check_seconds:
                    return False  # go back to the claim, which prefers higher priorities
                continue
            if self.record_count is None and self.is_persisted and context.wait_for_upload:
                # the upload is still streaming in: wait for its next slices here
                if time.monotonic() - started >= context.re_check_seconds:
                    return False
                self._store().wait_for_change(0.5, context.should_stop)
                continue
            if self.record_count is not None and self._check_completion(worker_name):
                return True
            context.exclude(self.id)  # other workers hold the last slices
            return True
        return True

    def _refresh_for_claim(self) -> bool:
        """Re-read what may change while workers process: state, limits, record_count."""
        doc = self._store().find_job(self.id)
        if doc is None:
            self._destroyed = True
            return False
        for name in ("state", "sub_state", "record_count", "throttle_running_workers", "priority"):
            described = self._fields[name]
            self._values[name] = described.from_storage(doc.get(name))
        return self.is_running and self.sub_state == PROCESSING

    def _apply_worker_throttle(self, claimed: list[dict], context: WorkContext) -> list[dict]:
        slices_throttled = getattr(self, "_slices_throttled", None)
        reason = slices_throttled() if slices_throttled else None
        if reason:
            self._store().release_slices(self.id, "main", [s["id"] for s in claimed])
            self.logger.info("slices held: %s", reason)
            context.exclude(self.id)
            return []
        limit = self.throttle_running_workers
        if not limit or not self.is_persisted:
            return claimed
        running = self._store().count_slices(self.id, "main").get("running", (0, 0))[0]
        others = running - len(claimed)
        allowed = max(0, limit - others)
        if allowed < len(claimed):
            self._store().release_slices(self.id, "main", [s["id"] for s in claimed[allowed:]])
            claimed = claimed[:allowed]
        if not claimed:
            context.exclude(self.id)
        return claimed

    def _check_completion(self, worker_name: str) -> bool:
        """Called when no slice was found: complete or fail the job if it is done.

        Returns True when the job has left ``processing`` (or cannot go on here).
        """
        if not self.is_running:
            return True
        if self.record_count is None:
            return False  # the upload is still going
        counts = self._store().count_slices(self.id, "main")
        remaining = sum(n for n, _ in counts.values())
        failed = counts.get("failed", (0, 0))[0]
        where = {"state": states.RUNNING, "sub_state": PROCESSING}
        if remaining and failed == remaining:
            message = JobException.from_message(f"{failed} slices failed to process", worker_name)
            self._fire("fail", message, worker_name, persist=self.is_persisted,
                       validate=False, where=where if self.is_persisted else None)
            return True
        if remaining:
            return False
        if self.is_persisted:
            won = self._store().update_job(self.id, {"sub_state": AFTER, "worker_name": worker_name}, where)
            if not won:
                self.reload()
                return True
        self.sub_state = AFTER
        self.worker_name = worker_name
        self._changed.discard("sub_state")
        self._changed.discard("worker_name")
        try:
            self._callbacks.run(self, "after_batch")
            self._fire("complete", persist=self.is_persisted,
                       where={"state": states.RUNNING} if self.is_persisted else None)
        except Exception as exc:
            self._fail_with(exc, worker_name)
        return True

    def _slice_exception(self, exc: BaseException, worker_name: str, record_number: int) -> dict:
        return JobException.from_exception(exc, worker_name, record_number).to_dict()

    # Hooks for tabular mixins: turn stored records into perform's arguments, and
    # perform's results into what is stored.
    def _prepare_records(self, records: list[Any], first_record_number: int) -> list[Any]:
        return records

    def _finish_outputs(self, outputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return outputs


class _SliceProcessor:
    """The hot loop: decode, perform each record, group results, encode, one transaction."""

    def __init__(self, job: BatchJob, worker_name: str, errors: list[BaseException] | None) -> None:
        self.job = job
        self.worker_name = worker_name
        self.errors = errors
        self.store = job._store()
        self.categories = {c["name"]: from_dict(OutputCategory, c) for c in job.output_categories}
        main = self.categories.get("main")
        self.collect = bool(self.categories)
        self.main_nils = bool(main and main.nils)
        self.has_main = main is not None
        callbacks = job._callbacks
        if callbacks.has_chain("perform"):
            self.perform = lambda record: callbacks.run_chain(job, "perform", job.perform, record)
        else:
            self.perform = job.perform
        self.slice_chain = callbacks.has_chain("slice")

    def run(self, claimed: list[dict]) -> None:
        done: list[tuple[int, dict[str, dict]]] = []
        for piece in claimed:
            outputs = self._process(piece)
            if outputs is not None:
                done.append((piece["id"], outputs))
        self.store.complete_slices(self.job.id, "main", done)

    def _process(self, piece: dict) -> dict[str, dict] | None:
        """Process one slice; its encoded outputs, or None when it failed (already stored)."""
        job = self.job
        records = slice_codec.decode(piece["data"], piece["serializer"])
        first = piece["first_record_number"]
        resume_at = (piece.get("processing_record_number") or 1) - 1
        existing = self.store.output_slices_for(job.id, piece["id"]) if resume_at > 0 else {}
        results: dict[str, list[Any]] = {name: [] for name in self.categories}
        index = resume_at
        job.__dict__["_slice_first"] = first
        try:
            prepared = job._prepare_records(records, first)
            if self.slice_chain:
                job._callbacks.run_chain(job, "slice", self._perform_all, prepared, resume_at, results)
            else:
                index = self._perform_all(prepared, resume_at, results)
        except Exception as exc:
            index = getattr(exc, "_rjbatch_index", index)
            record_number = first + index
            if self.errors is not None:
                self.errors.append(exc)
            job.logger.error("record %d failed: %s: %s", record_number, type(exc).__name__, exc)
            outputs = self._encode(piece, job._finish_outputs(results), existing)
            self.store.fail_slice(job.id, "main", piece["id"], index + 1,
                                  job._slice_exception(exc, self.worker_name, record_number), outputs)
            self._flush_statistics(failed_index=index)
            return None
        self._flush_statistics()
        return self._encode(piece, job._finish_outputs(results), existing)

    def _perform_all(self, records: list[Any], start: int, results: dict[str, list[Any]]) -> int:
        """Call perform on each record from ``start``; the one loop every record goes through."""
        perform = self.perform
        main = results.get("main")
        append = main.append if main is not None else None
        nils = self.main_nils
        route = self._route
        job = self.job
        skip_none = getattr(job, "_skip_none_records", False)
        index = start
        try:
            if not self.collect:
                for index in range(start, len(records)):
                    job._record_index = index
                    record = records[index]
                    if record is not None or not skip_none:
                        perform(record)
                return len(records)
            for index in range(start, len(records)):
                job._record_index = index
                record = records[index]
                if record is None and skip_none:
                    continue
                value = perform(record)
                if value is None:
                    if nils:
                        append(None)
                    continue
                kind = type(value)
                if kind is Result or kind is Results:
                    route(value, results)
                elif append is not None:
                    append(value)
                else:
                    raise UnknownCategory(f"{type(job).__name__} has no output category 'main'")
        except Exception as exc:
            exc._rjbatch_index = index  # type: ignore[attr-defined]
            raise
        return len(records)

    def _route(self, value: Result | Results, results: dict[str, list[Any]]) -> None:
        for result in (value if isinstance(value, Results) else [value]):
            if result.category not in results:
                raise UnknownCategory(
                    f"{type(self.job).__name__} has no output category {result.category!r}"
                )
            if result.value is not None or self.categories[result.category].nils:
                results[result.category].append(result.value)

    def _encode(self, piece: dict, results: dict[str, list[Any]], existing: dict[str, dict]) -> dict[str, dict]:
        outputs = {}
        for name, values in results.items():
            category = self.categories[name]
            if name in existing:
                previous = slice_codec.decode(existing[name]["data"], existing[name]["serializer"])
                if category.serializer == "bzip2":
                    previous = previous[0]["binary"].decode("utf-8").splitlines()
                values = previous + values
            if not values and name != "main" and name not in existing:
                continue
            outputs[name] = {
                "first_record_number": piece["first_record_number"], "record_count": len(values),
                "serializer": category.serializer, "data": slice_codec.encode(values, category.serializer),
            }
        return outputs

    def _flush_statistics(self, failed_index: int | None = None) -> None:
        """Store a slice's increments; those of a record that raised are thrown away."""
        pending = self.job.__dict__.pop("_pending_stats", None)
        if pending:
            totals: dict[str, int | float] = {}
            for index, name, amount in pending:
                if failed_index is None or index != failed_index:
                    totals[name] = totals.get(name, 0) + amount
            self.job._add_statistics(totals)


def _duration(seconds: float) -> str:
    from rjbatch.job import seconds_as_duration

    return seconds_as_duration(max(0.0, seconds))


class Input:
    """A batch job's input slices of one category."""

    def __init__(self, job: BatchJob, category: str) -> None:
        self.job = job
        self.category = category

    def _counts(self) -> dict[str, tuple[int, int]]:
        return self.job._store().count_slices(self.job.id, self.category)

    def count(self) -> int:
        return sum(n for n, _ in self._counts().values())

    def queued_count(self) -> int:
        return self._counts().get("queued", (0, 0))[0]

    def running_count(self) -> int:
        return self._counts().get("running", (0, 0))[0]

    def failed_count(self) -> int:
        return self._counts().get("failed", (0, 0))[0]

    def slices(self, state: str | None = None) -> Iterator[dict]:
        after = 0
        while True:
            batch = self.job._store().read_input_slices(self.job.id, self.category, state, after, 200)
            yield from batch
            if len(batch) < 200:
                return
            after = batch[-1]["id"]

    def records(self, piece: dict) -> list[Any]:
        return slice_codec.decode(piece["data"], piece["serializer"])

    def failed_records(self) -> Iterator[tuple[Any, JobException]]:
        """Each failed record with the exception it raised."""
        for piece in self.slices("failed"):
            records = self.records(piece)
            index = (piece.get("processing_record_number") or 1) - 1
            if 0 <= index < len(records):
                yield records[index], JobException.coerce(piece["exception"])

    def update_failed_record(self, slice_id: int, value: Any) -> None:
        """Replace a failed slice's failing record (fix bad data, then retry the job)."""
        store = self.job._store()
        piece = next((p for p in self.slices("failed") if p["id"] == slice_id), None)
        if piece is None:
            raise RjbatchError(f"slice {slice_id} of job {self.job.id} is not failed")
        records = self.records(piece)
        records[(piece.get("processing_record_number") or 1) - 1] = value
        store.update_input_slice(self.job.id, self.category, slice_id,
                                 {"data": slice_codec.encode(records, piece["serializer"])})

    def delete_failed_record(self, slice_id: int) -> None:
        """Drop a failed slice's failing record; the retry resumes with the next one."""
        store = self.job._store()
        piece = next((p for p in self.slices("failed") if p["id"] == slice_id), None)
        if piece is None:
            raise RjbatchError(f"slice {slice_id} of job {self.job.id} is not failed")
        records = self.records(piece)
        del records[(piece.get("processing_record_number") or 1) - 1]
        store.update_input_slice(self.job.id, self.category, slice_id, {
            "data": slice_codec.encode(records, piece["serializer"]), "record_count": len(records)})

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

    def retry_failed(self) -> int:
        return self.job._store().retry_failed_slices(self.job.id, self.category)


def _now() -> datetime:
    return clock.now()


__all__ = ["BatchJob", "Input", "Result", "Results", "UnknownCategory", "ValidationError"]
