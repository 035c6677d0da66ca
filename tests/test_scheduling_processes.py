"""Schedules and directory monitoring on live worker servers."""

from __future__ import annotations

import signal
import time

import pytest

from rjbatch.jobs import DirmonEntry, DirmonJob, UploadFileJob
from tests.processes import read_lines, wait_until
from tests.sample_jobs import LinesImportJob, TickJob

pytestmark = pytest.mark.slow


def test_a_cron_job_every_second_runs_once_per_occurrence_across_a_server_restart(servers, tmp_path):
    log = tmp_path / "ticks.log"
    TickJob.create(log_path=str(log))
    first = servers.start(workers=2)
    wait_until(lambda: len(read_lines(log)) >= 4, timeout=30, message="four ticks")
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0
    before_restart = len(read_lines(log))
    servers.start(workers=2)
    wait_until(lambda: len(read_lines(log)) >= before_restart + 3, timeout=30, message="ticks after restart")
    ticks = read_lines(log)
    assert len(ticks) == len(set(ticks)), "an occurrence ran twice"
    assert ticks == sorted(ticks)
    # one live instance at a time: the next is created only when the last one finished
    live = TickJob.where(state__in=["queued", "running"])
    wait_until(lambda: live.count() == 1, timeout=10, message="one live instance")
    assert TickJob.where(state__in=["queued", "running", "paused"]).count() <= 1


def test_a_dropped_file_is_processed_once_archived_and_downloadable(servers, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    DirmonEntry.create(name="imports", pattern=f"{inbox}/*.txt", job_class_name="LinesImportJob",
                       state="enabled")
    DirmonJob.create(check_seconds=0.3)
    servers.start(workers=2)
    (inbox / "names.txt").write_text("ada\ngrace\nlinus\n")
    wait_until(lambda: LinesImportJob.completed().count() == 1, timeout=60, message="the import job")
    time.sleep(1.5)  # a few more scans: the archived file must not be taken again
    assert LinesImportJob.count() == 1 and UploadFileJob.count() == 0
    job = LinesImportJob.completed().first()
    archived = list((inbox / "archive").iterdir())
    assert [p.name for p in archived] == [f"{job.id}_names.txt"]
    assert not (inbox / "names.txt").exists()
    target = tmp_path / "out.txt"
    job.download(target)
    assert target.read_text() == "ADA\nGRACE\nLINUS\n"
