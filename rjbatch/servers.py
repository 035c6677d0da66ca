"""Worker servers as the store records them: heartbeats, states, zombies, control.

A server is one ``rjbatch worker`` process supervising worker processes, or one
``rjbatch work`` process running jobs itself (:class:`HeldServer`). Other processes (the
CLI, Mission Control, other servers) see it only through its record.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rjbatch import clock
from rjbatch.job.fields import to_utc
from rjbatch.store.protocol import Store

log = logging.getLogger("rjbatch.server")

STARTING, RUNNING, PAUSED, STOPPING = "starting", "running", "paused", "stopping"


def default_server_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def as_time(value: Any) -> datetime | None:
    """A stored time (every store returns aware UTC datetimes) or None."""
    return to_utc(value) if isinstance(value, datetime) else None


@dataclass
class Server:
    """A snapshot of one server's record."""

    name: str
    state: str
    max_workers: int
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    heartbeat_seconds: float = 15.0
    zombie_heartbeats: int = 4
    hostname: str = ""
    pid: int = 0
    workers: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Server:
        return cls(
            name=doc["name"], state=doc["state"], max_workers=doc.get("max_workers") or 0,
            started_at=as_time(doc.get("started_at")), heartbeat_at=as_time(doc.get("heartbeat_at")),
            heartbeat_seconds=float(doc.get("heartbeat_seconds") or 15.0),
            zombie_heartbeats=int(doc.get("zombie_heartbeats") or 4),
            hostname=doc.get("hostname", ""), pid=int(doc.get("pid") or 0),
            workers=list(doc.get("workers") or []),
        )

    @property
    def heartbeat_age(self) -> timedelta | None:
        return clock.now() - self.heartbeat_at if self.heartbeat_at else None

    @property
    def is_zombie(self) -> bool:
        """Stopped heart-beating: no beat for ``zombie_heartbeats`` of its own intervals.

        A server still starting is never a zombie.
        """
        if self.state not in (RUNNING, PAUSED, STOPPING):
            return False
        if self.heartbeat_at is None:
            return True
        allowed = timedelta(seconds=self.heartbeat_seconds * self.zombie_heartbeats)
        return clock.now() - self.heartbeat_at >= allowed


def all_servers(store: Store) -> list[Server]:
    return [Server.from_doc(doc) for doc in store.find_servers()]


def requeue_work_of(name: str) -> int:
    """Send back to the queue everything a server (or one worker) was running (in the
    configured store, as every job operation)."""
    from rjbatch.job import Job

    return Job.requeue_dead_server(name)


def destroy_server(store: Store, name: str, where: dict[str, Any]) -> int | None:
    """Remove a server's record and requeue its work; returns how much was requeued.

    The record is first marked, under ``where``, so that of several destroyers only one
    requeues: None when another was first (or ``where`` no longer holds).
    """
    if not store.update_server(name, {"state": "zombie"}, where=where):
        return None
    requeued = requeue_work_of(name)
    store.delete_server(name)
    return requeued


def destroy_zombies(store: Store, except_name: str | None = None) -> list[str]:
    """Remove every zombie server's record and requeue its work; returns their names."""
    removed = []
    for server in all_servers(store):
        if server.name != except_name and server.is_zombie:
            requeued = destroy_server(store, server.name, where={"state": {"$ne": "zombie"}})
            if requeued is not None:
                log.warning("server %s stopped heart-beating: requeued %d job(s) or slice(s)", server.name, requeued)
                removed.append(server.name)
    return removed


def request(store: Store, action: str, name: str | None = None, *, exact: bool = False) -> list[str]:
    """Ask one server (or every server) to pause, resume or stop; returns who was asked.

    ``name`` matches a server's name or, unless ``exact``, its hostname (the CLI's
    ``rjbatch servers pause HOST`` asks every server on that host).
    """
    targets = {"pause": PAUSED, "resume": RUNNING, "stop": STOPPING}
    if action not in targets:
        raise ValueError(f"unknown server action {action!r}")
    allowed_from = {"pause": [RUNNING], "resume": [PAUSED], "stop": [STARTING, RUNNING, PAUSED]}[action]
    asked = []
    for server in all_servers(store):
        if name is not None and server.name != name and (exact or server.hostname != name):
            continue
        if server.state in allowed_from and store.update_server(
            server.name, {"state": targets[action]}, where={"state": {"$in": allowed_from}}
        ):
            asked.append(server.name)
    return asked


