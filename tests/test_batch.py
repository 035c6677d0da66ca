"""Batch jobs: the edge cases of Rocket Job's own tests, in-process and synchronous."""

from __future__ import annotations

import gzip

import pytest

import rjbatch
from rjbatch import ValidationError, field
from rjbatch.batch import BatchJob, Result, Results, UnknownCategory
from rjbatch.testing import work_all, work_next


class EchoJob(BatchJob):
    slice_size = 10
    collect_output = True
    destroy_on_complete = False

    def perform(self, record):
        return record


class FailAtJob(BatchJob):
    """Raises on the records listed in ``fail_on`` (until they are removed from it)."""

    slice_size = 10
    collect_output = True
    destroy_on_complete = False
    fail_on = field(list, [])
    seen = []

    def perform(self, record):
        FailAtJob.seen.append(record)
        if record in self.fail_on:
            raise ZeroDivisionError(f"bad record {record}")
        return record


@pytest.fixture(autouse=True)
def _clear_seen():
    FailAtJob.seen = []


def stored_slices(job, state=None):
    return list(job.input.slices(state))


def test_24_records_in_slices_of_10_make_3_slices_and_download_in_order(tmp_path):
    job = EchoJob()
    assert job.upload([str(i) for i in range(1, 25)]) == 24
    job.save()
    assert [s["record_count"] for s in stored_slices(job)] == [10, 10, 4]
    assert job.record_count == 24
    work_all()
    job.reload()
    assert job.is_completed
    target = tmp_path / "out.txt"
    assert job.download(target) == 24
    assert target.read_text() == "".join(f"{i}\n" for i in range(1, 25))


def test_failure_at_record_42_of_74_fails_one_slice_and_then_the_job():
    job = FailAtJob(fail_on=[42])
    job.upload(list(range(1, 75)))
    job.save()
    work_all("host:1:1")
    job.reload()
    assert job.record_count == 74
    assert job.is_failed
    assert job.exception.message == "1 slices failed to process"
    assert job.exception.class_name == "rjbatch.JobException"
    [failed] = stored_slices(job, "failed")
    assert failed["failure_count"] == 1
    assert failed["started_at"] is not None
    assert failed["worker_name"] is None
    assert failed["processing_record_number"] == 2  # 42 is the 2nd record of slice 41..50
    assert failed["exception"]["class_name"] == "ZeroDivisionError"
    assert failed["exception"]["worker_name"] == "host:1:1"
    assert failed["exception"]["record_number"] == 42
    assert failed["exception"]["backtrace"]
    assert job.input.count() == 1  # every other slice completed and left

    job.retry()
    job.reload()
    assert job.is_running and job.sub_state == "processing"
    [queued] = stored_slices(job)
    assert queued["state"] == "queued"
    assert queued["worker_name"] is None and queued["started_at"] is None
    assert queued["failure_count"] == 1


def test_resume_after_failure_at_record_3_reprocesses_only_3_4_5():
    job = FailAtJob(fail_on=[3])
    job.input_categories = [{"name": "main", "slice_size": 5}]
    job.upload(list(range(1, 25)))
    job.save()
    work_all()
    assert FailAtJob.seen == [1, 2, 3, *range(6, 25)]
    job.reload()
    job.update(fail_on=[])
    job.retry()
    FailAtJob.seen = []
    work_all()
    assert FailAtJob.seen == [3, 4, 5]
    job.reload()
    assert job.is_completed
    assert list(job.output()) == list(range(1, 25))


def test_resume_after_failure_at_record_24_reprocesses_only_24():
    job = FailAtJob(fail_on=[24])
    job.input_categories = [{"name": "main", "slice_size": 5}]
    job.upload(list(range(1, 25)))
    job.save()
    work_all()
    job.reload().update(fail_on=[])
    job.retry()
    FailAtJob.seen = []
    work_all()
    assert FailAtJob.seen == [24]
    assert list(job.reload().output()) == list(range(1, 25))


class EvenOddJob(BatchJob):
    slice_size = 5
    destroy_on_complete = False
    output_categories = ["main", "odd"]
    fail_on = field(list, [])

    def perform(self, record):
        if record in self.fail_on:
            raise ValueError("try again")
        return record if record % 2 == 0 else Result(record, "odd")


def test_resumed_output_in_categories_is_still_complete_and_in_order(tmp_path):
    job = EvenOddJob(fail_on=[3, 24])
    job.upload(list(range(1, 25)))
    job.save()
    work_all()
    job.reload().update(fail_on=[])
    job.retry()
    work_all()
    job.reload()
    assert job.is_completed
    assert list(job.output()) == list(range(2, 25, 2))
    assert list(job.output("odd")) == list(range(1, 25, 2))
    job.download(tmp_path / "odd.txt", category="odd")
    assert (tmp_path / "odd.txt").read_text().split() == [str(i) for i in range(1, 25, 2)]


