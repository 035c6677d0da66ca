"""The server: one supervisor process and its worker processes.

The supervisor registers the server, heart-beats, starts and restarts workers,
requeues a dead worker's work at once, requeues the work of other servers that stopped
heart-beating, obeys pause/resume/stop requests made through the store, and on
SIGTERM/SIGINT stops claiming, lets current work finish within a grace period, then
requeues whatever is left. A second signal stops at once.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from multiprocessing.context import ForkContext, ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any

from rjbatch import clock, config, log, servers
from rjbatch.batch.upload import fail_stalled_uploads
from rjbatch.errors import RjbatchError
from rjbatch.job import Job
from rjbatch.worker.loop import WorkerSpec, worker_main

logger = logging.getLogger("rjbatch.server")


@dataclass
class ServerOptions:
    name: str | None = None
    workers: int = 0
    include: str | None = None
    exclude: str | None = None
    jobs: list[str] | None = None
    start_method: str = "auto"  # auto: fork the first workers (no threads yet), spawn later ones
    control_poll_seconds: float = 0.25
    log_level: int = logging.INFO


def _context(method: str) -> ForkContext | SpawnContext | ForkServerContext:
    """The multiprocessing context of a start method's name (``fork``, ``spawn``, ``forkserver``)."""
    if method == "fork":
        return multiprocessing.get_context("fork")
    if method == "forkserver":
        return multiprocessing.get_context("forkserver")
    if method == "spawn":
        return multiprocessing.get_context("spawn")
    raise ValueError(f"unknown start method {method!r} (auto, fork, spawn or forkserver)")


class _Worker:
    def __init__(self, spec: WorkerSpec, process: BaseProcess, stop: Any) -> None:
        self.spec = spec
        self.process = process
        self.stop = stop
        self.stopping = False


