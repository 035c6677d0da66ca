"""Events, guards and callback ordering of the job state machine (docs/jobs.md)."""

from __future__ import annotations

import pytest

import rjbatch
from rjbatch import InvalidTransition, Job, ValidationError, field
from rjbatch.testing import work_next


class PlainJob(Job):
    destroy_on_complete = False

    def perform(self):
        return None


class PausableJob(PlainJob):
    pausable = True


ALLOWED = {
    # event: states it may be fired from
    "start": {"queued"},
    "complete": {"running"},
    "fail": {"queued", "running", "paused"},
    "retry": {"failed"},
    "pause": {"queued"},  # running only when pausable
    "resume": {"paused"},
    "abort": {"running", "queued", "failed", "paused"},
    "requeue": {"running"},
}


def _job_in(state: str) -> PlainJob:
    job = PlainJob.create()
    if state != "queued":
        job.update_attribute("state", state)
    return job


@pytest.mark.parametrize("event", sorted(ALLOWED))
@pytest.mark.parametrize("state", ["queued", "running", "completed", "failed", "aborted", "paused"])
def test_each_event_is_allowed_exactly_from_its_states(event, state):
    job = _job_in(state)
    if state in ALLOWED[event]:
        getattr(job, event)()
        assert PlainJob.find(job.id).state == job.state
    else:
        with pytest.raises(InvalidTransition, match=f"cannot {event}"):
            getattr(job, event)()
        stored = PlainJob.find(job.id)
        assert stored.state == state
        assert job.state == state


def test_an_invalid_event_leaves_the_stored_job_as_it_was():
    job = PlainJob.create(description="keep me")
    job.description = "changed in memory"
    with pytest.raises(InvalidTransition):
        job.complete()
    assert PlainJob.find(job.id).description == "keep me"
    assert job.is_queued


def test_running_regular_job_cannot_be_paused_unless_pausable():
    job = PlainJob.create()
    job.start("w:1:1")
    with pytest.raises(InvalidTransition):
        job.pause()
    pausable = PausableJob.create()
    pausable.start("w:1:1")
    pausable.pause()
    assert pausable.is_paused
    pausable.resume()
    assert pausable.is_running  # it had started: back to running


def test_resume_of_a_never_started_job_goes_back_to_queued():
    job = PlainJob.create()
    job.pause()
    job.resume()
    assert job.is_queued
    assert job.completed_at is None


def test_start_sets_started_at_and_worker_name():
    job = PlainJob.create()
    job.start("host:7:1")
    stored = PlainJob.find(job.id)
    assert stored.started_at is not None
    assert stored.worker_name == "host:7:1"


def test_fail_without_arguments_records_a_job_exception():
    job = PlainJob.create()
    job.fail()
    assert job.exception.class_name == "rjbatch.JobException"
    assert job.exception.message is None
    assert job.exception.worker_name is None
    assert job.exception.backtrace == []
    assert job.failure_count == 1


def test_fail_with_an_exception_never_raised_has_an_empty_backtrace():
    job = PlainJob.create()
    job.fail(ValueError("oops"), "w:1:1")
    assert job.exception.class_name == "ValueError"
    assert job.exception.backtrace == []
    assert job.exception.worker_name == "w:1:1"


def test_retry_clears_worker_name_exception_and_completed_at_but_keeps_counts():
    job = PlainJob.create()
    job.start("w:1:1")
    job.fail(RuntimeError("x"), "w:1:1")
    job.retry()
    stored = PlainJob.find(job.id)
    assert stored.is_queued
    assert stored.exception is None and stored.worker_name is None
    assert stored.completed_at is None
    assert stored.failure_count == 1
    assert stored.started_at is not None


def test_requeue_without_saving_changes_memory_only_and_requeue_saves():
    job = PlainJob.create()
    job.start("host:1:3")
    job._fire("requeue", "host:1", persist=False)
    assert job.worker_name is None and job.is_queued
    assert PlainJob.find(job.id).worker_name == "host:1:3"
    job = PlainJob.find(job.id)
    job.requeue("host:1")
    stored = PlainJob.find(job.id)
    assert stored.is_queued and stored.worker_name is None and stored.started_at is None


def test_requeue_matches_whole_server_names_not_prefixes():
    job = PlainJob.create()
    job.start("host:123:1")
    with pytest.raises(InvalidTransition):
        job.requeue("host:12")  # Rocket Job's prefix test would have matched
    job.requeue("host:123")
    assert job.is_queued


def test_abort_sets_completed_at_and_clears_worker():
    job = PlainJob.create()
    job.start("w:1:1")
    job.abort()
    assert job.is_aborted and job.completed_at is not None and job.worker_name is None


def test_event_on_a_new_job_inserts_it():
    job = PlainJob()
    job.pause()
    assert PlainJob.find(job.id).is_paused


def test_a_bang_event_that_fails_validation_raises_and_keeps_the_old_state():
    job = PlainJob.create()
    job.priority = 0
    with pytest.raises(ValidationError, match="priority"):
        job.start("w:1:1")
    assert job.is_queued
    assert PlainJob.find(job.id).is_queued
    assert not job.is_valid()
    job._fire("start", "w:1:1", persist=False)  # a plain event succeeds in memory
    assert job.is_running


def test_destroy_on_complete_removes_the_stored_job_after_perform_now():
    class Temporary(Job):
        def perform(self):
            return 1

    job = Temporary.create()
    job.perform_now()
    assert Temporary.count() == 0


