"""Logging: every record tagged with the server, worker and job it comes from.

Tags live in context variables set by the worker runtime, and a filter copies them
onto each record, so user code logs with plain ``logging`` and still gets them.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator

server_name: contextvars.ContextVar[str] = contextvars.ContextVar("rjbatch_server", default="")
worker_name: contextvars.ContextVar[str] = contextvars.ContextVar("rjbatch_worker", default="")
job_id: contextvars.ContextVar[str] = contextvars.ContextVar("rjbatch_job", default="")

FORMAT = "%(asctime)s %(levelname)-7s %(rjbatch_tags)s%(name)s: %(message)s"


class TagFilter(logging.Filter):
    """Adds ``rjbatch_tags`` ("server=… worker=… job=… ") to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        tags = []
        worker = worker_name.get()
        if worker:
            tags.append(f"worker={worker}")
        elif server_name.get():
            tags.append(f"server={server_name.get()}")
        job = getattr(record, "job_id", None) or job_id.get()
        if job:
            tags.append(f"job={job}")
        record.rjbatch_tags = " ".join(tags) + " " if tags else ""
        return True


@contextlib.contextmanager
def tagged(var: contextvars.ContextVar[str], value: str) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def setup(level: int | str = logging.INFO, rich_console: bool | None = None) -> None:
    """Log to stderr with tags; a rich handler when stderr is a terminal."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_rjbatch", False):
            root.removeHandler(handler)
    if rich_console is None:
        rich_console = sys.stderr.isatty()
    if rich_console:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=True)
        handler.setFormatter(logging.Formatter("%(rjbatch_tags)s%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(TagFilter())
    handler._rjbatch = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
