"""What a worker lends the job it runs: its name, its stop request, its claim filter.

The worker builds one ``WorkContext`` and passes it to ``job.begin`` and ``job.work``;
the job calls back through it and never sees the worker loop or the store's claim.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: The worker name of ``perform_now`` runs (no server, no worker process).
INLINE_WORKER = "inline:0:0"


def _never() -> bool:
    return False


def _ignore(_: Any) -> None:
    return None


@dataclass
class WorkContext:
    """A worker's side of the worker–job contract."""

    worker_name: str = INLINE_WORKER
    #: asked between units of work (jobs, slices): finish what is in hand, then leave
    should_stop: Callable[[], bool] = _never
    #: leave this job out of this worker's claims until the next re-check (its last slices
    #: are held by others, or its worker throttle is full)
    exclude: Callable[[str], None] = _ignore
    #: add a throttle's filter to this worker's claims until the next re-check
    hold_back: Callable[[dict[str, Any]], None] = _ignore
    #: leave this job out of the next claim only (an upload still streaming in); None: wait for it
    skip_once: Callable[[str], None] | None = None
    re_check_seconds: float = 60.0
    #: False when nothing else can upload meanwhile (``rjbatch work``, tests)
    wait_for_upload: bool = True
    #: ids of completed jobs whose record the worker's next claim deletes (one lock, not
    #: two); None: a job destroyed on completion is deleted at once
    finished: list[str] | None = None
