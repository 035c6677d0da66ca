"""Dirmon entries saved from Mission Control watch whitelisted folders only."""

from __future__ import annotations

import logging
import os

import pytest

import rjbatch
from rjbatch import cli, config
from rjbatch.batch import BatchJob
from rjbatch.jobs import DirmonEntry
from rjbatch.jobs.dirmon import confining_folder
from rjbatch.web import create_app
from tests.web.helpers import USERS, client, csrf, post

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


class WebWatchedJob(BatchJob):
    def perform(self, line):
        return line


@pytest.fixture
def folders(tmp_path):
    """An inbox under the whitelisted folder, a secret folder beside it, and a symlink
    inside the inbox that leads to the secrets."""
    allowed = tmp_path / "allowed"
    inbox = allowed / "inbox"
    secrets = tmp_path / "secrets"
    inbox.mkdir(parents=True)
    secrets.mkdir()
    (secrets / "passwd.csv").write_text("root\n")
    (allowed / "escape").symlink_to(secrets)
    return {"allowed": str(allowed), "inbox": str(inbox), "secrets": str(secrets), "tmp": str(tmp_path)}


@pytest.fixture(autouse=True)
def no_setting(monkeypatch):
    monkeypatch.delenv("RJBATCH_DIRMON_WHITELIST", raising=False)
    yield
    config.settings.dirmon_whitelist = config.PathList()


def entry_form(pattern: str, **values: str) -> dict[str, str]:
    return {"name": "watched", "job_class_name": "WebWatchedJob", "pattern": pattern,
            "archive_directory": "archive", "properties_for": "WebWatchedJob", **values}


def dina(whitelist=None):
    return client(create_app(users=USERS, dirmon_whitelist=whitelist), ("dina", "dir"))


def test_a_pattern_must_resolve_into_a_whitelisted_folder(folders):
    allowed = [folders["allowed"]]
    real_allowed = os.path.realpath(folders["allowed"])
    assert confining_folder(folders["inbox"] + "/*.csv", allowed) == real_allowed
    assert confining_folder(folders["allowed"] + "/**/*.csv", allowed) == real_allowed
    assert confining_folder(folders["allowed"], allowed) == real_allowed
    for pattern, message in [
        ("/etc/*.conf", "is not under a whitelisted folder"),
        (folders["allowed"] + "/../secrets/*.csv", "may not contain '..'"),
        (folders["inbox"] + "/*/../../../secrets/*", "may not contain '..'"),
        (folders["allowed"] + "/escape/*.csv", "is not under a whitelisted folder"),  # a symlink out
        (folders["allowed"] + "-other/*.csv", "is not under a whitelisted folder"),  # a prefix is not a folder
        ("inbox/*.csv", "must be an absolute path"),
        ("*.csv", "must be an absolute path"),
    ]:
        with pytest.raises(ValueError, match=message):
            confining_folder(pattern, allowed)
    with pytest.raises(ValueError, match="no dirmon whitelist is configured"):
        confining_folder(folders["inbox"] + "/*.csv", [])
    # the whitelist itself is resolved: a symlinked whitelist folder means its target
    assert confining_folder(folders["secrets"] + "/*.csv", [folders["allowed"] + "/escape"]) == \
        os.path.realpath(folders["secrets"])


def test_the_form_refuses_a_pattern_outside_with_422_and_an_audit_line(folders, caplog):
    user = dina([folders["allowed"]])
    with caplog.at_level(logging.INFO, logger="rjbatch.web.audit"):
        response = post(user, "/dirmon/new", **entry_form("/etc/*.conf"))
    assert response.status_code == 422
    assert "Pattern: /etc is not under a whitelisted folder" in response.text
    assert DirmonEntry.all() == []
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "refused user=dina" in line and "pattern='/etc/*.conf'" in line and "reason=not-whitelisted" in line
    escaped = post(user, "/dirmon/new", **entry_form(folders["allowed"] + "/escape/*.csv"))
    assert escaped.status_code == 422 and "is not under a whitelisted folder" in escaped.text
    archive = post(user, "/dirmon/new", **entry_form(folders["inbox"] + "/*.csv", archive_directory="/etc/cron.d"))
    assert archive.status_code == 422 and "Archive Directory: /etc/cron.d is not under" in archive.text
    climbing = post(user, "/dirmon/new", **entry_form(folders["inbox"] + "/*.csv", archive_directory="../../x"))
    assert climbing.status_code == 422 and "may not contain" in climbing.text
    assert DirmonEntry.all() == []
    created = post(user, "/dirmon/new", **entry_form(folders["inbox"] + "/*.csv"))
    assert created.status_code == 303
    assert DirmonEntry.find("watched").confined_to == os.path.realpath(folders["allowed"])


