"""Worker servers as the store records them: heartbeats, states, zombies, control.

A server is one ``rjbatch worker`` process supervising worker processes. Other
processes (the CLI, Mission Control, other servers) see it only through its record.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rjbatch import clock
from rjbatch.fields import parse_datetime, to_utc
from rjbatch.store.protocol import Store

log = logging.getLogger("rjbatch.server")

STARTING, RUNNING, PAUSED, STOPPING = "starting", "running", "paused", "stopping"


def default_server_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def as_time(value: Any) -> datetime | None:
    """A stored time (a datetime, or the SQLite store's text) as an aware UTC datetime."""
    if isinstance(value, datetime):
        return to_utc(value)
    return parse_datetime(value) if isinstance(value, str) and value else None


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


def requeue_work_of(store: Store, name: str) -> int:
    """Send back to the queue everything a server (or one worker) was running."""
    from rjbatch.job import Job

    return Job.requeue_dead_server(name)


def destroy_server(store: Store, name: str, where: dict[str, Any]) -> int | None:
    """Remove a server's record and requeue its work; returns how much was requeued.

    The record is first marked, under ``where``, so that of several destroyers only one
    requeues: None when another was first (or ``where`` no longer holds).
    """
    if not store.update_server(name, {"state": "zombie"}, where=where):
        return None
    requeued = requeue_work_of(store, name)
    store.delete_server(name)
    return requeued


def destroy_zombies(store: Store, except_name: str | None = None) -> list[str]:
    """Remove every zombie server's record and requeue its work; returns their names."""
    removed = []
    for server in all_servers(store):
        if server.name != except_name and server.is_zombie:
            requeued = destroy_server(store, server.name, where={"state": {"$ne": "zombie"}})
            if requeued is not None:
                log.warning("server %s stopped heart-beating: requeued %d job(s)", server.name, requeued)
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