def test_a_result_for_an_unknown_category_fails_the_slice():
    class Misrouted(BatchJob):
        collect_output = True
        destroy_on_complete = False

        def perform(self, record):
            return Result(record, "nowhere")

    job = Misrouted()
    job.upload([1, 2, 3])
    job.save()
    work_all()
    job.reload()
    assert job.is_failed
    [failed] = stored_slices(job, "failed")
    assert failed["exception"]["class_name"] == "rjbatch.batch.job.UnknownCategory"
    assert "nowhere" in failed["exception"]["message"]


def test_results_go_to_several_categories_at_once():
    class Split(BatchJob):
        destroy_on_complete = False
        output_categories = ["main", "lengths"]

        def perform(self, word):
            return Results([Result(word.upper()), Result(len(word), "lengths")])

    job = Split()
    job.upload(["ab", "cde"])
    job.save()
    work_all()
    assert list(job.output()) == ["AB", "CDE"]
    assert list(job.output("lengths")) == [2, 3]


def test_before_and_after_batch_run_once_in_order():
    calls = []

    class Ordered(BatchJob):
        destroy_on_complete = False
        slice_size = 2

        @rjbatch.before_batch
        def b1(self):
            calls.append("B1")

        @rjbatch.before_batch
        def b2(self):
            calls.append("B2")

        @rjbatch.after_batch
        def a1(self):
            calls.append("A1")

        @rjbatch.after_batch
        def a2(self):
            calls.append("A2")

        def perform(self, record):
            calls.append(record)

    job = Ordered()
    job.upload(["r1", "r2", "r3"])
    job.save()
    work_all()
    assert calls == ["B1", "B2", "r1", "r2", "r3", "A2", "A1"]
    assert job.reload().is_completed


@pytest.mark.parametrize("stage", ["before", "after"])
def test_a_raising_batch_callback_fails_the_job(stage):
    class Raising(BatchJob):
        destroy_on_complete = False

        @rjbatch.before_batch
        def before(self):
            if stage == "before":
                raise RuntimeError("before failed")

        @rjbatch.after_batch
        def after(self):
            if stage == "after":
                raise RuntimeError("after failed")

        def perform(self, record):
            return record

    job = Raising()
    job.upload([1])
    job.save()
    work_all()
    job.reload()
    assert job.is_failed
    assert job.exception.message == f"{stage} failed"


def test_nil_outputs_are_dropped_unless_the_category_keeps_them():
    class Drops(BatchJob):
        collect_output = True
        destroy_on_complete = False

        def perform(self, record):
            return None if record % 2 else record

    class Keeps(Drops):
        collect_nil_output = True

    for cls, expected in ((Drops, [2, 4]), (Keeps, [None, 2, None, 4])):
        job = cls()
        job.upload([1, 2, 3, 4])
        job.save()
        work_all()
        assert list(job.reload().output()) == expected


def test_no_output_is_kept_without_an_output_category():
    class Quiet(BatchJob):
        destroy_on_complete = False

        def perform(self, record):
            return record

    job = Quiet()
    job.upload([1, 2])
    job.save()
    work_all()
    assert job.reload().is_completed
    with pytest.raises(UnknownCategory):
        list(job.output())


def test_a_batch_job_with_no_records_completes_with_empty_output(tmp_path):
    job = EchoJob()
    assert job.upload([]) == 0
    job.save()
    work_next()
    job.reload()
    assert job.is_completed
    assert job.download(tmp_path / "empty.txt") == 0
    assert (tmp_path / "empty.txt").read_text() == ""


def test_a_batch_job_saved_before_its_upload_ends_waits_for_record_count():
    job = EchoJob()
    job.save()
    assert job.record_count is None
    work_next()  # starts it; no slices yet, upload unfinished: it must not complete
    assert job.reload().is_running
    job.upload([1, 2, 3])
    work_all()
    assert job.reload().is_completed
    assert list(job.output()) == [1, 2, 3]


def test_an_upload_that_raises_leaves_no_slices_behind():
    def records():
        yield from range(25)
        raise OSError("disk went away")

    job = EchoJob()
    job.save()
    with pytest.raises(OSError):
        job.upload(records())
    assert job.input.count() == 0
    with pytest.raises(RuntimeError):
        with job.upload() as writer:
            for i in range(30):
                writer << i
            raise RuntimeError("stop")
    assert job.input.count() == 0
    assert job.reload().record_count is None


