"""Several worker servers on several "machines" share one PostgreSQL database."""

from __future__ import annotations

import os
import signal
import time

import pytest

from rjbatch.servers import all_servers
from tests.processes import wait_until
from tests.sample_jobs import DoubleJob

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("RJBATCH_TEST_DATABASE") != "postgresql",
                       reason="runs on PostgreSQL only (RJBATCH_TEST_DATABASE=postgresql; CI runs it)"),
]


def test_a_million_records_exact_while_one_server_is_killed_and_another_joins(servers):
    count = 1_000_000
    job = DoubleJob(pause_every=2000, pause_seconds=0.01)
    job.input_categories = [{"name": "main", "slice_size": 1000}]
    job.upload(range_records := list(range(1, count + 1)))
    job.save()
    store = job._store()
    first = servers.start(name="alpha", workers=2)
    wait_until(lambda: job.reload().percent_complete >= 15, timeout=120, interval=0.1,
               message="alpha to make progress")
    servers.start(name="beta", workers=2)
    wait_until(lambda: {s.name for s in all_servers(store)} >= {"alpha", "beta"}, message="beta joined")
    wait_until(lambda: job.reload().percent_complete >= 35, timeout=120, interval=0.1,
               message="both to make progress")
    os.killpg(first.pid, signal.SIGKILL)  # alpha dies with slices in flight
    first.wait(timeout=10)
    wait_until(lambda: job.reload().is_completed, timeout=300, interval=0.2, message="completion")
    assert "server alpha stopped heart-beating" in servers.logs()
    output = list(job.output())
    assert len(output) == count
    assert output == [n * 2 for n in range_records]
    time.sleep(0.1)
    assert {s.name for s in all_servers(store)} == {"beta"}