def test_an_edit_and_a_copy_are_checked_too(folders):
    user = dina([folders["allowed"]])
    entry = DirmonEntry.create(name="old", pattern="/var/spool/*.csv", job_class_name="WebWatchedJob")
    kept = post(user, f"/dirmon/{entry.id}/edit", **entry_form("/var/spool/*.csv", name="old"))
    assert kept.status_code == 422 and "is not under a whitelisted folder" in kept.text
    assert post(user, f"/dirmon/{entry.id}/copy", **entry_form("/var/spool/x/*.csv", name="c")).status_code == 422
    moved = post(user, f"/dirmon/{entry.id}/edit", **entry_form(folders["inbox"] + "/*.csv", name="old"))
    assert moved.status_code == 303
    assert DirmonEntry.find(entry.id).pattern == folders["inbox"] + "/*.csv"
    # enable and disable do not save the pattern again: they still work on any entry
    other = DirmonEntry.create(name="python", pattern="/var/spool/*.txt", job_class_name="WebWatchedJob")
    assert post(user, f"/dirmon/{other.id}/enable").status_code == 303
    assert DirmonEntry.find(other.id).state == "enabled"


def test_with_no_whitelist_the_form_says_so_and_nothing_is_saved(folders):
    user = dina()
    form = user.get("/dirmon/new").text
    assert "No dirmon whitelist is configured" in form and "--dirmon-whitelist DIR" in form
    assert 'class="btn btn-save" disabled' in form
    response = post(user, "/dirmon/new", **entry_form(folders["inbox"] + "/*.csv"))
    assert response.status_code == 422 and "no dirmon whitelist is configured" in response.text
    assert DirmonEntry.all() == []


def test_the_setting_comes_from_configure_or_the_environment(folders, monkeypatch):
    user = dina()  # no whitelist given to create_app: the setting is read on every save
    monkeypatch.setenv("RJBATCH_DIRMON_WHITELIST", f"/nowhere{os.pathsep}{folders['allowed']}")
    assert config.dirmon_whitelist() == ["/nowhere", folders["allowed"]]
    form = user.get("/dirmon/new").text
    assert "No dirmon whitelist" not in form and folders["allowed"] in form
    assert post(user, "/dirmon/new", **entry_form(folders["inbox"] + "/*.csv")).status_code == 303
    rjbatch.configure(dirmon_whitelist=[folders["secrets"]])  # configure wins over the environment
    assert config.dirmon_whitelist() == [folders["secrets"]]
    assert post(user, "/dirmon/new", **entry_form(folders["inbox"] + "/b*.csv", name="b")).status_code == 422
    rjbatch.configure(dirmon_whitelist=folders["allowed"])  # a string is a pathsep-separated list
    assert config.dirmon_whitelist() == [folders["allowed"]]


def test_the_api_is_checked_like_the_form(folders):
    user = dina([folders["allowed"]])
    token = csrf(user)
    body = {"name": "api", "job_class_name": "WebWatchedJob", "pattern": "/etc/*.conf"}
    refused = user.post("/api/dirmon", json=body, headers={"X-CSRF-Token": token})
    assert refused.status_code == 422 and "is not under a whitelisted folder" in refused.json()["errors"]["pattern"][0]
    body["pattern"] = folders["inbox"] + "/*.csv"
    created = user.post("/api/dirmon", json=body, headers={"X-CSRF-Token": token})
    assert created.status_code == 201
    entry_id = created.json()["id"]
    moved = user.post(f"/api/dirmon/{entry_id}/edit", json={"pattern": "/root/*"}, headers={"X-CSRF-Token": token})
    assert moved.status_code == 422
    assert DirmonEntry.find(entry_id).pattern == folders["inbox"] + "/*.csv"


def test_entries_made_from_python_are_not_restricted(folders):
    entry = DirmonEntry.create(name="ops", pattern="/var/spool/*.csv", job_class_name="WebWatchedJob")
    assert entry.confined_to is None and DirmonEntry.find("ops").pattern == "/var/spool/*.csv"


def test_a_symlink_planted_later_does_not_lead_a_web_entry_out(folders):
    user = dina([folders["allowed"]])
    assert post(user, "/dirmon/new", **entry_form(folders["allowed"] + "/**/*.csv")).status_code == 303
    web_entry = DirmonEntry.find("watched")
    with open(os.path.join(folders["inbox"], "good.csv"), "w") as file:
        file.write("a\n")
    assert [os.path.basename(path) for path in web_entry.each_file()] == ["good.csv"]  # not escape/passwd.csv
    # the same pattern made from Python follows the symlink, as before
    python_entry = DirmonEntry(name="py", pattern=folders["allowed"] + "/**/*.csv", job_class_name="WebWatchedJob")
    assert sorted(os.path.basename(path) for path in python_entry.each_file()) == ["good.csv", "passwd.csv"]


def test_rjbatch_web_takes_the_whitelist_and_secure_cookies(folders, monkeypatch):
    import rjbatch.web

    started = {}
    monkeypatch.setattr(rjbatch.web, "serve", lambda **options: started.update(options))
    assert cli.main(["web", "--insecure-local", "--dirmon-whitelist", folders["allowed"],
                     "--dirmon-whitelist", folders["secrets"], "--secure-cookies"]) == 0
    assert started["secure_cookies"] is True
    assert config.dirmon_whitelist() == [folders["allowed"], folders["secrets"]]
    assert cli.main(["web", "--insecure-local"]) == 0
    assert started["secure_cookies"] is False
    assert cli.main(["web", "--insecure-local", "--dirmon-whitelist", folders["tmp"] + "/missing"]) == 1
