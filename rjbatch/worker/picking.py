"""Choosing the next job for a worker (Rocket Job's ``next_available_job``).

The claim itself is one atomic store statement; this module decides what to do with
what it returns: drop expired jobs, apply throttles, start the job.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from rjbatch import clock
from rjbatch.job import Job
from rjbatch.store.protocol import Filter, Store

log = logging.getLogger("rjbatch.worker")


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

    def reset_if_due(self) -> bool:
        if time.monotonic() - self._reset_at >= self.re_check_seconds:
            self.current = dict(self.base)
            self._reset_at = time.monotonic()
            return True
        return False


def next_available_job(worker_name: str, worker_filter: WorkerFilter, store: Store,
                       finished: list[str] | None = None) -> Job | None:
    """Claim, check and start the next job for this worker; None when there is none.

    ``finished``: ids of completed jobs still to delete; they go with the first claim.
    """
    while True:
        doc = store.claim_job(worker_name, clock.now(), worker_filter.for_claim() or None, finished or ())
        if finished:
            finished.clear()
        if doc is None:
            return None
        claimed_from = doc.pop("_claimed_from", "queued")
        job = Job._from_doc(doc)
        # expiry is for work not yet started: a batch job already being processed is
        # joined, not destroyed (Rocket Job destroyed it and its slices)
        if job.is_expired and claimed_from == "queued":
            log.info("destroying expired job %s (%s)", job.id, type(job).__name__)
            try:
                job.destroy()
            except Exception as exc:  # noqa: BLE001 - a failing destroy must not stop the worker
                job._fail_with(exc, worker_name)
            continue
        if claimed_from == "running":
            return job  # a batch job being processed: its throttles apply per slice
        try:
            throttle = job.throttled()
        except Exception as exc:  # noqa: BLE001
            job._fail_with(exc, worker_name)
            continue
        if throttle is not None:
            reason, exclude = throttle
            store.update_job(job.id, {
                "state": "queued", "worker_name": None,
                "throttled_by": reason, "throttled_at": clock.now(),
            })
            worker_filter.merge(exclude)
            continue
        if job._starts_at_claim():
            return job  # the claim already stored all that starting changes
        job._values["state"] = "queued"  # as it was before the claim, so it can start
        try:
            job._fire("start", worker_name)
        except Exception as exc:  # noqa: BLE001 - a failing before/after_start fails the job
            job._fail_with(exc, worker_name)
            continue
        if job.is_running:
            return job


def perform(job: Job, worker_name: str) -> Any:
    """Run a claimed job; True when the worker should look for more work at once."""
    return job._work(worker_name)
