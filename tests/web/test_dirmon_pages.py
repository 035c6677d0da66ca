"""The directory monitor pages: list, show, create / edit / copy with generated properties,
enable, disable, destroy, and who may do each."""

from __future__ import annotations

import logging
import re

import pytest

from rjbatch import field
from rjbatch.batch import BatchJob
from rjbatch.jobs import DirmonEntry
from rjbatch.web import create_app
from tests.web.helpers import USERS, client, content_of, csrf, post

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


class WebDirmonImportJob(BatchJob):
    slice_size = 10
    batch_size = field(int, 10, user_editable=True, choices=(10, 100, 1000))
    mode = field(str, "fast", user_editable=True)
    strict = field(bool, False, user_editable=True)
    options = field(dict, user_editable=True)
    columns = field(list, user_editable=True)

    def perform(self, line):
        return line


class WebDirmonOtherJob(BatchJob):
    region = field(str, "eu", user_editable=True)

    def perform(self, line):
        return line


# entries saved from the web must watch a whitelisted folder (test_dirmon_rules.py)
WHITELIST = ["/data", "/elsewhere"]


@pytest.fixture
def admin():
    return client(create_app(users=USERS, dirmon_whitelist=WHITELIST), ("ada", "secret"))


@pytest.fixture
def dina():
    return client(create_app(users=USERS, dirmon_whitelist=WHITELIST), ("dina", "dir"))


def entry_form(**values: str) -> dict[str, str]:
    form = {"name": "imports", "job_class_name": "WebDirmonImportJob", "pattern": "/data/in/*.csv",
            "archive_directory": "archive", "properties_for": "WebDirmonImportJob"}
    form.update(values)
    return form


def properties(**values: str) -> dict[str, str]:
    return {f"properties.{name}": value for name, value in values.items()}


def names(page: str) -> list[str]:
    """The entry names of a list page, in order."""
    return re.findall(r'<td><a href="/dirmon/\w+">([^<]+)</a>', page)


def make_entry(name: str = "imports", state: str = "pending", **values) -> DirmonEntry:
    values.setdefault("pattern", f"/data/{name}/*.csv")
    values.setdefault("job_class_name", "WebDirmonImportJob")
    return DirmonEntry.create(name=name, state=state, **values)


def test_the_list_shows_counts_per_state_searches_and_sorts_by_name(admin):
    make_entry("zeta", "enabled", pattern="/z/" + "x" * 120)
    make_entry("alpha", "enabled", job_class_name="WebDirmonOtherJob")
    make_entry("mid", "failed")
    make_entry("paused one", "disabled")
    make_entry("new one")
    page = admin.get("/dirmon").text
    for label, n in (("All", 5), ("Pending", 1), ("Enabled", 2), ("Failed", 1), ("Disabled", 1)):
        assert f">{label} ({n})</a>" in page
    assert names(page) == ["alpha", "mid", "new one", "paused one", "zeta"]
    assert '<span class="badge state-failed">failed</span>' in page
    shown = re.search(r'<code title="/z/x+">([^<]+)</code>', page).group(1)
    assert shown == "/z/" + "x" * 76 + "…" and len(shown) == 80  # cut to 80 characters
    enabled = admin.get("/dirmon?state=enabled").text
    assert names(enabled) == ["alpha", "zeta"]
    assert 'class="active">Enabled (2)' in enabled
    by_class = admin.get("/dirmon?q=dirmonother").text
    assert names(by_class) == ["alpha"]
    by_pattern = admin.get("/dirmon", params={"q": "/data/mid/"}).text
    assert names(by_pattern) == ["mid"]
    assert "No dirmon entries." in admin.get("/dirmon?q=nothing-like-it").text
    assert admin.get("/dirmon?state=sleeping").status_code == 404
    assert 'href="/dirmon?state=enabled"' in page  # the top nav goes to the enabled entries


def test_the_api_lists_the_same_entries(admin):
    make_entry("alpha", "enabled")
    make_entry("beta")
    data = admin.get("/api/dirmon?state=enabled").json()
    assert data["counts"] == {"all": 2, "pending": 1, "enabled": 1, "failed": 0, "disabled": 0}
    assert [(e["name"], e["state"], e["job_class_name"]) for e in data["entries"]] == [
        ("alpha", "enabled", "WebDirmonImportJob")]
    assert admin.get("/api/dirmon?q=bet").json()["total"] == 1
    assert admin.get("/api/dirmon?state=nope").status_code == 404


