"""Mission Control over a real SQLite store, through Starlette's TestClient."""

from __future__ import annotations

import logging
import re
import warnings
from datetime import timedelta

import pytest

from rjbatch import Job, clock, field

with warnings.catch_warnings():  # Starlette prefers httpx2 when it is installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from rjbatch.testing import work_all
from rjbatch.web import AppError, create_app, serve
from tests.web.helpers import USERS, client, content_of, csrf, post
from tests.web.sample_jobs import WebBoomJob, WebNoteJob, failed_batch_job

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


class WebOwnedJob(Job):
    login = field(str)


@pytest.fixture
def admin():
    return client(create_app(users=USERS), ("ada", "secret"))


def test_the_job_list_shows_counts_per_state_and_searches_and_pages(admin):
    for n in range(25):
        WebNoteJob.create(description=f"note {n}")
    WebNoteJob.create(description="later", run_at=clock.now() + timedelta(hours=1))
    boom = WebBoomJob.create(description="boom")
    work_all()
    page = admin.get("/jobs")
    assert page.status_code == 200
    assert "All (27)" in page.text
    assert "Completed (25)" in page.text and "Failed (1)" in page.text
    assert "Scheduled (1)" in page.text and "Queued (0)" in page.text  # queued now vs later
    assert "Page 1 of 2" in page.text
    assert admin.get("/jobs?page=2").text.count('<tr class="callout-') == 7
    failed = admin.get("/jobs?state=failed").text
    assert boom.id in failed and "WebNoteJob" not in failed
    found = admin.get("/jobs", params={"q": "BOOMJOB"}).text  # class, any case
    assert boom.id in found and "note 3" not in found
    assert "note 13" in admin.get("/jobs", params={"q": "note 13"}).text
    assert "later" in admin.get("/jobs?state=scheduled").text
    assert "later" not in admin.get("/jobs?state=queued").text
    api = admin.get("/api/jobs?state=completed").json()
    assert api["total"] == 25 and api["counts"]["failed"] == 1 and len(api["jobs"]) == 20


def test_the_job_page_shows_details_custom_fields_and_the_exception(admin):
    job = WebBoomJob.create(description="boom")
    work_all()
    note = WebNoteJob.create(description="a note", note="custom value")
    page = admin.get(f"/jobs/{job.id}").text
    assert "ValueError" in page and "the &lt;b&gt;bad&lt;/b&gt; thing" in page
    assert "perform" in page  # the backtrace
    assert ">Retry<" in page and ">Abort<" in page and ">Destroy<" in page
    assert "custom value" in admin.get(f"/jobs/{note.id}").text
    assert admin.get("/jobs/000000000000000000000000").status_code == 404
    api = admin.get(f"/api/jobs/{job.id}").json()
    assert api["state"] == "failed" and "retry" in api["actions"]


def test_a_batch_job_page_shows_slice_counts_and_progress(admin):
    job = failed_batch_job()
    page = admin.get(f"/jobs/{job.id}").text
    assert '<span class="slices-failed">1</span>' in page
    assert '<span class="slices-completed">2</span>' in page
    assert "<progress" in page and "Failed records (1)" in page


@pytest.mark.parametrize(("start", "action", "expected"), [
    ("queued", "pause", "paused"),
    ("paused", "resume", "queued"),
    ("failed", "retry", "queued"),
    ("queued", "abort", "aborted"),
])
def test_each_action_from_the_page_changes_the_stored_job(admin, caplog, start, action, expected):
    job = (WebBoomJob if start == "failed" else WebNoteJob).create()
    if start == "failed":
        work_all()
    elif start == "paused":
        job.pause()
    assert Job.find(job.id).state == start
    assert f'action="/jobs/{job.id}/{action}"' in admin.get(f"/jobs/{job.id}").text
    with caplog.at_level(logging.INFO, logger="rjbatch.web.audit"):
        response = post(admin, f"/jobs/{job.id}/{action}")
    assert response.status_code == 303 and response.headers["location"] == f"/jobs/{job.id}"
    assert Job.find(job.id).state == expected
    assert any(f"user=ada role=admin action={action} job={job.id}" in r.getMessage() for r in caplog.records)


