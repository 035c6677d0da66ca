"""``rjbatch work`` holds its jobs under a server record of its own, with a heartbeat, so
that a killed ``rjbatch work`` is a zombie whose job a live server requeues."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from rjbatch import Job, clock
from rjbatch import servers as records
from rjbatch.cli import main
from rjbatch.config import get_store
from rjbatch.servers import HeldServer, all_servers
from tests.processes import SAMPLE_JOBS, wait_until
from tests.sample_jobs import FirstRunHangsJob

WORK_NAME = f"{socket.gethostname()}:{os.getpid()}:work"


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no project file or jobs folder of the repository's


class ServerSeeingJob(Job):
    destroy_on_complete = False
    collect_output = True

    def perform(self):
        return {"worker": self.worker_name,
                "servers": [[s.name, s.state, [w["name"] for w in s.workers]] for s in all_servers(get_store())]}


class InterruptedJob(Job):
    def perform(self):
        raise KeyboardInterrupt


class StoppingJob(Job):
    destroy_on_complete = False

    def perform(self):
        assert records.request(get_store(), "stop", WORK_NAME) == [WORK_NAME]
        time.sleep(0.6)  # the record's state is read every 0.25 s


def dead_server(name: str, beat_ago: float = 3600.0, **record) -> None:
    get_store().save_server({
        "name": name, "state": records.RUNNING, "max_workers": 1, "started_at": clock.now(),
        "heartbeat_at": clock.now() - timedelta(seconds=beat_ago), "hostname": "elsewhere", "pid": 1,
        "heartbeat_seconds": 0.2, "zombie_heartbeats": 4, "workers": [], **record})


def test_work_holds_its_jobs_under_a_registered_server_and_removes_the_record(capsys):
    job = ServerSeeingJob.create()
    assert main(["work"]) == 0
    assert "ran 1 job(s), 0 failed" in capsys.readouterr().out
    job.reload()
    assert job.is_completed
    assert job.result == {"worker": f"{WORK_NAME}:0",
                          "servers": [[WORK_NAME, "running", [f"{WORK_NAME}:0"]]]}
    assert all_servers(get_store()) == []


def test_work_requeues_and_runs_the_job_of_a_zombie_work_process(capsys):
    job = ServerSeeingJob.create()
    dead_server("deadhost:41:work")
    job.start("deadhost:41:work:0")  # what a killed `rjbatch work` leaves: running, held
    assert main(["work"]) == 0
    assert "ran 1 job(s), 0 failed" in capsys.readouterr().out
    assert job.reload().is_completed
    assert job.result["worker"] == f"{WORK_NAME}:0"
    assert all_servers(get_store()) == []


def test_work_leaves_alone_the_job_of_a_live_server(capsys):
    job = ServerSeeingJob.create()
    dead_server("livehost:42", beat_ago=0.0, heartbeat_seconds=60)
    job.start("livehost:42:1")
    assert main(["work"]) == 0
    assert "ran 0 job(s), 0 failed" in capsys.readouterr().out
    assert job.reload().is_running and job.worker_name == "livehost:42:1"
    assert [s.name for s in all_servers(get_store())] == ["livehost:42"]


def test_an_interrupted_work_requeues_the_job_it_held_and_removes_its_record(capsys):
    job = InterruptedJob.create()
    assert main(["work"]) == 130
    assert "interrupted" in capsys.readouterr().err
    job.reload()
    assert job.is_queued and job.worker_name is None and job.started_at is None
    assert all_servers(get_store()) == []


def test_work_stops_between_jobs_when_asked_through_the_store(capsys):
    jobs = [StoppingJob.create(priority=p) for p in (1, 2, 3)]
    assert main(["work"]) == 0
    captured = capsys.readouterr()
    assert "ran 1 job(s), 0 failed" in captured.out
    assert f"stop requested through the store: {WORK_NAME} stops" in captured.err
    assert [j.reload().state for j in jobs] == ["completed", "queued", "queued"]
    assert all_servers(get_store()) == []


def test_a_held_server_beats_and_takes_its_record_back_when_taken_for_a_zombie():
    store = get_store()
    with HeldServer(store, "beat:1:work", heartbeat_seconds=0.05, zombie_heartbeats=4) as held:
        first = store.find_server("beat:1:work")["heartbeat_at"]
        wait_until(lambda: store.find_server("beat:1:work")["heartbeat_at"] != first, timeout=5,
                   message="a heartbeat")
        store.delete_server("beat:1:work")  # another server took it for a zombie
        wait_until(lambda: store.find_server("beat:1:work") is not None, timeout=5,
                   message="the record back")
        record = records.Server.from_doc(store.find_server("beat:1:work"))
        assert record.state == records.RUNNING and record.workers == [{"name": held.worker_name,
                                                                       "pid": os.getpid()}]
        assert (record.heartbeat_seconds, record.zombie_heartbeats) == (0.05, 4)
        assert not record.is_zombie
    assert store.find_server("beat:1:work") is None


def test_a_held_server_follows_pause_and_resume_requests():
    store = get_store()
    with HeldServer(store, "pausing:1:work", heartbeat_seconds=0.05) as held:
        assert records.request(store, "pause", "pausing:1:work") == ["pausing:1:work"]
        wait_until(lambda: held.paused, timeout=5, message="paused")
        threading.Timer(0.2, records.request, (store, "resume", "pausing:1:work")).start()
        started = time.monotonic()
        held.wait_while_paused()
        assert time.monotonic() - started >= 0.15 and not held.stop_requested


def test_a_zombie_held_server_is_requeued_by_a_live_one():
    store = get_store()
    job = ServerSeeingJob.create()
    dead_server("gone:7:work", beat_ago=1.0)  # 5 of its 0.2 s beats missed
    job.start("gone:7:work:0")
    with HeldServer(store, "alive:8:work", heartbeat_seconds=0.05):
        pass  # it checks for zombies when it starts, and at every beat
    assert job.reload().is_queued
    assert [s.name for s in all_servers(store)] == []


# -- real processes -------------------------------------------------------------------
def _project(tmp_path: Path, database: str) -> None:
    (tmp_path / "rjbatch.toml").write_text(
        f'database = "{database}"\nheartbeat_seconds = 0.2\nzombie_heartbeats = 4\n')


def _work(tmp_path: Path, **kwargs) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RJBATCH_")}
    return subprocess.Popen([sys.executable, "-m", "rjbatch", "work", "--jobs", SAMPLE_JOBS], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kwargs)


def _killed_while_holding(tmp_path: Path, database: str) -> tuple[FirstRunHangsJob, str]:
    """Start `rjbatch work` on a job that hangs, SIGKILL it, and wait until its record is a zombie."""
    _project(tmp_path, database)
    marker = tmp_path / "marker"
    job = FirstRunHangsJob.create(marker=str(marker))
    doomed = _work(tmp_path)
    try:
        wait_until(marker.exists, timeout=30, message="rjbatch work to start the job")
        name = f"{socket.gethostname()}:{doomed.pid}:work"
        record = get_store().find_server(name)
        assert record is not None and record["heartbeat_seconds"] == 0.2
        assert job.reload().is_running and job.worker_name == f"{name}:0"
        started = records.Server.from_doc(record).started_at
        wait_until(lambda: records.Server.from_doc(get_store().find_server(name)).heartbeat_at > started,
                   timeout=10, message="a heartbeat")
    finally:
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.communicate(timeout=10)
    assert job.reload().is_running  # nobody requeues it yet
    wait_until(lambda: records.Server.from_doc(get_store().find_server(name)).is_zombie, timeout=10,
               message="the killed process's record to be a zombie")
    return job, name


@pytest.mark.slow
def test_a_killed_work_is_a_zombie_whose_job_the_next_work_requeues_and_completes(tmp_path, database):
    job, name = _killed_while_holding(tmp_path, database)
    second = _work(tmp_path)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "ran 1 job(s), 0 failed" in out
    job.reload()
    assert job.is_completed and job.result is None and job.failure_count == 0
    assert all_servers(get_store()) == []


@pytest.mark.slow
def test_a_killed_work_is_a_zombie_whose_job_a_worker_server_requeues_and_completes(tmp_path, database,
                                                                                   servers):
    job, name = _killed_while_holding(tmp_path, database)
    servers.start(name="survivor", workers=1)
    wait_until(lambda: job.reload().is_completed, timeout=30, message="the survivor to run the job")
    assert job.worker_name is None and job.failure_count == 0
    wait_until(lambda: [s.name for s in all_servers(get_store())] == ["survivor"], timeout=10,
               message="the zombie's record removed")
    assert f"server {name} stopped heart-beating: requeued 1 job(s)" in servers.logs()


@pytest.mark.slow
def test_sigterm_ends_work_requeueing_the_job_it_held(tmp_path, database):
    _project(tmp_path, database)
    marker = tmp_path / "marker"
    job = FirstRunHangsJob.create(marker=str(marker))
    process = _work(tmp_path)
    try:
        wait_until(marker.exists, timeout=30, message="rjbatch work to start the job")
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 128 + signal.SIGTERM
    job.reload()
    assert job.is_queued and job.worker_name is None
    assert all_servers(get_store()) == []
