"""The no-op job run by every queue peer, and the probe it writes.

Each job appends one line ``"<job_id> <start> <end>\\n"`` (``time.time()`` seconds) to the
file named by ``$RJB_PROBE_FILE`` with a single ``write(2)`` on an ``O_APPEND`` descriptor,
so concurrent worker processes never interleave lines. The benchmark process tails that
file: drain time and pickup latency are computed from these timestamps, never from how
often the benchmark polls.
"""

from __future__ import annotations

import os
import time

PROBE_ENV = "RJB_PROBE_FILE"

_fd: int | None = None
_fd_pid: int | None = None


def _probe_fd() -> int:
    global _fd, _fd_pid
    pid = os.getpid()
    if _fd is None or _fd_pid != pid:
        _fd = os.open(os.environ[PROBE_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _fd_pid = pid
    return _fd


def noop(job_id: int) -> None:
    """The job body: record when it started and ended, do nothing else, return None."""
    start = time.time()
    os.write(_probe_fd(), f"{job_id} {start:.6f} {time.time():.6f}\n".encode())


class ProbeReader:
    """Tails a probe file written by :func:`noop`; keeps ``{job_id: (start, end)}``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.seen: dict[int, tuple[float, float]] = {}
        self._offset = 0
        self._partial = b""

    def poll(self) -> int:
        """Read what was appended since the last call; return how many jobs are seen."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return len(self.seen)
        if data:
            self._offset += len(data)
            data = self._partial + data
            lines = data.split(b"\n")
            self._partial = lines.pop()
            for line in lines:
                job_id, start, end = line.split()
                self.seen[int(job_id)] = (float(start), float(end))
        return len(self.seen)
