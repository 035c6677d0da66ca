"""Smoke test of the peer benchmarks (benchmarks/peers): tiny sizes, real processes."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `benchmarks` is not an installed package
    sys.path.insert(0, str(ROOT))

pytest.importorskip("psutil")

from benchmarks.peers import batch_peers, jobs_peers  # noqa: E402
from benchmarks.peers.data import make_csv_file, make_lines_file  # noqa: E402

pytestmark = pytest.mark.slow

N_JOBS = 200
N_RECORDS = 2_000
LATENCY_SAMPLES = 5

needs_redis = pytest.mark.skipif(
    not jobs_peers.redis_available(), reason="Redis not reachable at 127.0.0.1:6379"
)


def _check_jobs(result: jobs_peers.JobsResult) -> None:
    assert result.n_jobs == N_JOBS
    assert result.workers == 2
    assert result.latency_samples == LATENCY_SAMPLES
    assert result.drain_seconds > 0
    assert math.isclose(result.jobs_per_second, N_JOBS / result.drain_seconds)
    assert 0 <= result.active_seconds <= result.drain_seconds
    assert 0 <= result.latency_median_ms <= result.latency_p95_ms


def test_huey_sqlite():
    pytest.importorskip("huey")
    _check_jobs(jobs_peers.huey_sqlite(N_JOBS, 2, LATENCY_SAMPLES, poll_delay=0.001,
                                       poll_max_delay=0.01, timeout=60))


@needs_redis
def test_rq_redis():
    pytest.importorskip("rq")
    _check_jobs(jobs_peers.rq_redis(N_JOBS, 2, LATENCY_SAMPLES, timeout=60))


@needs_redis
def test_celery_redis():
    pytest.importorskip("celery")
    _check_jobs(jobs_peers.celery_redis(N_JOBS, 2, LATENCY_SAMPLES, timeout=60))


@pytest.mark.parametrize("workload", batch_peers.WORKLOADS)
def test_batch_peers_agree(tmp_path, workload):
    pytest.importorskip("dask.bag")
    if workload == "lines":
        inp = make_lines_file(tmp_path / "in.txt", N_RECORDS)
    else:
        inp = make_csv_file(tmp_path / "in.csv", N_RECORDS)
    results = [
        batch_peers.run_peer(system, workload, inp, tmp_path / f"out_{system}")
        for system in batch_peers.SYSTEMS
    ]
    for r in results:
        assert r.records == N_RECORDS, r
        assert r.peak_rss_mb > 0
        assert r.records_per_second > 0
        assert batch_peers.same_output(results[0].output_path, r.output_path), r.system
    first = Path(results[0].output_path).read_text(encoding="utf-8").splitlines()
    if workload == "lines":
        assert batch_peers.same_output(inp, results[0].output_path)
    else:
        assert len(first) == N_RECORDS + 1
        assert first[0].endswith(",note,total")
        assert first[1].split(",")[3].isupper()


def test_same_output_detects_differences(tmp_path):
    a, b, c, d = (tmp_path / x for x in "abcd")
    a.write_bytes(b"x\ny\n")
    b.write_bytes(b"x\r\ny\r\n")
    c.write_bytes(b"x\nz\n")
    d.write_bytes(b"x\n")
    assert batch_peers.same_output(a, b)
    assert not batch_peers.same_output(a, b, ignore_line_endings=False)
    assert not batch_peers.same_output(a, c)
    assert not batch_peers.same_output(a, d)