def test_the_entry_page_shows_details_properties_and_the_exception(admin):
    entry = make_entry("broken", "enabled", properties={"batch_size": 100, "options": {"k": [1]}},
                       archive_directory="/data/done")
    entry.fail("cannot read /data/in")
    page = admin.get(f"/dirmon/{entry.id}").text
    for text in ("broken", "WebDirmonImportJob", "/data/broken/*.csv", "/data/done", entry.id,
                 "<th>batch_size</th><td><pre>100</pre>", "rjbatch.DirmonEntryException", "cannot read /data/in"):
        assert text in page
    assert "&#34;k&#34;: [" in page
    assert f'action="/dirmon/{entry.id}/disable"' in page and f'action="/dirmon/{entry.id}/enable"' not in page
    assert f'action="/dirmon/{entry.id}/destroy"' in page and 'data-confirm="Are you sure' in page
    assert f'href="/dirmon/{entry.id}/edit"' in page and f'href="/dirmon/{entry.id}/copy"' in page
    assert admin.get("/dirmon/000000000000000000000000").status_code == 404


def test_create_enable_disable_copy_edit_destroy_round_trip(admin, caplog):
    with caplog.at_level(logging.INFO, logger="rjbatch.web.audit"):
        form = admin.get("/dirmon/new").text
        assert 'name="name"' in form and 'name="job_class_name"' in form and 'name="load"' in form
        assert 'name="properties.' not in form  # no class chosen yet
        loaded = post(admin, "/dirmon/new", **entry_form(load="1", properties_for=""))
        assert loaded.status_code == 200
        assert re.findall(r'name="properties\.(\w+)"', loaded.text) == [
            "description", "priority", "log_level", "throttle_group", "throttle_running_workers",
            "batch_size", "mode", "strict", "options", "columns"]  # run_at is left out
        assert DirmonEntry.all() == []  # loading saves nothing
        created = post(admin, "/dirmon/new", **entry_form(), **properties(
            batch_size="100", mode="fast", priority="50", strict="true", options='{"sep": ";"}',
            columns="id\nname\n", description=""))
        assert created.status_code == 303
        entry = DirmonEntry.find("imports")
        assert created.headers["location"] == f"/dirmon/{entry.id}"
        # only what differs from the class defaults is stored
        assert entry.properties == {"batch_size": 100, "strict": True, "options": {"sep": ";"},
                                    "columns": ["id", "name"]}
        assert (entry.state, entry.pattern, entry.archive_directory) == ("pending", "/data/in/*.csv", "archive")

        assert post(admin, f"/dirmon/{entry.id}/enable").status_code == 303
        assert DirmonEntry.find(entry.id).state == "enabled"
        assert post(admin, f"/dirmon/{entry.id}/disable").status_code == 303
        assert DirmonEntry.find(entry.id).state == "disabled"

        copy_form = admin.get(f"/dirmon/{entry.id}/copy").text
        assert 'value="imports (copy)"' in copy_form and 'name="properties.batch_size"' in copy_form
        assert re.search(r'name="properties\.batch_size">.*<option value="100" selected>', copy_form)
        copied = post(admin, f"/dirmon/{entry.id}/copy", **entry_form(
            name="imports 2", pattern="/data/in2/*.csv"), **properties(batch_size="1000", mode="slow"))
        assert copied.status_code == 303
        copy = DirmonEntry.find("imports 2")
        assert copy.id != entry.id and copy.state == "pending"
        assert copy.properties == {"batch_size": 1000, "mode": "slow", "strict": True, "options": {"sep": ";"},
                                   "columns": ["id", "name"]}
        assert DirmonEntry.find(entry.id).properties["batch_size"] == 100  # the original is untouched

        edit_form = admin.get(f"/dirmon/{copy.id}/edit").text
        assert 'value="WebDirmonImportJob" readonly' in edit_form and 'name="job_class_name"' not in edit_form
        edited = post(admin, f"/dirmon/{copy.id}/edit", **entry_form(
            name="imports two", pattern="/data/in2/*.txt", job_class_name="WebDirmonOtherJob"),
            **properties(batch_size="10", strict="false", mode="slow", columns="id"))
        assert edited.status_code == 303
        copy = DirmonEntry.find(copy.id)
        assert (copy.name, copy.pattern, copy.job_class_name) == ("imports two", "/data/in2/*.txt", "WebDirmonImportJob")
        assert copy.properties == {"mode": "slow", "options": {"sep": ";"}, "columns": ["id"]}

        assert post(admin, f"/dirmon/{copy.id}/destroy").status_code == 303
        assert [e.name for e in DirmonEntry.all()] == ["imports"]
    actions = [re.search(r"action=(\S+)", r.getMessage()).group(1) for r in caplog.records]
    assert actions == ["dirmon_create", "dirmon_enable", "dirmon_disable", "dirmon_copy", "dirmon_update",
                       "dirmon_destroy"]
    assert all("user=ada role=admin" in r.getMessage() for r in caplog.records)


