"""The job edit page: a form generated from the job class's user_editable fields."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest

from rjbatch import Job, field
from rjbatch.batch import BatchJob
from rjbatch.web import create_app
from tests.web.helpers import USERS, client, post

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


class WebEditableJob(Job):
    destroy_on_complete = False
    size = field(int, 2, user_editable=True, choices=(1, 2, 3))
    note = field(str, user_editable=True)
    urgent = field(bool, False, user_editable=True)
    options = field(dict, {}, user_editable=True)
    tags = field(list, [], user_editable=True)
    limit = field(int, user_editable=True, description="rows to take")
    wait = field(timedelta, user_editable=True)
    login = field(str)
    secret_sauce = field(str, "never shown")

    def perform(self):
        return None


@pytest.fixture
def admin():
    return client(create_app(users=USERS), ("ada", "secret"))


def controls(page: str) -> list[str]:
    return re.findall(r'name="field\.(\w+)"', page)


def edit(user, job: Job, **values: str):
    return post(user, f"/jobs/{job.id}/edit", **{f"field.{name}": value for name, value in values.items()})


def test_the_form_shows_one_control_per_editable_field_with_its_current_value(admin):
    job = WebEditableJob.create(description="nightly", size=3, note="first\nsecond", urgent=True,
                                options={"a": 1}, tags=["x", "y"], limit=7, wait=timedelta(seconds=90),
                                run_at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    page = admin.get(f"/jobs/{job.id}/edit")
    assert page.status_code == 200
    html = page.text
    assert "Edit WebEditableJob" in html
    assert controls(html) == ["description", "priority", "run_at", "log_level", "throttle_group",
                              "size", "note", "urgent", "options", "tags", "limit", "wait"]
    assert "secret_sauce" not in html and 'name="field.login"' not in html
    assert re.search(r'<select[^>]*name="field\.size"><option value=""></option>.*<option value="3" selected>', html)
    assert re.search(r'name="field\.note"[^>]*>\nfirst\nsecond</textarea>', html)
    assert re.search(r'name="field\.urgent">.*<option value="true" selected>true</option>', html)
    assert 'name="field.options" value="{&#34;a&#34;: 1}"' in html
    assert re.search(r'name="field\.tags"[^>]*>\nx\ny</textarea>', html)
    assert 'type="number" step="1" name="field.limit" value="7"' in html
    assert 'type="datetime-local" step="1" name="field.run_at" value="2030-01-02T03:04:05"' in html
    assert 'name="field.wait" value="90"' in html
    assert "rows to take" in html  # the field's description
    assert 'name="csrf_token"' in html


def test_saving_the_form_changes_the_stored_job_and_logs_the_changed_fields(admin, caplog):
    job = WebEditableJob.create(description="old", note="keep", tags=["a"])
    with caplog.at_level(logging.INFO, logger="rjbatch.web.audit"):
        response = edit(admin, job, description="new one", priority="20", size="1", urgent="true",
                        options='{"depth": 3, "names": ["a"]}', tags="b\n\n  c  \n", limit="12",
                        wait="01:00:00", run_at="2030-01-02T03:04:05", log_level="debug", note="keep")
    assert response.status_code == 303
    assert response.headers["location"] == f"/jobs/{job.id}"
    stored = WebEditableJob.find(job.id)
    assert (stored.description, stored.priority, stored.size, stored.urgent) == ("new one", 20, 1, True)
    assert stored.options == {"depth": 3, "names": ["a"]}
    assert stored.tags == ["b", "c"]
    assert (stored.limit, stored.wait, stored.log_level) == (12, timedelta(hours=1), "debug")
    assert stored.run_at == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert stored.note == "keep" and stored.secret_sauce == "never shown"
    line = next(r.getMessage() for r in caplog.records if "action=edit" in r.getMessage())
    assert f"user=ada role=admin action=edit job={job.id}" in line
    assert "note" not in line.split("fields=")[1]
    assert set(line.split("fields=")[1].split(",")) == {"description", "priority", "size", "urgent", "options",
                                                       "tags", "limit", "wait", "run_at", "log_level"}
    assert "Saved the changes" in admin.get(f"/jobs/{job.id}").text


def test_blank_saves_as_none_and_untouched_values_keep_their_precision(admin):
    run_at = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    job = WebEditableJob.create(description="old", note="text", limit=3, options={"a": 1}, tags=["a"],
                                urgent=True, run_at=run_at)
    page = admin.get(f"/jobs/{job.id}/edit").text
    shown = dict(re.findall(r'name="field\.(run_at|options)" value="([^"]*)"', page))
    response = edit(admin, job, note="", limit="", options="", tags="", urgent="",
                    run_at=shown["run_at"], description="old")
    assert response.status_code == 303
    stored = WebEditableJob.find(job.id)
    assert (stored.note, stored.limit, stored.options, stored.tags, stored.urgent) == (None, None, None, None, None)
    assert stored.run_at == run_at  # shown without its milliseconds, sent back unchanged: kept exactly


@pytest.mark.parametrize(("values", "error"), [
    ({"limit": "twelve"}, "Limit: expected an integer, got &#39;twelve&#39;"),
    ({"options": "{not json"}, "Options: is not valid JSON"),
    ({"options": "[1, 2]"}, "Options: must be a JSON object"),
    ({"size": "9"}, "Size: must be one of: 1, 2, 3"),
    ({"urgent": "maybe"}, "Urgent: must be true or false"),
    ({"wait": "soon"}, "Wait: expected a duration"),
    ({"run_at": "tomorrow"}, "Run at: expected a datetime"),
    ({"priority": "500"}, "Priority: must be between 1 and 100"),  # the job's own validation
])
def test_a_bad_value_shows_its_field_error_with_422_and_changes_nothing(admin, values, error):
    job = WebEditableJob.create(description="before", limit=3, options={"a": 1})
    response = edit(admin, job, description="after", **values)
    assert response.status_code == 422
    assert "Failed to save the changes!" in response.text
    assert error in response.text
    assert re.search(r'name="field\.description"[^>]*>\nafter</textarea>', response.text)  # what was typed
    stored = WebEditableJob.find(job.id)
    assert (stored.description, stored.priority, stored.limit, stored.options) == ("before", 50, 3, {"a": 1})
    assert stored.urgent is False and stored.wait is None and stored.run_at is None


def test_several_bad_values_give_one_line_each(admin):
    job = WebEditableJob.create()
    page = edit(admin, job, limit="x", options="{", priority="0").text
    errors = re.findall(r"<li>((?:Limit|Options|Priority):[^<]*)</li>", page)
    assert [line.split(":")[0] for line in errors] == ["Options", "Limit", "Priority"]  # the form's and the job's
    assert 'class="field field-error"' in page


def test_a_view_user_gets_no_edit_button_and_its_forged_post_is_refused():
    viewer = client(create_app(users=USERS), ("vic", "look"))
    job = WebEditableJob.create(description="mine")
    assert f"/jobs/{job.id}/edit" not in viewer.get(f"/jobs/{job.id}").text
    assert viewer.get(f"/jobs/{job.id}/edit").status_code == 403
    assert edit(viewer, job, description="hacked").status_code == 403
    assert WebEditableJob.find(job.id).description == "mine"


def test_a_user_may_edit_its_own_job_only():
    uma = client(create_app(users=USERS), ("uma", "own"))
    mine = WebEditableJob.create(login="uma", description="mine")
    theirs = WebEditableJob.create(login="bob", description="theirs")
    assert f"/jobs/{mine.id}/edit" in uma.get(f"/jobs/{mine.id}").text
    assert f"/jobs/{theirs.id}/edit" not in uma.get(f"/jobs/{theirs.id}").text
    assert uma.get(f"/jobs/{mine.id}/edit").status_code == 200
    assert uma.get(f"/jobs/{theirs.id}/edit").status_code == 403
    assert edit(uma, mine, description="changed").status_code == 303
    assert edit(uma, theirs, description="changed").status_code == 403
    assert [WebEditableJob.find(j.id).description for j in (mine, theirs)] == ["changed", "theirs"]


def test_a_manager_may_edit_any_job():
    manager = client(create_app(users=USERS), ("max", "man"))
    job = WebEditableJob.create(login="bob", description="theirs")
    assert edit(manager, job, description="managed").status_code == 303
    assert WebEditableJob.find(job.id).description == "managed"


@pytest.mark.parametrize("end", ["abort", "complete"])
def test_a_completed_or_aborted_job_is_not_edited(admin, end):
    job = WebEditableJob.create(description="done")
    if end == "abort":
        job.abort()
    else:
        job.perform_now()
    assert f"/jobs/{job.id}/edit" not in admin.get(f"/jobs/{job.id}").text
    response = admin.get(f"/jobs/{job.id}/edit", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == f"/jobs/{job.id}"
    assert edit(admin, job, description="changed").status_code == 303
    assert "cannot be edited" in admin.get(f"/jobs/{job.id}").text
    assert WebEditableJob.find(job.id).description == "done"


def test_the_edit_post_needs_the_csrf_token(admin):
    job = WebEditableJob.create(description="safe")
    admin.get(f"/jobs/{job.id}/edit")
    response = admin.post(f"/jobs/{job.id}/edit", data={"field.description": "forged"}, follow_redirects=False)
    assert response.status_code == 403
    response = admin.post(f"/jobs/{job.id}/edit", data={"field.description": "forged", "csrf_token": "x"})
    assert response.status_code == 403
    assert WebEditableJob.find(job.id).description == "safe"


def test_an_unknown_job_is_404(admin):
    assert admin.get("/jobs/000000000000000000000000/edit").status_code == 404


def test_values_are_escaped_in_the_form(admin):
    job = WebEditableJob.create(note="<script>alert(1)</script>", options={"k": "<b>"}, tags=["<i>"])
    html = admin.get(f"/jobs/{job.id}/edit").text
    assert "<script>alert" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = edit(admin, job, limit='"><script>x</script>').text
    assert "<script>x" not in page and "&#34;&gt;&lt;script&gt;x" in page


class WebCsvBatchJob(BatchJob):
    destroy_on_complete = False
    input_categories = [{"name": "main", "format": "csv"}]
    output_categories = [{"name": "main", "format": "csv", "columns": ["a", "b"]}]

    def perform(self, row):
        return row


def test_a_batch_job_edits_its_input_and_output_categories(admin):
    job = WebCsvBatchJob.create()
    page = admin.get(f"/jobs/{job.id}/edit").text
    assert "Input category <code>main</code>" in page and "Output category <code>main</code>" in page
    assert re.search(r'name="output\.main\.columns"[^>]*>\na\nb</textarea>', page)
    response = post(admin, f"/jobs/{job.id}/edit", **{
        "input.main.format": "psv", "input.main.slice_size": "250", "input.main.columns": "id\nname",
        "output.main.columns": "a\nb\nc", "output.main.format_options": '{"delimiter": ";"}'})
    assert response.status_code == 303
    stored = Job.find(job.id)
    source, target = stored.input_category("main"), stored.output_category("main")
    assert (source.format, source.slice_size, source.columns) == ("psv", 250, ["id", "name"])
    assert (target.columns, target.format, target.format_options) == (["a", "b", "c"], "csv", {"delimiter": ";"})


def test_a_bad_category_setting_names_the_category_and_changes_nothing(admin):
    job = WebCsvBatchJob.create(description="before")
    response = post(admin, f"/jobs/{job.id}/edit", **{
        "field.description": "after", "input.main.slice_size": "0", "input.main.format": "yaml",
        "output.main.format_options": "{not json"})
    assert response.status_code == 422
    assert "Input category main: Slice size: " in response.text
    assert "Input category main: Format: must be one of" in response.text
    assert "Output category main: Format options: is not valid JSON" in response.text
    stored = Job.find(job.id)
    assert stored.description == "before"
    assert (stored.input_category("main").slice_size, stored.input_category("main").format) == (100, "csv")
