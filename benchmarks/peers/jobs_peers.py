"""Peer side of the job-queue benchmark: Huey (SQLite), RQ (Redis), optionally Celery.

Every peer runs the same workload, measured the same way:

* **Job**: :func:`benchmarks.peers._tasks.noop` -- records ``time.time()`` at its start
  and end in a probe file (one ``O_APPEND`` write) and returns ``None``.
* **Drain**: enqueue ``n_jobs`` jobs while no worker runs (``enqueue_seconds``), then
  start the workers. ``drain_seconds`` = from the moment the worker/consumer process
  is launched (``time.time()`` just before ``Popen``) until the last of the ``n_jobs``
  jobs has finished (the largest end timestamp in the probe file). It therefore
  includes the workers' start-up (interpreter start, imports, forks).
  ``jobs_per_second = n_jobs / drain_seconds``. ``active_seconds`` (first job start to
  last job finish) is reported beside it for the steady-state rate.
* **Latency**: after the drain, with the queue empty and the workers idle, enqueue one
  job at a time. Before each, sleep a random gap of 50-250 ms (seeded), so that
  pickup is not phase-locked to a polling interval. Latency = job start timestamp minus
  ``time.time()`` taken just before the enqueue call (so it includes the enqueue round
  trip). The next job is enqueued only after the previous one has started. Median and
  95th percentile over ``latency_samples``.
* Workers log at WARNING (no per-job log lines), as a production deployment
  benchmarked for throughput would.

Run ``python -m benchmarks.peers.jobs_peers --help`` from the repository root.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.peers._common import (
    REPO_ROOT,
    CpuMeter,
    child_env,
    console_script,
    format_table,
    median_p95_ms,
    pids_named,
    stop_process_group,
    tail,
)
from benchmarks.peers._tasks import PROBE_ENV, ProbeReader

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
"""Redis database used by the RQ and Celery peers; treated as owned by the benchmark."""

LATENCY_GAP_S = (0.05, 0.25)
SETTLE_BEFORE_LATENCY_S = 0.5
LATENCY_SAMPLE_TIMEOUT_S = 30.0


@dataclass
class JobsResult:
    """One peer's figures for the job-queue benchmark (definitions in the module doc)."""

    system: str
    n_jobs: int
    workers: int
    drain_seconds: float
    jobs_per_second: float
    latency_median_ms: float
    latency_p95_ms: float
    notes: str = ""
    enqueue_seconds: float = math.nan
    active_seconds: float = math.nan
    """First job start to last job finish (excludes worker start-up)."""
    latency_samples: int = 0
    other_load_cores: float = math.nan
    """Average cores busy with processes outside this benchmark during the drain
    (a local ``redis-server`` counts as the benchmark's own)."""

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------
# The measurement shared by every peer (public so rjbatch's own benchmark can reuse it)
# ---------------------------------------------------------------------------------------


