"""Where the database and the job modules come from."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rjbatch
from rjbatch import config
from rjbatch.errors import ConfigurationError


@pytest.fixture
def unconfigured(monkeypatch, tmp_path):
    config.reset_store()
    monkeypatch.setattr(config.settings, "database", None)
    monkeypatch.setattr(config.settings, "jobs", [])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_default_is_rjbatch_db_in_the_current_folder(unconfigured):
    assert config.database_url() == "sqlite:///rjbatch.db"
    rjbatch.get_store().count_jobs({})
    assert (unconfigured / "rjbatch.db").exists()


def test_environment_variable_comes_before_project_files(unconfigured, monkeypatch):
    (unconfigured / "pyproject.toml").write_text('[tool.rjbatch]\ndatabase = "sqlite:///from-file.db"\n')
    monkeypatch.setenv("RJBATCH_DATABASE", "sqlite:///from-env.db")
    assert config.database_url() == "sqlite:///from-env.db"


def test_nearest_pyproject_with_a_tool_rjbatch_section(unconfigured):
    (unconfigured / "pyproject.toml").write_text('[tool.rjbatch]\ndatabase = "sqlite:///jobs.db"\n')
    nested = unconfigured / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "pyproject.toml").write_text('[project]\nname = "other"\n')  # no section: skipped
    import os

    os.chdir(nested)
    assert config.database_url() == f"sqlite:///{unconfigured}/jobs.db"


def test_rjbatch_toml_is_read_too(unconfigured):
    (unconfigured / "rjbatch.toml").write_text('database = "sqlite:////srv/rj.db"\njobs = ["myjobs"]\n')
    assert config.database_url() == "sqlite:////srv/rj.db"
    assert config.job_sources() == ["myjobs"]


def test_configure_wins_over_everything(unconfigured, monkeypatch):
    monkeypatch.setenv("RJBATCH_DATABASE", "sqlite:///from-env.db")
    rjbatch.configure(database="sqlite:///explicit.db")
    assert config.database_url() == "sqlite:///explicit.db"


def test_a_broken_project_file_is_a_clear_error(unconfigured):
    (unconfigured / "pyproject.toml").write_text("[tool.rjbatch\n")
    with pytest.raises(ConfigurationError, match="pyproject.toml"):
        config.database_url()


def test_unknown_setting_is_refused():
    with pytest.raises(ConfigurationError, match="unknown setting"):
        rjbatch.configure(heartbeat_secs=3)


def test_settings_are_typed():
    rjbatch.configure(heartbeat_seconds="2")
    try:
        assert config.settings.heartbeat_seconds == 2.0
    finally:
        rjbatch.configure(heartbeat_seconds=15.0)


def test_jobs_folder_in_the_current_directory_is_loaded_by_default(unconfigured, monkeypatch):
    monkeypatch.delenv("RJBATCH_JOBS", raising=False)
    folder = unconfigured / "jobs"
    folder.mkdir()
    (folder / "cleanup_job.py").write_text(
        "from rjbatch import Job\nclass CleanupFolderJob(Job):\n    def perform(self):\n        return 1\n"
    )
    assert config.job_sources() == ["jobs"]
    config.load_jobs()
    from rjbatch.job import registry

    assert registry.by_name("CleanupFolderJob") is not None


def test_a_job_file_that_fails_to_import_names_the_file(unconfigured):
    bad = unconfigured / "bad_job.py"
    bad.write_text("raise RuntimeError('broken on import')\n")
    with pytest.raises(ConfigurationError, match="bad_job.py.*broken on import"):
        config.load_jobs([str(bad)])


def test_an_unknown_job_module_is_a_clear_error(unconfigured):
    with pytest.raises(ConfigurationError, match="no_such_module"):
        config.load_jobs(["no_such_module"])


def test_a_jobs_file_imports_the_module_beside_it_and_module_names_come_from_the_current_folder(tmp_path):
    import subprocess
    import sys

    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "helpers.py").write_text("GREETING = 'hello from a sibling'\n")
    (tmp_path / "pipeline" / "myjobs.py").write_text(
        "from helpers import GREETING\nfrom rjbatch import Job\n\n"
        "class SiblingJob(Job):\n    def perform(self):\n        print(GREETING)\n")
    (tmp_path / "company_jobs.py").write_text(
        "from rjbatch import Job\n\nclass CompanyJob(Job):\n    def perform(self):\n        print('company')\n")
    from pathlib import Path

    console = Path(sys.executable).with_name("rjbatch")  # the console script: no '' on sys.path
    script = [str(console)] if console.exists() else [sys.executable, "-m", "rjbatch"]
    for jobs, name, said in (("pipeline/myjobs.py", "SiblingJob", "hello from a sibling"),
                             ("company_jobs", "CompanyJob", "company")):
        subprocess.run([*script, "create", name, "--jobs", jobs], cwd=tmp_path, check=True, capture_output=True)
        done = subprocess.run([*script, "work", "--jobs", jobs], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert said in done.stdout


def test_configured_job_modules_are_imported_when_a_stored_job_needs_its_class(tmp_path):
    import subprocess
    import sys

    jobs = tmp_path / "flight_jobs.py"
    jobs.write_text("from rjbatch import BatchJob\n\nclass FlightsJob(BatchJob):\n    collect_output = True\n"
                    "    def perform(self, line):\n        return line.upper()\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    db = f"sqlite:///{tmp_path / 'r.db'}"
    setup = f"import rjbatch\nrjbatch.configure(database={db!r}, jobs=[{str(jobs)!r}])\n"
    subprocess.run([sys.executable, "-c", setup + "from rjbatch import config\nfrom rjbatch.job import registry\nconfig.load_jobs()\n"
                    "j = registry.by_name('FlightsJob')(); j.upload(['a']); j.save()"],
                   cwd=elsewhere, check=True, capture_output=True)
    # a fresh script: configure, then read the job: its class comes from the configured file
    found = subprocess.run([sys.executable, "-c", setup + "from rjbatch import Job\njob = Job.first()\n"
                            "print(type(job).__name__, type(job).__module__, job.input.count())"],
                           cwd=elsewhere, check=True, capture_output=True, text=True).stdout.split()
    assert found[0] == "FlightsJob" and found[1] != "rjbatch.unresolved" and found[2] == "1"


def test_project_job_paths_are_relative_to_the_project_file_even_from_a_subfolder(tmp_path, monkeypatch):
    from rjbatch import config

    (tmp_path / "pyproject.toml").write_text('[tool.rjbatch]\njobs = ["pipeline/jobs.py", "myapp.jobs"]\n')
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "jobs.py").write_text("")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert config.job_sources() == [str(tmp_path / "pipeline" / "jobs.py"), "myapp.jobs"]


def test_an_auth_hook_in_the_current_folder_is_found_as_the_console_script_runs(tmp_path):
    """`rjbatch web --auth mysso:check` from the folder holding mysso.py: the console script
    does not put the current folder on sys.path (``python -P`` behaves the same)."""
    (tmp_path / "mysso.py").write_text("def check(request):\n    return ('ann', 'admin')\n")
    code = "from rjbatch.web.security import load_callable; print(load_callable('mysso:check')(None))"
    done = subprocess.run([sys.executable, "-P", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "('ann', 'admin')"
