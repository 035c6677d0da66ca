"""What a job class definition refuses: fields that would replace part of the job model,
and ``async def`` code that no worker would ever await."""

from __future__ import annotations

import asyncio

import pytest

import rjbatch
from rjbatch import BatchJob, Job, field
from rjbatch.job import RESERVED
from rjbatch.plugins import Cron, ProcessingWindow, Restart, Retry, Singleton, ThrottleWindows
from rjbatch.tabular import TabularInput, TabularOutput


def define(name: str, bases: tuple[type, ...], **namespace):
    return type(name, bases, {"__module__": __name__, **namespace})


# -- fields --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["state", "exception", "worker_name", "failure_count", "created_at",
                                  "started_at", "completed_at", "run_at", "priority", "throttled_by"])
def test_a_standard_field_declared_again_with_another_kind_or_options_is_refused(name):
    with pytest.raises(TypeError, match=f"ShadowJob: a field cannot be named '{name}': that is the "
                                        f"standard field Job.{name}"):
        define("ShadowJob", (Job,), **{name: field(dict)})


def test_state_declared_as_a_plain_string_field_is_refused_naming_class_field_and_the_fix():
    # the bug: accepted, the job lost its default state and perform_now() did nothing
    with pytest.raises(TypeError) as raised:
        class ReportJob(Job):
            state = field(str)

            def perform(self):
                return 1
    message = str(raised.value)
    assert message.startswith("ReportJob: a field cannot be named 'state'")
    assert "Job.state" in message and "default 'queued'" in message
    assert "assign the value instead: state = ..." in message


@pytest.mark.parametrize("name", ["result", "exception", "description"])
def test_standard_fields_of_another_kind_are_refused(name):
    with pytest.raises(TypeError, match=f"cannot be named '{name}'"):
        define("ShadowJob", (Job,), **{name: field(int)})


@pytest.mark.parametrize("name", ["sub_state", "record_count", "statistics", "input_categories",
                                  "upload_owner", "destroy_on_complete"])
def test_a_batch_jobs_standard_fields_are_refused_in_a_batch_job(name):
    with pytest.raises(TypeError, match=f"cannot be named '{name}'.*BatchJob.{name}"):
        define("ShadowBatchJob", (BatchJob,), **{name: field(bytes)})


@pytest.mark.parametrize("name", ["sub_state", "record_count", "input", "output", "upload", "download",
                                  "id", "errors", "status", "slice_size", "collect_output", "pausable"])
def test_names_the_library_reads_on_any_job_are_refused_in_a_plain_job_too(name):
    # a plain job's "sub_state" of "processing" would be claimed as a batch job being processed
    with pytest.raises(TypeError, match=f"cannot be named '{name}'"):
        define("PlainShadowJob", (Job,), **{name: field(str)})


@pytest.mark.parametrize("base, name", [
    (base, name) for base in (Job, BatchJob)
    for name in sorted({n for n in dir(base) if not n.startswith("_")} | {"id", "errors"})])
def test_every_public_name_of_job_and_batch_job_is_refused_in_their_subclasses(base, name):
    """The audit: nothing public on Job or BatchJob can be taken by a new field."""
    with pytest.raises(TypeError, match=f"cannot be named '{name}'"):
        define("AuditJob", (base,), **{name: field(range)})


def test_reserved_lists_every_public_method_property_and_setting_of_job_and_batch_job():
    public = {n for cls in (Job, BatchJob) for n in dir(cls) if not n.startswith("_")}
    standard = set(Job._fields) | set(BatchJob._fields)
    assert public - standard - {"percent_complete"} <= RESERVED  # percent_complete: a Job field
    assert {"id", "errors", "sub_state", "record_count", "input", "output"} <= RESERVED


@pytest.mark.parametrize("plugin, name", [
    (Retry, "retry_count"), (Retry, "retry_limit"), (Retry, "failed_at_list"),
    (Cron, "cron_schedule"), (ProcessingWindow, "processing_schedule"),
    (ThrottleWindows, "primary_duration"), (TabularOutput, "tabular_output_header"),
])
def test_a_plugins_fields_and_methods_are_refused_in_a_class_that_mixes_it_in(plugin, name):
    with pytest.raises(TypeError, match=f"cannot be named '{name}'.*{plugin.__name__}.{name}"):
        define("PluginShadowJob", (plugin, BatchJob if plugin is TabularOutput else Job),
               **{name: field(bytes)})


def test_a_field_from_a_mixin_of_the_users_is_checked_too():
    class Tracking:
        state = field(str)  # not a job class: checked when a job class mixes it in

    with pytest.raises(TypeError, match=r"TrackedJob \(through Tracking\): a field cannot be named 'state'"):
        class TrackedJob(Tracking, Job):
            pass


