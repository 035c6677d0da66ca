"""Logging: every record tagged with the server, worker and job it comes from.

Tags live in context variables set by the worker runtime, and a filter copies them
onto each record, so user code logs with plain ``logging`` and still gets them.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

server_name: contextvars.ContextVar[str] = contextvars.ContextVar("rjbatch_server", default="")
worker_name: contextvars.ContextVar[str] = contextvars.ContextVar("rjbatch_worker", default="")
job_id: contextvars.ContextVar[str] = contextvars.ContextVar("rjbatch_job", default="")

FORMAT = "%(asctime)s %(levelname)-7s %(rjbatch_tags)s%(name)s: %(message)s"
LOG_FORMATS = ("text", "json")


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


class JsonFormatter(logging.Formatter):
    """One JSON object a line, for log shippers: time, level, logger, message, the tags, and
    the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        for key, var in (("server", server_name), ("worker", worker_name), ("job", job_id)):
            value = (getattr(record, "job_id", None) if key == "job" else None) or var.get()
            if value:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup(level: int | str = logging.INFO, rich_console: bool | None = None,
          log_format: str | None = None) -> None:
    """Log to stderr with tags; a rich handler when stderr is a terminal; JSON lines with
    ``log_format="json"`` (or ``RJBATCH_LOG_FORMAT=json``, which worker processes inherit)."""
    root = logging.getLogger()
    for installed in list(root.handlers):
        if getattr(installed, "_rjbatch", False):
            root.removeHandler(installed)
    log_format = log_format or os.environ.get("RJBATCH_LOG_FORMAT", "text")
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    if rich_console is None:
        rich_console = sys.stderr.isatty() and log_format == "text"
    if log_format == "json":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    elif rich_console:
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=True)
        handler.setFormatter(logging.Formatter("%(rjbatch_tags)s%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(TagFilter())
    # a marker on a stdlib handler, by which a later setup() finds and replaces it
    handler._rjbatch = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
