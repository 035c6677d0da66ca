"""Small operations rules: what a stopped job's duration and exception say."""

from __future__ import annotations

from datetime import timedelta

from rjbatch import Job, field
from rjbatch.plugins import Retry
from rjbatch.testing import work_next


class Quick(Job):
    destroy_on_complete = False

    def perform(self):
        return None


class FailsOnce(Retry, Job):
    destroy_on_complete = False
    attempts = field(int, 0)

    def perform(self):
        self.attempts += 1
        if self.attempts == 1:
            raise ValueError("first attempt fails")


def test_duration_stops_when_a_job_stops_and_is_zero_before_it_starts(frozen_clock):
    queued = Quick.create()
    frozen_clock.advance(timedelta(hours=1))
    assert queued.duration == timedelta(0)  # queued an hour: it has not run
    job = work_next()
    frozen_clock.advance(timedelta(hours=1))
    assert Quick.find(job.id).duration == timedelta(0)  # ran in no time (the clock is frozen)
    aborted = Quick.create()
    aborted.abort()
    frozen_clock.advance(timedelta(hours=2))
    assert Quick.find(aborted.id).duration == timedelta(0)  # never started: no run time


def test_a_job_that_completes_after_a_retry_no_longer_shows_the_old_exception():
    job = FailsOnce.create()
    work_next()
    job.reload()
    assert job.is_queued and job.exception is not None  # failed once: Retry scheduled it again
    job.run_now()
    work_next()
    job.reload()
    assert job.is_completed and job.exception is None and job.attempts == 2
