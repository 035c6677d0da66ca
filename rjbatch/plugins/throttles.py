"""Opt-in throttles: dependent jobs, and lower priority for big batches."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from rjbatch import clock
from rjbatch.job import Job
from rjbatch.job.callbacks import before_batch
from rjbatch.job.fields import field
from rjbatch.job.throttling import throttle
from rjbatch.plugins.base import BatchJobMixin, JobMixin


class ThrottleDependentJobs(JobMixin):
    """Wait while any job of the classes named in ``dependent_jobs`` is running."""

    dependent_jobs: ClassVar[list[str]] = []

    @throttle
    def dependent_job_running(self) -> bool:
        if not self.dependent_jobs:
            return False
        return any(Job.where(state="running", _class=name).exists() for name in self.dependent_jobs)


class LowerPriority(BatchJobMixin):
    """Big batches make way: +1 priority number per ``lower_priority_count`` records."""

    lower_priority_count: ClassVar[int] = 100_000

    @before_batch
    def _lower_priority(self) -> None:
        if self.record_count is None:
            return
        self.priority = min(self.priority + self.record_count // self.lower_priority_count, 100)


class ThrottleWindows(JobMixin):
    """Batch jobs: slices run only inside windows that open on cron schedules.

    A window is ``[start, start + duration)``. With a primary and a secondary window, a
    slice may run inside either; with only a secondary one, inside it (Rocket Job never
    throttled then). Starting and finishing the job, and its batch callbacks, are not held.
    """

    primary_schedule = field(str, user_editable=True, copy_on_restart=True)
    primary_duration = field(timedelta, user_editable=True, copy_on_restart=True)
    secondary_schedule = field(str, user_editable=True, copy_on_restart=True)
    secondary_duration = field(timedelta, user_editable=True, copy_on_restart=True)

    @staticmethod
    def _inside(schedule: str, duration: timedelta) -> bool:
        from rjbatch import cron

        moment = clock.now() + timedelta(seconds=1)
        opened = cron.previous_time(schedule, moment)
        return not opened + duration < moment

    def slices_held(self) -> str | None:
        windows = [(s, d) for s, d in ((self.primary_schedule, self.primary_duration),
                                       (self.secondary_schedule, self.secondary_duration)) if s and d]
        if not windows or any(self._inside(s, d) for s, d in windows):
            return None
        return "outside its throttle windows"
