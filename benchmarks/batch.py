"""Batch benchmark: rjbatch beside a plain script, multiprocessing.Pool and Dask bag.

Two workloads over files of N records (default 1,000,000): (1) short lines, no-op
perform, every line written back in order; (2) a 10-column CSV parsed into dicts, a
small transform, CSV out with a header. For rjbatch it reports upload, processing and
download rates separately, and the wall time of ``rjbatch process`` end to end (upload,
2 workers, download), and checks every output against the plain script's. Run from the
repository root:

    python -m benchmarks.batch --records 1000000 [--database postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.peers._common import REPO_ROOT, child_env, format_table
from benchmarks.peers.batch_peers import SYSTEMS, WORKLOADS, results_table, run_peers, same_output
from benchmarks.peers.data import ensure_inputs

JOB_CLASSES = {"lines": "BenchLinesJob", "csv": "BenchCsvJob"}


@dataclass
class RjbatchResult:
    workload: str
    records: int
    upload_rps: float
    processing_rps: float
    processing_active_rps: float
    download_rps: float
    staged_seconds: float
    process_wall_seconds: float
    process_peak_rss_mb: float
    same_as_plain: bool | None = None
    database: str = "sqlite"


def _script(database: str, body: str) -> str:
    return (
        "import sys, time, json\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "import rjbatch\n"
        f"rjbatch.configure(database={database!r})\n"
        "from benchmarks import bench_jobs\n" + body
    )


def _run_python(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=child_env(), capture_output=True,
                         text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def rjbatch_workload(workload: str, source: Path, out_dir: Path, database: str, workers: int) -> RjbatchResult:
    job_class = JOB_CLASSES[workload]
    suffix = ".csv" if workload == "csv" else ".txt"
    # 1. upload alone, in a process of its own
    uploaded = _run_python(_script(database, (
        f"job = bench_jobs.{job_class}()\n"
        "job.save()\n"
        "t = time.perf_counter()\n"
        f"n = job.upload({str(source)!r})\n"
        "print(json.dumps({'id': job.id, 'n': n, 's': time.perf_counter() - t}))\n"
    )))
    # 2. processing by a 2-worker server
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "rjbatch", "worker", "--workers", str(workers), "--database", database,
         "--jobs", "benchmarks.bench_jobs", "--log-level", "warning"],
        cwd=REPO_ROOT, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        state = _run_python(_script(database, (
            f"job = bench_jobs.{job_class}.find({uploaded['id']!r})\n"
            "while not (job.reload().is_completed or job.is_failed): time.sleep(0.01)\n"
            "print(json.dumps({'state': job.state, 'active': (job.completed_at - job.started_at).total_seconds()}))\n"
        )))
        processing_seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=60)
    if state["state"] != "completed":
        raise RuntimeError(f"rjbatch {workload} job ended {state['state']}")
    # 3. download
    staged_target = out_dir / f"{workload}_rjbatch_staged{suffix}"
    downloaded = _run_python(_script(database, (
        f"job = bench_jobs.{job_class}.find({uploaded['id']!r})\n"
        "t = time.perf_counter()\n"
        f"n = job.download({str(staged_target)!r})\n"
        "print(json.dumps({'n': n, 's': time.perf_counter() - t}))\n"
    )))
    # 4. end to end: rjbatch process
    target = out_dir / f"{workload}_rjbatch{suffix}"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    wall_started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "rjbatch", "process", str(source), "--job", job_class, "--output", str(target),
         "--workers", str(workers), "--database", database, "--jobs", "benchmarks.bench_jobs", "--quiet"],
        cwd=REPO_ROOT, env=child_env(), check=True, capture_output=True, timeout=3600,
    )
    wall = time.perf_counter() - wall_started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    n = uploaded["n"]
    return RjbatchResult(
        workload=workload, records=n, upload_rps=n / uploaded["s"],
        processing_rps=n / processing_seconds, processing_active_rps=n / max(state["active"], 1e-9),
        download_rps=downloaded["n"] / downloaded["s"],
        staged_seconds=uploaded["s"] + processing_seconds + downloaded["s"],
        process_wall_seconds=wall, process_peak_rss_mb=max(peak, before) / 1024,
        database=database.split(":", 1)[0],
    )


def upload_memory(path: Path, database: str) -> float:
    """Peak RSS (MB) of a process that only uploads ``path`` into a batch job."""
    code = _script(database, (
        "import resource\n"
        "job = bench_jobs.BenchLinesJob()\n"
        "job.save()\n"
        f"n = job.upload({str(path)!r})\n"
        "print(json.dumps({'n': n, 'rss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    ))
    result = _run_python(code)
    return result["rss"]


def tmp_database(url: str, tmp: Path) -> str:
    """A fresh database for one run: a new SQLite file, or an emptied PostgreSQL database."""
    if url == "sqlite":
        return f"sqlite:///{tmp / 'rjbatch.db'}"
    if url.startswith("postgres"):
        import psycopg

        base, _, name = url.rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batch", description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", action="append",
                        help="a store URL (repeatable; 'sqlite' is a fresh SQLite file, the default; a "
                             "postgresql:// database is created if missing and emptied first)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--peers", default=",".join(SYSTEMS), help="'' for none")
    parser.add_argument("--cache-dir")
    parser.add_argument("--memory-file", help="also measure the peak RSS of uploading this (large) file")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    workloads = [w for w in args.workloads.split(",") if w]
    inputs = ensure_inputs(args.cache_dir, args.records)
    tmp = Path(tempfile.mkdtemp(prefix="rjbench-batch-"))
    try:
        databases = [tmp_database(d, tmp) for d in (args.database or ["sqlite"])]
        peers = [p for p in args.peers.split(",") if p]
        peer_results = run_peers(args.records, args.cache_dir, tmp / "out", peers, workloads) if peers else []
        ours = []
        for database in databases:
            for workload in workloads:
                print(f"running rjbatch/{workload} on {database.split(':', 1)[0]} ...", file=sys.stderr, flush=True)
                result = rjbatch_workload(workload, inputs[workload], tmp / "out", database, args.workers)
                plain = next((p for p in peer_results if p.system == "plain" and p.workload == workload), None)
                if plain is not None:
                    suffix = ".csv" if workload == "csv" else ".txt"
                    result.same_as_plain = same_output(plain.output_path,
                                                       tmp / "out" / f"{workload}_rjbatch{suffix}")
                ours.append(result)
        database = databases[0]
        print(results_table(peer_results))
        print()
        print(format_table(
            ["workload", "db", "records", "upload rec/s", "processing rec/s", "(active) rec/s",
             "download rec/s", "staged s", "process wall s", "process peak RSS MB", "same output"],
            [[r.workload, r.database, r.records, r.upload_rps, r.processing_rps, r.processing_active_rps,
              r.download_rps, r.staged_seconds, r.process_wall_seconds, r.process_peak_rss_mb,
              r.same_as_plain] for r in ours],
        ))
        if args.memory_file:
            size = os.path.getsize(args.memory_file) / 1e6
            print(f"\nupload of {args.memory_file} ({size:,.0f} MB): peak RSS "
                  f"{upload_memory(Path(args.memory_file), database):,.0f} MB")
        if args.json:
            args.json.write_text(json.dumps({"rjbatch": [asdict(r) for r in ours],
                                             "peers": [p.as_dict() for p in peer_results]}, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
