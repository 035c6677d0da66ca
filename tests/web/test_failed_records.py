"""Failed records of a batch job: shown reversibly, edited, filtered by exception class."""

from __future__ import annotations

import html
import re

import pytest

from rjbatch import Job
from rjbatch.batch import BatchJob
from rjbatch.testing import work_all
from rjbatch.web import create_app
from tests.web.helpers import USERS, client, post

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


class PickyLinesJob(BatchJob):
    destroy_on_complete = False
    collect_output = True
    slice_size = 1

    def perform(self, line):
        if "\x00" in line or "\t" in line:
            raise ValueError("control character in the record")
        if line.startswith("-"):
            raise KeyError("negative")
        return line


@pytest.fixture
def editor():
    return client(create_app(users=USERS), ("ed", "fix"))


def failed_job(lines: list[str]) -> PickyLinesJob:
    job = PickyLinesJob()
    job.upload(lines)
    job.save()
    work_all()
    return Job.find(job.id)


def test_control_characters_are_shown_escaped_and_an_untouched_save_keeps_the_record(editor):
    job = failed_job(["ok", "tab\there\\"])
    page = editor.get(f"/jobs/{job.id}/failed").text
    assert '<mark class="esc" title="TAB (0x09)">\\x09</mark>' in page
    shown = html.unescape(re.search(r'<textarea name="value"[^>]*>(.*?)</textarea>', page, re.S).group(1))
    assert shown == "tab\\x09here\\\\"
    slice_id = re.search(r"/failed/(\d+)/update", page).group(1)
    post(editor, f"/jobs/{job.id}/failed/{slice_id}/update", kind="text", value=shown)
    assert [r for r, _ in Job.find(job.id).input.failed_records()] == ["tab\there\\"]
    post(editor, f"/jobs/{job.id}/failed/{slice_id}/update", kind="text", value="tab here\\\\")
    post(editor, f"/jobs/{job.id}/retry")
    work_all()
    assert list(Job.find(job.id).output("main")) == ["ok", "tab here\\"]


def test_the_failed_records_can_be_shown_for_one_exception_class(editor):
    job = failed_job(["a\x00", "-1", "b"])
    page = editor.get(f"/jobs/{job.id}").text
    assert "View records" in page and "error_type=KeyError" in page
    only = editor.get(f"/jobs/{job.id}/failed", params={"error_type": "KeyError"}).text
    assert "record 2" in only and "record 1" not in only and "show all" in only
    everything = editor.get(f"/jobs/{job.id}/failed").text
    assert "record 1" in everything and "record 2" in everything


def test_roles_below_editor_see_the_exception_but_not_the_record():
    operator = client(create_app(users=USERS), ("otto", "ops"))
    job = failed_job(["secret\x00data"])
    page = operator.get(f"/jobs/{job.id}/failed").text
    assert "control character in the record" in page
    assert "secret" not in page and "shown to editors only" in page
