"""A job's life: the state machine's events, the actions people take, and running.

Every state change goes through ``_fire``: the table in ``states`` gives the target, the
event's own method (``_on_start``, ``_on_fail``...) sets what Rocket Job sets, the
class's callbacks run around the change, and the save is fenced when a run asks it.
The worker's side is three public methods: ``Job.from_claim``, ``job.begin`` and
``job.work``; people act through ``job.can`` and ``job.act`` (the CLI and Mission
Control both do).
"""

from __future__ import annotations

import logging
import time
from enum import StrEnum
from typing import Any, ClassVar, Self

from rjbatch import clock
from rjbatch.errors import InvalidTransition
from rjbatch.job import states
from rjbatch.job.context import INLINE_WORKER, WorkContext
from rjbatch.job.exception import JobException
from rjbatch.job.record import JobRecord
from rjbatch.job.states import Event, JobState, Transition

log = logging.getLogger("rjbatch.worker")


class Action(StrEnum):
    """What a person may do to a job, from the command line or Mission Control."""

    RUN_NOW = "run_now"
    PAUSE = "pause"
    RESUME = "resume"
    RETRY = "retry"
    FAIL = "fail"
    ABORT = "abort"
    DESTROY = "destroy"


#: each event's own method: what Rocket Job sets with it (a subclass may extend one)
_EFFECTS: dict[str, str] = {event: f"_on_{event}" for event in Event}


