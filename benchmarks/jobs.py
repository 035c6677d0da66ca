"""Job-queue benchmark: rjbatch beside Huey (SQLite), RQ (Redis) and Celery (Redis).

No-op jobs drained by 2 worker processes, and the delay from enqueue to start on an
idle server; the definitions are in ``benchmarks/peers/jobs_peers.py`` and apply to
every system alike. Run from the repository root:

    python -m benchmarks.jobs --jobs 10000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.peers._common import REPO_ROOT, child_env
from benchmarks.peers._tasks import PROBE_ENV, ProbeReader
from benchmarks.peers.jobs_peers import (
    PEERS,
    JobsResult,
    measure_queue,
    popen_workers,
    report,
    run_peers,
)


def rjbatch_sqlite(n_jobs: int, workers: int = 2, latency_samples: int = 50, timeout: float = 600.0) -> JobsResult:
    """rjbatch on its embedded SQLite store: ``rjbatch worker --workers N``."""
    import rjbatch
    from rjbatch import config

    tmp = Path(tempfile.mkdtemp(prefix="rjbench-rjbatch-"))
    try:
        url = f"sqlite:///{tmp / 'rjbatch.db'}"
        probe_path = tmp / "probe.log"
        log_path = tmp / "worker.log"
        config.reset_store()
        rjbatch.configure(database=url)
        sys.path.insert(0, str(REPO_ROOT))
        from benchmarks.bench_jobs import BenchNoopJob

        cmd = [sys.executable, "-m", "rjbatch", "worker", "--workers", str(workers), "--database", url,
               "--jobs", "benchmarks.bench_jobs", "--log-level", "warning"]
        env = child_env({PROBE_ENV: str(probe_path)})
        return measure_queue(
            system="rjbatch-sqlite", n_jobs=n_jobs, workers=workers, latency_samples=latency_samples,
            enqueue=lambda i: BenchNoopJob.create(job_number=i),
            launch=lambda: popen_workers(cmd, env, log_path),
            probe=ProbeReader(probe_path), log_path=log_path, timeout=timeout,
            notes=f"rjbatch {rjbatch.__version__}, SQLite WAL store, rjbatch worker --workers {workers}",
        )
    finally:
        config.reset_store()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.jobs", description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-samples", type=int, default=50)
    parser.add_argument("--peers", default=",".join(PEERS), help="peers to run beside rjbatch ('' for none)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    print("running rjbatch-sqlite ...", file=sys.stderr, flush=True)
    results = [rjbatch_sqlite(args.jobs, args.workers, args.latency_samples)]
    peers = [p for p in args.peers.split(",") if p]
    results += run_peers(args.jobs, args.workers, args.latency_samples, peers)
    report(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