def measure_queue(
    *,
    system: str,
    n_jobs: int,
    workers: int,
    latency_samples: int,
    enqueue: Callable[[int], None],
    launch: Callable[[], subprocess.Popen],
    probe: ProbeReader,
    log_path: Path,
    timeout: float,
    notes: str,
    seed: int = 1,
    stop_signal: int | None = None,
    broker_pids: list[int] | None = None,
) -> JobsResult:
    """Enqueue, drain, then sample latency, as defined in the module docstring.

    * ``enqueue(job_id)`` must make a worker run :func:`benchmarks.peers._tasks.noop`
      with that id (job ids ``0..n_jobs-1`` for the drain, then ``n_jobs...`` for the
      latency samples).
    * ``launch()`` starts the workers and returns their ``Popen``; start it with
      :func:`popen_workers` (own process group, output to ``log_path``) and an environment
      from :func:`benchmarks.peers._common.child_env` holding ``PROBE_ENV`` = ``probe.path``.
    * The workers are stopped (``stop_signal``, default SIGINT, to their process group,
      then SIGTERM, SIGKILL) when this returns or raises. ``broker_pids``: processes
      (e.g. ``redis-server``) whose CPU counts as the benchmark's own in
      ``other_load_cores``.
    """
    t0 = time.perf_counter()
    for i in range(n_jobs):
        enqueue(i)
    enqueue_seconds = time.perf_counter() - t0

    cpu = CpuMeter(extra_pids=broker_pids or ()).start()
    started_at = time.time()
    proc = launch()
    try:
        deadline = time.monotonic() + timeout

        def wait_for(count: int, limit: float, what: str, interval: float) -> None:
            while probe.poll() < count:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{system}: worker process exited with {proc.returncode} while "
                        f"waiting for {what}; log tail:\n{tail(log_path)}"
                    )
                if time.monotonic() > limit:
                    raise TimeoutError(
                        f"{system}: timed out waiting for {what} "
                        f"({probe.poll()} jobs seen); log tail:\n{tail(log_path)}"
                    )
                time.sleep(interval)

        wait_for(n_jobs, deadline, f"{n_jobs} jobs to finish", 0.02)
        cpu.stop()
        starts = [probe.seen[i][0] for i in range(n_jobs)]
        ends = [probe.seen[i][1] for i in range(n_jobs)]
        drain_seconds = max(ends) - started_at
        active_seconds = max(ends) - min(starts)

        rng = random.Random(seed)
        latencies: list[float] = []
        time.sleep(SETTLE_BEFORE_LATENCY_S)
        for k in range(latency_samples):
            job_id = n_jobs + k
            time.sleep(rng.uniform(*LATENCY_GAP_S))
            enqueued_at = time.time()
            enqueue(job_id)
            limit = min(deadline, time.monotonic() + LATENCY_SAMPLE_TIMEOUT_S)
            wait_for(n_jobs + k + 1, limit, f"latency sample {k}", 0.001)
            latencies.append(probe.seen[job_id][0] - enqueued_at)
    finally:
        if stop_signal is None:
            stop_process_group(proc)
        else:
            stop_process_group(proc, first_signal=stop_signal)

    median_ms, p95_ms = median_p95_ms(latencies)
    return JobsResult(
        system=system,
        n_jobs=n_jobs,
        workers=workers,
        drain_seconds=drain_seconds,
        jobs_per_second=n_jobs / drain_seconds,
        latency_median_ms=median_ms,
        latency_p95_ms=p95_ms,
        notes=notes,
        enqueue_seconds=enqueue_seconds,
        active_seconds=active_seconds,
        latency_samples=len(latencies),
        other_load_cores=cpu.other_cores,
    )


def popen_workers(cmd: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start ``cmd`` from the repository root in its own session/process group, output
    appended to ``log_path``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so we can stop all of it
        )


# ---------------------------------------------------------------------------------------
# Huey + SQLite
# ---------------------------------------------------------------------------------------