def test_upload_writer_and_record_numbers():
    numbers = []

    class Numbered(BatchJob):
        slice_size = 1
        destroy_on_complete = False

        def perform(self, record):
            numbers.append((self.current_record_number, record))

    job = Numbered()
    with job.upload() as writer:
        writer.write("first")
        writer << "second"
    job.save()
    work_all()
    assert numbers == [(1, "first"), (2, "second")]


def test_integer_ranges_become_one_pair_per_slice():
    job = EchoJob()
    assert job.upload(range(1, 12)) == 11
    assert [job.input.records(s) for s in stored_slices(job)] == [[[1, 10]], [[11, 11]]]
    single = EchoJob()
    single.upload_integer_range(1, 1)
    assert [single.input.records(s) for s in stored_slices(single)] == [[[1, 1]]]
    reverse = EchoJob()
    reverse.upload_integer_range_in_reverse_order(1, 11)
    pieces = stored_slices(reverse)
    assert [reverse.input.records(s) for s in pieces] == [[[2, 11]], [[1, 1]]]
    assert [s["first_record_number"] for s in pieces] == [1, 2]
    assert EchoJob().upload(range(5, 5)) == 0  # empty, not negative


def test_failed_records_yield_each_record_with_its_exception():
    job = FailAtJob(fail_on=[3, 17])
    job.upload(list(range(1, 21)))
    job.save()
    work_all()
    failed = list(job.input.failed_records())
    assert [(record, exc.record_number) for record, exc in failed] == [(3, 3), (17, 17)]
    assert failed[0][1].class_name == "ZeroDivisionError"
    [group] = job.input.group_exceptions()
    assert group["count"] == 2 and group["class_name"] == "ZeroDivisionError"


def test_a_fixed_failed_record_is_retried_without_redoing_the_slice():
    job = FailAtJob(fail_on=[13])
    job.upload(list(range(1, 21)))
    job.save()
    work_all()
    [piece] = stored_slices(job, "failed")
    job.input.update_failed_record(piece["id"], 1300)
    job.reload().retry()
    FailAtJob.seen = []
    work_all()
    assert FailAtJob.seen == [1300, 14, 15, 16, 17, 18, 19, 20]
    assert list(job.reload().output()) == [*range(1, 13), 1300, *range(14, 21)]


def test_a_deleted_failed_record_is_skipped_on_retry():
    job = FailAtJob(fail_on=[13])
    job.upload(list(range(1, 21)))
    job.save()
    work_all()
    [piece] = stored_slices(job, "failed")
    job.input.delete_failed_record(piece["id"])
    job.reload().retry()
    work_all()
    assert list(job.reload().output()) == [*range(1, 13), *range(14, 21)]


def test_a_deleted_failed_record_is_no_longer_listed_nor_deletable_and_its_neighbour_survives():
    from rjbatch.batch.sliced import SliceNotFound

    job = FailAtJob(fail_on=[13])
    job.upload(list(range(1, 21)))
    job.save()
    work_all()
    [failed] = job.reload().input.failed_records()
    assert failed.record == 13
    job.input.delete_failed_record(failed)
    assert list(job.input.failed_records()) == []  # not record 14 shown with 13's error
    with pytest.raises(SliceNotFound):
        job.input.delete_failed_record(failed.key)  # would have dropped record 14
    job.reload().retry()
    work_all()
    assert list(job.reload().output()) == [*range(1, 13), *range(14, 21)]


def test_a_second_completion_check_after_failure_does_not_fail_twice():
    job = FailAtJob(fail_on=[1])
    job.upload([1])
    job.save()
    work_all()
    job.reload()
    assert job.failure_count == 1
    assert job._check_completion("w:1:1")  # it has left processing: nothing to do
    assert job.reload().failure_count == 1
    assert job.exception.message == "1 slices failed to process"


def test_abort_and_destroy_remove_the_slices():
    job = EchoJob()
    job.upload(list(range(30)))
    job.save()
    job.abort()
    assert job.input.count() == 0
    other = EchoJob()
    other.upload(list(range(30)))
    other.save()
    work_all()
    other.reload().destroy()
    assert other._store().count_output_slices(other.id, "main") == (0, 0)


def test_pause_and_resume_a_batch_job_while_processing():
    job = EchoJob()
    job.upload(list(range(30)))
    job.save()
    job.start("w:1:1")
    with pytest.raises(rjbatch.InvalidTransition):
        job.pause()  # still in "before": not pausable
    job.update(sub_state="processing")
    job.pause()
    assert job.is_paused
    assert work_next() is None  # nobody works on a paused job
    job.resume()
    assert job.is_running
    work_all()
    assert job.reload().is_completed