class Supervisor:
    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.settings = config.settings
        self.name = options.name or servers.default_server_name()
        self.max_workers = options.workers or self.settings.max_workers or os.cpu_count() or 1
        self.store = config.get_store()
        method = options.start_method
        if method == "auto":
            # forking is fast and safe while this process has a single thread, which is
            # the case until the heartbeat thread starts; later workers are spawned
            self.first_context = _context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
            self.context = _context("spawn")
        else:
            self.first_context = self.context = _context(method)
        self.workers: dict[int, _Worker] = {}
        self.next_worker_id = 1
        self.signals = 0
        self.state = servers.STARTING
        self._beating = threading.Event()

    # -- life cycle ---------------------------------------------------------------------
    def run(self) -> int:
        log.server_name.set(self.name)
        self._register()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="rjbatch heartbeat", daemon=True)
        try:
            self._set_state(servers.RUNNING)
            context, self.context = self.context, self.first_context
            self._top_up()
            self.context = context
            heartbeat.start()
            logger.info("server %s started with %d worker(s)", self.name, self.max_workers)
            self._supervise()
        finally:
            self._shutdown()
            self._beating.set()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signals += 1
        if self.signals == 1:
            logger.info("%s: stopping after current work (send again to stop at once)",
                        signal.Signals(signum).name)
        else:
            logger.warning("second signal: stopping at once; unfinished work is requeued")

    def _register(self) -> None:
        existing = self.store.find_server(self.name)
        if existing is not None:
            old = servers.Server.from_doc(existing)
            if old.hostname == socket.gethostname() and old.pid != os.getpid() and _alive(old.pid):
                raise RjbatchError(f"a server named {self.name} is already running (pid {old.pid})")
            requeued = servers.requeue_work_of(self.name)
            logger.warning("replacing the record of an earlier server %s (requeued %d job(s) or slice(s))",
                           self.name, requeued)
        now = clock.now()
        self.store.save_server({
            "name": self.name, "state": servers.STARTING, "max_workers": self.max_workers,
            "started_at": now, "heartbeat_at": now, "hostname": socket.gethostname(),
            "pid": os.getpid(), "heartbeat_seconds": self.settings.heartbeat_seconds,
            "zombie_heartbeats": self.settings.zombie_heartbeats, "workers": [],
        })

    def _set_state(self, state: str) -> None:
        self.state = state
        self.store.update_server(self.name, {"state": state})

    # -- supervision --------------------------------------------------------------------
    def _supervise(self) -> None:
        poll = self.options.control_poll_seconds
        while not self.signals:
            record = self.store.find_server(self.name)
            if record is None:
                logger.error("this server's record was removed (taken for a zombie): re-registering")
                self._register()
                self._set_state(servers.RUNNING)
                continue
            wanted = record["state"]
            if wanted == servers.STOPPING:
                logger.info("stop requested through the store")
                return
            if wanted == servers.PAUSED and self.state != servers.PAUSED:
                logger.info("paused: workers finish their current work and wait")
                self.state = servers.PAUSED
                for worker in self.workers.values():
                    worker.stop.set()
                    worker.stopping = True
            elif wanted == servers.RUNNING and self.state != servers.RUNNING:
                logger.info("resumed")
                self.state = servers.RUNNING
            if self.state == servers.RUNNING:
                self._top_up()
            self._reap(timeout=poll)

    def _top_up(self) -> None:
        while len(self.workers) < self.max_workers:
            self._start_worker()

    def _start_worker(self) -> None:
        spec = WorkerSpec(
            server_name=self.name, worker_id=self.next_worker_id, database=self.store.url,
            jobs=list(self.options.jobs or config.job_sources()),
            include=self.options.include, exclude=self.options.exclude,
            max_poll_seconds=self.settings.max_poll_seconds,
            re_check_seconds=self.settings.re_check_seconds, log_level=self.options.log_level,
            settings={"re_check_seconds": self.settings.re_check_seconds,
                      "max_poll_seconds": self.settings.max_poll_seconds},
            supervisor_pid=os.getpid(),
        )
        self.next_worker_id += 1  # worker ids are never reused in one server's life
        stop = self.context.Event()
        process = self.context.Process(target=worker_main, args=(spec, stop), name=f"rjbatch {spec.name}")
        process.start()
        self.workers[spec.worker_id] = _Worker(spec, process, stop)

    def _reap(self, timeout: float) -> None:
        """Wait for a worker to exit; requeue the work of any that died."""
        sentinels = {w.process.sentinel: w for w in self.workers.values()}
        if not sentinels:
            time.sleep(timeout)
            return
        ready = set(multiprocessing.connection.wait(list(sentinels), timeout))
        for worker in [w for sentinel, w in sentinels.items() if sentinel in ready]:
            worker.process.join()
            del self.workers[worker.spec.worker_id]
            # requeueing is idempotent: after a clean exit there is simply nothing to requeue
            requeued = Job.requeue_dead_server(worker.spec.name)
            if worker.process.exitcode != 0:
                logger.warning("worker %s (pid %s) died with exit code %s: requeued %d job(s) or slice(s)",
                               worker.spec.name, worker.process.pid, worker.process.exitcode, requeued)
            elif not worker.stopping:
                logger.info("worker %s exited", worker.spec.name)

    # -- heartbeat ----------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        interval = self.settings.heartbeat_seconds
        while not self._beating.wait(interval):
            try:
                self.heartbeat()
            except Exception:  # noqa: BLE001 - a failed beat is logged and tried again
                logger.exception("heartbeat failed")

    def heartbeat(self) -> None:
        workers = [{"name": w.spec.name, "pid": w.process.pid} for w in self.workers.values()]
        if not self.store.update_server(self.name, {"heartbeat_at": clock.now(), "workers": workers}):
            return  # the supervisor's loop re-registers
        servers.destroy_zombies(self.store, except_name=self.name)
        fail_stalled_uploads()  # an uploader that died leaves no job unfinished for ever

    # -- shutdown -----------------------------------------------------------------------
    def _shutdown(self) -> None:
        self.state = servers.STOPPING
        self.store.update_server(self.name, {"state": servers.STOPPING})
        for worker in self.workers.values():
            worker.stop.set()
            worker.stopping = True
        deadline = time.monotonic() + self.settings.shutdown_grace_seconds
        while self.workers and self.signals < 2 and time.monotonic() < deadline:
            self._reap(timeout=0.1)
        for worker in list(self.workers.values()):
            logger.warning("worker %s did not finish in time: killing it", worker.spec.name)
            worker.process.kill()
            worker.process.join()
            del self.workers[worker.spec.worker_id]
        requeued = Job.requeue_dead_server(self.name)  # nothing stays running without an owner
        if requeued:
            logger.warning("requeued %d unfinished job(s) or slice(s)", requeued)
        self.store.delete_server(self.name)
        logger.info("server %s stopped", self.name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_server(options: ServerOptions) -> int:
    return Supervisor(options).run()
