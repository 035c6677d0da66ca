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


@pytest.fixture(autouse=True)
def registry_snapshot():
    """Classes a test defines leave the registry with it: other tests look classes up by
    name (dirmon entries, --job), and a name two classes share is ambiguous."""
    from rjbatch.job import registry

    before = set(registry._by_path.values())
    yield registry
    # the library's own classes stay (a module imported during the test is not imported again)
    added = {cls for cls in registry._by_path.values()
             if cls not in before and not cls.__module__.startswith("rjbatch.")}
    for path in [path for path, cls in registry._by_path.items() if cls in added]:
        del registry._by_path[path]
    for classes in registry._by_name.values():
        classes[:] = [cls for cls in classes if cls not in added]


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
    from rjbatch.job import registry

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


# -- class names: two modules, one name -----------------------------------------------
REPORTS = '''
from rjbatch import Job, field


class ReportJob(Job):
    destroy_on_complete = False
    collect_output = True
    source = field(str, "{module}")

    def perform(self):
        return {{"module": "{module}"}}
'''


@pytest.fixture
def two_report_jobs(tmp_path, monkeypatch, registry_snapshot):
    """``alpha_reports.ReportJob`` and ``beta_reports.ReportJob``, imported as modules."""
    import importlib
    import sys

    for module in ("alpha_reports", "beta_reports"):
        (tmp_path / f"{module}.py").write_text(REPORTS.format(module=module))
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    alpha = importlib.import_module("alpha_reports").ReportJob
    beta = importlib.import_module("beta_reports").ReportJob
    yield alpha, beta
    for module in ("alpha_reports", "beta_reports"):
        sys.modules.pop(module, None)


def test_a_class_name_two_loaded_classes_share_is_ambiguous_naming_both(two_report_jobs):
    from rjbatch.job import registry

    with pytest.raises(registry.AmbiguousJobClass) as raised:
        registry.by_name("ReportJob")
    message = str(raised.value)
    assert "'ReportJob' is ambiguous" in message
    assert "alpha_reports.ReportJob, beta_reports.ReportJob" in message
    assert "alpha_reports:ReportJob or beta_reports:ReportJob" in message
    assert isinstance(raised.value, rjbatch.RjbatchError)


def test_a_module_qualified_name_picks_one_of_them(two_report_jobs):
    from rjbatch.job import registry

    alpha, beta = two_report_jobs
    assert registry.by_name("alpha_reports:ReportJob") is alpha
    assert registry.by_name("beta_reports.ReportJob") is beta


def test_a_name_only_one_loaded_class_has_still_resolves(registry_snapshot):
    class UniqueNameReportJob(Job):
        def perform(self):
            return None

    assert registry_snapshot.by_name("UniqueNameReportJob") is UniqueNameReportJob
    assert registry_snapshot.by_name("NoSuchClassAnywhereJob") is None


def test_stored_jobs_resolve_by_their_import_path_not_by_name(two_report_jobs):
    alpha, beta = two_report_jobs
    first, second = alpha.create(), beta.create()
    assert type(Job.find(first.id)) is alpha
    assert type(Job.find(second.id)) is beta
    assert Job.find(second.id).perform_now() == {"module": "beta_reports"}


def test_a_stored_class_that_is_not_loaded_is_found_by_name_unless_the_name_is_ambiguous(two_report_jobs):
    from rjbatch.job import registry

    alpha, beta = two_report_jobs
    # stored by a process that imported the file by path, under another module name
    assert registry.resolve("rjbatch_jobs_tmp_app_alpha_reports.ReportJob") is alpha
    assert registry.resolve("gamma_reports.ReportJob") is None  # which one? neither: not run as a namesake


def test_the_command_line_refuses_an_ambiguous_class_name(two_report_jobs, capsys):
    from rjbatch import cli

    assert cli.main(["create", "ReportJob"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("rjbatch: error: job class name 'ReportJob' is ambiguous")
    assert "alpha_reports:ReportJob or beta_reports:ReportJob" in error
    assert Job.count() == 0

    assert cli.main(["create", "beta_reports:ReportJob"]) == 0
    job_id = capsys.readouterr().out.strip()
    assert type(Job.find(job_id)) is two_report_jobs[1]


def test_the_class_filter_keeps_namesakes_of_another_module_apart(two_report_jobs):
    from rjbatch.job import registry

    alpha, beta = two_report_jobs

    class DailyReportJob(beta):  # a subclass of one of them: it belongs to beta's jobs
        pass

    a, b, daily = alpha.create(), beta.create(), DailyReportJob.create()
    ids = lambda cls: sorted(j.id for j in Job.where(registry.class_filter(cls)))  # noqa: E731
    assert ids(alpha) == [a.id]
    assert ids(beta) == sorted([b.id, daily.id])
    assert ids(DailyReportJob) == [daily.id]
    assert registry.class_filter(DailyReportJob) == {"_class": "DailyReportJob"}  # the common case: as before
    stored = {job.id: Job._store().find_job(job.id) for job in (a, b, daily)}
    assert [registry.is_kind_of(stored[j.id], alpha) for j in (a, b, daily)] == [True, False, False]
    assert [registry.is_kind_of(stored[j.id], beta) for j in (a, b, daily)] == [False, True, True]


def test_queries_and_find_on_a_class_do_not_see_a_namesake_of_another_module(two_report_jobs):
    from rjbatch import JobNotFound

    alpha, beta = two_report_jobs
    a, b = alpha.create(), beta.create()
    assert [job.id for job in alpha.where()] == [a.id] and alpha.count() == 1
    assert [job.id for job in beta.where()] == [b.id] and beta.count() == 1
    assert alpha.find(a.id).id == a.id
    with pytest.raises(JobNotFound):
        alpha.find(b.id)


def test_a_reserved_name_is_reported_as_the_job_api_not_an_internal_part():
    with pytest.raises(TypeError) as raised:
        class Timed(Job):  # noqa: F841
            seconds = field(int)

            def perform(self):
                return None
    assert "that name is Job.seconds, a property the job model uses" in str(raised.value)


def test_a_container_type_as_default_makes_a_new_container_per_job():
    class Logged(Job):
        log = field(list, default=list)

        def perform(self):
            return None

    first, second = Logged(), Logged()
    first.log.append(1)
    assert first.log == [1] and second.log == [] and first.is_valid()
