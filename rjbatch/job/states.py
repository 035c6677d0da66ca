"""The job state machine as data: states, events, and one table of transitions.

A job's event method (``job.pause()``) asks this table where the job goes from its
state; the first row whose source matches and whose guard holds wins. Guards that
depend on the job (is it pausable, which worker holds it) are job methods, so batch
jobs refine them; batch jobs also put their own rows in front of the plain job's.
``docs/jobs.md`` prints the table with ``transition_table()``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"
    PAUSED = "paused"


class SubState(StrEnum):
    """Where a running (or failed, paused) batch job is in its life."""

    BEFORE = "before"  # before_batch runs, on one worker
    PROCESSING = "processing"  # every worker may claim its slices
    AFTER = "after"  # after_batch runs, on one worker


class SliceState(StrEnum):
    """An input slice: waiting, held by a worker, or stopped at a failed record."""

    QUEUED = "queued"
    RUNNING = "running"
    FAILED = "failed"


class Event(StrEnum):
    START = "start"
    COMPLETE = "complete"
    FAIL = "fail"
    RETRY = "retry"
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    REQUEUE = "requeue"


QUEUED, RUNNING, COMPLETED, FAILED, ABORTED, PAUSED = JobState
STATES: tuple[JobState, ...] = tuple(JobState)
#: the states a job may still leave by working on it (Singleton counts these as active)
ACTIVE: tuple[JobState, ...] = (QUEUED, RUNNING, PAUSED)

Guard = Callable[..., bool]


@dataclass(frozen=True)
class Transition:
    """One row: ``event`` takes a job from any of ``sources`` to ``target`` when ``guard``
    (called with the job and the event's arguments) holds; ``when`` says it in words."""

    event: Event
    sources: tuple[JobState, ...]
    target: JobState
    when: str = ""
    guard: Guard | None = None


def worker_belongs_to(worker_name: str | None, name: str | None) -> bool:
    """Is this worker ``name`` itself or one of server ``name``'s workers?

    Rocket Job used a bare prefix test, so server ``host:12`` also matched workers of
    ``host:123``; rjbatch matches whole ``:``-separated segments.
    """
    if not worker_name or not name:
        return False
    return worker_name == name or worker_name.startswith(name + ":")


def _held_by(job: Any, worker_name: str | None = None, *_: Any) -> bool:
    """No worker named, or the named worker (or server) holds the job."""
    return worker_name is None or worker_belongs_to(job.worker_name, worker_name)


def _sub_state_in(*sub_states: SubState) -> Guard:
    return lambda job, *_: job.sub_state in sub_states


#: Every job's transitions, in the order they are tried.
JOB_TRANSITIONS: tuple[Transition, ...] = (
    Transition(Event.START, (QUEUED,), RUNNING),
    Transition(Event.COMPLETE, (RUNNING,), COMPLETED),
    Transition(Event.FAIL, (QUEUED, RUNNING, PAUSED), FAILED),
    Transition(Event.RETRY, (FAILED,), QUEUED),
    Transition(Event.PAUSE, (QUEUED,), PAUSED),
    Transition(Event.PAUSE, (RUNNING,), PAUSED, "the job is pausable: class setting `pausable`; a batch job while processing",
               lambda job, *_: job.is_pausable),
    Transition(Event.RESUME, (PAUSED,), RUNNING, "it was paused while running (pausable, started; a batch job: processing)",
               lambda job, *_: job._resumes_running()),
    Transition(Event.RESUME, (PAUSED,), QUEUED, "otherwise"),
    Transition(Event.ABORT, (QUEUED, RUNNING, FAILED, PAUSED), ABORTED),
    Transition(Event.REQUEUE, (RUNNING,), QUEUED, "the named worker (or server) holds it", _held_by),
)

#: A batch job's own rows, tried before the plain job's.
BATCH_TRANSITIONS: tuple[Transition, ...] = (
    Transition(Event.RETRY, (FAILED,), RUNNING,
               "batch: it failed while processing or in after_batch (its failed slices run again)",
               _sub_state_in(SubState.PROCESSING, SubState.AFTER)),
    Transition(Event.REQUEUE, (RUNNING,), RUNNING,
               "batch, processing: it stays running; the named worker's slices go back to the queue",
               _sub_state_in(SubState.PROCESSING)),
    Transition(Event.REQUEUE, (RUNNING,), RUNNING,
               "batch, in after_batch, held by the named worker: after_batch runs again",
               lambda job, *args: job.sub_state == SubState.AFTER and _held_by(job, *args)),
)


def transition_table(rows: Sequence[Transition] = BATCH_TRANSITIONS + JOB_TRANSITIONS) -> str:
    """The rows as a Markdown table (``docs/jobs.md`` holds its output)."""
    lines = ["| event | from | to | when |", "|---|---|---|---|"]
    for event in Event:
        for row in rows:
            if row.event == event:
                sources = ", ".join(str(s) for s in row.sources)
                lines.append(f"| {event} | {sources} | {row.target} | {row.when} |")
    return "\n".join(lines)
