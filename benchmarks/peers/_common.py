"""Small helpers shared by the peer benchmarks: RSS sampling, subprocess control, stats."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

#: The repository root (the directory holding ``benchmarks/`` and ``rjbatch/``).
REPO_ROOT = Path(__file__).resolve().parents[2]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a child Python process that must import ``benchmarks.peers``."""
    env = dict(os.environ)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + old if old else "")
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def console_script(name: str) -> str:
    """Path of a console script installed next to the running interpreter (``rq``, ...)."""
    candidate = Path(sys.executable).with_name(name)
    if candidate.exists():
        return str(candidate)
    return name


def stop_process_group(
    proc: subprocess.Popen,
    first_signal: int = signal.SIGINT,
    grace: float = 5.0,
) -> None:
    """Stop a child started with ``start_new_session=True`` and everything it forked.

    Sends ``first_signal`` to the child's own process group (whose id is the child's
    pid), waits up to ``grace`` seconds, then SIGTERM, then SIGKILL. Only the group
    this benchmark created is signalled.
    """
    if proc.poll() is None:
        for sig, wait in ((first_signal, grace), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    # Grandchildren may outlive the leader (e.g. a forked worker): sweep the group.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        try:
            proc.wait(timeout=3.0)
        except subprocess.TimeoutExpired:
            pass


def tail(path: Path, n_bytes: int = 2000) -> str:
    """The last bytes of a log file, for error messages."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n_bytes))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def median_p95_ms(samples_s: Sequence[float]) -> tuple[float, float]:
    """Median and 95th percentile (inclusive method) of durations in seconds, in ms."""
    if not samples_s:
        return float("nan"), float("nan")
    ms = sorted(s * 1000.0 for s in samples_s)
    if len(ms) == 1:
        return ms[0], ms[0]
    p95 = statistics.quantiles(ms, n=100, method="inclusive")[94]
    return statistics.median(ms), p95


class RssSampler:
    """Samples the summed RSS of a process and all its descendants in a thread.

    ``peak_mb`` is the maximum over samples of the sum of RSS over the process tree.
    Pages shared between a parent and its forked children are counted once per
    process, so the sum over-states the real footprint of fork-based pools; it is the
    figure ``ps``/``top`` users would add up, and it is measured the same way for every
    system.
    """

    def __init__(self, pid: int | None = None, interval: float = 0.02) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        if total > self.peak_bytes:
            self.peak_bytes = total

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / (1024 * 1024)


def wait_until(predicate, timeout: float, interval: float = 0.01, what: str = "condition") -> None:
    """Poll ``predicate()`` until true; raise ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table (pastes straight into RESULTS.md)."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, r in enumerate(cells):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if k == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used by a process and all its descendants, including reaped ones.

    Sums user+system and children_user+children_system (descendants already waited for)
    over the live tree.
    """
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _machine_busy_seconds() -> float:
    t = psutil.cpu_times()
    return sum(
        getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal")
    )


class CpuMeter:
    """How busy the machine was with *other* work while a benchmark ran.

    ``other_cores`` = (CPU seconds used machine-wide - CPU seconds used by this process
    tree) / wall seconds: the average number of cores taken by processes outside the
    benchmark. On a shared 2-core machine anything well above 0.1 means the figures are
    depressed by other load. ``extra_pids`` (e.g. the Redis server a queue uses) count as
    the benchmark's own work.
    """

    def __init__(self, pid: int | None = None, extra_pids: Sequence[int] = ()) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.extra_pids = list(extra_pids)
        self.other_cores = float("nan")
        self.own_cores = float("nan")

    def start(self) -> CpuMeter:
        self._t0 = time.perf_counter()
        self._busy0 = _machine_busy_seconds()
        self._own0 = self._own()
        return self

    def _own(self) -> float:
        return _tree_cpu_seconds(self.pid) + sum(_tree_cpu_seconds(p) for p in self.extra_pids)

    def stop(self) -> float:
        wall = time.perf_counter() - self._t0
        own = self._own() - self._own0
        busy = _machine_busy_seconds() - self._busy0
        if wall > 0:
            self.own_cores = own / wall
            self.other_cores = max(0.0, (busy - own) / wall)
        return self.other_cores

    def __enter__(self) -> CpuMeter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pids_named(name: str) -> list[int]:
    """Pids of running processes called ``name`` (read-only lookup, e.g. ``redis-server``)."""
    pids = []
    for p in psutil.process_iter(["name"]):
        if p.info.get("name") == name:
            pids.append(p.pid)
    return pids
