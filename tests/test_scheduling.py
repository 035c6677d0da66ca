"""Cron and ProcessingWindow plugins, and the jobs that come with rjbatch (docs/plugins.md)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from rjbatch import Job, ValidationError, field
from rjbatch.batch import BatchJob
from rjbatch.jobs import (
    DirmonEntry,
    DirmonJob,
    HousekeepingJob,
    OnDemandBatchJob,
    OnDemandJob,
    UploadFileJob,
)
from rjbatch.plugins import (
    Cron,
    LowerPriority,
    ProcessingWindow,
    Retry,
    ThrottleDependentJobs,
    ThrottleWindows,
)
from rjbatch.testing import work_all, work_next
from rjbatch.worker.picking import WorkerFilter, next_available_job


# -- Cron -----------------------------------------------------------------------------
class NightlyJob(Cron, Job):
    cron_schedule = "0 1 * * * America/New_York"
    destroy_on_complete = False
    kept = field(str, copy_on_restart=True)
    fail_now = field(bool, False)

    def perform(self):
        if self.fail_now:
            raise RuntimeError("nightly failed")


@pytest.fixture
def december(frozen_clock):
    frozen_clock.set(datetime(2015, 12, 9, 17, 50, 5, tzinfo=UTC))
    return frozen_clock


def test_cron_sets_run_at_in_its_time_zone(december):
    job = NightlyJob.create()
    assert job.run_at == datetime(2015, 12, 10, 6, 0, tzinfo=UTC)
    assert job.is_scheduled


def test_changing_the_schedule_moves_run_at_only_on_save(december):
    job = NightlyJob.create()
    job.cron_schedule = "0 2 * * * UTC"
    assert job.run_at == datetime(2015, 12, 10, 6, 0, tzinfo=UTC)
    job.save()
    assert job.run_at == datetime(2015, 12, 10, 2, 0, tzinfo=UTC)


def test_an_explicit_run_at_with_a_new_schedule_is_kept(december):
    wanted = datetime(2016, 1, 1, tzinfo=UTC)
    assert NightlyJob.create(run_at=wanted).run_at == wanted


def test_an_invalid_schedule_is_refused_with_its_text():
    with pytest.raises(ValidationError, match='Invalid cron_schedule: "blah"'):
        NightlyJob.create(cron_schedule="blah")


def test_completion_schedules_the_next_instance_with_copied_fields(december):
    job = NightlyJob.create(kept="yes")
    december.set(job.run_at + timedelta(seconds=1))
    work_next()
    assert job.reload().is_completed
    [following] = NightlyJob.queued().all()
    assert following.kept == "yes"
    assert following.run_at == datetime(2015, 12, 11, 6, 0, tzinfo=UTC)


def test_failure_keeps_the_error_drops_the_schedule_and_schedules_the_next(december):
    job = NightlyJob.create(fail_now=True)
    december.set(job.run_at + timedelta(seconds=1))
    work_next()
    job.reload()
    assert job.is_failed and job.cron_schedule is None
    assert job.run_at == datetime(2015, 12, 10, 6, 0, tzinfo=UTC)
    assert job.exception.message == "nightly failed"
    [following] = NightlyJob.queued().all()
    assert following.cron_schedule == "0 1 * * * America/New_York"
    job.update(fail_now=False)
    job.retry()
    december.set(datetime(2015, 12, 10, 6, 30, tzinfo=UTC))
    work_next()
    assert job.reload().is_completed
    assert NightlyJob.queued().count() == 1  # completing the retried one scheduled nothing more


def test_a_failed_job_without_a_schedule_creates_nothing():
    job = NightlyJob.create(cron_schedule=None, fail_now=True)
    work_next()
    assert job.reload().is_failed
    assert NightlyJob.count() == 1


def test_run_now_makes_a_scheduled_job_due(december):
    job = NightlyJob.create()
    assert work_next() is None
    job.run_now()
    assert work_next().id == job.id


def test_cron_with_retry_retries_before_moving_on(december):
    class Flaky(Cron, Retry, Job):
        cron_schedule = "0 1 * * * UTC"
        retry_limit = 1
        destroy_on_complete = False

        def perform(self):
            raise RuntimeError("flaky")

    job = Flaky.create()
    december.set(job.run_at + timedelta(seconds=1))
    work_next()
    job.reload()
    assert job.is_queued and job.cron_schedule == "0 1 * * * UTC" and Flaky.count() == 1
    december.set(job.run_at + timedelta(seconds=1))
    work_next()
    assert job.reload().is_failed and job.cron_schedule is None
    assert Flaky.queued().count() == 1


# -- ProcessingWindow -----------------------------------------------------------------
class WindowJob(ProcessingWindow, Job):
    processing_schedule = "0 17 * * * UTC"
    processing_duration = timedelta(hours=1)
    destroy_on_complete = False

    def perform(self):
        return None


def test_inside_the_window_the_job_runs(frozen_clock):
    frozen_clock.set(datetime(2026, 1, 15, 17, 50, tzinfo=UTC))
    job = WindowJob.create()
    assert job.is_processing_window_active() and job.run_at is None
    frozen_clock.set(datetime(2026, 1, 15, 17, 0, 0, tzinfo=UTC))
    assert job.is_processing_window_active()  # the first second is inside


def test_outside_the_window_the_job_waits_for_the_next_start(frozen_clock):
    frozen_clock.set(datetime(2026, 1, 15, 16, 50, tzinfo=UTC))
    job = WindowJob.create()
    assert not job.is_processing_window_active()
    assert job.run_at == datetime(2026, 1, 15, 17, 0, tzinfo=UTC)


def test_a_job_started_outside_its_window_is_requeued_to_the_next_start_and_does_not_spin(frozen_clock):
    frozen_clock.set(datetime(2026, 1, 15, 17, 30, tzinfo=UTC))
    job = WindowJob.create()
    frozen_clock.set(datetime(2026, 1, 15, 18, 30, tzinfo=UTC))  # the window closed before it ran
    assert work_next() is None
    job.reload()
    assert job.is_queued and job.run_at == datetime(2026, 1, 16, 17, 0, tzinfo=UTC)
    assert work_next() is None  # not claimed again until then


def test_perform_now_outside_the_window_leaves_it_queued(frozen_clock):
    frozen_clock.set(datetime(2026, 1, 15, 10, 0, tzinfo=UTC))
    job = WindowJob()
    job.perform_now()
    assert job.is_queued


def test_a_window_needs_its_schedule_and_duration():
    class Bare(ProcessingWindow, Job):
        pass

    job = Bare()
    assert not job.is_valid()
    assert job.errors["processing_schedule"] == ["can't be blank"]
    assert job.errors["processing_duration"] == ["can't be blank"]


# -- opt-in throttles -----------------------------------------------------------------
def test_dependent_jobs_wait_while_one_they_depend_on_runs():
    class Loader(Job):
        pass

    class Report(ThrottleDependentJobs, Job):
        dependent_jobs = ["Loader"]

    loader = Loader.create()
    loader.start("x:1:1")
    report = Report.create()
    assert next_available_job("w:1:1", WorkerFilter(), Job._store()) is None
    assert Report.find(report.id).throttled_by == "dependent_job_running"
    loader.complete()
    assert next_available_job("w:1:1", WorkerFilter(), Job._store()).id == report.id


def test_lower_priority_for_big_batches():
    class Big(LowerPriority, BatchJob):
        lower_priority_count = 1
        destroy_on_complete = False

        def perform(self, record):
            return None

    job = Big(priority=50)
    job.upload([1, 2, 3])
    job.save()
    work_all()
    assert job.reload().priority == 53


# -- HousekeepingJob ------------------------------------------------------------------
def test_housekeeping_keeps_what_its_retention_says(frozen_clock):
    now = frozen_clock()
    for days in (2, 8, 15, 400):
        for state in ("aborted", "completed", "failed", "paused", "queued"):
            job = Job(state=state, created_at=now - timedelta(days=days))
            if state != "queued":
                job.completed_at = now - timedelta(days=days)
            job.save()
    HousekeepingJob(queued_retention=timedelta(days=10), paused_retention=timedelta(days=10)).perform_now()
    HousekeepingJob.delete_all()  # the next run it scheduled (it is a Cron job)
    counts = Job.counts_by_state()
    counts.pop("queued_now", None)
    assert counts == {"aborted": 1, "completed": 1, "failed": 2, "paused": 2, "queued": 2}


def test_housekeeping_destroys_zombie_servers(frozen_clock):
    store = Job._store()
    store.save_server({"name": "old:1", "state": "running", "max_workers": 1,
                       "heartbeat_at": frozen_clock() - timedelta(days=1), "heartbeat_seconds": 15})
    HousekeepingJob(destroy_zombies=False).perform_now()
    assert store.find_server("old:1") is not None
    HousekeepingJob.delete_all()
    HousekeepingJob().perform_now()
    assert store.find_server("old:1") is None


def test_housekeeping_schedules_itself_every_15_minutes(frozen_clock):
    job = HousekeepingJob.create()
    assert job.priority == 25
    assert job.run_at == datetime(2026, 1, 15, 12, 15, tzinfo=UTC)
    with pytest.raises(ValidationError, match="Another instance"):
        HousekeepingJob.create()


# -- Dirmon ---------------------------------------------------------------------------
class ImportJob(BatchJob):
    collect_output = True
    destroy_on_complete = False
    tag = field(str)

    def perform(self, line):
        return f"{self.tag}:{line}"


@pytest.fixture
def inbox(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    return folder


def test_dirmon_entry_validation_and_states(inbox):
    with pytest.raises(ValidationError) as caught:
        DirmonEntry.create(name="x", pattern="  ", job_class_name="NoSuchJob")
    assert "pattern" in caught.value.errors and "job_class_name" in caught.value.errors
    with pytest.raises(ValidationError, match="properties"):
        DirmonEntry.create(name="x", pattern=f"{inbox}/*.txt", job_class_name="ImportJob",
                           properties={"nope": 1})
    entry = DirmonEntry.create(name="imports", pattern=f"  {inbox}/*.txt ", job_class_name="ImportJob",
                               properties={"tag": "t"})
    assert entry.pattern == f"{inbox}/*.txt" and entry.state == "pending"
    entry.enable()
    entry.fail("disk unreadable")
    assert entry.exception.class_name == "rjbatch.DirmonEntryException"
    entry.disable()
    assert DirmonEntry.find("imports").state == "disabled"


def test_a_file_is_taken_on_the_second_scan_with_the_same_size_archived_and_uploaded(inbox):
    DirmonEntry.create(name="imports", pattern=f"{inbox}/**/*.txt", job_class_name="ImportJob",
                       properties={"tag": "t"}, state="enabled")
    (inbox / "a.txt").write_text("one\ntwo\n")
    scanner = DirmonJob()
    scanner.perform()
    assert UploadFileJob.count() == 0  # first sight: remember the size
    assert scanner.previous_file_names == [[str(inbox / "a.txt"), 8]]
    (inbox / "a.txt").write_text("one\ntwo\nthree\n")  # still growing
    scanner.perform()
    assert UploadFileJob.count() == 0
    assert scanner.previous_file_names == [[str(inbox / "a.txt"), 14]]
    assert scanner.perform() == 1  # the same size twice: taken
    assert not (inbox / "a.txt").exists()
    [upload] = UploadFileJob.all()
    archived = upload.upload_file_name
    assert os.path.basename(archived) == f"{upload.job_id}_a.txt"
    assert os.path.dirname(archived) == str(inbox / "archive")
    work_all()
    job = ImportJob.find(upload.job_id)
    assert job.is_completed
    assert list(job.output()) == ["t:one", "t:two", "t:three"]


def test_files_in_the_archive_folder_are_skipped_but_a_name_containing_archive_is_not(inbox):
    entry = DirmonEntry(name="e", pattern=f"{inbox}/**/*.txt", job_class_name="ImportJob")
    (inbox / "archive").mkdir()
    (inbox / "archive" / "old.txt").write_text("x")
    (inbox / "archived_reports.txt").write_text("y")
    assert entry.each_file() == [str(inbox / "archived_reports.txt")]


def test_dirmon_job_reschedules_itself(frozen_clock):
    job = DirmonJob.create(check_seconds=60)
    assert job.run_at == frozen_clock() + timedelta(seconds=60)
    frozen_clock.advance(seconds=61)
    work_next()
    [following] = DirmonJob.queued().all()
    assert following.check_seconds == 60
    assert following.run_at == frozen_clock() + timedelta(seconds=60)


def test_upload_file_job_validation_messages(tmp_path):
    job = UploadFileJob(job_class_name="ImportJob", upload_file_name="")
    assert not job.is_valid()
    assert job.errors["upload_file_name"] == ["Upload file name can't be blank."]
    job = UploadFileJob(job_class_name="ImportJob", upload_file_name=str(tmp_path / "gone.txt"))
    assert not job.is_valid()
    assert job.errors["upload_file_name"] == [f"Upload file: {tmp_path / 'gone.txt'} does not exist."]
    assert UploadFileJob(job_class_name="ImportJob", upload_file_name="https://example.com/a.csv").is_valid()
    job = UploadFileJob(job_class_name="NightlyJob", upload_file_name="https://example.com/a.csv")
    assert "cannot upload files" in job.errors.get("job_class_name", [""])[0] or not job.is_valid()


# -- OnDemand jobs --------------------------------------------------------------------
def test_on_demand_code_results_go_to_data():
    job = OnDemandJob(code="data['total'] = sum(range(5))\ndata['id'] = job.id")
    job.perform_now()
    assert job.is_completed
    assert job.data == {"total": 10, "id": job.id}


def test_on_demand_code_that_does_not_compile_makes_the_job_invalid():
    job = OnDemandJob(code="data['x'] = (")
    assert not job.is_valid()
    assert job.errors["code"][0].startswith("Failed to parse :code")
    with pytest.raises(ValidationError):
        job.perform_now()


def test_on_demand_batch_job_uploads_in_before_code_and_sets_statistics_in_after_code():
    job = OnDemandBatchJob(
        code="job.statistics_inc('rows')\nreturn row * 10",
        before_code="job.upload(list(range(1, 6)))",
        after_code="data['done'] = True",
    )
    job.add_output_category()
    job.save()
    work_all()
    job.reload()
    assert job.is_completed
    assert list(job.output()) == [10, 20, 30, 40, 50]
    assert job.statistics == {"rows": 5}
    assert job.data == {"done": True}


# -- ThrottleWindows ------------------------------------------------------------------
class WindowedBatch(ThrottleWindows, BatchJob):
    primary_schedule = "0 17 * * mon-fri UTC"
    primary_duration = timedelta(hours=1)
    destroy_on_complete = False
    collect_output = True

    def perform(self, record):
        return record


@pytest.mark.parametrize("moment, inside", [
    (datetime(2026, 1, 17, 17, 30, tzinfo=UTC), False),   # Saturday
    (datetime(2026, 1, 14, 17, 0, 0, tzinfo=UTC), True),  # the first second
    (datetime(2026, 1, 14, 17, 59, 59, tzinfo=UTC), True),
    (datetime(2026, 1, 14, 18, 0, 0, tzinfo=UTC), False),
])
def test_throttle_window_edges(frozen_clock, moment, inside):
    frozen_clock.set(moment)
    assert (WindowedBatch().slices_held() is None) is inside


def test_primary_and_secondary_windows(frozen_clock):
    job = WindowedBatch(primary_schedule="0 17 * * mon-thu America/New_York",
                        primary_duration=timedelta(hours=15),
                        secondary_schedule="0 17 * * fri America/New_York",
                        secondary_duration=timedelta(hours=63))
    for moment, inside in [
        (datetime(2026, 1, 14, 22, 10, tzinfo=UTC), True),    # Wednesday 17:10 New York
        (datetime(2026, 1, 14, 21, 30, tzinfo=UTC), False),   # Wednesday 16:30
        (datetime(2026, 1, 17, 6, 0, tzinfo=UTC), True),      # Saturday 01:00
        (datetime(2026, 1, 19, 15, 0, tzinfo=UTC), False),    # Monday 10:00
    ]:
        frozen_clock.set(moment)
        assert (job.slices_held() is None) is inside, moment


def test_only_a_secondary_window_still_throttles(frozen_clock):
    frozen_clock.set(datetime(2026, 1, 14, 12, 0, tzinfo=UTC))
    job = WindowedBatch(primary_schedule=None, secondary_schedule="0 17 * * * UTC",
                        secondary_duration=timedelta(hours=1))
    assert job.slices_held() is not None


def test_slices_wait_outside_the_window_and_run_inside_it(frozen_clock):
    frozen_clock.set(datetime(2026, 1, 14, 12, 0, tzinfo=UTC))
    job = WindowedBatch()
    job.upload([1, 2, 3])
    job.save()
    work_next()
    assert job.reload().is_running and job.input.count() == 1
    frozen_clock.set(datetime(2026, 1, 14, 17, 5, tzinfo=UTC))
    work_all()
    assert job.reload().is_completed and list(job.output()) == [1, 2, 3]


def test_upload_file_job_merges_category_settings_and_names_the_file(tmp_path):
    class Sliced(BatchJob):
        collect_output = True
        destroy_on_complete = False
        output_categories = ["main", "rejects"]

        def perform(self, line):
            return line

    source = tmp_path / "7_orders.txt"
    source.write_text("a\nb\nc\n")
    upload = UploadFileJob.create(
        job_class_name="Sliced", upload_file_name=str(source), original_file_name="/in/orders.txt",
        properties={"input_categories": [{"slice_size": 2}],
                    "output_categories": [{"name": "rejects", "nils": True}]},
    )
    work_next()
    job = Sliced.first()
    assert job.input_category().slice_size == 2
    assert job.input_category().file_name == "orders.txt"
    assert job.output_category("rejects").nils is True
    assert job.output_category("main") is not None  # merged, not replaced
    assert job.record_count == 3 and upload.id


def test_a_file_whose_job_class_the_worker_does_not_know_stays_and_the_entry_fails_saying_why(inbox):
    entry = DirmonEntry(name="orders", pattern=f"{inbox}/*.txt", job_class_name="ElsewhereJob",
                        state="enabled")
    DirmonEntry._store().save_dirmon_entry(entry.to_doc())  # saved by a process that knew the class
    (inbox / "a.txt").write_text("one\n")
    scanner = DirmonJob()
    scanner.perform()
    assert scanner.perform() == 0  # seen twice at one size: it would be taken now
    assert (inbox / "a.txt").exists() and not (inbox / "archive").exists()  # left in place
    failed = DirmonEntry.find("orders")
    assert failed.state == "failed" and "ElsewhereJob is not known" in failed.exception.message
    assert UploadFileJob.count() == 0


def test_a_job_made_by_dirmon_says_which_file_it_came_from(inbox):
    DirmonEntry.create(name="imports", pattern=f"{inbox}/*.txt", job_class_name="ImportJob", state="enabled")
    (inbox / "march.txt").write_text("one\n")
    scanner = DirmonJob()
    scanner.perform()
    scanner.perform()
    [upload] = UploadFileJob.all()
    work_all()
    assert ImportJob.find(upload.job_id).description == "imports: march.txt"


def test_enabling_an_entry_from_the_cli_starts_the_scanner_once(inbox, tmp_path, database):
    import os

    from tests.test_cli import rjbatch

    if database.startswith("mongodb") and not os.environ.get("RJBATCH_TEST_MONGODB_URL"):
        pytest.skip("mongomock lives in one process: the CLI runs in another")

    DirmonEntry.create(name="imports", pattern=f"{inbox}/*.txt", job_class_name="ImportJob")
    enabled = rjbatch("dirmon", "enable", "imports", "--database", database, "--jobs", __file__, cwd=tmp_path)
    assert "started the directory monitor job" in enabled.stderr and "workers run it now" in enabled.stderr
    assert DirmonJob.count() == 1
    assert not DirmonJob.first().is_scheduled  # its first scan is due at once, not a period later
    again = rjbatch("dirmon", "enable", "imports", "--database", database, "--jobs", __file__, cwd=tmp_path,
                    check=False)
    assert "started the directory monitor job" not in again.stderr and DirmonJob.count() == 1
