"""The Celery application used by :func:`benchmarks.peers.jobs_peers.celery_redis`.

``celery -A benchmarks.peers._celery_app worker`` builds the app from ``$RJB_CELERY_BROKER``
and ``$RJB_CELERY_QUEUE``; the benchmark process calls :func:`build` with the same values.
No result backend: the task's return value is discarded (``ignore_result``).
"""

from __future__ import annotations

import os

from celery import Celery

from benchmarks.peers._tasks import noop

BROKER_ENV = "RJB_CELERY_BROKER"
QUEUE_ENV = "RJB_CELERY_QUEUE"
TASK_NAME = "rjbench_noop"


def build(broker_url: str, queue_name: str) -> Celery:
    """A Celery app with the no-op task routed to ``queue_name`` on ``broker_url``."""
    app = Celery("rjbench", broker=broker_url)
    app.conf.update(
        task_default_queue=queue_name,
        task_ignore_result=True,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        # every Redis key of this run starts with the queue name (clean-up by prefix)
        broker_transport_options={"global_keyprefix": f"{queue_name}:"},
    )
    app.task(name=TASK_NAME, ignore_result=True)(noop)
    return app


app = build(os.environ[BROKER_ENV], os.environ[QUEUE_ENV]) if BROKER_ENV in os.environ else None