def test_event_callbacks_befores_in_order_afters_reversed_and_reregistration_moves_an_after():
    calls = []

    class Base(Job):
        @rjbatch.before_start
        def b1(self):
            calls.append("b1")

        @rjbatch.after_start
        def a1(self):
            calls.append("a1")

        @rjbatch.after_start
        def m(self):
            calls.append("m")

    class Child(Base):
        @rjbatch.before_start
        def b2(self):
            calls.append("b2")

        @rjbatch.after_start
        def a2(self):
            calls.append("a2")

    Child.create().start()
    assert calls == ["b1", "b2", "a2", "m", "a1"]

    calls.clear()

    class Again(Child):
        @rjbatch.after_start
        def m(self):  # registering m again: it now runs first
            calls.append("m")

    Again.create().start()
    assert calls == ["b1", "b2", "m", "a2", "a1"]


def test_event_callbacks_receive_the_event_arguments_when_they_take_them():
    seen = []

    class Args(Job):
        @rjbatch.before_start
        def note(self, worker_name):
            seen.append(worker_name)

    Args.create().start("host:1:2")
    assert seen == ["host:1:2"]


def test_a_raising_before_start_leaves_the_job_queued():
    class Refuses(Job):
        @rjbatch.before_start
        def refuse(self):
            raise RuntimeError("not now")

    job = Refuses.create()
    with pytest.raises(RuntimeError):
        job.start("w:1:1")
    assert job.is_queued and job.started_at is None
    assert Refuses.find(job.id).is_queued


def test_a_worker_fails_a_job_whose_after_start_raises():
    class Broken(Job):
        @rjbatch.after_start
        def explode(self):
            raise RuntimeError("after start")

        def perform(self):
            raise AssertionError("must not run")

    job = Broken.create()
    assert work_next() is None
    stored = Broken.find(job.id)
    assert stored.is_failed
    assert stored.exception.message == "after start"


def test_perform_callbacks_can_stop_perform_by_completing_or_aborting_the_job():
    class Skips(Job):
        destroy_on_complete = False
        ran = field(bool, False)

        @rjbatch.before_perform
        def skip(self):
            self._fire("abort", persist=False)

        def perform(self):
            self.ran = True

    job = Skips()
    job.perform_now()
    assert job.is_aborted and not job.ran


def test_pausing_a_running_job_is_not_overwritten_when_it_completes():
    class Slow(PausableJob):
        def perform(self):
            other = Slow.find(self.id)
            other.pause()  # someone pauses it from Mission Control while it runs

    job = Slow.create()
    work_next()
    assert Slow.find(job.id).is_paused  # Rocket Job wrote "completed" over the pause


def test_perform_now_twice_after_retry():
    class Flaky(Job):
        destroy_on_complete = False
        attempts = field(int, 0)

        def perform(self):
            self.attempts += 1
            if self.attempts == 1:
                raise RuntimeError("first time")
            return "ok"

    job = Flaky()
    with pytest.raises(RuntimeError):
        job.perform_now()
    assert job.is_failed
    job._fire("retry", persist=False)
    assert job.perform_now() == "ok"
    assert job.is_completed


def test_perform_now_on_an_invalid_job_raises_validation_error():
    job = PlainJob(priority=101)
    with pytest.raises(ValidationError, match="priority"):
        job.perform_now()
    assert job.is_queued


def test_a_stale_workers_late_completion_and_failure_are_refused():
    from rjbatch.config import get_store
    from rjbatch.worker.picking import WorkerFilter, next_available_job

    class Fenced(Job):
        destroy_on_complete = False
        runs = field(int, 0)

        def perform(self):
            self.runs += 1
            if self.runs_should_fail:
                raise ValueError("late failure")

    store = get_store()
    for fails in (False, True):
        Fenced.create()
        stale = next_available_job("host-a:1:1", WorkerFilter(), store)
        Job.requeue_dead_server("host-a:1")  # its server was thought dead
        fresh = next_available_job("host-b:2:1", WorkerFilter(), store)
        assert fresh.id == stale.id and fresh.worker_name == "host-b:2:1"
        stale.runs_should_fail = fails
        stale._run("host-a:1:1")  # finishes late: neither its completion nor its failure lands
        stored = Fenced.find(stale.id)
        assert stored.is_running and stored.worker_name == "host-b:2:1"
        assert stored.started_at == fresh.started_at and stored.completed_at is None
        assert stored.exception is None and stored.runs == 0
        fresh.runs_should_fail = False
        fresh._run("host-b:2:1")
        assert Fenced.find(fresh.id).is_completed and Fenced.find(fresh.id).runs == 1
        Fenced.find(fresh.id).delete()


def test_the_state_table_in_the_docs_is_the_one_the_code_uses():
    from pathlib import Path

    from rjbatch.job.states import transition_table

    text = (Path(__file__).parent.parent / "docs" / "jobs.md").read_text()
    shown = text.split("<!-- state-table:start -->\n", 1)[1].split("\n<!-- state-table:end -->", 1)[0]
    assert shown == transition_table(), "docs/jobs.md: paste transition_table()'s output between the markers"


def test_actions_are_offered_by_the_state_machine_and_refused_with_the_shown_state():
    from datetime import timedelta

    from rjbatch import clock
    from rjbatch.errors import InvalidTransition
    from rjbatch.job import Action

    scheduled = PlainJob.create(run_at=clock.now() + timedelta(hours=1))
    assert scheduled.can(Action.RUN_NOW) and scheduled.can("pause") and not scheduled.can("retry")
    with pytest.raises(InvalidTransition, match="scheduled"):
        scheduled.act("retry")
    scheduled.act("run_now")
    assert not scheduled.is_scheduled and not scheduled.can("run_now")
    scheduled.act(Action.FAIL, reason="stopped by hand")
    assert scheduled.is_failed and scheduled.exception.message == "stopped by hand"
    scheduled.act("destroy")
    assert scheduled.is_destroyed