def huey_sqlite(
    n_jobs: int,
    workers: int = 2,
    latency_samples: int = 50,
    *,
    poll_delay: float | None = None,
    poll_max_delay: float | None = None,
    poll_backoff: float | None = None,
    timeout: float = 600.0,
) -> JobsResult:
    """Huey with ``SqliteHuey`` (a temp file) and ``huey_consumer -k process -w N``.

    ``poll_delay``/``poll_max_delay``/``poll_backoff`` map to the consumer's ``-d``/
    ``-m``/``-b`` options; ``None`` keeps Huey's defaults (0.1 s initial delay, x1.15
    back-off per empty poll, 10 s maximum). An idle Huey worker sleeps between polls of
    the SQLite table, so pickup latency depends on these settings.
    """
    from benchmarks.peers import _huey_app

    tmp = Path(tempfile.mkdtemp(prefix="rjbench-huey-"))
    try:
        db = tmp / "huey.db"
        probe_path = tmp / "probe.log"
        log_path = tmp / "consumer.log"
        _huey, task = _huey_app.build(str(db))

        cmd = [
            console_script("huey_consumer"),
            "benchmarks.peers._huey_app.huey",
            "-k", "process",
            "-w", str(workers),
            "-q",
        ]
        polling = []
        if poll_delay is not None:
            cmd += ["-d", str(poll_delay)]
            polling.append(f"delay={poll_delay * 1000:g}ms")
        if poll_max_delay is not None:
            cmd += ["-m", str(poll_max_delay)]
            polling.append(f"max-delay={poll_max_delay * 1000:g}ms")
        if poll_backoff is not None:
            cmd += ["-b", str(poll_backoff)]
            polling.append(f"backoff={poll_backoff:g}")
        system = "huey-sqlite" + (f" ({', '.join(polling)})" if polling else " (default polling)")
        env = child_env({_huey_app.DB_ENV: str(db), PROBE_ENV: str(probe_path)})

        import huey as huey_pkg

        return measure_queue(
            system=system,
            n_jobs=n_jobs,
            workers=workers,
            latency_samples=latency_samples,
            enqueue=lambda i: task(i),
            launch=lambda: popen_workers(cmd, env, log_path),
            probe=ProbeReader(probe_path),
            log_path=log_path,
            timeout=timeout,
            notes=(
                f"huey {huey_pkg.__version__}, SqliteHuey (WAL), consumer -k process -w "
                f"{workers}" + (f", {' '.join(cmd[cmd.index('-q') + 1:])}" if polling else "")
            ),
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# RQ + Redis
# ---------------------------------------------------------------------------------------


def redis_available(url: str = DEFAULT_REDIS_URL, timeout: float = 0.5) -> bool:
    """True when a Redis server answers PING at ``url``."""
    try:
        import redis
    except ImportError:
        return False
    try:
        conn = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(conn.ping())
        finally:
            conn.close()
    except Exception:
        return False


def _delete_keys(conn, pattern: str) -> None:
    """Delete the keys matching ``pattern`` (SCAN, never KEYS/FLUSHDB)."""
    batch = []
    for key in conn.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            conn.delete(*batch)
            batch.clear()
    if batch:
        conn.delete(*batch)


def _rq_cleanup(conn, queue_name: str) -> None:
    """Delete what one RQ run left in Redis, and nothing of any other run.

    Job ids are ``<queue_name>-<n>``, so the queue, its registries and every job's hash,
    results and executions all contain ``queue_name``; the workers' hashes are found
    by the queue they served.
    """
    _delete_keys(conn, f"*{queue_name}*")
    conn.srem("rq:queues", f"rq:queue:{queue_name}")
    for key in conn.scan_iter(match="rq:worker:*", count=1000):
        try:
            if conn.hget(key, "queues") == queue_name.encode():
                conn.delete(key)
                conn.srem("rq:workers", key)
        except Exception:  # not a hash, or gone meanwhile
            pass


def rq_redis(
    n_jobs: int,
    workers: int = 2,
    latency_samples: int = 50,
    *,
    redis_url: str = DEFAULT_REDIS_URL,
    worker_class: str | None = None,
    timeout: float = 600.0,
) -> JobsResult:
    """RQ with Redis and ``rq worker-pool -n N`` (N worker processes).

    By default each RQ worker forks a "work horse" per job (RQ's standard ``Worker``);
    pass ``worker_class="rq.worker.SimpleWorker"`` to run jobs in the worker process.
    Uses a fresh queue name ``rjbench-<random>`` in the Redis database of ``redis_url``
    (db 14 by default) and job ids ``<queue name>-<n>``; afterwards only the keys of this
    run are deleted, so concurrent runs (and other users of the database) are untouched.
    """
    import redis
    import rq

    from benchmarks.peers._tasks import noop

    tmp = Path(tempfile.mkdtemp(prefix="rjbench-rq-"))
    conn = redis.Redis.from_url(redis_url)
    queue_name = f"rjbench-{uuid.uuid4().hex[:12]}"
    try:
        conn.ping()
        queue = rq.Queue(queue_name, connection=conn)
        probe_path = tmp / "probe.log"
        log_path = tmp / "workers.log"
        cmd = [
            console_script("rq"), "worker-pool",
            "-n", str(workers),
            "-u", redis_url,
            "-q",
        ]
        if worker_class:
            cmd += ["-w", worker_class]
        cmd.append(queue_name)
        env = child_env({PROBE_ENV: str(probe_path)})
        kind = worker_class.rsplit(".", 1)[-1] if worker_class else "Worker (fork per job)"
        return measure_queue(
            system="rq-redis" + (f" ({kind})" if worker_class else ""),
            n_jobs=n_jobs,
            workers=workers,
            latency_samples=latency_samples,
            enqueue=lambda i: queue.enqueue(noop, i, job_id=f"{queue_name}-{i}"),
            launch=lambda: popen_workers(cmd, env, log_path),
            probe=ProbeReader(probe_path),
            log_path=log_path,
            timeout=timeout,
            notes=f"rq {rq.__version__}, redis-py {redis.__version__}, "
            f"`rq worker-pool -n {workers}`, {kind}, default result_ttl",
            broker_pids=pids_named("redis-server"),
        )
    finally:
        try:
            _rq_cleanup(conn, queue_name)
        finally:
            conn.close()
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Celery + Redis (optional: only when celery is installed)
# ---------------------------------------------------------------------------------------


def celery_available() -> bool:
    try:
        import celery  # noqa: F401
    except ImportError:
        return False
    return True


def celery_redis(
    n_jobs: int,
    workers: int = 2,
    latency_samples: int = 50,
    *,
    redis_url: str = DEFAULT_REDIS_URL,
    timeout: float = 600.0,
) -> JobsResult:
    """Celery with a Redis broker, ``celery worker -P prefork -c N``, no result backend.

    Uses a fresh queue ``rjbench-<random>`` in the Redis database of ``redis_url``, with
    kombu's ``global_keyprefix`` set to ``<queue name>:`` so every key of the run
    (queue, bindings, ``unacked*``) carries it; afterwards only those keys are deleted.
    Needs ``pip install celery`` (not in the ``bench`` extra).
    """
    import celery
    import redis

    from benchmarks.peers import _celery_app

    tmp = Path(tempfile.mkdtemp(prefix="rjbench-celery-"))
    conn = redis.Redis.from_url(redis_url)
    queue_name = f"rjbench-{uuid.uuid4().hex[:12]}"
    try:
        conn.ping()
        app = _celery_app.build(redis_url, queue_name)
        task = app.tasks[_celery_app.TASK_NAME]
        probe_path = tmp / "probe.log"
        log_path = tmp / "workers.log"
        cmd = [
            sys.executable, "-m", "celery",
            "-A", "benchmarks.peers._celery_app",
            "worker",
            "-P", "prefork",
            "-c", str(workers),
            "-Q", queue_name,
            "-l", "WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]
        env = child_env({
            PROBE_ENV: str(probe_path),
            _celery_app.BROKER_ENV: redis_url,
            _celery_app.QUEUE_ENV: queue_name,
        })
        import signal

        return measure_queue(
            system="celery-redis",
            n_jobs=n_jobs,
            workers=workers,
            latency_samples=latency_samples,
            enqueue=lambda i: task.delay(i),
            launch=lambda: popen_workers(cmd, env, log_path),
            probe=ProbeReader(probe_path),
            log_path=log_path,
            timeout=timeout,
            notes=f"celery {celery.__version__}, Redis broker, prefork -c {workers}, "
            "no result backend, --without-gossip/mingle/heartbeat",
            stop_signal=signal.SIGTERM,  # Celery's warm shutdown
            broker_pids=pids_named("redis-server"),
        )
    finally:
        try:
            _delete_keys(conn, f"*{queue_name}*")
        finally:
            conn.close()
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------

#: Peers run by ``__main__`` and by :func:`run_peers`, by key.
PEERS: dict[str, Callable[..., JobsResult]] = {
    "huey": lambda n, w, s: huey_sqlite(n, w, s),
    "huey-tuned": lambda n, w, s: huey_sqlite(n, w, s, poll_delay=0.001, poll_max_delay=0.01),
    "rq": lambda n, w, s: rq_redis(n, w, s),
    "rq-simple": lambda n, w, s: rq_redis(n, w, s, worker_class="rq.worker.SimpleWorker"),
    "celery": lambda n, w, s: celery_redis(n, w, s),
}
NEEDS_REDIS = {"rq", "rq-simple", "celery"}


def run_peers(
    n_jobs: int,
    workers: int = 2,
    latency_samples: int = 50,
    systems: list[str] | None = None,
) -> list[JobsResult]:
    """Run the named peers (default: all that can run here) and return their results.

    Peers needing Redis are skipped when it is unreachable; Celery when not installed.
    """
    chosen = list(PEERS) if systems is None else systems
    results = []
    for key in chosen:
        if key in NEEDS_REDIS and not redis_available():
            print(f"skipping {key}: Redis not reachable at {DEFAULT_REDIS_URL}", file=sys.stderr)
            continue
        if key == "celery" and not celery_available():
            print("skipping celery: not installed (pip install celery)", file=sys.stderr)
            continue
        print(f"running {key} ...", file=sys.stderr, flush=True)
        results.append(PEERS[key](n_jobs, workers, latency_samples))
    return results


def results_table(results: list[JobsResult]) -> str:
    return format_table(
        ["system", "jobs", "workers", "enqueue s", "drain s", "jobs/s", "active s",
         "latency p50 ms", "latency p95 ms", "other load"],
        [
            [r.system, r.n_jobs, r.workers, r.enqueue_seconds, r.drain_seconds,
             r.jobs_per_second, r.active_seconds, r.latency_median_ms, r.latency_p95_ms,
             r.other_load_cores]
            for r in results
        ],
    )


def report(results: list[JobsResult], json_path: Path | None = None) -> None:
    """Print the table and each system's notes; also save them as JSON when asked."""
    print(results_table(results))
    for r in results:
        print(f"- {r.system}: {r.notes}")
    if json_path:
        json_path.write_text(json.dumps([r.as_dict() for r in results], indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers.jobs_peers",
        description="Job-queue benchmark, peers only (Huey/SQLite, RQ/Redis, Celery/Redis).",
    )
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs to drain (default 10000)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-samples", type=int, default=50)
    parser.add_argument(
        "--systems", default=",".join(PEERS),
        help=f"comma-separated subset of: {', '.join(PEERS)}",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in PEERS]
    if unknown:
        parser.error(f"unknown systems: {', '.join(unknown)}")
    report(run_peers(args.jobs, args.workers, args.latency_samples, systems), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