def test_batch_retry_from_before_starts_over_and_from_processing_carries_on():
    job = EchoJob()
    job.upload([1])
    job.save()
    job.start("w:1:1")
    job.fail("in before")
    job.retry()
    assert job.is_queued and job.sub_state is None and job.started_at is None
    job.start("w:1:1")
    job.update(sub_state="processing")
    job.fail("in processing")
    job.retry()
    assert job.is_running and job.sub_state == "processing"


def test_requeue_of_a_dead_server_touches_only_its_own_slices():
    job = EchoJob()
    job.upload(list(range(40)))
    job.save()
    job.start("a:1:1")
    job.update(sub_state="processing")
    store = job._store()
    from rjbatch import clock

    mine = store.claim_slices(job.id, "main", "a:1:1", clock.now(), 2)
    theirs = store.claim_slices(job.id, "main", "b:1:1", clock.now(), 1)
    assert len(mine) == 2 and len(theirs) == 1
    assert rjbatch.Job.requeue_dead_server("a:1") == 2
    assert job.input.running_count() == 1
    assert job.reload().is_running


def test_percent_complete_and_status_follow_the_slices():
    job = EchoJob()
    job.upload(list(range(100)))
    job.save()
    assert job.percent_complete == 0
    job.start("w:1:1")
    job.update(sub_state="processing")
    from rjbatch import clock

    claimed = job._store().claim_slices(job.id, "main", "w:1:1", clock.now(), 5)
    job._store().complete_slices(job.id, "main", [(s["id"], {}) for s in claimed])
    assert job.percent_complete == 50
    status = job.status()
    assert status["queued_slices"] == 5 and status["percent_complete"] == 50
    assert "est_remaining_duration" in status


def test_statistics_are_summed_and_a_failed_records_counts_are_dropped():
    class Counting(BatchJob):
        slice_size = 5
        destroy_on_complete = False
        fail_on = field(list, [])

        def perform(self, record):
            self.statistics_inc("records")
            self.statistics_inc({"by.parity.even" if record % 2 == 0 else "by.parity.odd": 1})
            if record in self.fail_on:
                raise ValueError("no")

    job = Counting(fail_on=[7])
    job.upload(list(range(1, 11)))
    job.save()
    work_all()
    job.reload()
    # the slice 6..10 stopped at 7: 1-6 counted, 7's own increments dropped
    assert job.statistics == {"records": 6, "by": {"parity": {"even": 3, "odd": 3}}}
    job.update(fail_on=[])
    job.retry()
    work_all()
    assert job.reload().statistics == {"records": 10, "by": {"parity": {"even": 5, "odd": 5}}}


def test_throttle_running_workers_limits_slices_in_flight():
    job = EchoJob(throttle_running_workers=1)
    job.upload(list(range(40)))
    job.save()
    job.start("w:1:1")
    job.update(sub_state="processing")
    from rjbatch import clock

    store = job._store()
    store.claim_slices(job.id, "main", "other:1:1", clock.now(), 1)
    excluded = []
    from rjbatch.job import WorkContext

    assert job.work(WorkContext("w:1:2", exclude=excluded.append)) is True
    assert excluded == [job.id]
    assert job.input.queued_count() == 3  # nothing taken by the throttled worker


def test_perform_now_processes_every_slice_and_raises_the_first_record_error():
    job = FailAtJob(fail_on=[5])
    job.upload(list(range(1, 21)))
    with pytest.raises(ZeroDivisionError):
        job.perform_now()
    assert job.is_failed
    assert FailAtJob.seen == list(range(1, 21))[:5] + list(range(11, 21))
    ok = EchoJob()
    ok.upload([1, 2])
    ok.perform_now()
    assert ok.is_completed and list(ok.output()) == [1, 2]


def test_slice_size_below_one_is_refused():
    with pytest.raises(ValidationError, match="slice_size"):
        EchoJob(input_categories=[{"name": "main", "slice_size": 0}])


def test_gzip_download_and_upload_round_trip(tmp_path):
    job = EchoJob()
    job.upload([f"line {i}" for i in range(50)])
    job.save()
    work_all()
    target = tmp_path / "out.txt.gz"
    job.reload().download(target)
    assert gzip.decompress(target.read_bytes()).decode().splitlines() == [f"line {i}" for i in range(50)]
    again = EchoJob()
    assert again.upload(target) == 50


