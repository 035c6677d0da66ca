"""The command line, run as a user runs it: a subprocess in a folder of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE_JOBS = Path(__file__).with_name("sample_jobs.py")


def rjbatch(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RJBATCH_")}
    result = subprocess.run(
        [sys.executable, "-m", "rjbatch", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"rjbatch {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def test_create_work_and_show_a_job_on_the_default_database(tmp_path):
    job_id = rjbatch("create", "NoteJob", "--jobs", str(SAMPLE_JOBS), "--set", "note=hello",
                     "--priority", "7", cwd=tmp_path).stdout.strip()
    assert len(job_id) == 24
    assert (tmp_path / "rjbatch.db").exists()  # the embedded default
    listing = rjbatch("jobs", cwd=tmp_path).stdout
    assert job_id in listing and "queued" in listing
    assert "ran 1 job(s), 0 failed" in rjbatch("work", "--jobs", str(SAMPLE_JOBS), cwd=tmp_path).stdout
    shown = json.loads(rjbatch("show", job_id, cwd=tmp_path).stdout)
    assert shown["state"] == "completed"
    assert shown["note"] == "hello" and shown["counter"] == 1 and shown["priority"] == 7


def test_events_from_the_command_line(tmp_path):
    job_id = rjbatch("--jobs", str(SAMPLE_JOBS), "create", "NoteJob", cwd=tmp_path).stdout.strip()
    assert "is now paused" in rjbatch("pause", job_id, cwd=tmp_path).stdout
    assert "is now queued" in rjbatch("resume", job_id, cwd=tmp_path).stdout
    assert "is now aborted" in rjbatch("abort", job_id, cwd=tmp_path).stdout
    refused = rjbatch("retry", job_id, cwd=tmp_path, check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == f"rjbatch: refused: cannot retry a job in state 'aborted' for NoteJob {job_id}"
    rjbatch("destroy", job_id, cwd=tmp_path)
    assert rjbatch("jobs", "--json", cwd=tmp_path).stdout == ""


@pytest.mark.parametrize("args, message", [
    (["show", "6b0903a1a2fbfe2029c899df"], "rjbatch: not found: Job 6b0903a1a2fbfe2029c899df not found"),
    (["create", "NoSuchJob"], "unknown job class 'NoSuchJob'"),
    (["create", "NoteJob", "--set", "colour=red"], "NoteJob has no field 'colour'"),
    (["create", "NoteJob", "--set", "counter=many"], "counter"),
    (["create", "NoteJob", "--priority", "0"], "priority must be between 1 and 100"),
    (["--database", "sqlite:////proc/rjbatch.db", "jobs"], "cannot use database /proc/rjbatch.db"),
    (["--database", "sqlite:///missing/dir/rj.db", "jobs"], "folder"),
    (["--database", "redis://x", "jobs"], "unknown database URL scheme 'redis'"),
    (["--jobs", "missing_jobs.py", "jobs"], "missing_jobs.py"),
])
def test_errors_are_one_clear_line_without_a_traceback(tmp_path, args, message):
    result = rjbatch("--jobs", str(SAMPLE_JOBS), *args, cwd=tmp_path, check=False)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_a_database_folder_instead_of_a_file_is_one_clear_line(tmp_path):
    (tmp_path / "db").mkdir()
    result = rjbatch("--database", "sqlite:///db", "jobs", cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "rjbatch: error: cannot open database db: it is a folder, not a database file"


def test_debug_shows_the_traceback(tmp_path):
    result = rjbatch("--debug", "show", "6b0903a1a2fbfe2029c899df", cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_database_from_the_environment(tmp_path):
    env_db = tmp_path / "env.db"
    env = {**os.environ, "RJBATCH_DATABASE": f"sqlite:///{env_db}"}
    subprocess.run([sys.executable, "-m", "rjbatch", "--jobs", str(SAMPLE_JOBS), "create", "NoteJob"],
                   cwd=tmp_path, env=env, check=True, capture_output=True, timeout=60)
    assert env_db.exists() and not (tmp_path / "rjbatch.db").exists()


def test_every_command_has_a_description_an_example_and_help_for_every_option():
    import argparse

    from rjbatch.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert len(commands) >= 19
    for name, command in commands.items():
        assert command.description, f"{name} has no description"
        assert command.epilog and command.epilog.startswith("example: rjbatch "), f"{name} has no example"
        for action in command._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"rjbatch {name} {action.option_strings or action.dest} has no help"


def test_vacuum_shrinks_the_sqlite_file_after_a_big_job_is_removed(tmp_path):
    import rjbatch as library
    from rjbatch.batch import BatchJob

    database = tmp_path / "big.db"
    library.configure(database=f"sqlite:///{database}")

    class Big(BatchJob):
        def perform(self, record):
            return record

    job = Big()
    job.upload([f"{n:08d} {'x' * 200}" for n in range(50_000)])
    job.save()
    library.get_store().close()
    job.destroy()
    before = database.stat().st_size
    result = rjbatch("vacuum", "--database", f"sqlite:///{database}", cwd=tmp_path)
    assert database.stat().st_size < before / 5
    assert "MB ->" in result.stdout


def test_the_readme_command_list_names_every_command():
    import argparse
    from pathlib import Path

    from rjbatch.cli import build_parser

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    listing = readme.split("## Command line", 1)[1].split("```", 2)[1]
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name in commands:
        assert f"rjbatch {name}" in listing or f"|{name}" in listing or f"{name}|" in listing, name


def test_jobs_lists_scheduled_jobs_and_counts_only_the_class_asked_for(tmp_path):
    jobs = str(SAMPLE_JOBS)
    later = rjbatch("create", "NoteJob", "--jobs", jobs, "--set", 'run_at="2999-01-01T00:00:00Z"',
                    cwd=tmp_path).stdout.strip()
    now = rjbatch("create", "NoteJob", "--jobs", jobs, cwd=tmp_path).stdout.strip()
    rjbatch("create", "DoubleJob", "--jobs", jobs, cwd=tmp_path)
    scheduled = rjbatch("jobs", "--state", "scheduled", cwd=tmp_path).stdout
    assert later in scheduled and now not in scheduled and "scheduled" in scheduled
    footer = rjbatch("jobs", "--class", "NoteJob", cwd=tmp_path).stdout.strip().splitlines()[-1]
    assert footer.startswith("queued: 2")  # not the DoubleJob too
    bad = rjbatch("jobs", "--state", "bogus", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "'scheduled'" in bad.stderr and "JobState" not in bad.stderr


def test_the_included_jobs_are_named_plainly(tmp_path):
    job_id = rjbatch("create", "HousekeepingJob", cwd=tmp_path).stdout.strip()
    assert json.loads(rjbatch("show", job_id, cwd=tmp_path).stdout)["class"] == "HousekeepingJob"


def test_download_to_a_dash_writes_standard_output(tmp_path):
    jobs = str(SAMPLE_JOBS)
    (tmp_path / "in.txt").write_text("1\n2\n")
    job_id = rjbatch("upload", "in.txt", "--job", "DoubleJob", "--jobs", jobs, cwd=tmp_path).stdout.strip()
    rjbatch("work", "--jobs", jobs, cwd=tmp_path)
    result = rjbatch("download", job_id, "-", cwd=tmp_path)
    assert result.stdout.split() == ["11", "22"] and not (tmp_path / "-").exists()  # lines are text
    assert "standard output" in result.stderr


def test_web_without_users_names_the_options_that_give_them(tmp_path):
    result = rjbatch("web", cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "--users FILE, --auth MODULE:FUNCTION, or --insecure-local" in result.stderr
