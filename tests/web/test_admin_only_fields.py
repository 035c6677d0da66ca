"""Code a worker runs (a class's ``admin_only_fields``, OnDemandJob.code) is set from
Mission Control by an admin only: the job edit form, the JSON API, dirmon entries."""

from __future__ import annotations

import logging
import re
from typing import ClassVar

import pytest

from rjbatch import Job, field
from rjbatch.jobs import DirmonEntry, OnDemandBatchJob, OnDemandJob
from rjbatch.jobs.dirmon import UploadFileJob
from rjbatch.web import create_app, security
from tests.web.helpers import USERS, client, csrf, post

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

WHITELIST = ["/data"]


class WebScriptedJob(OnDemandJob):
    """A subclass adds a protected field of its own; it cannot drop its parent's."""

    admin_only_fields: ClassVar[frozenset[str]] = frozenset({"shell"})
    shell = field(str, user_editable=True)


class WebPlainJob(Job):
    admin_only_fields: ClassVar[frozenset[str]] = frozenset({"sql"})
    sql = field(str, user_editable=True)
    note = field(str, user_editable=True)

    def perform(self):
        return None


def app():
    return create_app(users=USERS, dirmon_whitelist=WHITELIST)


@pytest.fixture
def admin():
    return client(app(), ("ada", "secret"))


@pytest.fixture
def manager():
    return client(app(), ("max", "man"))


@pytest.fixture
def dina():
    return client(app(), ("dina", "dir"))


def controls(page: str, prefix: str = "field") -> list[str]:
    return re.findall(rf'name="{prefix}\.(\w+)"', page)


def edit(user, job: Job, **values: str):
    return post(user, f"/jobs/{job.id}/edit", **{f"field.{name}": value for name, value in values.items()})


def api_post(user, path: str, body):
    return user.post(path, json=body, headers={"X-CSRF-Token": csrf(user)})


def refusals(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "refused" in r.getMessage()]


# -- declaring ----------------------------------------------------------------------------
def test_the_protected_fields_are_declared_on_the_class_and_joined_over_the_mro():
    assert security.admin_only_fields(OnDemandJob) == {"code"}
    assert security.admin_only_fields(OnDemandBatchJob) == {"code", "before_code", "after_code"}
    assert security.admin_only_fields(WebScriptedJob) == {"code", "shell"}
    assert security.admin_only_fields(UploadFileJob) == {"job_class_name", "properties"}
    assert security.admin_only_fields(Job) == frozenset()
    assert security.fields_refused("editor", WebScriptedJob, ["shell", "priority", "code"]) == ["code", "shell"]
    assert security.fields_refused("admin", WebScriptedJob, ["shell", "code"]) == []
    assert security.fields_refused(None, WebPlainJob, ["sql"]) == ["sql"]


# -- the job edit form ----------------------------------------------------------------------
def test_a_manager_sees_no_code_field_and_edits_the_rest(manager):
    job = OnDemandJob.create(code="data['n'] = 1", description="nightly")
    page = manager.get(f"/jobs/{job.id}/edit").text
    assert "code" not in controls(page) and "description" in controls(page)
    assert "Only an admin may change code" in page
    assert "data[&#39;n&#39;] = 1" not in page.split("<form", 1)[1]  # the code is not on the form
    saved = edit(manager, job, description="renamed", priority="7")
    assert saved.status_code == 303
    stored = Job.find(job.id)
    assert (stored.description, stored.priority, stored.code) == ("renamed", 7, "data['n'] = 1")


@pytest.mark.parametrize(("user", "password"), [("max", "man"), ("ed", "fix"), ("otto", "ops")])
def test_a_forged_code_field_is_refused_with_403_and_audited(user, password, caplog):
    weaker = client(app(), (user, password))
    job = OnDemandJob.create(code="data['n'] = 1")
    with caplog.at_level(logging.INFO, logger="rjbatch.web.audit"):
        response = edit(weaker, job, code="import os; os.system('id')", description="x")
    assert response.status_code == 403
    assert "Only an admin may set code of OnDemandJob" in response.text
    stored = Job.find(job.id)
    assert (stored.code, stored.description) == ("data['n'] = 1", "On Demand Job")  # nothing changed
    [line] = refusals(caplog)
    assert f"user={user}" in line and "action=edit" in line and f"job={job.id}" in line
    assert "fields=code" in line and "client=testclient" in line


