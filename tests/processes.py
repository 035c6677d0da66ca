"""Real ``rjbatch worker`` processes for the multi-process tests, and polling helpers.

The ``servers`` fixture (tests/conftest.py) hands a test a ``Servers`` pool that kills
every process it started when the test ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SAMPLE_JOBS = str(Path(__file__).with_name("sample_jobs.py"))


class Servers:
    """Starts ``rjbatch worker`` processes, each in its own process group; kills them all at the end."""

    def __init__(self, database: str, tmp_path: Path) -> None:
        self.database = database
        self.tmp_path = tmp_path
        self.processes: list[subprocess.Popen] = []

    def start(self, *extra: str, name: str | None = None, workers: int = 2) -> subprocess.Popen:
        args = [sys.executable, "-m", "rjbatch", "worker", "--database", self.database,
                "--jobs", SAMPLE_JOBS, "--workers", str(workers), "--heartbeat-seconds", "0.2",
                "--zombie-heartbeats", "4", "--shutdown-grace-seconds", "20", *extra]
        if name:
            args += ["--name", name]
        log = open(self.tmp_path / f"server-{len(self.processes)}.log", "w")  # noqa: SIM115
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   cwd=self.tmp_path)
        self.processes.append(process)
        return process

    def kill_all(self) -> None:
        for process in self.processes:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=30)

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.tmp_path.glob("server-*.log")))


def wait_until(condition, timeout=60.0, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