def test_destroy_and_run_now(admin):
    job = WebNoteJob.create(run_at=clock.now() + timedelta(hours=1))
    assert ">Run now<" in admin.get(f"/jobs/{job.id}").text
    post(admin, f"/jobs/{job.id}/run_now")
    assert Job.find(job.id).run_at is None
    response = post(admin, f"/jobs/{job.id}/destroy")
    assert response.headers["location"] == "/jobs"
    assert Job.where(id=job.id).count() == 0


def test_an_action_the_state_does_not_allow_changes_nothing(admin):
    job = WebNoteJob.create()
    response = post(admin, f"/jobs/{job.id}/retry")
    assert response.status_code == 303
    assert Job.find(job.id).state == "queued"
    assert "Could not retry" in admin.get(f"/jobs/{job.id}").text


def test_fix_a_failed_record_then_retry_the_job_to_completion():
    editor = client(create_app(users=USERS), ("ed", "fix"))
    job = failed_batch_job()
    page = editor.get(f"/jobs/{job.id}/failed").text
    assert "cannot take &#39;bad&#39;" in page and "record 3" in page
    slice_id = int(re.search(r"/failed/(\d+)/update", page).group(1))
    response = post(editor, f"/jobs/{job.id}/failed/{slice_id}/update", kind="text", value="fixed")
    assert response.status_code == 303
    assert [r for r, _ in Job.find(job.id).input.failed_records()] == ["fixed"]
    post(editor, f"/jobs/{job.id}/retry")
    work_all()
    job = Job.find(job.id)
    assert job.state == "completed"
    assert list(job.output("main")) == ["A", "B", "FIXED", "C", "D"]


def test_delete_a_failed_record_then_retry_through_the_api(admin):
    job = failed_batch_job()
    slice_id = next(job.input.slices("failed"))["id"]
    post(admin, f"/jobs/{job.id}/failed/{slice_id}/delete")
    token = csrf(admin)
    response = admin.post(f"/api/jobs/{job.id}/retry", headers={"X-CSRF-Token": token})
    assert response.status_code == 200 and response.json()["state"] in ("queued", "running")
    work_all()
    assert list(Job.find(job.id).output("main")) == ["A", "B", "C", "D"]


def test_a_view_user_sees_no_buttons_and_its_forged_posts_are_refused():
    viewer = client(create_app(users=USERS), ("vic", "look"))
    job = failed_batch_job()
    page = viewer.get(f"/jobs/{job.id}").text
    assert "<button" not in content_of(page) and "<form method=\"post\"" not in content_of(page)
    assert "<textarea" not in viewer.get(f"/jobs/{job.id}/failed").text
    assert "<button" not in content_of(viewer.get("/jobs").text).split("</form>", 1)[1]  # only the search form
    for action in ("retry", "abort", "destroy"):
        assert post(viewer, f"/jobs/{job.id}/{action}").status_code == 403
    slice_id = next(job.input.slices("failed"))["id"]
    assert post(viewer, f"/jobs/{job.id}/failed/{slice_id}/delete").status_code == 403
    response = viewer.post(f"/api/jobs/{job.id}/retry", headers={"X-CSRF-Token": csrf(viewer)})
    assert response.status_code == 403
    assert Job.find(job.id).state == "failed"
    assert [r for r, _ in Job.find(job.id).input.failed_records()] == ["bad"]


def test_a_user_may_act_on_its_own_jobs_only():
    uma = client(create_app(users=USERS), ("uma", "own"))
    mine, theirs = WebOwnedJob.create(login="uma"), WebOwnedJob.create(login="bob")
    assert ">Pause<" in uma.get(f"/jobs/{mine.id}").text
    assert ">Pause<" not in uma.get(f"/jobs/{theirs.id}").text
    assert post(uma, f"/jobs/{mine.id}/pause").status_code == 303
    assert post(uma, f"/jobs/{theirs.id}/pause").status_code == 403
    assert post(uma, f"/jobs/{mine.id}/destroy").status_code == 403
    assert [Job.find(mine.id).state, Job.find(theirs.id).state] == ["paused", "queued"]


