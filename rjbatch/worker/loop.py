"""One worker process: claim work, run it, and when idle wait for the store to change.

After doing work it polls again at once (Rocket Job slept a full poll interval after
every job); when idle it waits for the store's change signal, so new work starts
within milliseconds without a busy claim loop.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from rjbatch import config, log
from rjbatch.batch.job import BatchJob
from rjbatch.worker.picking import WorkerFilter, next_available_job

logger = logging.getLogger("rjbatch.worker")


@dataclass
class WorkerSpec:
    """Everything a worker process needs, picklable for the spawn start method."""

    server_name: str
    worker_id: int
    database: str
    jobs: list[str] = field(default_factory=list)
    include: str | None = None
    exclude: str | None = None
    max_poll_seconds: float = 5.0
    only_job_id: str | None = None
    re_check_seconds: float = 60.0
    log_level: int = logging.INFO
    settings: dict[str, Any] = field(default_factory=dict)
    supervisor_pid: int | None = None  # the worker dies with it (see die_with_supervisor)

    @property
    def name(self) -> str:
        return f"{self.server_name}:{self.worker_id}"


def base_filter(include: str | None, exclude: str | None) -> dict[str, Any]:
    """The claim filter of ``--filter``/``--exclude``: case-insensitive regexes on the job's
    class, by name or import path: ``^SleepJob$`` matches ``jobs.SleepJob`` too."""
    conditions: dict[str, Any] = {}
    if include:
        conditions["$regex"] = _class_regex(include)
    if exclude:
        conditions["$not"] = {"$regex": _class_regex(exclude)}
    return {"_type": conditions} if conditions else {}


def _class_regex(pattern: str) -> str:
    """A regex on the class name made one on the stored path (``module.Class``): an anchor
    at its start also matches right after a module's dot."""
    return "(?i)" + (f"(^|\\.)(?:{pattern[1:]})" if pattern.startswith("^") else pattern)


def die_with_supervisor(supervisor_pid: int | None) -> None:
    """Have the kernel kill this worker the moment its supervisor dies (Linux).

    An orphaned worker must not go on: the servers that see the supervisor's heartbeat stop
    requeue its job and start it elsewhere, and the two runs would overlap. Without
    ``prctl`` (not Linux) the worker notices the new parent between units of work.
    """
    if supervisor_pid is None:
        return
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            logger.warning("no parent-death signal here: an orphaned worker stops between jobs")
    if os.getppid() != supervisor_pid:  # it died before the signal was armed
        os._exit(1)


_PR_SET_PDEATHSIG = 1


def worker_main(spec: WorkerSpec, stop: Any) -> None:
    """Entry point of a worker process (``stop`` is a multiprocessing Event)."""
    die_with_supervisor(spec.supervisor_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which decides
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # finish the current work, then leave
    config.reset_store()
    config.configure(database=spec.database, **spec.settings)
    log.setup(spec.log_level)
    log.server_name.set(spec.server_name)
    log.worker_name.set(spec.name)
    if spec.jobs:
        config.load_jobs(spec.jobs)
    run_loop(spec, stop.is_set)


def run_loop(spec: WorkerSpec, should_stop: Any) -> None:
    store = config.get_store()
    parent = os.getppid()
    base = base_filter(spec.include, spec.exclude)
    if spec.only_job_id:
        base["_id"] = spec.only_job_id
    worker_filter = WorkerFilter(base, spec.re_check_seconds)

    def stopping() -> bool:
        return should_stop() or os.getppid() != parent  # orphaned: the supervisor died

    finished: list[str] = []
    context = worker_filter.context(spec.name, should_stop=stopping, re_check_seconds=spec.re_check_seconds,
                                    finished=finished)

    logger.info("worker started (pid %d)", os.getpid())
    while not stopping():
        worker_filter.reset_if_due()
        job = next_available_job(context, worker_filter, store)
        if job is None:
            store.wait_for_change(_idle_wait(store, spec.max_poll_seconds), stopping)
            continue
        token = log.job_id.set(job.id)
        started = time.monotonic()
        joined = isinstance(job, BatchJob) and job.sub_state is not None  # a batch job under way
        if not joined:
            logger.info("started %s %s", type(job).__name__, job.id)
        try:
            job.work(context)
        except Exception:  # noqa: BLE001 - keep the worker alive; the job recorded its error
            logger.exception("unexpected error while working on %s", job.id)
        finally:
            _log_outcome(job, time.monotonic() - started)
            log.job_id.reset(token)
    if finished:
        store.delete_jobs({"_id": {"$in": finished}, "state": "running", "worker_name": spec.name})
    logger.info("worker stopped")


def _log_outcome(job: Any, seconds: float) -> None:
    """One line when a job this worker ran ends: completed (what it wrote) or failed (why)."""
    name = type(job).__name__
    if job.is_completed or job.is_destroyed:
        detail = ""
        if isinstance(job, BatchJob) and not job.is_destroyed:
            counts = {c["name"]: job.sliced_output(c["name"]).count() for c in job.output_categories}
            detail = f", {job.record_count or 0:,} records" + "".join(
                f", {category}: {count:,}" for category, count in counts.items())
        logger.info("completed %s %s in %.3f s%s", name, job.id, seconds, detail)
    elif job.is_failed:
        exception = job.exception
        logger.warning("failed %s %s after %.3f s: %s: %s", name, job.id, seconds,
                       exception.class_name if exception else "?", exception.message if exception else "")


def _idle_wait(store: Any, max_poll_seconds: float) -> float:
    """Wait for new work, but no longer than until the next scheduled job falls due."""
    from rjbatch import clock

    now = clock.now()
    due = store.next_run_at(now)
    if due is None:
        return max_poll_seconds
    return max(0.0, min(max_poll_seconds, (due - now).total_seconds()))
