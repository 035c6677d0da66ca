"""Choosing the next job for a worker (Rocket Job's ``next_available_job``).

The claim itself is one atomic store statement; the job's ``begin`` decides what to do
with what it returns (drop an expired job, apply throttles, start it). This module keeps
the worker's claim filter.
"""

from __future__ import annotations

import time
from typing import Any

from rjbatch import clock
from rjbatch.job import Job, WorkContext
from rjbatch.store.protocol import Filter, Store


class WorkerFilter:
    """A worker's claim filter: the base (include/exclude) plus throttle exclusions.

    Throttle exclusions are forgotten every ``re_check_seconds`` so a throttled class
    or job is looked at again.
    """

    def __init__(self, base: Filter | None = None, re_check_seconds: float = 60.0) -> None:
        self.base: Filter = dict(base or {})
        self.re_check_seconds = re_check_seconds
        self.current: Filter = dict(self.base)
        self._reset_at = time.monotonic()
        self._skip: set[str] = set()

    def merge(self, extra: Filter) -> None:
        """Add a throttle filter: lists under the same key and operator are concatenated."""
        for key, value in extra.items():
            existing = self.current.get(key)
            if isinstance(existing, dict) and isinstance(value, dict):
                merged = dict(existing)
                for op, arg in value.items():
                    if isinstance(arg, list) and isinstance(merged.get(op), list):
                        merged[op] = merged[op] + [a for a in arg if a not in merged[op]]
                    else:
                        merged[op] = arg
                self.current[key] = merged
            elif key in self.current and isinstance(value, dict):
                self.current[key] = {"$eq": existing, **value}  # keep an equality base filter
            else:
                self.current[key] = value

    def skip_once(self, job_id: str) -> None:
        """Leave a job out of the next claim only (a batch job whose upload is still going)."""
        self._skip.add(job_id)

    def for_claim(self) -> Filter:
        """The filter of the next claim: ``current``, less the jobs skipped once."""
        if not self._skip:
            return self.current
        kept = self.current
        self.current = dict(kept)  # merge() changes the top-level dict in place
        try:
            self.merge({"_id": {"$nin": sorted(self._skip)}})
            return self.current
        finally:
            self.current = kept
            self._skip.clear()

    def context(self, worker_name: str, **settings: Any) -> WorkContext:
        """The worker's context, its exclusions and throttle filters going to this filter."""
        return WorkContext(worker_name, exclude=self.exclude, hold_back=self.merge,
                           skip_once=self.skip_once, **settings)

    def exclude(self, job_id: str) -> None:
        """Leave a job out of claims until the next re-check."""
        self.merge({"_id": {"$nin": [job_id]}})

    def reset_if_due(self) -> bool:
        if time.monotonic() - self._reset_at >= self.re_check_seconds:
            self.current = dict(self.base)
            self._reset_at = time.monotonic()
            return True
        return False


def next_available_job(worker: WorkContext | str, worker_filter: WorkerFilter, store: Store) -> Job | None:
    """Claim and begin the next job for this worker (its context, or its name); None when
    there is none. The ids of completed jobs still to delete (``context.finished``) go
    with the claim."""
    context = worker if isinstance(worker, WorkContext) else worker_filter.context(worker)
    finished = context.finished
    while True:
        doc = store.claim_job(context.worker_name, clock.now(), worker_filter.for_claim() or None, finished or ())
        if finished:
            finished.clear()
        if doc is None:
            return None
        job = Job.from_claim(doc)
        if job.begin(context):
            return job
