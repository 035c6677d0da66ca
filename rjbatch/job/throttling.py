"""Throttles: reasons a job must wait, checked when a worker claims it.

A throttle is a method returning True while the job must wait; with it goes a filter
that keeps this worker away from the class (or the job) until its next re-check.
Register one with ``@rjbatch.throttle`` (optionally ``filter="id"``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rjbatch.job.lifecycle import JobLifecycle as Job

_ATTR = "__rjbatch_throttle__"


def throttle(method: Callable | None = None, *, filter: str = "class") -> Any:
    """Mark a job method as a throttle: ``@rjbatch.throttle`` or ``@rjbatch.throttle(filter="id")``."""
    if filter not in ("class", "id"):
        raise ValueError("a throttle's filter is 'class' or 'id'")

    def decorate(function: Callable) -> Callable:
        setattr(function, _ATTR, filter)
        return function

    return decorate(method) if method is not None else decorate


def throttles_of(cls: type) -> list[tuple[str, str]]:
    """(method name, filter kind) in definition order, parents first (cached per class)."""
    cached = cls.__dict__.get("_rjbatch_throttles")
    if cached is not None:
        return cached
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            kind = getattr(value, _ATTR, None)
            if kind is not None:
                found[name] = kind
            elif name in found and callable(value):
                del found[name]  # overridden without the decorator: no longer a throttle
    result = list(found.items())
    type.__setattr__(cls, "_rjbatch_throttles", result)
    return result


def exclusion(job: Job, kind: str) -> dict[str, Any]:
    if kind == "id":
        return {"_id": {"$nin": [job.id]}}
    return {"_type": {"$nin": [job._type_path]}}


def running_jobs_exceeded(job: Job) -> bool:
    """``throttle_running_jobs``: as many jobs of this class (or throttle group) running."""
    limit = getattr(type(job), "throttle_running_jobs", None)
    if not limit:
        return False
    query: dict[str, Any] = {"state": "running", "_id": {"$ne": job.id}}
    if job.throttle_group:
        query["throttle_group"] = job.throttle_group
    else:
        query["_class"] = type(job).__name__
    return job._store().count_jobs(query) >= limit


def first_throttle(job: Job) -> tuple[str, dict[str, Any]] | None:
    """The first throttle that holds, as ``(description, filter)``, else None."""
    if running_jobs_exceeded(job):
        group = f" in group {job.throttle_group}" if job.throttle_group else ""
        return (f"throttle_running_jobs: {type(job).throttle_running_jobs} running{group}",
                exclusion(job, "class"))
    for name, kind in throttles_of(type(job)):
        if getattr(job, name)():
            return name, exclusion(job, kind)
    return None