def test_a_batch_job_destroyed_on_completion_leaves_no_slices():
    class Gone(BatchJob):
        collect_output = True
        destroy_on_complete = True  # a batch job that collects output is kept unless told

        def perform(self, record):
            return record

    job = Gone()
    job.upload(list(range(30)))
    job.save()
    work_all()
    assert Gone.count() == 0
    store = job._store()
    assert store.count_output_slices(job.id, "main") == (0, 0)
    assert store.count_slices(job.id, "main") == {}


def test_a_batch_job_that_collects_output_is_kept_after_completion_for_its_download(tmp_path):
    class Kept(BatchJob):
        collect_output = True

        def perform(self, record):
            return record * 2

    class Dropped(BatchJob):
        def perform(self, record):
            pass

    kept, dropped = Kept(), Dropped()
    for job in (kept, dropped):
        job.upload([1, 2, 3])
        job.save()
    work_all()
    assert Kept.find(kept.id).is_completed and Dropped.count() == 0
    assert kept.download(tmp_path / "out.txt") == 3
    assert (tmp_path / "out.txt").read_text() == "2\n4\n6\n"


def test_a_batch_job_yields_its_worker_to_higher_priority_work_after_re_check():
    from rjbatch.job import WorkContext
    from rjbatch.worker.picking import WorkerFilter, next_available_job

    batch = EchoJob(priority=50)
    batch.upload(list(range(1000)))
    batch.save()
    store = batch._store()
    worker_filter = WorkerFilter()
    job = next_available_job("w:1:1", worker_filter, store)
    assert job.id == batch.id
    urgent = FailAtJob(priority=5)
    urgent.upload([1])
    urgent.save()
    # with re_check_seconds 0 the worker leaves after one claim of slices...
    assert job.work(WorkContext("w:1:1", re_check_seconds=0)) is False
    assert batch.input.count() > 0
    # ...and the claim, ordered by priority, hands it the urgent job first
    assert next_available_job("w:1:1", worker_filter, store).id == urgent.id


def test_statistics_keys_from_the_data_never_break_the_job():
    class Names(BatchJob):
        destroy_on_complete = False

        def perform(self, name):
            self.statistics_inc(f"by_name.{name}")

    names = ["O'Brien", 'say "hi"', "C:\\temp", "漢字", "$100", "100%", "a;--b", "line\nbreak"]
    job = Names()
    job.upload(names + names[:2])
    job.save()
    work_all()
    assert job.reload().is_completed
    assert job.statistics["by_name"] == {**{n: 1 for n in names}, "O'Brien": 2, 'say "hi"': 2}


def test_a_worker_with_nothing_to_claim_on_a_batch_job_still_uploading_moves_on_to_other_work():
    from rjbatch import Job
    from rjbatch.config import get_store
    from rjbatch.job import WorkContext
    from rjbatch.worker.picking import WorkerFilter, next_available_job

    class Streaming(BatchJob):
        def perform(self, record):
            return record

    class Other(Job):
        def perform(self):
            return None

    job = Streaming()
    job.save()
    with job.upload() as writer:  # the upload holds its lease; nothing stored yet
        writer.write(1)
        other = Other.create()
        worker_filter = WorkerFilter()
        claimed = next_available_job("w:1:1", worker_filter, get_store())
        assert claimed.id == job.id
        claimed.work(WorkContext("w:1:1", skip_once=worker_filter.skip_once))
        assert next_available_job("w:1:1", worker_filter, get_store()).id == other.id
        assert next_available_job("w:1:1", worker_filter, get_store()).id == job.id  # skipped once only
    assert Streaming.find(job.id).upload_owner is None and Streaming.find(job.id).record_count == 1


def test_a_job_whose_upload_lease_ran_out_is_failed_keeping_its_slices(frozen_clock):
    from datetime import timedelta

    from rjbatch.batch.upload import SliceWriter, fail_stalled_uploads

    class Abandoned(BatchJob):
        slice_size = 2

        def perform(self, record):
            return record

    job = Abandoned()
    job.save()
    writer = SliceWriter(job).__enter__()
    writer.write_many([1, 2, 3, 4, 5])
    writer._flush()
    writer.lease.stop()  # the uploader dies: no close, no renewal
    assert fail_stalled_uploads() == []  # its lease still holds
    frozen_clock.advance(timedelta(minutes=2))
    assert fail_stalled_uploads() == [job.id]
    job.reload()
    assert job.is_failed and job.exception.message.startswith("the upload did not finish: its uploader ")
    assert "after 0 records (its last count)" in job.exception.message
    assert job.input.count() == 2  # the slices it stored are kept