class JobLifecycle(JobRecord):
    """Events, actions, and the run of one job (``perform_now`` or a worker's)."""

    collect_output: ClassVar[bool] = False
    pausable: ClassVar[bool] = False
    throttle_running_jobs: ClassVar[int | None] = None
    #: this class's rows of the state machine, tried in order (see ``states``)
    transitions: ClassVar[tuple[Transition, ...]] = states.JOB_TRANSITIONS

    def _reset_internals(self) -> None:
        super()._reset_internals()
        self._claimed_from: str = JobState.QUEUED  # a claim of a batch job under way says "running"
        self._context: WorkContext | None = None  # the worker's, while it works on the job
        self._completion_unsaved = False  # completed and about to be deleted, never saved as such

    # -- hooks for plugins --------------------------------------------------------------
    def retry_pending(self) -> bool:
        """Will this failure be retried by itself? (the ``Retry`` plugin says so; ``Restart``
        then leaves the failed job alone until the retries run out)."""
        return False

    # -- the state machine --------------------------------------------------------------
    @property
    def is_pausable(self) -> bool:
        return self.state in (states.QUEUED, states.PAUSED) or type(self).pausable

    def _resumes_running(self) -> bool:
        return type(self).pausable and self.started_at is not None

    def may(self, event: str, *args: Any) -> bool:
        """Would this event be allowed now?"""
        return self._target(event, *args) is not None

    @classmethod
    def _rows(cls, event: str) -> tuple[Transition, ...]:
        by_event = cls.__dict__.get("_rows_by_event")
        if by_event is None:
            by_event = {e: tuple(row for row in cls.transitions if row.event == e) for e in Event}
            type.__setattr__(cls, "_rows_by_event", by_event)
        return by_event[event]

    def _target(self, event: str, *args: Any) -> JobState | None:
        """The state ``event`` takes the job to now: the first row that applies (an Event
        is a str, so either names it)."""
        state = self.state
        for row in self._rows(event):
            if state in row.sources and (row.guard is None or row.guard(self, *args)):
                return row.target
        return None

    def _fire(self, event: str, *args: Any, persist: bool = True, validate: bool = True,
              where: dict[str, Any] | None = None) -> bool:
        """Run one event: the target, the event's own changes, befores, the state change,
        the save, afters. On an error before or during the save the job is left as it was.
        Returns False only when a conditional save (``where``) lost a race."""
        target = self._target(event, *args)
        if target is None:
            raise InvalidTransition(event, self.state, type(self).__name__)
        saved_values, saved_changed = dict(self._values), set(self._changed)
        try:
            self._apply(event, *args)
            self._callbacks.run(self, f"before_{event}", *args)
            self._values["state"] = target
            self._changed.add("state")
            if persist and not self._save(validate, where):
                self.reload()
                return False
        except BaseException:
            self._values, self._changed = saved_values, saved_changed
            raise
        self._callbacks.run(self, f"after_{event}", *args)
        if event == Event.COMPLETE:
            self._completed()
        elif event == Event.RETRY:
            self._retried()
        elif event == Event.ABORT:
            self._aborted()
        return True

    def fire(self, event: Event | str, *args: Any) -> None:
        """Fire an event from inside a run (plugins, callbacks): saved when the job is
        stored (a ``perform_now`` job is not), without validating the user's fields."""
        self._fire(Event(event), *args, persist=self.is_persisted, validate=False)

    def _apply(self, event: str, *args: Any) -> None:
        """What Rocket Job itself changes with each event, before the class's callbacks:
        the event's own method (``_on_start``...)."""
        getattr(self, _EFFECTS[event])(*args)

    def _on_start(self, worker_name: str | None = None) -> None:
        self.started_at = clock.now()
        if worker_name:
            self.worker_name = worker_name

    def _on_complete(self) -> None:
        self.completed_at = clock.now()
        self.worker_name = None
        self.exception = None  # an earlier attempt's failure (Retry) is history, not the state
        if "percent_complete" in self._fields:  # batch jobs count it from their slices
            self.percent_complete = 100

    def _on_fail(self, error: BaseException | JobException | str | None = None,
                 worker_name: str | None = None) -> None:
        self.completed_at = clock.now()
        self.worker_name = None
        self.failure_count = (self.failure_count or 0) + 1
        if isinstance(error, BaseException):
            self.exception = JobException.from_exception(error, worker_name)
        elif isinstance(error, JobException):
            self.exception = error
        else:
            self.exception = JobException.from_message(error, worker_name)

    def _on_retry(self) -> None:
        self.completed_at = None
        self.exception = None
        self.worker_name = None

    def _on_pause(self) -> None:
        self.completed_at = clock.now()
        self.worker_name = None

    def _on_resume(self) -> None:
        self.completed_at = None

    def _on_abort(self) -> None:
        self.completed_at = clock.now()
        self.worker_name = None

    def _on_requeue(self, worker_name: str | None = None) -> None:
        self.started_at = None
        self.worker_name = None

    def _completed(self) -> None:
        """After completing: a job destroyed on completion is removed, with its callbacks."""
        if not (self.destroy_on_complete and self.is_persisted):
            return
        context = self._context
        if context is not None and context.finished is not None and self._completion_unsaved \
                and self._plain_destroy():
            # still stored as running: the worker's next claim deletes it (one lock, not two)
            context.finished.append(self.id)
            self._destroyed = True
            return
        self._callbacks.run(self, "before_destroy")
        if not self._store().delete_jobs({"_id": self.id, "state": {"$in": [states.RUNNING, states.COMPLETED]}}):
            self.reload()  # paused or aborted while it ran: keep it
            return
        self._destroyed = True
        self._delete_owned()
        self._callbacks.run(self, "after_destroy")

    def _retried(self) -> None:
        """After a retry: what else must run again (a batch job's failed slices)."""

    def _aborted(self) -> None:
        """After an abort: what is thrown away with the job's work (a batch job's slices)."""

    def start(self, worker_name: str | None = None) -> None:
        self._fire(Event.START, worker_name)

    def complete(self) -> None:
        self._fire(Event.COMPLETE)

    def fail(self, exc_or_message: BaseException | str | None = None, worker_name: str | None = None) -> None:
        self._fire(Event.FAIL, exc_or_message, worker_name)

    def retry(self) -> None:
        self._fire(Event.RETRY)

    def pause(self) -> None:
        self._fire(Event.PAUSE)

    def resume(self) -> None:
        self._fire(Event.RESUME)

    def abort(self) -> None:
        self._fire(Event.ABORT)

    def requeue(self, worker_name: str | None = None) -> None:
        """Send a running job back to the queue (only if ``worker_name``'s, when given)."""
        self._fire(Event.REQUEUE, worker_name)

    def run_now(self) -> None:
        """A scheduled job runs at the next poll."""
        if self.run_at is not None:
            self.run_at = None
            if not self._new:
                self.update_attribute("run_at", None)

    # -- actions: what people do, from the CLI and Mission Control ------------------------
    def can(self, action: Action | str) -> bool:
        """Does the job allow this action now (who may take it is the caller's business)?"""
        action = Action(action)
        if action is Action.DESTROY:
            return True
        if action is Action.RUN_NOW:
            return self.is_scheduled
        return self.may(action.value)

    def act(self, action: Action | str, reason: str | None = None) -> None:
        """Take an action; ``reason`` becomes a failed job's message. Raises
        ``InvalidTransition`` when the job does not allow it now."""
        action = Action(action)
        if not self.can(action):
            raise InvalidTransition(action.value, "scheduled" if self.is_scheduled else self.state,
                                    f"{type(self).__name__} {self.id}")
        if action is Action.DESTROY:
            self.destroy()
        elif action is Action.RUN_NOW:
            self.run_now()
        elif action is Action.FAIL:
            self.fail(reason or "failed by hand")
        else:
            self._fire(Event(action.value))

    # -- running: the worker's contract -------------------------------------------------
    @classmethod
    def from_claim(cls, doc: dict[str, Any]) -> Self:
        """The job a worker's claim returned, as an instance of its own class."""
        claimed_from = doc.pop("_claimed_from", JobState.QUEUED)
        job = cls._from_doc(doc)
        job._claimed_from = claimed_from
        return job  # _from_doc builds the stored class: cls or a subclass of it

    def begin(self, context: WorkContext) -> bool:
        """Make a claimed job ready to work on: False when it is not to be worked on now.

        An expired job is destroyed; a throttled one goes back to the queue and its
        throttle's filter to the worker; start callbacks run (and may send it back).
        """
        worker = context.worker_name
        # expiry is for work not yet started: a batch job already being processed is
        # joined, not destroyed (Rocket Job destroyed it and its slices)
        if self.is_expired and self._claimed_from == JobState.QUEUED:
            log.info("destroying expired job %s (%s)", self.id, type(self).__name__)
            try:
                self.destroy()
            except Exception as exc:  # noqa: BLE001 - a failing destroy must not stop the worker
                self._fail_with(exc, worker)
            return False
        if self._claimed_from == JobState.RUNNING:
            return True  # a batch job being processed: its throttles apply per slice
        try:
            throttle = self.throttled()
        except Exception as exc:  # noqa: BLE001 - a failing throttle fails the job, not the worker
            self._fail_with(exc, worker)
            return False
        if throttle is not None:
            reason, exclude = throttle
            self.throttled_by, self.throttled_at = reason, clock.now()
            self._fire(Event.REQUEUE, worker, validate=False, where=self._fence(worker))
            context.hold_back(exclude)
            return False
        if self._starts_at_claim():
            return True  # the claim already stored all that starting changes
        self._values["state"] = JobState.QUEUED  # as it was before the claim, so it can start
        try:
            self._fire(Event.START, worker)
        except Exception as exc:  # noqa: BLE001 - a failing before/after_start fails the job
            self._fail_with(exc, worker)
            return False
        return self.is_running

    def work(self, context: WorkContext) -> bool:
        """Work on a begun job for a worker; True when it should look for more work at once."""
        self._context = context
        try:
            self._run(context.worker_name)
        finally:
            self._context = None
        return True

    def _starts_at_claim(self) -> bool:
        """Does the claim's write (running, worker_name, started_at) make the whole start?

        True for classes with no start callbacks and Rocket Job's plain start: then a
        worker saves one write per job.
        """
        cls = type(self)
        cached = cls.__dict__.get("_plain_start")
        if cached is None:
            by_kind = cls._callbacks.by_kind
            cached = (not by_kind["before_start"] and not by_kind["after_start"]
                      and cls._on_start is JobLifecycle._on_start)
            type.__setattr__(cls, "_plain_start", cached)
        return bool(cached)

    def throttled(self) -> tuple[str, dict[str, Any]] | None:
        """Whether this job must wait: ``(reason, filter excluding it)`` or None."""
        from rjbatch.job.throttling import first_throttle

        return first_throttle(self)

    @property
    def logger(self) -> logging.LoggerAdapter:
        return logging.LoggerAdapter(
            logging.getLogger(f"rjbatch.job.{type(self).__name__}"), {"job_id": self.id}
        )

    def perform(self, *args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define perform()")

    def perform_now(self) -> Any:
        """Run the job here, without a worker, through the same callbacks and events.

        Not saved unless it already was. Returns perform's value; on error the job is
        failed and the exception re-raised.
        """
        self._validate_or_raise()
        if self.may(Event.START):
            self._fire(Event.START, INLINE_WORKER, persist=self.is_persisted)
        if not self.is_running:
            return None  # a start callback sent it back (a processing window), or failed it
        return self._run(INLINE_WORKER, re_raise=True)

    def _run(self, worker_name: str, re_raise: bool = False) -> Any:
        """Perform a running job and complete it; failures are recorded on the job."""
        if not self.is_running:
            raise InvalidTransition("perform", self.state, type(self).__name__)
        output = None
        fence = self._fence(worker_name)
        try:
            output = self._perform_logged()
            if self.collect_output:
                self.result = output if isinstance(output, dict) else {"result": output}
            if self.may(Event.COMPLETE):
                # a job paused or aborted while it ran keeps that state (Rocket Job wrote
                # over it with "completed"); a job destroyed on completion is not saved
                # first, only deleted if it is still running
                persisted = self.is_persisted
                # with after_complete callbacks the completion is saved first, so they
                # see it stored (a Restart's next instance, a Singleton's check)
                skip_save = self.destroy_on_complete and not self._callbacks.by_kind["after_complete"]
                self._completion_unsaved = persisted and skip_save
                if not self._fire(Event.COMPLETE, persist=persisted and not skip_save, where=fence):
                    self._log_stale_run(worker_name, "completion")
            elif self.is_persisted and not self._save(where=fence):
                self._log_stale_run(worker_name, "result")
        except Exception as exc:
            self._fail_with(exc, worker_name, where=fence)
            if re_raise:
                raise
        return output

    def _fence(self, worker_name: str | None) -> dict[str, Any] | None:
        """What this run's writes require of the stored job: still running, and held by this
        worker. A run whose job was requeued meanwhile (its worker thought dead) and taken
        by another worker has its late writes refused, so the record holds one run only."""
        if not self.is_persisted:
            return None
        fence: dict[str, Any] = {"state": states.RUNNING}
        if worker_name and self.worker_name == worker_name:
            fence["worker_name"] = worker_name
        return fence

    def _log_stale_run(self, worker_name: str | None, what: str) -> None:
        self.logger.warning("%s of %s refused: it was requeued meanwhile (now %s, held by %s); "
                            "this run's work is dropped", what, worker_name, self.state,
                            self.worker_name or "nobody")

    def _perform_logged(self) -> Any:
        logger = self.logger
        level = self.log_level
        previous = logger.logger.level
        if level:
            name = {"trace": "DEBUG", "warn": "WARNING", "fatal": "CRITICAL"}.get(level, level.upper())
            logger.logger.setLevel(name)
        started = time.perf_counter()
        try:
            logger.debug("Start perform")
            if self._perform_chain:
                output = self._callbacks.run_chain(self, "perform", self._perform_if_running)
            else:
                output = self.perform()
            logger.info("Completed perform in %.1f ms", (time.perf_counter() - started) * 1000)
            return output
        except Exception:
            logger.error("perform failed after %.1f ms", (time.perf_counter() - started) * 1000,
                         exc_info=True)
            raise
        finally:
            if level:
                logger.logger.setLevel(previous)

    def _perform_if_running(self) -> Any:
        return self.perform() if self.is_running else None

    def _fail_with(self, exc: BaseException, worker_name: str | None,
                   where: dict[str, Any] | None = None) -> None:
        """Record an exception: fail the job if it may fail, else only keep the exception.

        ``where``: the run's fence; a stale run's failure is dropped, not stored.
        """
        if self.is_failed or not self.may(Event.FAIL):
            self.exception = JobException.from_exception(exc, worker_name)
        else:
            self._fire(Event.FAIL, exc, worker_name, persist=False)
        if self.is_persisted and not self._save(validate=False, where=where):
            self.reload()
            self._log_stale_run(worker_name, "failure")

    def _shares_work(self) -> bool:
        """Is the job worked on by many workers at once (a batch job's slices)? Then a dead
        worker's part goes back to the queue, not the job."""
        return False
