"""Mission Control's refusals are pages of the site, and it has a favicon."""

from __future__ import annotations

import warnings

import pytest

from rjbatch import Job
from rjbatch.web import create_app
from tests.web.helpers import USERS, client

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


class ErrorPageJob(Job):
    def perform(self):
        return None


def test_a_refused_action_is_a_page_of_the_site_with_the_reason():
    job = ErrorPageJob.create()
    viewer = client(create_app(users=USERS), ("vic", "look"))
    token = viewer.get("/api/csrf").json()["csrf_token"]
    answer = viewer.post(f"/jobs/{job.id}/pause", data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert '<link rel="stylesheet" href="/static/style.css">' in page  # the base template
    assert "rjbatch Mission Control" in page and 'href="/servers"' in page
    assert "<h1>403 Forbidden</h1>" in page
    assert "Not allowed to" in page
    assert "vic (view)" in page
    assert "Running (" not in page  # no job counts on an error page
    job.reload()
    assert job.is_queued


def test_a_post_without_its_csrf_token_gets_the_403_page():
    job = ErrorPageJob.create()
    admin = client(create_app(users=USERS), ("ada", "secret"))
    answer = admin.post(f"/jobs/{job.id}/pause", data={}, follow_redirects=False)
    assert answer.status_code == 403
    assert "<h1>403 Forbidden</h1>" in answer.text and "Missing or invalid CSRF token" in answer.text


def test_a_remote_client_of_an_insecure_local_app_gets_the_page_but_no_identity():
    remote = TestClient(create_app(insecure_local=True), client=("10.1.2.3", 5000))
    answer = remote.get("/jobs")
    assert answer.status_code == 403
    assert "<h1>403 Forbidden</h1>" in answer.text
    assert "serves the local machine only" in answer.text
    assert "(admin)" not in answer.text and "time_zone" not in answer.text


def test_the_api_still_answers_a_refusal_with_json():
    job = ErrorPageJob.create()
    viewer = client(create_app(users=USERS), ("vic", "look"))
    token = viewer.get("/api/csrf").json()["csrf_token"]
    answer = viewer.post(f"/api/jobs/{job.id}/pause", headers={"X-CSRF-Token": token})
    assert answer.status_code == 403
    assert "error" in answer.json()


def test_favicon_is_served_and_linked_from_every_page():
    app = create_app(users=USERS)
    anonymous = TestClient(app)
    icon = anonymous.get("/favicon.ico")  # browsers ask before anyone logs in
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    svg = anonymous.get("/static/favicon.svg")
    assert svg.status_code == 200 and svg.text.lstrip().startswith("<svg")
    page = client(app, ("vic", "look")).get("/jobs").text
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    assert '<link rel="icon" href="/favicon.ico"' in page
