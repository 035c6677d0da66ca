"""A user's first hour: the two command lines and the README's batch example work as written."""

from __future__ import annotations

import gzip
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import rjbatch

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
WORDS = ["alpha", "be", "gamma", "io", "delta", "x", "epsilon"]

pytestmark = pytest.mark.slow


def readme_batch_example() -> tuple[str, str, str]:
    """The README's batch example: the class, the lines before ``...`` and the lines after."""
    block = README.split("## A batch job", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    definition, rest = block.split("\njob = ReverseJob()", 1)
    before, after = ("job = ReverseJob()" + rest).split("\n...\n", 1)
    return definition, before, after


def test_the_two_command_lines_work_as_written_with_a_jobs_folder(tmp_path):
    definition, _, _ = readme_batch_example()
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "reverse.py").write_text(definition)
    (tmp_path / "file.csv.gz").write_bytes(gzip.compress("".join(f"{w}\n" for w in WORDS).encode()))

    upload = rjbatch("upload", "file.csv.gz", "--job", "ReverseJob", cwd=tmp_path)
    job_id = upload.stdout.strip()
    assert len(job_id) == 24
    assert f"rjbatch show {job_id}" in upload.stderr and f"rjbatch download {job_id}" in upload.stderr
    rjbatch("work", cwd=tmp_path)
    invalid = rjbatch("download", "--category", "invalid", cwd=tmp_path)
    assert invalid.stdout.splitlines() == ["be", "io", "x"]
    assert "downloading ReverseJob" in invalid.stderr
    main = rjbatch("download", cwd=tmp_path)
    assert main.stdout.splitlines() == ["ahpla", "ammag", "atled", "nolispe"]


def test_the_readme_batch_example_runs_end_to_end_with_workers_in_another_process(tmp_path):
    definition, before, after = readme_batch_example()
    (tmp_path / "readme_jobs.py").write_text(definition)
    (tmp_path / "words.txt.gz").write_bytes(gzip.compress("".join(f"{w}\n" for w in WORDS).encode()))
    head = f"import rjbatch\nrjbatch.configure(database='sqlite:///{tmp_path / 'r.db'}')\nfrom readme_jobs import *\n"
    run = [sys.executable, "-c"]
    subprocess.run([*run, head + before], cwd=tmp_path, check=True, capture_output=True)
    rjbatch("work", "--jobs", "readme_jobs.py", "--database", f"sqlite:///{tmp_path / 'r.db'}", cwd=tmp_path)
    found = head + "job = ReverseJob.first()\n" + after.replace("for record, exc in job.input.failed_records(): ...",
                                                                "assert not list(job.input.failed_records())")
    subprocess.run([*run, found], cwd=tmp_path, check=True, capture_output=True)
    assert gzip.decompress((tmp_path / "reversed.txt.gz").read_bytes()).decode().split() == [
        "ahpla", "ammag", "atled", "nolispe"]
    assert (tmp_path / "short.txt").read_text().split() == ["be", "io", "x"]


def test_a_tabular_output_job_keeps_its_rows_without_collect_output(tmp_path):
    from rjbatch.batch import BatchJob
    from rjbatch.tabular import TabularInput, TabularOutput
    from tests.test_batch_data_path import processed

    class Rows(TabularInput, TabularOutput, BatchJob):  # no collect_output: TabularOutput implies main
        def perform(self, row):
            return row

    job = processed(Rows(), tmp_path / "in.csv", "a,b\n1,2\n")
    assert list(job.output()) == [{"a": "1", "b": "2"}]


def test_the_package_is_typed_and_logs_nowhere_until_told():
    import rjbatch

    assert (Path(rjbatch.__file__).parent / "py.typed").exists()
    handlers = logging.getLogger("rjbatch").handlers
    assert any(isinstance(handler, logging.NullHandler) for handler in handlers)
