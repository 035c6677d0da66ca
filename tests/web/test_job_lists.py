"""The job lists and job page of Mission Control: states, sorting, paging, bulk retry, fail."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest

from rjbatch import Job, clock, field
from rjbatch.batch import BatchJob
from rjbatch.job import WorkContext, seconds_as_duration
from rjbatch.plugins.retry import Retry
from rjbatch.testing import work_all
from rjbatch.web import create_app
from tests.web.helpers import USERS, client, csrf, post
from tests.web.sample_jobs import WebBoomJob, WebNoteJob

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


class ListOtherBoomJob(Job):
    destroy_on_complete = False

    def perform(self):
        raise KeyError("other")


class ListFlakyJob(Retry, Job):
    retry_limit = 3

    def perform(self):
        raise ConnectionError("the other side hung up")


@pytest.fixture
def admin():
    return client(create_app(users=USERS), ("ada", "secret"))


def classes_in_order(html: str) -> list[str]:
    return re.findall(r'<a href="/jobs/[0-9a-f]{24}">(\w+)</a>', html)


def descriptions_in_order(html: str) -> list[str]:
    return re.findall(r"<td>(d\d)</td>", html)


def test_a_column_header_sorts_the_list_both_ways(admin):
    for priority, description in ((30, "d1"), (10, "d2"), (20, "d3")):
        WebNoteJob.create(priority=priority, description=description)
    page = admin.get("/jobs").text
    assert 'href="?sort=priority&amp;dir=asc"' in page
    assert descriptions_in_order(admin.get("/jobs?sort=priority&dir=asc").text) == ["d2", "d3", "d1"]
    descending = admin.get("/jobs?sort=priority&dir=desc").text
    assert descriptions_in_order(descending) == ["d1", "d3", "d2"]
    assert "Priority ▼" in descending
    assert descriptions_in_order(admin.get("/jobs?sort=description&dir=desc").text) == ["d3", "d2", "d1"]


def test_an_unknown_sort_column_falls_back_to_the_lists_own_order(admin):
    for description in ("d1", "d2", "d3"):
        WebNoteJob.create(description=description)
    page = admin.get("/jobs", params={"sort": "exception; DROP TABLE jobs", "dir": "sideways"})
    assert page.status_code == 200
    assert descriptions_in_order(page.text) == ["d3", "d2", "d1"]  # All: newest first
    assert Job.count() == 3


def test_scheduled_jobs_have_their_own_list_ordered_by_run_at(admin):
    WebNoteJob.create(description="d1", run_at=clock.now() + timedelta(hours=3))
    WebNoteJob.create(description="d2", run_at=clock.now() + timedelta(hours=1))
    WebNoteJob.create(description="d3")
    scheduled = admin.get("/jobs?state=scheduled").text
    assert descriptions_in_order(scheduled) == ["d2", "d1"]
    assert "Runs in" in scheduled and ("in 59 minutes" in scheduled or "in 1 hour" in scheduled)
    assert descriptions_in_order(admin.get("/jobs?state=queued").text) == ["d3"]
    assert "Scheduled (2)" in scheduled and "Queued (1)" in scheduled
    assert admin.get("/jobs?state=sleeping").status_code == 404


def test_the_page_size_and_pager_links_keep_the_search_and_sort(admin):
    for n in range(25):
        WebNoteJob.create(description=f"note {n:02d}")
    page = admin.get("/jobs?q=note&sort=description&dir=asc&per=10").text
    assert "Page 1 of 3" in page
    assert 'href="?q=note&amp;sort=description&amp;dir=asc&amp;per=10&amp;page=2"' in page
    third = admin.get("/jobs?q=note&sort=description&dir=asc&per=10&page=3").text
    assert re.findall(r"<td>(note \d\d)</td>", third) == [f"note {n}" for n in range(20, 25)]
    assert "Page 3 of 3" in admin.get("/jobs?per=10&page=99").text  # past the end: the last page
    assert admin.get("/jobs?per=7").text.count('<tr class="callout-') == 20  # not offered: default


def test_the_failed_list_retries_every_failed_job_or_one_class(admin, caplog):
    first, second = WebBoomJob.create(), WebBoomJob.create()
    other = ListOtherBoomJob.create()
    work_all()
    page = admin.get("/jobs?state=failed").text
    assert "Retry all failed jobs" in page and '<option value="WebBoomJob">WebBoomJob (2)</option>' in page
    with caplog.at_level(logging.INFO, logger="rjbatch.web.audit"):
        response = post(admin, "/jobs/retry_failed", job_class="WebBoomJob")
    assert response.status_code == 303 and response.headers["location"] == "/jobs?state=failed"
    assert [Job.find(j.id).state for j in (first, second, other)] == ["queued", "queued", "failed"]
    assert sum("action=retry" in r.getMessage() for r in caplog.records) == 2
    assert "Retried 2 failed WebBoomJob jobs" in admin.get("/jobs?state=failed").text
    post(admin, "/jobs/retry_failed")
    assert Job.find(other.id).state == "queued"


def test_bulk_retry_is_refused_to_a_viewer_and_limited_to_a_users_own_jobs():
    viewer = client(create_app(users=USERS), ("vic", "look"))
    user = client(create_app(users=USERS), ("uma", "own"))
    job = WebBoomJob.create()
    work_all()
    assert "Retry all failed jobs" not in viewer.get("/jobs?state=failed").text
    assert post(viewer, "/jobs/retry_failed").status_code == 403
    assert post(user, "/jobs/retry_failed").status_code == 303
    assert Job.find(job.id).state == "failed"
    assert "Retried 0 failed jobs; 1 could not be retried" in user.get("/jobs?state=failed").text


def test_a_manager_fails_a_job_from_its_page_and_the_exception_names_who(admin):
    manager = client(create_app(users=USERS), ("max", "man"))
    job = WebNoteJob.create()
    assert ">Fail<" in manager.get(f"/jobs/{job.id}").text
    assert ">Fail<" not in manager.get("/jobs").text  # fail and abort only on the job page
    assert post(manager, f"/jobs/{job.id}/fail").status_code == 303
    failed = Job.find(job.id)
    assert failed.state == "failed" and "by max" in failed.exception.message
    assert post(client(create_app(users=USERS), ("dina", "dir")), f"/jobs/{job.id}/abort").status_code == 403


def test_the_job_page_shows_the_retry_history(admin):
    job = ListFlakyJob.create()
    work_all()
    job = Job.find(job.id)
    assert len(job.failed_at_list) == 1
    page = admin.get(f"/jobs/{job.id}").text
    assert "Retries" in page and "Retry limit" in page and "<td>3</td>" in page
    assert page.count("ago)</small></div>") == 1


def test_auto_refresh_reloads_the_page_until_turned_off(admin):
    assert 'http-equiv="refresh"' not in admin.get("/jobs").text
    page = admin.get("/jobs?state=running&refresh=5").text
    assert '<meta http-equiv="refresh" content="5">' in page
    assert 'href="?state=running">Stop auto-refresh' in page
    assert 'content="2"' in admin.get("/jobs?refresh=1").text  # at most every 2 seconds


def test_state_changing_forms_ask_for_confirmation(admin):
    job = WebNoteJob.create()
    page = admin.get(f"/jobs/{job.id}").text
    assert 'data-confirm="Are you sure you want to pause this job?"' in page
    assert '<script src="/static/confirm.js" defer></script>' in page
    assert admin.get("/static/confirm.js").status_code == 200


def test_a_cross_site_post_is_refused_even_with_the_token(admin):
    job = WebNoteJob.create()
    response = admin.post(f"/jobs/{job.id}/pause", data={"csrf_token": csrf(admin)},
                          headers={"Sec-Fetch-Site": "cross-site"}, follow_redirects=False)
    assert response.status_code == 403
    assert Job.find(job.id).state == "queued"


class ListSettingsJob(Job):
    destroy_on_complete = False
    settings = field(dict)
    tags = field(list)
    owner = field(str)


def test_custom_fields_show_nil_and_fold_big_structures(admin):
    job = ListSettingsJob.create(settings={f"key{n}": n for n in range(12)}, tags=["a", "<b>"])
    page = admin.get(f"/jobs/{job.id}").text
    assert "<details><summary>12 keys</summary>" in page  # more than 10: folded
    assert "<details open><summary>2 items</summary>" in page and "&lt;b&gt;" in page
    assert '<th>owner</th><td><span class="empty">nil</span>' in page


class ListSlowLinesJob(BatchJob):
    destroy_on_complete = False
    slice_size = 1
    slices_per_claim = 1

    def perform(self, line):
        return None


def test_a_batch_job_shows_its_time_left_while_running_and_its_rate_once_completed(admin, frozen_clock):
    job = ListSlowLinesJob()
    job.upload([f"line {n}" for n in range(100)])
    job.save()
    job.start("web-test:1:1")
    checks = iter(range(30))
    frozen_clock.advance(minutes=10)
    job.work(WorkContext("web-test:1:1", should_stop=lambda: next(checks, None) is None,
                                          wait_for_upload=False))
    percent = Job.find(job.id).percent_complete
    assert 5 <= percent < 100
    page = admin.get(f"/jobs/{job.id}").text
    left = seconds_as_duration(600 * (100 - percent) / percent)  # at the rate so far
    assert f"<th>Est. time remaining</th><td>{left}</td>" in page
    assert "Records per hour" not in page
    work_all()
    frozen_clock.advance(minutes=10)  # 100 records in 10 minutes
    page = admin.get(f"/jobs/{job.id}").text
    assert "<th>Records per hour</th><td>600</td>" in page and "Est. time remaining" not in page


def test_times_are_shown_in_the_time_zone_chosen_for_the_session(admin, frozen_clock):
    job = WebNoteJob.create()  # created 2026-01-15 12:00 UTC
    assert "2026-01-15 12:00:00 UTC" in admin.get(f"/jobs/{job.id}").text
    response = post(admin, "/session/time_zone", time_zone="America/New_York", back=f"/jobs/{job.id}")
    assert response.status_code == 303 and response.headers["location"] == f"/jobs/{job.id}"
    page = admin.get(f"/jobs/{job.id}").text
    assert "2026-01-15 07:00:00 EST" in page and "<option selected>America/New_York</option>" in page
    post(admin, "/session/time_zone", time_zone="Mars/Olympus_Mons", back="//evil.example/")
    assert "Unknown time zone: Mars/Olympus_Mons" in admin.get("/jobs").text
    assert "2026-01-15 07:00:00 EST" in admin.get(f"/jobs/{job.id}").text  # unchanged
    assert admin.get("/session/time_zone").status_code == 405
