"""The job state machine: states, events and the transitions each event allows.

Guards that depend on the job (pausable, who may requeue) live on the job class so
batch jobs can refine them; this table is the part a reader checks against the guide.
"""

from __future__ import annotations

QUEUED, RUNNING, COMPLETED, FAILED, ABORTED, PAUSED = (
    "queued", "running", "completed", "failed", "aborted", "paused",
)
STATES = (QUEUED, RUNNING, COMPLETED, FAILED, ABORTED, PAUSED)
TERMINAL = frozenset({COMPLETED, ABORTED})

# event -> {from state: to state}
TRANSITIONS: dict[str, dict[str, str]] = {
    "start": {QUEUED: RUNNING},
    "complete": {RUNNING: COMPLETED},
    "fail": {QUEUED: FAILED, RUNNING: FAILED, PAUSED: FAILED},
    "retry": {FAILED: QUEUED},
    "pause": {RUNNING: PAUSED, QUEUED: PAUSED},  # from running only when pausable
    "resume": {PAUSED: QUEUED},  # to running when pausable and it had started
    "abort": {RUNNING: ABORTED, QUEUED: ABORTED, FAILED: ABORTED, PAUSED: ABORTED},
    "requeue": {RUNNING: QUEUED},  # only the work of the named worker or server
}


def worker_belongs_to(worker_name: str | None, name: str | None) -> bool:
    """Is this worker ``name`` itself or one of server ``name``'s workers?

    Rocket Job used a bare prefix test, so server ``host:12`` also matched workers of
    ``host:123``; rjbatch matches whole ``:``-separated segments.
    """
    if not worker_name or not name:
        return False
    return worker_name == name or worker_name.startswith(name + ":")