class HeldServer:
    """The server record of a process that runs jobs itself (``rjbatch work``).

    Registered as ``host:pid:work`` (running, one worker ``host:pid:work:0``), it
    heart-beats from a thread of its own, so that a process killed while it holds a job
    becomes a zombie whose work any live server (``rjbatch worker``, or the next
    ``rjbatch work``) requeues. Like a server's, each beat also requeues the work of
    zombies and fails uploads whose uploader died. ``stop()`` requeues whatever is still
    running under its name and removes the record. The same thread reads the record's
    state: ``stop_requested`` and ``paused`` follow ``rjbatch servers stop|pause|resume``.
    """

    def __init__(self, store: Store, name: str | None = None, *, heartbeat_seconds: float | None = None,
                 zombie_heartbeats: int | None = None, control_poll_seconds: float = 0.25) -> None:
        from rjbatch import config

        self.store = store
        self.name = name or f"{default_server_name()}:work"
        self.worker_name = f"{self.name}:0"
        self.heartbeat_seconds = heartbeat_seconds or config.settings.heartbeat_seconds
        self.zombie_heartbeats = zombie_heartbeats or config.settings.zombie_heartbeats
        self.control_poll_seconds = min(control_poll_seconds, self.heartbeat_seconds)
        self.stop_requested = False
        self.paused = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> HeldServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        existing = self.store.find_server(self.name)
        if existing is not None:  # a process of this pid that died on this host: its leftovers
            requeued = requeue_work_of(self.name)
            log.warning("replacing the record of an earlier %s (requeued %d job(s) or slice(s))", self.name, requeued)
        self._register()
        destroy_zombies(self.store, except_name=self.name)  # before the first claim: their jobs too
        self._thread = threading.Thread(target=self._loop, name="rjbatch heartbeat", daemon=True)
        self._thread.start()

    def _register(self) -> None:
        now = clock.now()
        self.store.save_server({
            "name": self.name, "state": RUNNING, "max_workers": 1, "started_at": now,
            "heartbeat_at": now, "hostname": socket.gethostname(), "pid": os.getpid(),
            "heartbeat_seconds": self.heartbeat_seconds, "zombie_heartbeats": self.zombie_heartbeats,
            "workers": [{"name": self.worker_name, "pid": os.getpid()}],
        })

    def _loop(self) -> None:
        next_beat = time.monotonic() + self.heartbeat_seconds
        while not self._done.wait(self.control_poll_seconds):
            try:
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self.heartbeat_seconds
                    self.heartbeat()
                self.read_control()
            except Exception:  # noqa: BLE001 - a failed beat is logged and tried again
                log.exception("heartbeat of %s failed", self.name)

    def heartbeat(self) -> None:
        from rjbatch.batch.upload import fail_stalled_uploads

        if not self.store.update_server(self.name, {"heartbeat_at": clock.now()}):
            # taken for a zombie (the process stalled): what it held was requeued, and the
            # fenced writes of the run in progress will be refused; hold the next jobs again
            log.error("the record of %s was removed (taken for a zombie): re-registering", self.name)
            self._register()
        destroy_zombies(self.store, except_name=self.name)
        fail_stalled_uploads()

    def read_control(self) -> None:
        record = self.store.find_server(self.name)
        state = record["state"] if record else RUNNING
        self.stop_requested = self.stop_requested or state == STOPPING
        self.paused = state == PAUSED

    def wait_while_paused(self) -> None:
        """Hold here while paused through the store (until resumed or asked to stop)."""
        while self.paused and not self.stop_requested:
            time.sleep(self.control_poll_seconds)

    def stop(self) -> int:
        """Stop heart-beating, requeue what is still running under this name, remove the
        record; returns how many jobs and slices went back to the queue."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.heartbeat_seconds))
        try:
            self.store.update_server(self.name, {"state": STOPPING})
            return requeue_work_of(self.name)
        finally:
            self.store.delete_server(self.name)