def test_a_user_editing_its_own_job_cannot_set_code_either():
    uma = client(app(), ("uma", "own"))

    class WebOwnedScript(OnDemandJob):
        login = field(str)

    job = WebOwnedScript.create(code="data['n'] = 1", login="uma")
    assert "code" not in controls(uma.get(f"/jobs/{job.id}/edit").text)
    assert edit(uma, job, code="data['n'] = 2").status_code == 403
    assert edit(uma, job, description="mine").status_code == 303
    assert Job.find(job.id).code == "data['n'] = 1"


def test_an_admin_sees_and_changes_the_code(admin, caplog):
    job = OnDemandBatchJob.create(code="return row", before_code="data['n'] = 0")
    page = admin.get(f"/jobs/{job.id}/edit").text
    assert {"code", "before_code", "after_code"} <= set(controls(page))
    assert "Only an admin may change" not in page
    with caplog.at_level(logging.INFO, logger="rjbatch.web.audit"):
        response = edit(admin, job, code="return row.upper()", after_code="data['done'] = True")
    assert response.status_code == 303
    stored = Job.find(job.id)
    assert (stored.code, stored.after_code) == ("return row.upper()", "data['done'] = True")
    assert any("action=edit" in r.getMessage() and "fields=code,after_code" in r.getMessage()
               for r in caplog.records)


def test_a_subclass_protects_its_own_fields_and_keeps_its_parents(manager, admin):
    job = WebScriptedJob.create(code="data['n'] = 1", shell="ls")
    assert not {"code", "shell"} & set(controls(manager.get(f"/jobs/{job.id}/edit").text))
    assert edit(manager, job, shell="rm -rf /").status_code == 403
    plain = WebPlainJob.create(sql="select 1", note="n")
    assert controls(manager.get(f"/jobs/{plain.id}/edit").text)[-1] == "note"
    assert edit(manager, plain, sql="drop table jobs").status_code == 403
    assert edit(admin, plain, sql="select 2").status_code == 303
    assert Job.find(plain.id).sql == "select 2"


def test_an_upload_file_jobs_class_and_properties_are_admin_only(manager, tmp_path):
    data = tmp_path / "in.csv"
    data.write_text("a\n")
    job = UploadFileJob.create(job_class_name="OnDemandBatchJob", properties={"code": "return row"},
                               upload_file_name=str(data))
    page = manager.get(f"/jobs/{job.id}/edit").text
    assert not {"job_class_name", "properties"} & set(controls(page))
    response = edit(manager, job, properties='{"code": "import os"}')
    assert response.status_code == 403
    assert Job.find(job.id).properties == {"code": "return row"}


# -- the JSON API --------------------------------------------------------------------------
def test_the_api_edits_fields_and_refuses_code_to_a_manager(manager, admin, caplog):
    job = OnDemandJob.create(code="data['n'] = 1")
    with caplog.at_level(logging.INFO, logger="rjbatch.web.audit"):
        refused = api_post(manager, f"/api/jobs/{job.id}/edit", {"code": "import os", "priority": 3})
    assert refused.status_code == 403
    assert refused.json() == {"error": "Only an admin may set code of OnDemandJob: it is code that a worker runs"}
    assert Job.find(job.id).priority == 50
    assert any("fields=code" in line and "user=max" in line for line in refusals(caplog))

    done = api_post(manager, f"/api/jobs/{job.id}/edit", {"priority": "3", "description": "api"})
    assert done.status_code == 200 and done.json() == {"id": job.id, "changed": ["priority", "description"]}
    assert (Job.find(job.id).priority, Job.find(job.id).description) == (3, "api")

    bad = api_post(manager, f"/api/jobs/{job.id}/edit", {"priority": 500, "nope": 1})
    assert bad.status_code == 422 and set(bad.json()["errors"]) == {"priority", "nope"}
    syntax = api_post(admin, f"/api/jobs/{job.id}/edit", {"code": "data['x'] = ("})
    assert syntax.status_code == 422 and "Failed to parse :code" in syntax.json()["errors"]["code"][0]
    ok = api_post(admin, f"/api/jobs/{job.id}/edit", {"code": "data['n'] = 2"})
    assert ok.status_code == 200 and Job.find(job.id).code == "data['n'] = 2"


def test_the_api_edit_needs_the_csrf_token_and_the_role(manager):
    job = OnDemandJob.create(code="data['n'] = 1")
    assert manager.post(f"/api/jobs/{job.id}/edit", json={"priority": 3}).status_code == 403
    viewer = client(app(), ("vic", "look"))
    assert api_post(viewer, f"/api/jobs/{job.id}/edit", {"priority": 3}).status_code == 403
    assert api_post(manager, "/api/jobs/000000000000000000000000/edit", {}).status_code == 404
    assert api_post(manager, f"/api/jobs/{job.id}/edit", [1]).status_code == 400
    assert Job.find(job.id).priority == 50