def test_a_post_without_the_csrf_token_is_refused(admin):
    job = WebNoteJob.create()
    admin.get("/jobs")  # a session exists
    assert admin.post(f"/jobs/{job.id}/pause", follow_redirects=False).status_code == 403
    assert admin.post(f"/jobs/{job.id}/pause", data={"csrf_token": "forged"}).status_code == 403
    assert admin.post(f"/api/jobs/{job.id}/pause").status_code == 403
    other = client(create_app(users=USERS), ("ada", "secret"))
    assert other.post(f"/jobs/{job.id}/pause", data={"csrf_token": csrf(admin)}).status_code == 403
    assert Job.find(job.id).state == "queued"


def test_no_state_changes_on_get(admin):
    job = WebNoteJob.create()
    for action in ("pause", "abort", "destroy"):
        assert admin.get(f"/jobs/{job.id}/{action}").status_code == 405
        assert admin.get(f"/api/jobs/{job.id}/{action}").status_code == 405
    assert Job.find(job.id).state == "queued"


def test_descriptions_and_fields_are_escaped(admin):
    job = WebNoteJob.create(description="<script>alert(1)</script>", note="<img src=x onerror=alert(2)>")
    for path in ("/jobs", f"/jobs/{job.id}", "/jobs?q=%3Cscript%3E"):
        page = admin.get(path).text
        assert "<script>" not in page and "<img src=x" not in page
        assert "&lt;script&gt;" in page
    headers = admin.get("/jobs").headers
    assert headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in headers["content-security-policy"]


def test_authentication_is_required_and_checked():
    app = create_app(users=USERS)
    assert TestClient(app).get("/jobs").status_code == 401
    assert client(app, ("ada", "wrong")).get("/jobs").status_code == 401
    assert client(app, ("nobody", "x")).get("/api/jobs").status_code == 401
    hook = create_app(auth=lambda request: ("sso", "view") if request.headers.get("x-user") else None)
    assert TestClient(hook).get("/jobs").status_code == 401
    assert "sso (view)" in TestClient(hook).get("/jobs", headers={"x-user": "1"}).text


def test_it_refuses_to_start_without_auth_unless_insecure_local_on_loopback(monkeypatch):
    with pytest.raises(AppError):
        create_app()
    with pytest.raises(ValueError, match="unknown role"):
        create_app(users={"x": ("y", "root")})
    local = TestClient(create_app(insecure_local=True))
    assert "local (admin)" in local.get("/jobs").text
    remote = TestClient(create_app(insecure_local=True), client=("10.1.2.3", 5000))
    assert remote.get("/jobs").status_code == 403
    with pytest.raises(AppError):
        serve()
    with pytest.raises(AppError, match="127.0.0.1 only"):
        serve(host="0.0.0.0", insecure_local=True)
    started = {}
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: started.update(host=host, port=port))
    serve(insecure_local=True)
    assert started == {"host": "127.0.0.1", "port": 8080}
    serve(host="0.0.0.0", users=USERS)
    assert started["host"] == "0.0.0.0"


def test_the_servers_page_shows_heartbeat_age_and_zombies(admin):
    from rjbatch.config import get_store

    assert "No servers." in admin.get("/servers").text
    now = clock.now()
    for name, beat in (("alive:1", now - timedelta(seconds=5)), ("dead:2", now - timedelta(minutes=10))):
        get_store().save_server({"name": name, "state": "running", "max_workers": 4, "started_at": now,
                                 "heartbeat_at": beat, "heartbeat_seconds": 15, "zombie_heartbeats": 4,
                                 "hostname": name.split(":")[0], "pid": 1, "workers": []})
    page = admin.get("/servers").text
    alive, dead = page.split("alive:1", 1)[1].split("</tr>", 1)[0], page.split("dead:2", 1)[1].split("</tr>", 1)[0]
    assert "5 seconds ago" in alive and "zombie" not in alive
    assert "10 minutes ago" in dead and "zombie" in dead
