"""What a type checker sees of job fields and queries: checked by tests/test_typing.py.

Never run (its checks sit under ``if TYPE_CHECKING``) nor collected by pytest. Every line
that ends with ``# error: CODE`` must be a mypy error with that code; every other line
must type-check. ``assert_type`` fails unless the type is exactly the one given.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any, assert_type

from bson import ObjectId

from rjbatch import BatchJob as LazyBatchJob  # the lazy top-level name
from rjbatch import Job, Result, field
from rjbatch.batch import BatchJob
from rjbatch.job.exception import JobException
from rjbatch.job.fields import Field
from rjbatch.job.query import Query
from rjbatch.plugins import Cron, Retry
from rjbatch.tabular import TabularInput, TabularOutput


class ReportJob(Job):
    destroy_on_complete = False          # a class-level setting: a new default
    collect_output = True
    priority = 20
    user_count = field(int, default=0)
    report_date = field(dt.date)
    region = field(str, default="EMEA", user_editable=True)
    code = field(str, required=True)
    ratio = field(float, 0.5)
    amount = field(Decimal, Decimal("0"))
    flag = field(bool, None)
    tags = field(list, [])
    settings = field(dict, {})
    window = field(dt.timedelta)
    blob = field(bytes)
    ref = field(ObjectId)
    rows = field(range)
    pattern = field(re.Pattern)
    anything = field()
    today = field(dt.date, default=lambda: dt.date.today())
    label = field(str, default=lambda job: "new" if job.is_new_record else "old")

    def perform(self) -> dict[str, int]:
        self.user_count += 1
        return {"calculation": self.user_count * 1000}


class ComputedJob(Job):
    base = field(int, 1)
    double = field(int, default=lambda job: job.base * 2)  # evaluated per job


class OtherJob(Job):
    pass


class BadDefaultJob(Job):
    priority = "high"  # error: assignment


class TotalsJob(BatchJob):
    slice_size = 500
    output_categories = ["main", "invalid"]

    def perform(self, line: str) -> str:
        return line[::-1]


if TYPE_CHECKING:
    job = ReportJob()

    # -- reading fields: their kind, with None only where the default is None ---------------
    count: int = job.user_count
    assert_type(job.user_count, int)
    assert_type(job.report_date, dt.date | None)
    assert_type(job.region, str)
    assert_type(job.code, str)              # required: every saved job has one
    assert_type(job.ratio, float)
    assert_type(job.amount, Decimal)
    assert_type(job.flag, bool | None)
    assert_type(job.tags, list[Any])
    assert_type(job.settings, dict[Any, Any])
    assert_type(job.window, dt.timedelta | None)
    assert_type(job.blob, bytes | None)
    assert_type(job.ref, ObjectId | None)
    assert_type(job.rows, range | None)
    assert_type(job.pattern, re.Pattern[Any] | None)
    assert_type(job.today, dt.date)          # a callable default
    assert_type(job.label, str)              # a callable default that takes the job
    assert_type(ComputedJob().double, int)
    assert_type(job.anything, Any)

    # the standard fields
    assert_type(job.priority, int)
    assert_type(job.state, str)
    assert_type(job.description, str | None)
    assert_type(job.run_at, dt.datetime | None)
    assert_type(job.created_at, dt.datetime)
    assert_type(job.failure_count, int)
    assert_type(job.destroy_on_complete, bool)
    assert_type(job.exception, JobException | None)
    assert_type(job.result, dict[Any, Any] | None)
    batch = TotalsJob()
    assert_type(batch.record_count, int | None)
    assert_type(batch.input_categories, list[Any])

    # on the class: the default, or the field itself when the default is a callable
    assert_type(ReportJob.user_count, int | Field[int] | None)

    wrong: str = job.user_count  # error: assignment
    job.user_count.upper()  # error: attr-defined
    job.report_date.isoformat()  # error: union-attr

    # -- assigning fields: a value of the kind, or one coercion turns into it ---------------
    job.user_count = 5
    job.user_count = "12"
    job.user_count = 2.0
    job.report_date = dt.date(2024, 1, 31)
    job.report_date = "2024-01-31"
    job.report_date = None
    job.run_at = "2024-01-31T01:00:00Z"
    job.run_at = dt.datetime(2024, 1, 31, tzinfo=dt.UTC)
    job.ratio = 1
    job.amount = "12.50"
    job.flag = "yes"
    job.tags = ("a", "b")
    job.settings = {"a": 1}
    job.window = 90
    job.window = "01:30:00"
    job.blob = bytearray(b"x")
    job.ref = "5f0c3b2e9d1e8a0012345678"
    job.rows = [1, 10]
    job.pattern = r"\d+"
    job.exception = JobException.from_message("boom")
    job.anything = object()

    job.user_count = None  # error: call-overload
    job.user_count = [1]  # error: call-overload
    job.priority = None  # error: assignment
    job.settings = [1]  # error: assignment
    job.report_date = 5  # error: call-overload
    job.exception = "boom"  # error: assignment

    # -- queries: typed by the class they are called on -----------------------------------
    assert_type(ReportJob.query(), Query[ReportJob])
    assert_type(ReportJob.where(user_count=1), Query[ReportJob])
    first: ReportJob | None = ReportJob.where(user_count=1).first()
    assert_type(ReportJob.where(user_count__gte=5).order_by("-priority").first(), ReportJob | None)
    assert_type(ReportJob.where(region="EMEA").limit(5).skip(1).last(), ReportJob | None)
    assert_type(ReportJob.where(user_count=1).all(), list[ReportJob])
    for found in ReportJob.where({"state": "queued"}).where(priority__lte=25):
        assert_type(found, ReportJob)
        assert_type(found.user_count, int)
    assert_type(ReportJob.queued(), Query[ReportJob])
    assert_type(ReportJob.failed().scheduled().queued_now(), Query[ReportJob])
    assert_type(ReportJob.running().completed().aborted().paused(), Query[ReportJob])
    assert_type(ReportJob.find("5f0c3b2e9d1e8a0012345678"), ReportJob)
    assert_type(ReportJob.create(priority=20, code="x"), ReportJob)
    assert_type(ReportJob.first(), ReportJob | None)
    assert_type(ReportJob.last(), ReportJob | None)
    assert_type(ReportJob.all(), list[ReportJob])
    assert_type(ReportJob.where(user_count=1).count(), int)
    assert_type(Job.failed().first(), Job | None)
    assert_type(TotalsJob.where(sub_state="processing").first(), TotalsJob | None)
    assert_type(ReportJob.find("5f0c3b2e9d1e8a0012345678").reload(), ReportJob)

    other: OtherJob | None = ReportJob.where(user_count=1).first()  # error: assignment
    surely: ReportJob = ReportJob.where(user_count=1).first()  # error: assignment
    ReportJob.where(user_count=1).first().reload()  # error: union-attr


# plugin and tabular mixins: their own code, and a user class mixing them in, type-check


class NightlyJob(Cron, Retry, Job):
    cron_schedule = "0 1 * * * UTC"
    runs = field(int, default=0)

    def perform(self) -> None:
        self.runs += 1
        when: dt.datetime | None = self.run_at  # noqa: F841


class RowsJob(TabularInput, TabularOutput, LazyBatchJob):
    def perform(self, row: dict[str, Any]) -> dict[str, Any] | Result:
        return row


if TYPE_CHECKING:
    assert_type(NightlyJob().runs, int)
    assert_type(RowsJob.where(state="queued").first(), RowsJob | None)