def test_private_names_are_refused():
    with pytest.raises(TypeError, match="cannot be named '_secret'"):
        define("PrivateJob", (Job,), _secret=field(str))


def test_class_settings_of_standard_fields_stay_new_defaults():
    class SettingsJob(Retry, Job):
        priority = 70
        destroy_on_complete = False
        retry_limit = 3
        description = "nightly"

        def perform(self):
            return None

    job = SettingsJob()
    assert (job.priority, job.destroy_on_complete, job.retry_limit, job.description) == (70, False, 3, "nightly")


def test_declaring_a_standard_field_again_with_only_a_new_default_is_a_class_setting():
    class NightlyJob(Cron, Job):
        cron_schedule = field(str, "0 2 * * * UTC", user_editable=True, copy_on_restart=True)
        priority = field(int, 20, user_editable=True, copy_on_restart=True, description="the same field")

        def perform(self):
            return None

    job = NightlyJob()
    assert (job.cron_schedule, job.priority) == ("0 2 * * * UTC", 20)
    assert "cron_schedule" in NightlyJob.user_editable_fields()


def test_the_librarys_own_redefinitions_keep_working():
    # BatchJob declares destroy_on_complete again (default None); the plugins and the
    # built-in jobs declare their fields on top of Job's
    import rjbatch.jobs.dirmon
    import rjbatch.jobs.housekeeping
    import rjbatch.jobs.on_demand  # noqa: F401

    assert BatchJob._fields["destroy_on_complete"].default is None

    class Everything(Cron, Retry, Singleton, ThrottleWindows, TabularInput, TabularOutput, BatchJob):
        def perform(self, row):
            return row

    assert {"cron_schedule", "retry_limit", "primary_schedule", "tabular_output_header"} <= set(Everything._fields)
    assert issubclass(Everything, Restart)


def test_new_fields_and_a_users_own_fields_redeclared_in_a_subclass_are_fine():
    class BaseReport(Job):
        report_date = field(str)
        login = field(str)  # Mission Control's owner of a job

        def perform(self):
            return self.report_date

    class DailyReport(BaseReport):
        report_date = field(str, "today")

    assert DailyReport().perform_now() == "today"


def test_a_refused_class_is_not_registered():
    from rjbatch import registry

    with pytest.raises(TypeError):
        define("NeverRegisteredJob", (Job,), state=field(str))
    assert registry.by_name("NeverRegisteredJob") is None


# -- async def ------------------------------------------------------------------------
def test_an_async_perform_is_refused():
    with pytest.raises(TypeError, match=r"AsyncJob.perform is an 'async def' \(perform\).*never run"):
        class AsyncJob(Job):
            async def perform(self):
                await asyncio.sleep(0)


def test_an_async_batch_perform_is_refused():
    with pytest.raises(TypeError, match="AsyncBatchJob.perform is an 'async def'"):
        class AsyncBatchJob(BatchJob):
            async def perform(self, line):
                return line


@pytest.mark.parametrize("decorator", [rjbatch.before_perform, rjbatch.after_perform, rjbatch.after_fail,
                                       rjbatch.before_save, rjbatch.after_initialize])
def test_an_async_callback_is_refused(decorator):
    async def hook(self):
        return None

    with pytest.raises(TypeError, match=r"AsyncCallbackJob.hook is an 'async def' \(a callback\)"):
        define("AsyncCallbackJob", (Job,), hook=decorator(hook), perform=lambda self: None)


def test_an_async_generator_perform_is_refused():
    with pytest.raises(TypeError, match="is an 'async def'"):
        class StreamingJob(Job):
            async def perform(self):
                yield 1


def test_an_async_override_of_a_method_rjbatch_calls_is_refused():
    with pytest.raises(TypeError, match=r"AsyncValidateJob.validate is an 'async def' \(an override"):
        class AsyncValidateJob(Job):
            async def validate(self):
                return None


def test_an_async_perform_from_a_mixin_is_refused():
    class AsyncMixin:
        async def perform(self):
            return None

    with pytest.raises(TypeError, match="MixedJob.perform is an 'async def'"):
        class MixedJob(AsyncMixin, Job):
            pass


def test_async_helpers_that_rjbatch_never_calls_are_fine_and_perform_may_run_them():
    class FetchJob(Job):
        collect_output = True

        async def fetch(self):
            await asyncio.sleep(0)
            return 42

        def perform(self):
            return asyncio.run(self.fetch())

    job = FetchJob()
    assert job.perform_now() == 42 and job.is_completed
