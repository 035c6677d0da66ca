"""Running jobs in this process, one at a time, as one worker would (`rjbatch work`, tests)."""

from __future__ import annotations

from rjbatch.config import get_store
from rjbatch.job import Job
from rjbatch.worker.picking import WorkerFilter, next_available_job


def work_next(worker_name: str = "inline:0:1", filter: dict | None = None) -> Job | None:
    """Claim the next available job and run it here, as one worker would."""
    worker_filter = WorkerFilter(filter)
    context = worker_filter.context(worker_name, wait_for_upload=False)
    job = next_available_job(context, worker_filter, get_store())
    if job is not None:
        job.work(context)
    return job


def work_all(worker_name: str = "inline:0:1", limit: int = 10_000) -> int:
    """Run jobs until none is available; returns how many were run."""
    done = 0
    while done < limit and work_next(worker_name) is not None:
        done += 1
    return done
