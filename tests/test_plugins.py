"""Plugins: Restart, Retry, Singleton and Transaction, and their edge cases (docs/plugins.md)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from rjbatch import InvalidTransition, Job, ValidationError, clock, field
from rjbatch.batch import BatchJob
from rjbatch.plugins import Restart, Retry, Singleton, Transaction
from rjbatch.plugins.retry import retry_delay
from rjbatch.testing import work_next


# -- Retry ----------------------------------------------------------------------------
class FlakyJob(Retry, Job):
    destroy_on_complete = False
    failures_left = field(int, 0)

    def perform(self):
        if self.failures_left > 0:
            self.update_attribute("failures_left", self.failures_left - 1)
            raise ConnectionError("service unavailable")
        return "ok"


def run_until_done(job, frozen_clock, limit=50):
    for _ in range(limit):
        job.reload()
        if job.is_completed or job.is_failed:
            return job
        if job.run_at:
            frozen_clock.set(job.run_at + timedelta(seconds=1))
        work_next()
    raise AssertionError("job never finished")


def test_the_first_failure_requeues_with_run_at_after_the_failure(frozen_clock):
    job = FlakyJob.create(failures_left=1)
    work_next()
    job.reload()
    assert job.is_queued
    failed_at = job.completed_at or clock.now()
    assert job.run_at > clock.now()
    assert timedelta(seconds=15) <= job.run_at - clock.now() <= timedelta(seconds=44)
    assert len(job.failed_at_list) == 1
    assert job.exception.class_name == "ConnectionError"  # kept while retries remain
    assert failed_at


def test_five_failures_then_success_completes_with_failure_count_five(frozen_clock):
    job = FlakyJob.create(failures_left=5)
    run_until_done(job, frozen_clock)
    assert job.is_completed
    assert job.failure_count == 5
    assert job.retry_count == 5


def test_retry_limit_three_leaves_the_fourth_failure_failed(frozen_clock):
    job = FlakyJob.create(failures_left=10, retry_limit=3)
    run_until_done(job, frozen_clock)
    assert job.is_failed
    assert job.failure_count == 4
    assert job.exception.message == "service unavailable"


def test_retry_limit_zero_disables_retries(frozen_clock):
    job = FlakyJob.create(failures_left=1, retry_limit=0)
    work_next()
    assert job.reload().is_failed


@pytest.mark.parametrize("failures, low, high", [(0, 15, 44), (1, 16, 74), (2, 31, 118), (3, 96, 212),
                                                 (4, 271, 416)])
def test_the_backoff_follows_delayed_job(failures, low, high):
    delays = {retry_delay(failures).total_seconds() for _ in range(300)}
    assert min(delays) >= low and max(delays) <= high


# -- Restart --------------------------------------------------------------------------
class RestartableJob(Restart, Job):
    destroy_on_complete = False
    description = "restartable"
    kept = field(str, copy_on_restart=True)
    dropped = field(str)

    def perform(self):
        return None


def test_abort_creates_a_new_queued_instance_with_only_copy_on_restart_fields():
    job = RestartableJob.create(kept="yes", dropped="no", priority=10,
                                run_at=clock.now() + timedelta(hours=1))
    job.abort()
    [new] = RestartableJob.queued().all()
    assert new.id != job.id
    assert new.kept == "yes" and new.dropped is None
    assert new.priority == 10 and new.description == "restartable"
    assert new.run_at is None and new.failure_count == 0 and new.exception is None


def test_abort_of_an_expired_job_creates_nothing(frozen_clock):
    job = RestartableJob.create(expires_at=clock.now() + timedelta(minutes=1))
    frozen_clock.advance(minutes=2)
    job.abort()
    assert RestartableJob.count() == 1


@pytest.mark.parametrize("destroy, total", [(True, 1), (False, 2)])
def test_completion_creates_a_new_instance(destroy, total):
    job = RestartableJob.create(destroy_on_complete=destroy)
    work_next()
    assert RestartableJob.count() == total
    assert RestartableJob.queued().count() == 1
    assert job.id not in [j.id for j in RestartableJob.queued()]


def test_pause_creates_nothing():
    RestartableJob.create().pause()
    assert RestartableJob.count() == 1


@pytest.mark.parametrize("state", ["queued", "running", "paused"])
def test_a_failure_aborts_the_job_which_restarts_it(state):
    job = RestartableJob.create()
    if state == "running":
        job.start("w:1:1")
    elif state == "paused":
        job.pause()
    job.fail("broken")
    assert job.reload().is_aborted
    assert RestartableJob.queued().count() == 1


def test_retry_comes_before_restart_when_both_are_used(frozen_clock):
    class Both(Retry, Restart, Job):
        destroy_on_complete = False
        retry_limit = 1

        def perform(self):
            raise RuntimeError("always")

    job = Both.create()
    work_next()
    assert job.reload().is_queued and Both.count() == 1  # retried, not restarted
    frozen_clock.set(job.run_at + timedelta(seconds=1))
    work_next()
    assert job.reload().is_aborted  # retries used up: aborted, which restarts it
    assert Both.queued().count() == 1


def test_a_restarted_batch_job_keeps_its_category_settings():
    class Batch(Restart, BatchJob):
        destroy_on_complete = False
        input_categories = [{"name": "main", "slice_size": 378}]
        output_categories = [{"name": "main", "nils": True}]

        def perform(self, record):
            return None

    job = Batch()
    job.upload([1, 2])
    job.save()
    work_next()
    [new] = Batch.queued().all()
    assert new.input_category().slice_size == 378
    assert new.output_category().nils is True


# -- Singleton ------------------------------------------------------------------------
class OnlyOneJob(Singleton, Job):
    destroy_on_complete = False

    def perform(self):
        return None


def test_a_second_active_instance_is_invalid_and_create_raises():
    first = OnlyOneJob.create()
    assert first.is_valid()  # itself does not count
    second = OnlyOneJob()
    assert not second.is_valid()
    assert second.errors["state"] == [
        "Another instance of OnlyOneJob is already running, queued, or paused"]
    with pytest.raises(ValidationError):
        OnlyOneJob.create()
    first.pause()
    assert not OnlyOneJob().is_valid()  # a paused one counts too (Rocket Job did not)


def test_retry_is_not_offered_while_another_instance_is_active():
    failed = OnlyOneJob.create()
    failed.fail("boom")
    assert failed.can("retry")
    OnlyOneJob.create()
    assert not failed.can("retry") and failed.can("abort")  # what the CLI and the web offer
    with pytest.raises(InvalidTransition):
        failed.act("retry")


def test_a_completed_instance_does_not_block():
    OnlyOneJob.create()
    work_next()
    assert OnlyOneJob().is_valid()


def test_a_new_job_aborted_in_memory_is_valid_while_another_runs():
    OnlyOneJob.create().start("w:1:1")
    job = OnlyOneJob()
    job._fire("abort", persist=False)
    assert job.is_valid()


# -- Transaction ----------------------------------------------------------------------
@pytest.fixture
def ledger(tmp_path):
    path = tmp_path / "ledger.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE entries (amount INTEGER)")
    connection.commit()
    connection.close()
    return path


def test_a_failing_perform_rolls_its_transaction_back(ledger):
    class Transfer(Transaction, Job):
        destroy_on_complete = False
        amount = field(int)

        def transaction_connection(self):
            if not hasattr(self, "_connection"):
                self._connection = sqlite3.connect(ledger)
            return self._connection

        def perform(self):
            self.transaction.execute("INSERT INTO entries VALUES (?)", (self.amount,))
            if self.amount < 0:
                raise ValueError("negative")

    Transfer.create(amount=5)
    Transfer.create(amount=-1)
    work_next()
    work_next()
    rows = sqlite3.connect(ledger).execute("SELECT amount FROM entries").fetchall()
    assert rows == [(5,)]


def test_a_batch_job_commits_each_slice_on_its_own(ledger):
    class Loader(Transaction, BatchJob):
        destroy_on_complete = False
        slice_size = 2

        def transaction_connection(self):
            if not hasattr(self, "_connection"):
                self._connection = sqlite3.connect(ledger)
            return self._connection

        def perform(self, amount):
            self.transaction.execute("INSERT INTO entries VALUES (?)", (amount,))
            if amount == 3:
                raise ValueError("three")

    job = Loader()
    job.upload([1, 2, 3, 4, 5])
    job.save()
    work_next()
    rows = sorted(r[0] for r in sqlite3.connect(ledger).execute("SELECT amount FROM entries"))
    assert rows == [1, 2, 5]  # the slice [3, 4] rolled back as a whole