def test_loading_properties_for_an_unknown_class_says_invalid_job_class(admin):
    response = post(admin, "/dirmon/new", **entry_form(job_class_name="NoSuchJob", load="1", properties_for=""))
    assert response.status_code == 422
    assert "Invalid Job Class" in response.text and 'name="properties.' not in response.text
    response = post(admin, "/dirmon/new", **entry_form(job_class_name="NoSuchJob", properties_for=""))
    assert response.status_code == 422
    assert "Job Class: Invalid Job Class" in response.text
    assert DirmonEntry.all() == []


def test_a_class_name_typed_in_the_form_never_imports_a_module(admin):
    import sys

    assert "antigravity" not in sys.modules
    response = post(admin, "/dirmon/new", **entry_form(job_class_name="antigravity:Thing", load="1"))
    assert response.status_code == 422 and "Invalid Job Class" in response.text
    assert "antigravity" not in sys.modules


def test_changing_the_class_after_loading_shows_the_new_properties_before_saving(admin):
    response = post(admin, "/dirmon/new", **entry_form(job_class_name="WebDirmonOtherJob"),
                    **properties(batch_size="100"))
    assert response.status_code == 422
    assert "check the properties of WebDirmonOtherJob" in response.text
    assert 'name="properties.region"' in response.text and 'name="properties.batch_size"' not in response.text
    assert DirmonEntry.all() == []
    saved = post(admin, "/dirmon/new", **entry_form(job_class_name="WebDirmonOtherJob", properties_for="WebDirmonOtherJob"),
                 **properties(region="us"))
    assert saved.status_code == 303
    assert DirmonEntry.find("imports").properties == {"region": "us"}


@pytest.mark.parametrize(("values", "error"), [
    ({"name": ""}, "Name: can&#39;t be blank"),
    ({"pattern": "  "}, "Pattern: can&#39;t be blank"),
    ({"archive_directory": ""}, "Archive Directory: can&#39;t be blank"),
    ({"job_class_name": ""}, "Job Class: can&#39;t be blank"),
])
def test_a_missing_value_is_a_field_error_and_nothing_is_saved(dina, values, error):
    response = post(dina, "/dirmon/new", **entry_form(**values))
    assert response.status_code == 422
    assert "Failed to save the changes!" in response.text and error in response.text
    assert DirmonEntry.all() == []


def test_a_bad_property_is_a_field_error_and_an_edit_changes_nothing(dina):
    entry = make_entry("imports", properties={"batch_size": 100})
    response = post(dina, f"/dirmon/{entry.id}/edit", **entry_form(name="renamed"),
                    **properties(batch_size="7", options="{oops", strict="perhaps"))
    assert response.status_code == 422
    for error in ("Properties: Batch size: must be one of: 10, 100, 1000", "Properties: Options: is not valid JSON",
                  "Properties: Strict: must be true or false"):
        assert error in response.text
    assert 'value="renamed"' in response.text  # what was typed is shown again
    stored = DirmonEntry.find(entry.id)
    assert (stored.name, stored.properties) == ("imports", {"batch_size": 100})


def test_names_and_patterns_are_unique(dina):
    make_entry("imports", pattern="/data/in/*.csv")
    taken = post(dina, "/dirmon/new", **entry_form(pattern="/elsewhere/*"))
    assert taken.status_code == 422 and "Name: has already been taken" in taken.text
    watched = post(dina, "/dirmon/new", **entry_form(name="second"))
    assert watched.status_code == 422 and "already watches" in watched.text
    assert [e.name for e in DirmonEntry.all()] == ["imports"]


