"""Batch jobs on real worker processes: exact output in order whatever is killed."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from rjbatch.servers import all_servers
from tests.processes import wait_until
from tests.sample_jobs import DoubleJob

pytestmark = pytest.mark.slow


def _worker_pids(store) -> list[int]:
    return [worker["pid"] for server in all_servers(store) for worker in server.workers]


def test_killing_workers_at_random_moments_loses_and_repeats_no_record(servers):
    count = 200_000
    job = DoubleJob(pause_every=100)
    job.upload(range_records := list(range(1, count + 1)))
    job.save()
    store = job._store()
    servers.start(workers=2)
    wait_until(lambda: job.reload().is_running and len(_worker_pids(store)) == 2, message="workers at work")
    rng = random.Random(7)
    kills = 0
    deadline = time.monotonic() + 120
    while kills < 5 and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.3, 0.9))
        if not job.reload().is_running or job.percent_complete > 90:
            break
        pids = _worker_pids(store)
        if pids:
            try:
                os.kill(rng.choice(pids), signal.SIGKILL)
                kills += 1
            except ProcessLookupError:
                pass
    assert kills >= 3, "the job finished before the workers could be killed"
    wait_until(lambda: job.reload().is_completed, timeout=180, interval=0.2, message="the job to complete")
    output = list(job.output())
    assert len(output) == count
    assert output == [n * 2 for n in range_records]
    assert job.input.count() == 0
    assert "died with exit code -9" in servers.logs()


def test_sigterm_in_the_middle_of_a_batch_job_then_a_new_server_finishes_it_exactly(servers):
    count = 50_000
    job = DoubleJob(pause_every=100, pause_seconds=0.01)
    job.upload(list(range(1, count + 1)))
    job.save()
    first = servers.start(workers=2)
    wait_until(lambda: job.reload().percent_complete >= 10, timeout=60, message="some progress")
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 0
    job.reload()
    assert job.is_running and job.input.running_count() == 0  # nothing left without an owner
    assert 0 < job.percent_complete < 100
    servers.start(workers=2)
    wait_until(lambda: job.reload().is_completed, timeout=120, interval=0.2, message="completion")
    assert list(job.output()) == [n * 2 for n in range(1, count + 1)]


def test_sigterm_with_a_short_grace_loses_at_most_the_slice_in_flight(servers, tmp_path):
    from tests.processes import read_lines
    from tests.sample_jobs import SlowRecordsJob

    log = tmp_path / "performed.log"
    count = 30
    job = SlowRecordsJob(log_path=str(log), pause_seconds=0.3)  # 2 records a slice: 0.6 s each
    job.upload(list(range(1, count + 1)))
    job.save()
    first = servers.start("--shutdown-grace-seconds", "2", workers=1)
    wait_until(lambda: log.exists() and len(read_lines(log)) >= 7, timeout=60, message="some records")
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0
    job.reload()
    assert job.input.running_count() == 0  # the slices not begun went back to the queue
    done_before = count - job.input.counts().queued_records
    assert done_before >= 6  # every finished slice was committed before the worker left
    servers.start(workers=1)
    wait_until(lambda: job.reload().is_completed, timeout=60, interval=0.2, message="completion")
    assert list(job.output()) == [n * 2 for n in range(1, count + 1)]
    assert len(read_lines(log)) <= count + SlowRecordsJob.slice_size  # redone: the slice in flight at most


def test_a_killed_upload_is_failed_and_no_longer_blocks_the_queue(servers, tmp_path, database):
    import subprocess
    import sys

    from rjbatch.batch import BatchJob
    from tests.processes import SAMPLE_JOBS
    from tests.sample_jobs import NoteJob

    (tmp_path / "rjbatch.toml").write_text("heartbeat_seconds = 0.2\nzombie_heartbeats = 4\n")
    with open(tmp_path / "big.txt", "w") as big:
        for block in range(300):
            big.write("".join(f"line {block}-{n}\n" for n in range(10_000)))
    servers.start(workers=2)
    uploader = subprocess.Popen([sys.executable, "-m", "rjbatch", "upload", "big.txt", "--job", "LinesImportJob",
                                 "--jobs", SAMPLE_JOBS, "--database", database], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    wait_until(lambda: BatchJob.count() == 1 and (BatchJob.first().upload_records or 0) > 1000, timeout=60,
               message="the upload under way")
    uploader.kill()
    uploader.wait()
    partial = BatchJob.first()
    note = NoteJob.create(note="after")
    wait_until(lambda: note.reload().is_completed, timeout=15, message="a new job to run")
    wait_until(lambda: partial.reload().is_failed, timeout=15, message="the partial job to fail")
    assert partial.exception.message.startswith("the upload did not finish: ")
    assert partial.record_count == partial.upload_records and partial.upload_records > 0
    assert partial.upload_owner is not None  # who uploaded: kept with the failure
