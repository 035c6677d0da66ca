"""Mission Control in headless Chromium: real clicks on real pages, checked against the store."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from rjbatch import Job, clock
from rjbatch.testing import work_all
from tests.web.sample_jobs import WebBoomJob, WebNoteJob, failed_batch_job


def badge(page):
    return page.locator("h1 .badge").first


def click_action(page, label: str) -> None:
    page.locator(".toolbar").get_by_role("button", name=label, exact=True).click()


def stored_state(job: Job) -> str:
    return Job.find(job.id).state


# -- actions from the job page -------------------------------------------------------------
def test_pause_resume_abort_and_destroy_a_job_from_its_page(page, dialogs):
    job = WebNoteJob.create(description="clicked through")
    page.goto(f"/jobs/{job.id}")
    expect(badge(page)).to_have_text("queued")

    for label, expected in (("Pause", "paused"), ("Resume", "queued"), ("Abort", "aborted")):
        click_action(page, label)
        expect(badge(page)).to_have_text(expected)
        expect(page.locator(".flash-success")).to_have_text(f"{label}: done")
        assert stored_state(job) == expected
    assert dialogs.messages == [f"Are you sure you want to {verb} this job?"
                                for verb in ("pause", "resume", "abort")]

    click_action(page, "Destroy")
    expect(page).to_have_url(re.compile(r"/jobs$"))
    expect(page.locator(".flash-success")).to_have_text("Destroy: done")
    assert Job.where(id=job.id).count() == 0
    expect(page.locator("main")).not_to_contain_text("clicked through")


def test_retry_a_failed_job_from_its_page(page):
    job = WebBoomJob.create(description="boom")
    work_all()
    page.goto(f"/jobs/{job.id}")
    expect(badge(page)).to_have_text("failed")
    expect(page.locator("section.exception")).to_contain_text("the <b>bad</b> thing")

    click_action(page, "Retry")
    expect(badge(page)).to_have_text("queued")
    assert stored_state(job) == "queued"
    expect(page.locator(".toolbar").get_by_role("button", name="Retry")).to_have_count(0)


def test_cancelling_the_confirmation_changes_nothing(page, dialogs):
    job = WebNoteJob.create()
    page.goto(f"/jobs/{job.id}")
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    dialogs.accept = False
    click_action(page, "Destroy")
    assert dialogs.messages == ["Are you sure you want to destroy this job?"]
    page.reload()  # a submit that was not cancelled would have sent its POST before this
    expect(badge(page)).to_have_text("queued")
    assert posts == []
    assert stored_state(job) == "queued"


# -- failed records ----------------------------------------------------------------------
def test_fix_a_failed_record_then_retry_the_job_to_completion(login):
    job = failed_batch_job()
    page = login("ed")
    page.goto(f"/jobs/{job.id}")
    expect(page.locator(".slices-failed")).to_have_text("1")

    page.get_by_role("link", name="Failed records (1)").click()
    expect(page).to_have_url(re.compile(rf"/jobs/{job.id}/failed$"))
    record = page.locator("section.failed-record")
    expect(record).to_contain_text("cannot take 'bad'")
    expect(record.locator("textarea")).to_have_value("bad")
    record.locator("textarea").fill("good")
    record.get_by_role("button", name="Save").click()
    expect(page.locator(".flash-success")).to_contain_text("updated")
    expect(page.locator("section.failed-record textarea")).to_have_value("good")
    assert [r for r, _ in Job.find(job.id).input.failed_records()] == ["good"]

    page.locator("h1").get_by_role("link", name="WebLinesJob").click()
    expect(badge(page)).to_have_text("failed")
    click_action(page, "Retry")
    expect(badge(page)).to_have_text(re.compile("^(queued|running)$"))  # a batch job resumes running
    assert stored_state(job) in ("queued", "running")

    work_all()
    page.reload()
    expect(badge(page)).to_have_text("completed")
    job = Job.find(job.id)
    assert job.state == "completed"
    assert list(job.output("main")) == ["A", "B", "GOOD", "C", "D"]


# -- permissions and CSRF ------------------------------------------------------------------
FORGE = """async ([path, token]) => {
    const body = new URLSearchParams(token === null ? {} : {csrf_token: token});
    const response = await fetch(path, {method: "POST", body, redirect: "manual"});
    return response.status;
}"""


def test_a_view_user_sees_no_buttons_and_its_forged_posts_are_refused(login):
    job = WebBoomJob.create(description="viewed")
    work_all()
    page = login("vic")
    page.goto("/jobs")
    expect(page.locator(".who")).to_have_text("vic (view)")
    expect(page.get_by_role("link", name="WebBoomJob")).to_be_visible()
    expect(page.locator("main form[method=post]")).to_have_count(0)
    page.goto(f"/jobs/{job.id}")
    expect(badge(page)).to_have_text("failed")
    expect(page.locator("main button")).to_have_count(0)
    expect(page.locator("main form")).to_have_count(0)

    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token
    for action in ("retry", "abort", "destroy"):
        assert page.evaluate(FORGE, [f"/jobs/{job.id}/{action}", token]) == 403
    response = page.context.request.post(f"/jobs/{job.id}/retry", form={"csrf_token": token},
                                         max_redirects=0)
    assert response.status == 403
    api = page.context.request.post(f"/api/jobs/{job.id}/retry", headers={"X-CSRF-Token": token})
    assert api.status == 403
    assert stored_state(job) == "failed"


def test_a_post_without_the_csrf_token_is_refused(page):
    job = WebNoteJob.create()
    page.goto(f"/jobs/{job.id}")
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert page.evaluate(FORGE, [f"/jobs/{job.id}/pause", None]) == 403
    assert page.evaluate(FORGE, [f"/jobs/{job.id}/pause", "forged"]) == 403
    assert page.evaluate(FORGE, [f"/jobs/{job.id}/destroy", token + "x"]) == 403

    # the real button, with its hidden token taken out of the form
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    with page.expect_response(re.compile(rf"/jobs/{job.id}/pause$")) as answer:
        click_action(page, "Pause")
    assert answer.value.status == 403
    expect(page.locator("body")).to_contain_text("CSRF")
    assert stored_state(job) == "queued"


# -- the job list ------------------------------------------------------------------------
def test_search_and_page_through_the_job_list(page):
    for n in range(25):
        WebNoteJob.create(description=f"note {n}")
    WebBoomJob.create(description="the odd one")
    page.goto("/jobs")
    expect(page.locator("h1")).to_contain_text("(26)")
    expect(page.locator(".pager")).to_contain_text("Page 1 of 2")
    expect(page.locator("table.jobs tbody tr")).to_have_count(20)

    page.get_by_role("link", name="Next ›").click()
    expect(page.locator(".pager")).to_contain_text("Page 2 of 2")
    expect(page.locator("table.jobs tbody tr")).to_have_count(6)

    page.get_by_placeholder("Class or description").fill("boomjob")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"q=boomjob"))
    rows = page.locator("table.jobs tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("the odd one")
    expect(page.locator(".pager")).to_have_count(0)


def test_sort_the_job_list_by_a_column_header(page):
    for priority, name in ((30, "middle"), (10, "first"), (50, "last")):
        WebNoteJob.create(description=name, priority=priority, run_at=clock.now() + timedelta(hours=1))
    page.goto("/jobs")
    descriptions = page.locator("table.jobs tbody tr td:nth-child(2)")
    page.get_by_role("link", name="Priority").click()
    expect(page.locator("th a.sorted-asc")).to_contain_text("Priority")
    expect(descriptions).to_have_text(["first", "middle", "last"])
    page.get_by_role("link", name="Priority").click()
    expect(page.locator("th a.sorted-desc")).to_contain_text("Priority")
    expect(descriptions).to_have_text(["last", "middle", "first"])
