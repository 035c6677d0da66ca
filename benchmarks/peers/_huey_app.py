"""The Huey application used by :func:`benchmarks.peers.jobs_peers.huey_sqlite`.

``huey_consumer benchmarks.peers._huey_app.huey`` builds the instance from
``$RJB_HUEY_DB`` (the SQLite file); the benchmark process calls :func:`build` with the
same file to enqueue. The task is registered under a fixed name so both sides agree.
"""

from __future__ import annotations

import os

from huey import SqliteHuey

from benchmarks.peers._tasks import noop

DB_ENV = "RJB_HUEY_DB"
TASK_NAME = "rjbench_noop"


def build(filename: str):
    """Return ``(huey, noop_task)`` for a SqliteHuey storing its queue in ``filename``."""
    huey = SqliteHuey("rjbench", filename=filename)
    task = huey.task(name=TASK_NAME)(noop)
    return huey, task


huey = build(os.environ[DB_ENV])[0] if DB_ENV in os.environ else None