# -- dirmon entries -------------------------------------------------------------------------
def entry_form(**values: str) -> dict[str, str]:
    form = {"name": "scripted", "job_class_name": "OnDemandBatchJob", "pattern": "/data/in/*.csv",
            "archive_directory": "archive", "properties_for": "OnDemandBatchJob"}
    form.update(values)
    return form


def test_a_dirmon_user_sees_no_code_property_and_a_forged_one_is_refused(dina, caplog):
    loaded = post(dina, "/dirmon/new", **entry_form(load="1", properties_for=""))
    assert loaded.status_code == 200
    assert not {"code", "before_code", "after_code"} & set(controls(loaded.text, "properties"))
    assert "Only an admin may set the properties" in loaded.text
    with caplog.at_level(logging.INFO, logger="rjbatch.web.audit"):
        forged = post(dina, "/dirmon/new", **entry_form(), **{"properties.code": "import os; os.system('id')"})
    assert forged.status_code == 403 and "Only an admin may set code of OnDemandBatchJob" in forged.text
    assert DirmonEntry.all() == []
    [line] = refusals(caplog)
    assert "user=dina" in line and "action=dirmon_create" in line and "fields=code" in line


def test_an_admin_gives_an_entry_code_and_a_dirmon_user_may_not_change_or_copy_it(admin, dina):
    created = post(admin, "/dirmon/new", **entry_form(), **{"properties.code": "return row"})
    assert created.status_code == 303
    entry = DirmonEntry.find("scripted")
    assert entry.properties == {"code": "return row"}

    # an edit that leaves the code alone is fine; the code stays
    renamed = post(dina, f"/dirmon/{entry.id}/edit", **entry_form(name="renamed"), **{"properties.priority": "20"})
    assert renamed.status_code == 303
    assert DirmonEntry.find(entry.id).properties == {"code": "return row", "priority": 20}
    # changing it is not
    assert post(dina, f"/dirmon/{entry.id}/edit", **entry_form(name="renamed"),
                **{"properties.code": "import os"}).status_code == 403
    # a copy would set that code on a new entry: refused, the page as well as the post
    assert dina.get(f"/dirmon/{entry.id}/copy").status_code == 403
    copy = post(dina, f"/dirmon/{entry.id}/copy", **entry_form(name="copied", pattern="/data/other/*"))
    assert copy.status_code == 403
    assert [e.name for e in DirmonEntry.all()] == ["renamed"]
    # the admin may copy it
    assert admin.get(f"/dirmon/{entry.id}/copy").status_code == 200
    assert post(admin, f"/dirmon/{entry.id}/copy", **entry_form(name="copied", pattern="/data/other/*"),
                **{"properties.code": "return row"}).status_code == 303
    assert DirmonEntry.find("copied").properties == {"code": "return row", "priority": 20}


def test_the_dirmon_api_applies_the_same_rule(dina, admin):
    body = {"name": "api", "job_class_name": "OnDemandBatchJob", "pattern": "/data/api/*.csv",
            "properties": {"code": "return row", "priority": 20}}
    refused = api_post(dina, "/api/dirmon", body)
    assert refused.status_code == 403 and "Only an admin may set code" in refused.json()["error"]
    assert DirmonEntry.all() == []
    created = api_post(admin, "/api/dirmon", body)
    assert created.status_code == 201, created.text
    entry = created.json()
    assert entry["properties"] == {"code": "return row", "priority": 20} and entry["state"] == "pending"
    assert api_post(dina, f"/api/dirmon/{entry['id']}/edit",
                    {"properties": {"after_code": "data['x'] = 1"}}).status_code == 403
    assert api_post(dina, f"/api/dirmon/{entry['id']}/copy", {"name": "api2", "pattern": "/data/b/*"}).status_code == 403
    edited = api_post(dina, f"/api/dirmon/{entry['id']}/edit", {"name": "api renamed", "properties": {"priority": 30}})
    assert edited.status_code == 200 and edited.json()["properties"] == {"code": "return row", "priority": 30}
    plain = api_post(dina, "/api/dirmon", {**body, "name": "plain", "pattern": "/data/plain/*", "properties": {}})
    assert plain.status_code == 201
    bad = api_post(dina, "/api/dirmon", {**body, "name": "", "pattern": "/data/x/*", "properties": {"priority": "high"}})
    assert bad.status_code == 422 and {"name", "properties.priority"} <= set(bad.json()["errors"])
