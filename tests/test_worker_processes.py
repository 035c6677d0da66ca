"""Worker servers as real processes: claims, crashes, zombies, signals, control."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from rjbatch import Job, clock
from rjbatch.servers import all_servers
from tests.processes import read_lines, wait_until
from tests.sample_jobs import FirstRunHangsJob, RecordJob, SleepJob, ThrottledJob

pytestmark = pytest.mark.slow
def test_two_workers_drain_500_jobs_of_mixed_priorities_in_priority_order(servers, tmp_path):
    log = tmp_path / "order.log"
    priorities = [(i * 37) % 100 + 1 for i in range(500)]
    for priority in priorities:
        RecordJob.create(priority=priority, log_path=str(log))
    servers.start(workers=2)
    wait_until(lambda: len(read_lines(log)) == 500, message="500 jobs performed")
    entries = [line.split() for line in read_lines(log)]
    performed = [int(priority) for priority, _, _ in entries]
    assert sorted(performed) == sorted(priorities)
    # every claim takes the first job in (priority, id) order from a queue that only
    # shrinks, so each worker's own sequence is strictly increasing; how two workers
    # interleave depends on the scheduler, so only bound the global disorder loosely
    by_worker: dict[str, list[tuple[int, str]]] = {}
    for priority, job_id, pid in entries:
        by_worker.setdefault(pid, []).append((int(priority), job_id))
    for pid, claimed in by_worker.items():
        assert claimed == sorted(claimed), pid
    inversions = sum(1 for i, p in enumerate(performed) for q in performed[i + 1:] if q < p)
    assert inversions < 0.1 * len(performed) ** 2 / 2, inversions  # shuffled would be about half
    wait_until(lambda: Job.count() == 0, message="completed jobs destroyed")


def test_four_servers_of_two_workers_perform_2000_jobs_exactly_once(servers, tmp_path):
    log = tmp_path / "once.log"
    for _ in range(2000):
        RecordJob.create(log_path=str(log))
    for index in range(4):
        servers.start(name=f"server-{index}", workers=2)
    wait_until(lambda: len(read_lines(log)) >= 2000, timeout=120, message="2000 jobs performed")
    wait_until(lambda: Job.count() == 0, message="every job completed")
    ids = [line.split()[1] for line in read_lines(log)]
    assert len(ids) == 2000
    assert len(set(ids)) == 2000
    pids = {line.split()[2] for line in read_lines(log)}
    assert len(pids) >= 4  # the work really was spread over several worker processes


def test_a_worker_killed_mid_job_has_its_job_requeued_and_completed(servers, tmp_path):
    marker = tmp_path / "marker"
    job = FirstRunHangsJob.create(marker=str(marker))
    servers.start(workers=2)
    wait_until(marker.exists, message="the job to start")
    worker_pid = int(marker.read_text().split()[0])
    os.kill(worker_pid, signal.SIGKILL)
    wait_until(lambda: job.reload().is_completed, timeout=30, message="the requeued job to complete")
    assert job.result is None and job.failure_count == 0
    assert "died with exit code -9: requeued 1 job(s)" in servers.logs()


def test_a_killed_server_is_a_zombie_whose_work_another_server_requeues(servers, tmp_path):
    marker = tmp_path / "marker"
    job = FirstRunHangsJob.create(marker=str(marker))
    doomed = servers.start(name="doomed", workers=1)
    wait_until(marker.exists, message="the doomed server to start the job")
    survivor = servers.start(name="survivor", workers=1)
    wait_until(lambda: {s.name for s in all_servers(job._store())} == {"doomed", "survivor"},
               message="both servers registered")
    os.killpg(doomed.pid, signal.SIGKILL)  # the whole server: supervisor and workers
    doomed.wait(timeout=10)
    wait_until(lambda: job.reload().is_completed, timeout=30, message="the survivor to run the job")
    assert job.worker_name is None
    assert {s.name for s in all_servers(job._store())} == {"survivor"}
    assert "server doomed stopped heart-beating: requeued 1 job(s)" in servers.logs()
    assert survivor.poll() is None


def test_sigterm_lets_the_current_job_finish_then_the_server_exits(servers, tmp_path):
    job = SleepJob.create(sleep_seconds=1.5)
    server = servers.start(workers=1)
    wait_until(lambda: job.reload().is_running and job.started_at is not None, message="job started")
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0
    job.reload()
    assert job.is_completed
    assert all_servers(job._store()) == []


def test_an_idle_server_exits_promptly_after_sigterm(servers, tmp_path):
    server = servers.start(workers=2)
    wait_until(lambda: "worker started" in servers.logs(), message="workers started")
    time.sleep(0.5)
    signalled = time.monotonic()
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0
    assert time.monotonic() - signalled < 2.0  # idle workers notice the stop within a poll
    assert "stopped" in servers.logs()


def test_a_second_signal_stops_at_once_and_requeues_the_job(servers, tmp_path):
    job = SleepJob.create(sleep_seconds=60)
    server = servers.start(workers=1)
    wait_until(lambda: job.reload().is_running and job.started_at is not None, message="job started")
    server.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0
    job.reload()
    assert job.is_queued and job.worker_name is None and job.started_at is None


def test_a_restarted_server_with_the_same_name_starts_and_requeues_leftovers(servers, tmp_path):
    marker = tmp_path / "marker"
    job = FirstRunHangsJob.create(marker=str(marker))
    first = servers.start(name="fixed-name", workers=1, )
    wait_until(marker.exists, message="job started")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    servers.start(name="fixed-name", workers=1)
    wait_until(lambda: job.reload().is_completed, timeout=30, message="job completed after restart")


def test_servers_are_listed_paused_resumed_and_stopped_from_the_cli(servers, tmp_path, database):
    server = servers.start(name="controlled", workers=1)
    store = Job._store()
    wait_until(lambda: [s.state for s in all_servers(store)] == ["running"], message="running")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "rjbatch", "--database", database, *args],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)

    listing = cli("servers").stdout
    assert "controlled" in listing and "running" in listing and "ago" in listing
    assert cli("servers", "pause", "controlled").returncode == 0
    asked_at = clock.now()

    def paused_without_workers() -> bool:
        # a heartbeat taken after the request, listing no worker: the workers have stopped
        [record] = all_servers(store)
        return record.state == "paused" and record.workers == [] and record.heartbeat_at > asked_at

    wait_until(paused_without_workers, message="paused, with its workers stopped")
    log = tmp_path / "paused.log"
    RecordJob.create(log_path=str(log))
    time.sleep(1.0)
    assert not log.exists()  # a paused server claims nothing
    assert cli("servers", "resume").returncode == 0
    wait_until(log.exists, message="work after resume")
    assert cli("servers", "stop", "controlled").returncode == 0
    assert server.wait(timeout=30) == 0
    refused = cli("servers", "stop", "nobody")
    assert refused.returncode == 1 and "no server 'nobody'" in refused.stderr


def test_a_job_created_while_workers_are_idle_starts_quickly(servers, tmp_path):
    servers.start(workers=2)
    store = Job._store()
    wait_until(lambda: [s.state for s in all_servers(store)] == ["running"], message="running")
    time.sleep(1.0)  # let the workers go idle
    delays = []
    for _ in range(10):
        job = SleepJob.create(destroy_on_complete=False)
        wait_until(lambda job=job: job.reload().started_at is not None, timeout=10, interval=0.005,
                   message="start")
        delays.append((job.started_at - job.created_at).total_seconds())
    delays.sort()
    assert delays[len(delays) // 2] < 0.25, delays  # the benchmark measures the real figure


def test_throttle_running_jobs_lets_one_run_at_a_time(servers, tmp_path):
    log = tmp_path / "throttle.log"
    for _ in range(6):
        ThrottledJob.create(log_path=str(log))
    servers.start(workers=2, )
    wait_until(lambda: sum(1 for line in read_lines(log) if line.startswith("end")) == 6,
               timeout=60, message="all throttled jobs")
    running = 0
    for line in read_lines(log):
        running += 1 if line.startswith("start") else -1
        assert running <= 1


def test_filter_and_exclude_choose_which_classes_a_server_runs(servers, tmp_path):
    record_log = tmp_path / "records.log"
    RecordJob.create(log_path=str(record_log))
    sleeper = SleepJob.create(destroy_on_complete=False)
    servers.start("--exclude", "recordjob", workers=1)
    wait_until(lambda: sleeper.reload().is_completed, message="the allowed class to run")
    time.sleep(0.5)
    assert not record_log.exists()
    servers.start("--filter", "RecordJob", workers=1)
    wait_until(record_log.exists, message="the filtered server to run RecordJob")


def test_jobs_with_after_complete_callbacks_are_destroyed_on_completion_under_a_worker(servers, tmp_path):
    from tests.sample_jobs import CallbackJob, TickJob

    log = tmp_path / "completed.log"
    ticks = tmp_path / "ticks.log"
    TickJob.create(log_path=str(ticks))
    callbacks = [CallbackJob.create(log_path=str(log)) for _ in range(5)]
    servers.start(workers=2)
    wait_until(lambda: log.exists() and len(read_lines(log)) == 5, message="callback jobs completed")
    wait_until(lambda: CallbackJob.count() == 0, timeout=10, message="callback jobs destroyed")
    wait_until(lambda: ticks.exists() and len(read_lines(ticks)) >= 3, timeout=20, message="three ticks")
    assert sorted(read_lines(log)) == sorted(job.id for job in callbacks)
    # each tick scheduled the next one and was destroyed: one instance left, never completed ones
    assert TickJob.completed().count() == 0
    assert TickJob.count() == 1


def test_a_supervisor_killed_under_a_long_job_takes_its_worker_along_and_the_job_runs_once(servers, tmp_path):
    from tests.sample_jobs import SpanJob

    log = tmp_path / "spans.log"
    job = SpanJob.create(log_path=str(log), sleep_seconds=3.0)
    doomed = servers.start(name="doomed", workers=1)
    wait_until(log.exists, message="the doomed server to start the job")
    survivor = servers.start(name="survivor", workers=1)
    orphan_pid = int(read_lines(log)[0].split()[1])
    os.kill(doomed.pid, signal.SIGKILL)  # the supervisor alone: its worker must not go on
    doomed.wait(timeout=10)
    wait_until(lambda: not _alive(orphan_pid), timeout=5, message="the orphaned worker to die with it")
    wait_until(lambda: job.reload().is_completed, timeout=30, message="the survivor to run the job")
    events = [line.split() for line in read_lines(log)]
    assert [kind for kind, *_ in events] == ["start", "start", "end"]  # one run finished, none overlapped
    assert events[1][1] == events[2][1] != str(orphan_pid)
    assert survivor.poll() is None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) counts as dead
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_worker_logs_a_line_when_a_job_starts_completes_or_fails(servers, tmp_path):
    from rjbatch.batch import BatchJob
    from tests.sample_jobs import DoubleJob, NoteJob

    note = NoteJob.create(note="hi")
    batch = DoubleJob()
    batch.upload([1, 2, 3])
    batch.save()
    failing = SleepJob.create(sleep_seconds=None)  # perform's time.sleep(None) raises TypeError
    servers.start(workers=1)
    wait_until(lambda: note.reload().is_completed and BatchJob.find(batch.id).is_completed
               and failing.reload().is_failed, message="the three jobs to end")
    wait_until(lambda: "failed SleepJob" in servers.logs(), timeout=5, message="the failure's line")
    logs = servers.logs()
    assert f"started NoteJob {note.id}" in logs and f"completed NoteJob {note.id} in " in logs
    assert f"completed DoubleJob {batch.id} in " in logs and "3 records, main: 3" in logs
    assert f"failed SleepJob {failing.id} after " in logs and "TypeError" in logs


def test_the_worker_can_log_json_lines(servers, tmp_path):
    import json

    from tests.sample_jobs import NoteJob

    note = NoteJob.create(note="hi")
    servers.start("--log-format", "json", workers=1)
    wait_until(lambda: note.reload().is_completed, message="the job to complete")
    wait_until(lambda: f"completed NoteJob {note.id}" in servers.logs(), timeout=5, message="its line")
    lines = [json.loads(line) for line in servers.logs().splitlines() if line.startswith("{")]
    done = next(entry for entry in lines if entry["message"].startswith(f"completed NoteJob {note.id}"))
    assert done["level"] == "INFO" and done["job"] == note.id and done["worker"].endswith(":1")
    assert {"time", "logger"} <= set(done)
