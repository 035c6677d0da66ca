"""Opt-in throttles: dependent jobs, and lower priority for big batches."""

from __future__ import annotations

from typing import ClassVar

from rjbatch.callbacks import before_batch
from rjbatch.throttles import throttle


class ThrottleDependentJobs:
    """Wait while any job of the classes named in ``dependent_jobs`` is running."""

    dependent_jobs: ClassVar[list[str]] = []

    @throttle
    def dependent_job_running(self) -> bool:
        if not self.dependent_jobs:
            return False
        return any(
            self._store().count_jobs({"state": "running", "_class": name}) for name in self.dependent_jobs
        )


class LowerPriority:
    """Big batches make way: +1 priority number per ``lower_priority_count`` records."""

    lower_priority_count: ClassVar[int] = 100_000

    @before_batch
    def _lower_priority(self) -> None:
        if self.record_count is None:
            return
        self.priority = min(self.priority + self.record_count // self.lower_priority_count, 100)
