"""The guide's examples for regular jobs, in Python, with their documented outcomes.

Section by section of the Rocket Job programmer's guide: Writing Jobs, Fields,
Field Defaults, Business Priority, Delayed Processing, Retention, Collecting Output,
Job Status, Expired Jobs, Persistence, Queries, Callbacks, Validations, Exception
Handling and Writing Tests.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

import rjbatch
from rjbatch import Job, JobNotFound, ValidationError, clock, field
from rjbatch.testing import work_next


# -- Writing Jobs ---------------------------------------------------------------------
class HelloJob(Job):
    def perform(self):
        print("Hello World")


def test_writing_jobs_create_enqueues_a_queued_job():
    job = HelloJob.create()
    assert HelloJob.count() == 1
    assert HelloJob.find(job.id).is_queued


def test_writing_jobs_perform_now_runs_in_this_process_without_saving(capsys):
    job = HelloJob()
    job.perform_now()
    assert capsys.readouterr().out == "Hello World\n"
    assert job.is_completed
    assert HelloJob.count() == 0


def test_writing_jobs_a_worker_runs_a_created_job(capsys):
    HelloJob.create()
    assert work_next() is not None
    assert capsys.readouterr().out == "Hello World\n"
    assert HelloJob.count() == 0  # destroyed on complete by default


# -- Fields ---------------------------------------------------------------------------
class UserReportJob(Job):
    destroy_on_complete = False
    collect_output = True
    username = field(str)
    user_count = field(int)

    def perform(self):
        self.user_count = 123


def test_fields_are_set_on_create_and_read_back():
    job = UserReportJob.create(username="Jack Jones")
    assert job.username == "Jack Jones"
    assert UserReportJob.find(job.id).username == "Jack Jones"


def test_fields_set_inside_perform_are_visible_after_completion():
    UserReportJob.create(username="Jack Jones")
    work_next()
    job = UserReportJob.completed().last()
    assert job.user_count == 123


class EveryTypeJob(Job):
    destroy_on_complete = False
    text = field(str)
    whole = field(int)
    real = field(float)
    flag = field(bool)
    money = field(Decimal)
    day = field(date)
    moment = field(datetime)
    mapping = field(dict)
    items = field(list)
    blob = field(bytes)
    oid = field(rjbatch.job.fields.ObjectId)
    span = field(range)
    pattern = field(__import__("re").Pattern)


def test_fields_of_every_type_survive_a_round_trip_through_the_store():
    import re

    from bson import ObjectId

    oid = ObjectId()
    values = dict(
        text="é", whole=7, real=1.5, flag=True, money=Decimal("12.34"), day=date(2026, 1, 2),
        moment=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=rjbatch.job.fields.dt.UTC),
        mapping={"a": {"b": [1, 2]}}, items=[1, "two"], blob=b"\x00\xff", oid=oid,
        span=range(1, 10, 2), pattern=re.compile("^a.c$", re.I),
    )
    job = EveryTypeJob.create(**values)
    loaded = EveryTypeJob.find(job.id)
    for name, value in values.items():
        assert getattr(loaded, name) == value, name


def test_fields_coerce_strings_from_forms_and_command_lines():
    job = EveryTypeJob(whole="12", real="2.5", flag="yes", money="1.10", day="2026-03-04",
                       moment="2026-03-04T05:06:07Z")
    assert (job.whole, job.real, job.flag) == (12, 2.5, True)
    assert job.money == Decimal("1.10") and job.day == date(2026, 3, 4)
    assert job.moment == datetime(2026, 3, 4, 5, 6, 7, tzinfo=rjbatch.job.fields.dt.UTC)


def test_naive_datetimes_are_taken_as_utc_with_millisecond_precision():
    job = EveryTypeJob(moment=datetime(2026, 1, 1, 10, 0, 0, 123456))
    assert job.moment.tzinfo is not None
    assert job.moment.utcoffset() == timedelta(0)
    assert job.moment.microsecond == 123000


def test_dict_field_keys_become_strings_in_the_store():
    job = EveryTypeJob.create(mapping={1: 39, "valid": 39})
    assert EveryTypeJob.find(job.id).mapping == {"1": 39, "valid": 39}


def test_dict_field_keys_with_periods_are_refused():
    with pytest.raises(ValidationError, match="mapping"):
        EveryTypeJob.create(mapping={"this.is.bad": 20})


def test_changing_a_dict_in_place_is_saved():
    job = EveryTypeJob.create(mapping={"a": 1})
    job.mapping["b"] = 2
    job.save()
    assert EveryTypeJob.find(job.id).mapping == {"a": 1, "b": 2}


# -- Field Defaults -------------------------------------------------------------------
class DefaultsJob(Job):
    destroy_on_complete = False
    username = field(str, default="Joe Bloggs")
    user_count = field(int, default=0)
    report_date = field(date, default=lambda: date.today())
    label = field(str, default=lambda job: "new" if job.is_new_record else "old")

    def perform(self):
        print(self.username)
        self.user_count += 1


def test_field_defaults_apply_to_new_jobs(capsys):
    job = DefaultsJob()
    assert job.username == "Joe Bloggs"
    job.perform_now()
    assert capsys.readouterr().out == "Joe Bloggs\n"
    assert job.user_count == 1


def test_callable_defaults_are_evaluated_per_job_and_see_the_job():
    job = DefaultsJob()
    assert job.report_date == date.today()
    assert job.label == "new"


def test_callable_defaults_run_after_the_given_values():
    class Derived(Job):
        base = field(int, 1)
        double = field(int, default=lambda job: job.base * 2)

    assert Derived(base=21).double == 42


def test_constructor_values_override_defaults_and_children_override_parents():
    class Child(DefaultsJob):
        username = "Child Default"

    assert DefaultsJob(username="Given").username == "Given"
    assert Child().username == "Child Default"
    assert Child().user_count == 0  # inherited
    assert DefaultsJob().username == "Joe Bloggs"  # the parent is unchanged


def test_field_settings_are_listed_on_the_class():
    class Settings(Job):
        report_date = field(date, user_editable=True, copy_on_restart=True)
        hidden = field(str)

    assert "report_date" in Settings.user_editable_fields()
    assert "report_date" in Settings.copy_on_restart_fields()
    assert "hidden" not in Settings.user_editable_fields()
    assert {"priority", "description"} <= set(Settings.user_editable_fields())


# -- Business Priority ----------------------------------------------------------------
class PriorityJob(Job):
    priority = 70
    destroy_on_complete = False

    def perform(self):
        return None


def test_business_priority_class_default_and_per_job_override():
    assert PriorityJob().priority == 70
    assert PriorityJob.create(priority=5).priority == 5
    assert Job().priority == 50


def test_business_priority_decides_which_job_runs_first():
    low = PriorityJob.create()
    high = PriorityJob.create(priority=5)
    assert work_next().id == high.id
    assert work_next().id == low.id


# -- Delayed Processing ---------------------------------------------------------------
def test_delayed_job_is_scheduled_and_not_run_before_run_at(frozen_clock):
    job = PriorityJob.create(run_at=clock.now() + timedelta(hours=2))
    assert job.is_scheduled
    assert work_next() is None
    frozen_clock.advance(hours=2, seconds=1)
    assert work_next().id == job.id


# -- Retention ------------------------------------------------------------------------
def test_completed_jobs_are_removed_by_default():
    job = HelloJob.create()
    job.perform_now()
    assert HelloJob.count() == 0
    assert job.reload().is_completed  # reload knows it completed and went away


def test_destroy_on_complete_false_retains_completed_jobs():
    job = PriorityJob.create()
    job.perform_now()
    assert PriorityJob.completed().count() == 1


def test_failed_jobs_are_always_retained():
    class Failing(Job):
        def perform(self):
            raise RuntimeError("boom")

    job = Failing.create()
    work_next()
    assert Failing.find(job.id).is_failed


# -- Collecting Output ----------------------------------------------------------------
class CalculationJob(Job):
    destroy_on_complete = False
    collect_output = True
    amount = field(int)

    def perform(self):
        return {"calculation": self.amount * 1000}


def test_collecting_output_keeps_the_returned_dict_in_result():
    job = CalculationJob.create(amount=24)
    work_next()
    assert job.reload().is_completed
    assert job.result == {"calculation": 24000}


# -- Job Status -----------------------------------------------------------------------
def test_job_status_shows_state_and_progress():
    job = CalculationJob.create(amount=1, description="nightly")
    status = job.reload().status()
    assert status["state"] == "queued"
    assert status["description"] == "nightly"
    assert status["class"] == "CalculationJob"
    assert "duration" in status and "started_at" not in status
    work_next()
    status = job.reload().status()
    assert status["state"] == "completed"
    assert status["result"] == {"calculation": 1000}
    assert status["completed_at"].endswith("Z")


def test_failed_job_status_puts_failed_at_first():
    class Failing(Job):
        def perform(self):
            raise ValueError("bad")

    job = Failing.create()
    work_next()
    status = job.reload().status()
    assert next(iter(status)) == "failed_at"
    assert status["exception"]["class_name"] == "ValueError"


# -- Expired Jobs ---------------------------------------------------------------------
def test_expired_job_is_discarded_without_processing(frozen_clock):
    job = CalculationJob.create(amount=1, expires_at=clock.now() + timedelta(minutes=15))
    assert not job.is_expired
    frozen_clock.advance(minutes=16)
    assert job.is_expired
    assert work_next() is None
    with pytest.raises(JobNotFound):
        CalculationJob.find(job.id)


# -- Persistence ----------------------------------------------------------------------
class ReportJob(Job):
    destroy_on_complete = False
    report_date = field(date)

    def perform(self):
        return self.report_date


def test_persistence_create_save_update_and_update_attribute():
    yesterday = date.today() - timedelta(days=1)
    created = ReportJob.create(report_date=yesterday)
    job = ReportJob()
    job.report_date = yesterday
    job.save()
    assert ReportJob.count() == 2
    last = ReportJob.last()
    assert last.id == job.id
    last.report_date = date.today()
    last.save()
    assert ReportJob.find(job.id).report_date == date.today()
    created.update(report_date=date.today())
    assert ReportJob.find(created.id).report_date == date.today()
    created.update_attribute("priority", 0)  # bypasses validation
    assert ReportJob.find(created.id).priority == 0


def test_persistence_delete_and_destroy():
    events = []

    class Tracked(Job):
        @rjbatch.before_destroy
        def note(self):
            events.append("before_destroy")

    first, second = Tracked.create(), Tracked.create()
    first.delete()
    assert events == []
    second.destroy()
    assert events == ["before_destroy"]
    assert Tracked.count() == 0


def test_delete_all_and_destroy_all_on_a_class_and_on_job():
    ReportJob.create()
    ReportJob.create()
    HelloJob.create()
    assert ReportJob.delete_all() == 2
    assert Job.count() == 1
    ReportJob.create()
    assert Job.destroy_all() == 2
    assert Job.count() == 0


# -- Queries --------------------------------------------------------------------------
def test_queries_last_find_and_changing_priority():
    job = ReportJob.create()
    assert Job.last().id == job.id
    found = Job.find(job.id)
    assert isinstance(found, ReportJob)
    found.priority = 32
    found.save()
    assert Job.find(job.id).priority == 32
    found.update(priority=33)
    assert Job.find(job.id).priority == 33


def test_queries_duration_running_count_and_retry_all_failed(frozen_clock):
    class MyJob(Job):
        def perform(self):
            raise RuntimeError("nope")

    job = MyJob.create()
    job.start("host:1:1")
    frozen_clock.advance(seconds=90)
    assert Job.last().duration == timedelta(seconds=90)
    assert MyJob.running().count() == 1
    job.fail(RuntimeError("nope"))
    for failed in Job.failed():
        failed.retry()
    assert MyJob.queued().count() == 1


def test_queries_find_unknown_id_raises_job_not_found():
    with pytest.raises(JobNotFound):
        Job.find("55aeaf03a26ec0c1bd00008d")
    with pytest.raises(JobNotFound):
        Job.find("not-an-id")


def test_queries_on_custom_fields():
    yesterday = date.today() - timedelta(days=1)
    ReportJob.create(report_date=date.today())
    wanted = ReportJob.create(report_date=yesterday)
    assert ReportJob.where(report_date=yesterday).first().id == wanted.id
    assert ReportJob.where(report_date=date(2000, 1, 1)).first() is None


def test_queries_on_a_class_see_only_that_class_and_on_job_every_job():
    class Parent(Job):
        pass

    class Child(Parent):
        pass

    Parent.create()
    Child.create()
    HelloJob.create()
    assert Parent.count() == 2
    assert Child.count() == 1
    assert Job.count() == 3


def test_queries_chain_where_order_by_and_lookups():
    for priority in (10, 30, 50, 70):
        ReportJob.create(priority=priority)
    assert [j.priority for j in ReportJob.where(priority__lte=50).order_by("-priority")] == [50, 30, 10]
    assert ReportJob.where(priority__in=[10, 70]).count() == 2
    assert ReportJob.queued().where(priority__gt=60).count() == 1


def test_counts_by_state_splits_queued_into_scheduled_and_queued_now():
    HelloJob.create()
    HelloJob.create(run_at=clock.now() + timedelta(hours=1))
    HelloJob.create().start("w:1:1")
    assert Job.counts_by_state() == {"running": 1, "queued": 2, "queued_now": 1, "scheduled": 1}


# -- Callbacks ------------------------------------------------------------------------
class CallbackJob(Job):
    @rjbatch.before_perform
    def before_1(self):
        print("BEFORE 1")

    @rjbatch.around_perform
    def around_1(self, proceed):
        print("AROUND 1 BEFORE")
        proceed()
        print("AROUND 1 AFTER")

    @rjbatch.before_perform
    def before_2(self):
        print("BEFORE 2")

    @rjbatch.after_perform
    def after_1(self):
        print("AFTER 1")

    @rjbatch.around_perform
    def around_2(self, proceed):
        print("AROUND 2 BEFORE")
        proceed()
        print("AROUND 2 AFTER")

    @rjbatch.after_perform
    def after_2(self):
        print("AFTER 2")

    def perform(self):
        print("PERFORM")
        return 23


def test_callbacks_run_in_the_documented_order(capsys):
    assert CallbackJob().perform_now() == 23
    assert capsys.readouterr().out.splitlines() == [
        "BEFORE 1", "AROUND 1 BEFORE", "BEFORE 2", "AROUND 2 BEFORE", "PERFORM",
        "AFTER 2", "AROUND 2 AFTER", "AFTER 1", "AROUND 1 AFTER",
    ]


def test_event_callbacks_send_notices_on_start_complete_fail_and_abort():
    sent = []

    class MailingJob(Job):
        email_recipients = field(list)
        should_fail = field(bool, False)

        @rjbatch.after_start
        def email_started(self):
            sent.append(("started", self.email_recipients))

        @rjbatch.after_fail
        def email_failed(self):
            sent.append(("failed", self.exception.message))

        @rjbatch.after_abort
        def email_aborted(self):
            sent.append(("aborted", None))

        @rjbatch.after_complete
        def email_completed(self):
            sent.append(("completed", None))

        def perform(self):
            if self.should_fail:
                raise RuntimeError("disk full")

    MailingJob.create(email_recipients=["ops@example.com"])
    work_next()
    failing = MailingJob.create(should_fail=True)
    work_next()
    failing.reload().abort()
    assert sent == [
        ("started", ["ops@example.com"]), ("completed", None),
        ("started", None), ("failed", "disk full"), ("aborted", None),
    ]


# -- Validations ----------------------------------------------------------------------
class LoginJob(Job):
    login = field(str, required=True)
    quantity = field(int, choices=range(1, 101))


def test_validations_presence_and_inclusion():
    job = LoginJob(quantity=500)
    assert not job.is_valid()
    assert job.errors["login"] == ["can't be blank"]
    assert job.errors["quantity"] == ["must be between 1 and 100"]
    with pytest.raises(ValidationError, match="login can't be blank"):
        job.save()
    assert LoginJob(login="joe", quantity=5).is_valid()


def test_custom_validate_method_adds_errors():
    class Window(Job):
        start_hour = field(int, 0)
        end_hour = field(int, 0)

        def validate(self):
            if self.end_hour < self.start_hour:
                self.errors.add("end_hour", "must not be before start_hour")

    with pytest.raises(ValidationError, match="end_hour must not be before start_hour"):
        Window.create(start_hour=5, end_hour=1)


# -- Exception Handling ---------------------------------------------------------------
class BrokenJob(Job):
    def perform(self):
        self.helper()

    def helper(self):
        raise KeyError("missing")


def test_exception_class_message_and_backtrace_are_kept_on_failure():
    job = BrokenJob.create()
    work_next("host:42:1")
    job.reload()
    assert job.is_failed
    assert job.exception.class_name == "KeyError"
    assert job.exception.message == "'missing'"
    assert job.exception.worker_name == "host:42:1"
    assert any("in helper" in line for line in job.exception.backtrace)
    assert job.failure_count == 1


def test_exception_class_name_is_the_full_path_for_non_builtins():
    class CustomError(Exception):
        pass

    class Raising(Job):
        def perform(self):
            raise CustomError("x")

    job = Raising()
    with pytest.raises(CustomError):
        job.perform_now()
    assert job.exception.class_name.endswith("CustomError")
    assert "." in job.exception.class_name


# -- Writing Tests --------------------------------------------------------------------
class FortyFiveJob(Job):
    destroy_on_complete = False
    collect_output = True

    def perform(self):
        print("Hello World")
        return 45


def test_writing_tests_in_memory_job_returns_45(capsys):
    report_job = FortyFiveJob()
    assert report_job.is_queued
    report_job.perform_now()
    assert report_job.is_completed, report_job.as_dict()
    assert report_job.result == {"result": 45}
    assert FortyFiveJob.count() == 0  # nothing was stored
