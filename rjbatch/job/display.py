"""How a job shows itself: run time, the fields as Mission Control lists them, status.

Rocket Job's per-state omissions live here (a queued job has no ``completed_at``; a
failed one shows ``failed_at``), so the CLI, the JSON API and the pages agree.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from rjbatch import clock
from rjbatch.job import states
from rjbatch.job.exception import JobException
from rjbatch.job.lifecycle import JobLifecycle


class JobDisplay(JobLifecycle):
    """Read-only views of a job for people and pages."""

    @property
    def seconds(self) -> float:
        """Run time so far while it runs; once it stopped (completed, failed, aborted,
        paused), the time it ran; 0 before it started (queued, scheduled)."""
        if self.is_running and self.started_at:
            return (clock.now() - self.started_at).total_seconds()
        if self.completed_at and (self.started_at or self.is_completed):
            return max(0.0, (self.completed_at - (self.started_at or self.created_at)).total_seconds())
        return 0.0

    @property
    def duration(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    @property
    def display_state(self) -> str:
        """The state as people see it: ``scheduled`` (queued, its ``run_at`` ahead) and
        ``sleeping`` (running, held by no worker, not shared by many) refine the stored one."""
        if self.is_scheduled:
            return "scheduled"
        if self.is_running and not self.worker_name and not self._shares_work():
            return "sleeping"
        return str(self.state)

    def as_dict(self) -> dict[str, Any]:
        """Every field, as Mission Control shows it, with per-state omissions of Rocket Job."""
        data: dict[str, Any] = {"id": self.id, "class": type(self).__name__}
        data.update({name: self._values.get(name) for name in self._fields})
        data.update(self._extra)
        if not data.get("failure_count"):
            data.pop("failure_count", None)
        state = self.state
        if state == states.QUEUED:
            for name in ("started_at", "completed_at", "result"):
                data.pop(name, None)
        elif state == states.RUNNING:
            data.pop("completed_at", None)
            data.pop("result", None)
        elif state == states.COMPLETED:
            data.pop("percent_complete", None)
        elif state in (states.PAUSED, states.ABORTED, states.FAILED):
            stamp = data.pop("completed_at", None)
            data.pop("result", None)
            data = {f"{state}_at": stamp, **data}
        data["seconds"] = self.seconds
        data["duration"] = seconds_as_duration(self.seconds)
        return {k: v for k, v in data.items() if v is not None}

    def status(self) -> dict[str, Any]:
        """What a person wants to see about the job's progress, as plain strings and numbers."""
        data = self.as_dict()
        data.pop("seconds", None)
        return {k: _display(v) for k, v in data.items()}


def _display(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, JobException):
        return value.to_dict()
    if isinstance(value, str | int | float | bool | dict | list) or value is None:
        return value
    return str(value)


def seconds_as_duration(seconds: float) -> str:
    """``1d 2h 3m``, ``2h 3m``, ``3m 4s``, ``4.500s``, ``12.5ms`` (always UTC arithmetic)."""
    if seconds >= 86400:
        days, rest = divmod(int(seconds), 86400)
        return f"{days}d {rest // 3600}h {rest % 3600 // 60}m"
    if seconds >= 3600:
        return f"{int(seconds) // 3600}h {int(seconds) % 3600 // 60}m"
    if seconds >= 60:
        return f"{int(seconds) // 60}m {int(seconds) % 60}s"
    if seconds >= 1:
        return f"{seconds:.3f}s"
    ms = seconds * 1000
    return f"{ms:.3f}ms" if ms < 10 else f"{ms:.1f}ms"
