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
from rjbatch.batch.categories import (
    REJECTED_PREFIX,
    InputCategory,
    OutputCategory,
    from_dict,
    merge,
    to_dict,
)
from rjbatch.batch.result import Result, Results
from rjbatch.batch.sliced import SlicedInput, SlicedOutput, delete_job_slices
from rjbatch.batch.slices import SliceEncodingError
from rjbatch.errors import InvalidTransition, JobNotFound, RjbatchError, ValidationError
from rjbatch.job import Job
from rjbatch.job.context import INLINE_WORKER, WorkContext
from rjbatch.job.exception import JobException
from rjbatch.job.fields import computed, field
from rjbatch.job.states import (
    BATCH_TRANSITIONS,
    JOB_TRANSITIONS,
    Event,
    JobState,
    SubState,
    Transition,
)

BEFORE, PROCESSING, AFTER = SubState.BEFORE, SubState.PROCESSING, SubState.AFTER
#: A worker commits its finished slices at least this often (and before it stops).
COMMIT_SECONDS = 0.25


class UnknownCategory(RjbatchError, KeyError):
    """A result was sent to, or a download asked for, a category the job does not have."""

    def __str__(self) -> str:
        return str(self.args[0])


class BatchJob(Job):
    """A job whose ``perform(record)`` runs once per uploaded record."""

    slice_size: ClassVar[int] = 100
    collect_nil_output: ClassVar[bool] = False
    slices_per_claim: ClassVar[int | None] = None  # None: about 1,000 records per claim
    transitions: ClassVar[tuple[Transition, ...]] = BATCH_TRANSITIONS + JOB_TRANSITIONS

    record_count = field(int)
    sub_state = field(str, choices=tuple(sub_state.value for sub_state in SubState))
    input_categories = field(list, ["main"])
    output_categories = field(list, [])
    throttle_running_workers = field(int, user_editable=True, copy_on_restart=True)
    statistics = field(dict, {})
    # None until the job is built: kept when it collects output (its download comes after
    # completion; housekeeping's retention removes it later), destroyed otherwise
    destroy_on_complete = field(bool, None, copy_on_restart=True)  # type: ignore[assignment]  # None only until __init__ decides
    # while an upload streams in: who uploads, and until when its last heartbeat holds
    upload_owner = field(str)
    upload_expires_at = field(datetime)
    upload_records = field(int)

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._normalize_categories()
        if self.destroy_on_complete is None:
            self.destroy_on_complete = not self.output_categories

    def _reset_internals(self) -> None:
        super()._reset_internals()
        # while a slice runs: increments not yet stored (record index, name, amount), the
        # index in the slice of the record being performed, the slice's first record number
        self._pending_stats: list[tuple[int | None, str, int | float]] = []
        self._record_index: int | None = None
        self._slice_first: int | None = None

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
        self.configure_categories(inputs, outputs)
        for category in inputs + outputs:
            category.validate()
        self.input_categories = [to_dict(c) for c in inputs]
        self.output_categories = [to_dict(c) for c in outputs]

    def configure_categories(self, inputs: list[InputCategory], outputs: list[OutputCategory]) -> None:
        """A hook for mixins: adjust the category settings a new job starts with.

        ``TabularInput`` and ``TabularOutput`` set the record formats here; the settings
        are stored with the job, so every process reads them without the class.
        """

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

    # -- the slices ---------------------------------------------------------------------
    @property
    def input(self) -> SlicedInput:
        """The main input category's slices: counts, failed records, retries."""
        return self.sliced_input("main")

    def sliced_input(self, name: str = "main") -> SlicedInput:
        """The owner of one input category's slices."""
        return SlicedInput(self._store(), self.id, self.input_category(name), type(self).__name__)

    def sliced_output(self, name: str = "main") -> SlicedOutput:
        """The owner of one output category's slices."""
        main: dict[str, Any] = next((c for c in self.input_categories if c.get("name") == "main"), {})
        # the input's keys: not its blank or rejected (allowed_columns) header names
        base = [c for c in main.get("columns") or [] if c and not c.startswith(REJECTED_PREFIX)]
        return SlicedOutput(self._store(), self.id, self.output_category(name), type(self).__name__,
                            base_columns=base or None)

    @computed
    def percent_complete(self) -> int:
        """From the records still in input slices: exact, and never stale."""
        if self.is_completed:
            return 100
        if not self.record_count:
            return 0
        remaining = self.input.counts().records
        if remaining > self.record_count:
            return 0
        return int((1 - remaining / self.record_count) * 100)

    def status(self) -> dict[str, Any]:
        data = super().status()
        if self.is_new_record:
            return data
        data["percent_complete"] = self.percent_complete
        counts = self.input.counts()
        data["queued_slices"] = counts.queued
        if not self.is_queued:
            data["active_slices"] = counts.running
            data["failed_slices"] = counts.failed
            data["failed_records"] = counts.failed  # a slice stops at its first failing record
            for category in self.output_categories:
                output = self.sliced_output(category["name"]).counts()
                data[f"output_records_{category['name']}"] = output.records
                data[f"output_slices_{category['name']}"] = output.slices
        remaining = self.remaining_seconds
        if remaining is not None:
            data["est_remaining_duration"] = _duration(remaining)
        rate = self.records_per_second
        if rate is not None:
            data["records_per_second"] = round(rate, 1)
        if self.sub_state == PROCESSING:
            data.pop("worker_name", None)
        data.pop("input_categories", None)
        data.pop("output_categories", None)
        return data

    @property
    def records_per_second(self) -> float | None:
        """The whole run's rate, once completed (None before)."""
        seconds = self.seconds
        if self.is_completed and self.record_count and seconds > 0:
            return self.record_count / seconds
        return None

    @property
    def remaining_seconds(self) -> float | None:
        """Time left while running, from the share of records done so far (from 5% on)."""
        if not self.is_running or not self.started_at:
            return None
        percent = self.percent_complete or 0
        if not 5 <= percent < 100:
            return None
        return self.seconds * (100 - percent) / percent

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

    def fail_upload(self, message: str) -> bool:
        """Fail the job because its upload stopped: its ``record_count`` becomes what was
        uploaded. False when the upload finished, or the job was paused or aborted, meanwhile."""
        owner = self.upload_owner
        self.record_count = self.upload_records or 0
        try:
            return self._fire(Event.FAIL, JobException.from_message(message, owner), owner, validate=False,
                              where={"record_count": None, "upload_owner": owner})
        except InvalidTransition:
            return False

    # -- downloading --------------------------------------------------------------------
    def output(self, category: str = "main") -> Iterator[Any]:
        """Every result of a category, in upload order, as ``perform`` returned it."""
        return self.sliced_output(category).records()

    def download(self, target: Any = None, category: str = "main", *, allow_partial: bool = False,
                 **options: Any) -> int:
        """Write a category's output to a path, URI or file object; returns the record count.

        ``allow_partial``: write what is stored so far even while the job is processing
        (Mission Control's download); the records of unprocessed slices are missing.
        """
        from rjbatch.batch.download import DownloadError

        output = self.sliced_output(category)  # an unknown category fails here, by name
        state: str = self.state
        sub_state: str | None = self.sub_state
        if self.is_persisted:  # as stored now: this object may be older than the workers' progress
            doc = self._store().find_job(self.id)
            if doc is None:
                raise JobNotFound(f"{type(self).__name__} {self.id} no longer exists: nothing to download")
            state, sub_state = str(doc.get("state")), doc.get("sub_state")
        if not allow_partial and (state == JobState.QUEUED or (state == JobState.RUNNING and sub_state != AFTER)):
            raise DownloadError(f"cannot download {type(self).__name__} {self.id} yet: it is {state}"
                                f"{' (' + sub_state + ')' if sub_state else ''}, its output is not complete")
        return output.download(target, **options)

    # -- statistics ---------------------------------------------------------------------
    def statistics_inc(self, key: str | dict[str, int | float], increment: int | float = 1) -> None:
        """Count something per record; kept on the job, summed across workers."""
        pending = self._pending_stats
        items = key.items() if isinstance(key, dict) else [(key, increment)]
        index = self._record_index
        for name, amount in items:
            if name and amount:
                pending.append((index, name, amount))

    @property
    def current_record_number(self) -> int | None:
        """The number, in the whole upload, of the record being performed (from 1)."""
        index, first = self._record_index, self._slice_first
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

    # -- hooks for plugins --------------------------------------------------------------
    def slices_held(self) -> str | None:
        """Why this job's slices must wait now (None: they may run); asked with each claim
        of its slices (``ThrottleWindows`` holds them outside its windows)."""
        return None

    # -- state machine ------------------------------------------------------------------
    @property
    def is_pausable(self) -> bool:
        return self.state in (JobState.QUEUED, JobState.PAUSED) or (
            self.is_running and self.sub_state == PROCESSING
        )

    def _resumes_running(self) -> bool:
        return self.started_at is not None and self.sub_state == PROCESSING

    def _shares_work(self) -> bool:
        return self.sub_state == PROCESSING

    def _on_start(self, worker_name: str | None = None) -> None:
        super()._on_start(worker_name)
        if not self.sub_state:
            self.sub_state = BEFORE

    def _on_complete(self) -> None:
        super()._on_complete()
        self.sub_state = None

    def _on_retry(self) -> None:
        super()._on_retry()
        if self.sub_state in (PROCESSING, AFTER):
            self.sub_state = PROCESSING
        else:
            self.sub_state = None
            self.started_at = None

    def _on_requeue(self, worker_name: str | None = None) -> None:
        if self.sub_state == PROCESSING:  # it stays running: only the worker's slices go back
            self.worker_name = None
            if worker_name:
                self.input.requeue(worker_name)
        elif self.sub_state == AFTER:  # the next worker runs after_batch again
            self.sub_state = PROCESSING
            self.worker_name = None
        else:
            self.sub_state = None
            super()._on_requeue(worker_name)

    def _retried(self) -> None:
        if not self.is_new_record:
            self.input.retry_failed()

    def _aborted(self) -> None:
        if not self.is_new_record:
            delete_job_slices(self._store(), self.id)  # aborting throws every slice away

    def _delete_owned(self) -> None:
        delete_job_slices(self._store(), self.id)

    # -- working ------------------------------------------------------------------------
    def perform_now(self) -> Any:
        """Run before_batch, every uploaded slice and after_batch in this process.

        A failing record fails its slice, as with workers; once every slice has run the
        job is failed and the first record's exception is raised again.
        """
        self._validate_or_raise()
        if self.may(Event.START):
            self._fire(Event.START, INLINE_WORKER, persist=self.is_persisted)
        errors: list[BaseException] = []
        self._work(WorkContext(), errors=errors)
        if errors and self.is_failed:
            raise errors[0]
        return None

    def work(self, context: WorkContext) -> bool:
        """A worker's time on this job; True when it should look for other work at once."""
        self._context = context
        try:
            return self._work(context)
        finally:
            self._context = None

    def _work(self, context: WorkContext, errors: list[BaseException] | None = None) -> bool:
        if not self.is_running:
            raise InvalidTransition("work on", self.state, type(self).__name__)
        worker_name = context.worker_name
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
        started = time.monotonic()
        per_claim = self.slices_per_claim or max(1, min(10, 1000 // self.input_category().slice_size))
        processor = _SliceProcessor(self, worker_name, errors)
        while not context.should_stop():
            if self.is_persisted and not self._refresh_for_claim():
                return True  # paused, aborted or failed meanwhile: leave it
            processor.follow_settings()
            claimed = processor.input.claim(worker_name, clock.now(), per_claim)
            if claimed:
                claimed = self._apply_worker_throttle(processor.input, claimed, context)
                if not claimed:
                    return True
                processor.run(claimed, context.should_stop)
                if time.monotonic() - started >= context.re_check_seconds:
                    return False  # go back to the claim, which prefers higher priorities
                continue
            if self.record_count is None and self.is_persisted and context.wait_for_upload:
                # the upload is still streaming in: look at other work first, and come back
                # when the store changes (the uploader's next slices wake an idle worker)
                if context.skip_once is not None:
                    context.skip_once(self.id)
                    return True
                if time.monotonic() - started >= context.re_check_seconds:
                    return False
                self._store().wait_for_change(0.5, context.should_stop)
                continue
            if self.record_count is not None and self._check_completion(worker_name):
                return True
            context.exclude(self.id)  # other workers hold the last slices
            return True
        return True

    _REFRESHED = ("state", "sub_state", "record_count", "throttle_running_workers", "priority",
                  "input_categories", "output_categories")

    def _refresh_for_claim(self) -> bool:
        """Re-read what may change while workers process: state, limits, record_count, and
        the category settings (an upload stores its header and format as it reads them)."""
        doc = self._store().find_job(self.id)
        if doc is None:
            self._destroyed = True
            return False
        for name in self._REFRESHED:
            described = self._fields[name]
            self._values[name] = described.from_storage(doc.get(name))
        return self.is_running and self.sub_state == PROCESSING

    def _apply_worker_throttle(self, sliced: SlicedInput, claimed: list[dict],
                               context: WorkContext) -> list[dict]:
        reason = self.slices_held()
        if reason:
            sliced.release(claimed)
            self.logger.info("slices held: %s", reason)
            context.exclude(self.id)
            return []
        limit = self.throttle_running_workers
        if not limit or not self.is_persisted:
            return claimed
        others = sliced.counts().running - len(claimed)
        allowed = max(0, limit - others)
        if allowed < len(claimed):
            sliced.release(claimed[allowed:])
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
        counts = self.input.counts()
        remaining, failed = counts.slices, counts.failed
        where = {"state": JobState.RUNNING, "sub_state": PROCESSING}
        if remaining and failed == remaining:
            message = JobException.from_message(f"{failed} slices failed to process", worker_name)
            self._fire(Event.FAIL, message, worker_name, persist=self.is_persisted,
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
            self._fire(Event.COMPLETE, persist=self.is_persisted,
                       where={"state": JobState.RUNNING} if self.is_persisted else None)
        except Exception as exc:
            self._fail_with(exc, worker_name)
        return True

    def _slice_exception(self, exc: BaseException, worker_name: str, record_number: int) -> dict:
        return JobException.from_exception(exc, worker_name, record_number).to_dict()


class _SliceProcessor:
    """The hot loop: decode, parse, perform each record, group results, encode, one transaction.

    How records are parsed and results stored comes from the job's stored category
    settings (``follow_settings`` picks up changes, such as a header an upload stored
    after this worker started), never from the job's class.
    """

    def __init__(self, job: BatchJob, worker_name: str, errors: list[BaseException] | None) -> None:
        self.job = job
        self.worker_name = worker_name
        self.errors = errors
        self._settings: tuple[Any, Any] | None = None
        callbacks = job._callbacks
        if callbacks.has_chain("perform"):
            self.perform = lambda record: callbacks.run_chain(job, "perform", job.perform, record)
        else:
            self.perform = job.perform
        self.slice_chain = callbacks.has_chain("slice")
        # the claims' owner, checked by every commit; perform_now claims nothing
        self.fence = worker_name if job.is_persisted else None
        self.follow_settings()

    def follow_settings(self) -> None:
        """(Re)build the input's parser and the outputs' encoders when the settings changed."""
        job = self.job
        current = (job.input_categories, job.output_categories)
        if current == self._settings:
            return
        self._settings = current
        self.input = job.input
        self.parse = self.input.parser()
        self.outputs = {c["name"]: job.sliced_output(c["name"]) for c in job.output_categories}
        self.nils = {name: output.settings.nils for name, output in self.outputs.items()}
        self.collect = bool(self.outputs)
        self.main_nils = self.nils.get("main", False)
        self.has_main = "main" in self.outputs
        self.skip_none = self.parse is not None  # blank lines of a tabular file are not performed

    def run(self, claimed: list[dict], should_stop: Callable[[], bool] = lambda: False) -> None:
        """Process claimed slices, committing finished ones at least every ``COMMIT_SECONDS``.

        A stop request is honoured between slices: what is finished is committed and the
        slices not begun go back to the queue, so a grace period that runs out loses at
        most the slice in flight. Fast slices share one transaction (the claim-in-batches
        lever); a slow one is committed as soon as it finishes.
        """
        done: list[tuple[int, dict[str, dict]]] = []
        committed_at = time.monotonic()
        for position, piece in enumerate(claimed):
            if position and should_stop():
                self.input.release(claimed[position:])
                break
            outputs = self._process(piece)
            if outputs is not None:
                done.append((piece["id"], outputs))
            if done and time.monotonic() - committed_at >= COMMIT_SECONDS:
                self._commit(done)
                done, committed_at = [], time.monotonic()
        if done:
            self._commit(done)

    def _commit(self, done: list[tuple[int, dict[str, dict]]]) -> None:
        refused = self.input.complete(done, self.fence)
        if refused:
            self.job.logger.warning("slices %s were requeued while this worker had them (its server was "
                                    "thought dead): their results are dropped", refused)

    def _process(self, piece: dict) -> dict[str, dict] | None:
        """Process one slice; its encoded outputs, or None when it failed (already stored)."""
        job = self.job
        records = self.input.decode(piece)
        first = piece["first_record_number"]
        resume_at = (piece.get("processing_record_number") or 1) - 1
        existing = self._existing(piece["id"]) if resume_at > 0 else {}
        results: dict[str, list[Any]] = {name: [] for name in self.outputs}
        index = resume_at
        job._slice_first = first
        try:
            prepared = self._parse(records, first)
            if self.slice_chain:
                job._callbacks.run_chain(job, "slice", self._perform_all, prepared, resume_at, results)
            else:
                index = self._perform_all(prepared, resume_at, results)
        except Exception as exc:
            index = getattr(exc, "_rjbatch_index", index)
            try:
                outputs = self._encode(piece, results, existing)
            except SliceEncodingError:
                outputs = {}  # the failing record's exception says what went wrong
            self._fail(piece, index, exc, outputs)
            self._flush_statistics(failed_index=index)
            return None
        try:
            outputs = self._encode(piece, results, existing)
        except SliceEncodingError as exc:  # a result no slice can hold: the slice fails, not the worker
            self._fail(piece, resume_at, exc, {})
            self.job._pending_stats = []
            return None
        self._flush_statistics()
        return outputs

    def _fail(self, piece: dict, index: int, exc: BaseException, outputs: dict[str, dict]) -> None:
        job = self.job
        record_number = piece["first_record_number"] + index
        if self.errors is not None:
            self.errors.append(exc)
        job.logger.error("record %d failed: %s: %s", record_number, type(exc).__name__, exc)
        if not self.input.fail(piece, index, job._slice_exception(exc, self.worker_name, record_number), outputs,
                               self.fence):
            job.logger.warning("slice %s was requeued while this worker had it: its failure is dropped",
                               piece["id"])

    def _parse(self, records: list[Any], first: int) -> list[Any]:
        """perform's arguments; a record that cannot be parsed fails at its own index.

        The whole slice is parsed at once (the fast path); when that raises, the records
        are parsed one by one so the failure names the record at fault, and those before it
        are still performed (a fix of that one record then resumes the slice).
        """
        if self.parse is None or not records:
            return records
        try:
            return self.parse(records, first)
        except Exception:  # noqa: BLE001 - parsed again below, record by record
            parsed: list[Any] = []
            for index, record in enumerate(records):
                try:
                    parsed.extend(self.parse([record], first + index))
                except Exception as exc:
                    return _FailsAt(parsed, exc)
            return parsed

    def _existing(self, slice_id: int) -> dict[str, list[Any]]:
        """The outputs a failed slice wrote before its failing record (a retry appends to them)."""
        return self.input.outputs_before_failure(slice_id, self.outputs)

    def _perform_all(self, records: list[Any], start: int, results: dict[str, list[Any]]) -> int:
        """Call perform on each record from ``start``; the one loop every record goes through.

        An exception leaves with the index of its record (``_rjbatch_index``). Records that
        could not be parsed (``_FailsAt``) fail at theirs once those before it are performed.
        """
        job = self.job
        job._record_index = start
        try:
            if self.collect:
                self._perform_collecting(records, start, results)
            else:
                self._perform_only(records, start)
        except Exception as exc:
            exc._rjbatch_index = job._record_index  # type: ignore[attr-defined]  # tags the exception with its record
            raise
        if isinstance(records, _FailsAt):
            records.error._rjbatch_index = len(records)  # type: ignore[attr-defined]  # tags it, as above
            raise records.error
        return len(records)

    def _perform_only(self, records: list[Any], start: int) -> None:
        perform, job, skip_none = self.perform, self.job, self.skip_none
        for index in range(start, len(records)):
            job._record_index = index
            record = records[index]
            if record is not None or not skip_none:
                perform(record)

    def _perform_collecting(self, records: list[Any], start: int, results: dict[str, list[Any]]) -> None:
        perform, job, skip_none, nils, route = self.perform, self.job, self.skip_none, self.main_nils, self._route
        main = results.get("main")
        append = main.append if main is not None else None
        for index in range(start, len(records)):
            job._record_index = index
            record = records[index]
            if record is None and skip_none:
                continue
            value = perform(record)
            if value is None:
                if nils and append is not None:
                    append(None)
                continue
            kind = type(value)
            if kind is Result or kind is Results:
                route(value, results)
            elif append is not None:
                append(value)
            else:
                raise UnknownCategory(f"{type(job).__name__} has no output category 'main'")

    def _route(self, value: Result | Results, results: dict[str, list[Any]]) -> None:
        for result in (value if isinstance(value, Results) else [value]):
            if result.category not in results:
                raise UnknownCategory(
                    f"{type(self.job).__name__} has no output category {result.category!r}"
                )
            if result.value is not None or self.nils[result.category]:
                results[result.category].append(result.value)

    def _encode(self, piece: dict, results: dict[str, list[Any]],
                existing: dict[str, list[Any]]) -> dict[str, dict]:
        outputs = {}
        for name, values in results.items():
            if name in existing:
                values = existing[name] + values
            if not values and name != "main" and name not in existing:
                continue
            outputs[name] = self.outputs[name].encode(values, piece["first_record_number"])
        return outputs

    def _flush_statistics(self, failed_index: int | None = None) -> None:
        """Store a slice's increments; those of a record that raised are thrown away."""
        pending, self.job._pending_stats = self.job._pending_stats, []
        if pending:
            totals: dict[str, int | float] = {}
            for index, name, amount in pending:
                if failed_index is None or index != failed_index:
                    totals[name] = totals.get(name, 0) + amount
            self.job._add_statistics(totals)


class _FailsAt(list):
    """The records parsed before the one that could not be; ``error`` is its exception."""

    def __init__(self, parsed: list[Any], error: Exception) -> None:
        super().__init__(parsed)
        self.error = error


def _duration(seconds: float) -> str:
    from rjbatch.job import seconds_as_duration

    return seconds_as_duration(max(0.0, seconds))


__all__ = ["BatchJob", "Result", "Results", "SlicedInput", "SlicedOutput", "UnknownCategory",
           "ValidationError"]