def test_an_action_the_state_does_not_allow_changes_nothing(dina):
    entry = make_entry("on", "enabled")
    response = post(dina, f"/dirmon/{entry.id}/enable")
    assert response.status_code == 303
    assert "Cannot enable a dirmon entry that is enabled" in dina.get(f"/dirmon/{entry.id}").text
    assert DirmonEntry.find(entry.id).state == "enabled"
    assert post(dina, f"/dirmon/{entry.id}/explode").status_code == 404
    assert dina.get(f"/dirmon/{entry.id}/enable").status_code == 405


def test_a_dirmon_user_manages_entries_but_only_an_admin_destroys(dina):
    entry = make_entry("imports")
    page = dina.get(f"/dirmon/{entry.id}").text
    assert f'action="/dirmon/{entry.id}/enable"' in page and f'href="/dirmon/{entry.id}/edit"' in page
    assert f'action="/dirmon/{entry.id}/destroy"' not in page
    assert 'href="/dirmon/new"' in dina.get("/dirmon").text
    assert post(dina, f"/dirmon/{entry.id}/destroy").status_code == 403
    assert post(dina, f"/dirmon/{entry.id}/enable").status_code == 303
    assert DirmonEntry.find(entry.id).state == "enabled"


@pytest.mark.parametrize(("user", "password"), [("uma", "own"), ("vic", "look")])
def test_weaker_roles_only_read(user, password):
    weak = client(create_app(users=USERS), (user, password))
    entry = make_entry("imports", properties={"batch_size": 100})
    assert weak.get("/dirmon").status_code == 200
    page = weak.get(f"/dirmon/{entry.id}").text
    assert "imports" in page and "<button" not in content_of(page)
    assert f"/dirmon/{entry.id}/edit" not in page and 'href="/dirmon/new"' not in page
    for path in ("/dirmon/new", f"/dirmon/{entry.id}/edit", f"/dirmon/{entry.id}/copy"):
        assert weak.get(path).status_code == 403
    assert post(weak, "/dirmon/new", **entry_form(name="other", pattern="/x/*")).status_code == 403
    assert post(weak, f"/dirmon/{entry.id}/edit", **entry_form(name="hacked")).status_code == 403
    assert post(weak, f"/dirmon/{entry.id}/copy", **entry_form(name="other", pattern="/x/*")).status_code == 403
    for action in ("enable", "disable", "destroy"):
        assert post(weak, f"/dirmon/{entry.id}/{action}").status_code == 403
    assert [(e.name, e.state) for e in DirmonEntry.all()] == [("imports", "pending")]


def test_dirmon_posts_need_the_csrf_token(admin):
    entry = make_entry("imports")
    admin.get("/dirmon")
    assert admin.post(f"/dirmon/{entry.id}/enable", follow_redirects=False).status_code == 403
    assert admin.post(f"/dirmon/{entry.id}/destroy", data={"csrf_token": "forged"}).status_code == 403
    assert admin.post("/dirmon/new", data=entry_form(name="other", pattern="/x/*")).status_code == 403
    other = client(create_app(users=USERS), ("ada", "secret"))
    assert other.post(f"/dirmon/{entry.id}/enable", data={"csrf_token": csrf(admin)}).status_code == 403
    assert [(e.name, e.state) for e in DirmonEntry.all()] == [("imports", "pending")]


def test_entry_values_are_escaped_everywhere(admin):
    entry = make_entry("<script>alert(1)</script>", "enabled", pattern="/in/<b>*.csv",
                       properties={"mode": "<i>slow</i>"})
    entry.fail("<img src=x onerror=alert(2)>")
    for path in ("/dirmon", f"/dirmon/{entry.id}", f"/dirmon/{entry.id}/edit", f"/dirmon/{entry.id}/copy"):
        html = admin.get(path).text
        assert "<script>alert" not in html and "<b>" not in html and "<i>" not in html and "<img" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    post(admin, f"/dirmon/{entry.id}/disable")
    assert "Disable: &lt;script&gt;" in admin.get(f"/dirmon/{entry.id}").text  # the flash too
