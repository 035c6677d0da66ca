"""What every Mission Control page shares: rendering, flashes, lookups, the audit log.

Handlers in the page modules (jobs, servers, dirmon, ...) are plain ``async def
handler(request)`` functions; ``create_app`` wraps each one with authentication and the
CSRF check, and leaves ``request.state.username``/``role`` for them.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import pass_context
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from rjbatch import clock
from rjbatch.errors import JobNotFound
from rjbatch.exception import JobException
from rjbatch.job import Job, seconds_as_duration
from rjbatch.web import security

audit = logging.getLogger("rjbatch.web.audit")

# offered in the top bar; any IANA name may be posted
TIME_ZONES = ("UTC", "America/Los_Angeles", "America/Chicago", "America/New_York", "America/Sao_Paulo",
              "Europe/London", "Europe/Paris", "Europe/Berlin", "Africa/Johannesburg", "Asia/Dubai",
              "Asia/Kolkata", "Asia/Singapore", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney")
STATES = ("queued", "running", "completed", "failed", "aborted", "paused")
# every page's sidebar and list: "scheduled" is queued with run_at in the future
LIST_STATES = ("scheduled", "queued", "running", "completed", "failed", "aborted", "paused")


def root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


def is_api(request: Request) -> bool:
    return request.url.path.startswith(root(request) + "/api/")


def to_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def flash(request: Request, kind: str, message: str) -> None:
    request.session.setdefault("flash", []).append([kind, message])


def redirect(request: Request, path: str) -> RedirectResponse:
    """303 to a path under the app's root, so the browser follows with GET."""
    return RedirectResponse(root(request) + path, 303)


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    role = request.state.role
    context.update(
        root=root(request), username=request.state.username, role=role,
        csrf_token=security.csrf_token(request.session), flashes=request.session.pop("flash", []),
        # job_counts: called by the sidebar only on the pages that show it
        job_counts=job_counts, states=LIST_STATES, has_role=lambda needed: security.has_role(role, needed),
        refresh=refresh_seconds(request), request=request,
        time_zone=request.session.get("time_zone", "UTC"), time_zones=TIME_ZONES,
    )
    templates = request.app.state.templates
    return templates.TemplateResponse(request, name, context, status_code=status_code)


async def set_time_zone(request: Request) -> Response:
    """Show times in another zone for the rest of this session (a POST: it changes the session)."""
    form = await request.form()
    name = str(form.get("time_zone") or "UTC")
    if time_zone(name) is UTC and name != "UTC":
        flash(request, "danger", f"Unknown time zone: {name}")
    else:
        request.session["time_zone"] = name
    back = str(form.get("back") or "/jobs")
    return redirect(request, back if back.startswith("/") and not back.startswith("//") else "/jobs")


def refresh_seconds(request: Request) -> int:
    """``?refresh=N`` reloads the page every N seconds (2..600); 0 or absent: off."""
    seconds = to_int(request.query_params.get("refresh"), 0)
    return min(max(seconds, 2), 600) if seconds > 0 else 0


def refuse(request: Request, status: int, message: str) -> Response:
    if is_api(request):
        return JSONResponse({"error": message}, status)
    return Response(message + "\n", status, media_type="text/plain")


def require(request: Request, role: str, what: str) -> None:
    """Stop the handler with a 403 unless the user has ``role``."""
    if not security.has_role(request.state.role, role):
        audit.warning("refused user=%s role=%s action=%s", request.state.username, request.state.role, what)
        raise HTTPException(403, f"Not allowed to {what}")


def find_job(job_id: str) -> Job:
    try:
        return Job.find(job_id)
    except JobNotFound:
        raise HTTPException(404, f"Could not find job with id: {job_id}") from None


def job_counts() -> dict[str, int]:
    by_state = Job.where().counts_by_state()
    counts = {state: by_state.get(state, 0) for state in STATES}
    counts["all"] = sum(counts.values())
    counts["scheduled"] = by_state.get("scheduled", 0)
    counts["queued"] -= counts["scheduled"]  # the Queued list shows the jobs due now
    return counts


def display_state(job: Job) -> str:
    if job.state == "queued" and job.run_at is not None and job.run_at > clock.now():
        return "scheduled"
    if job.state == "running" and not job.worker_name and getattr(job, "sub_state", None) != "processing":
        return "sleeping"
    return job.state


def audit_action(request: Request, what: str, target: str, **details: Any) -> None:
    client = request.client.host if request.client else "-"
    extra = "".join(f" {key}={value}" for key, value in details.items())
    audit.info("user=%s role=%s action=%s %s client=%s%s", request.state.username,
               request.state.role, what, target, client, extra)


def audit_job(request: Request, what: str, job: Job, **details: Any) -> None:
    audit_action(request, what, f"job={job.id} class={type(job).__name__}", **details)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, default=plain), status, media_type="application/json")


def plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, JobException):
        return {"class_name": value.class_name, "message": value.message, "backtrace": value.backtrace}
    return str(value)


# -- template filters ---------------------------------------------------------------------
def when(value: Any, zone: str | None = None) -> str:
    """A time in ``zone`` (an IANA name), UTC by default, as RJMC shows the session's zone."""
    if not isinstance(value, datetime):
        return "" if value is None else str(value)
    shown = value.astimezone(time_zone(zone))
    return shown.strftime("%Y-%m-%d %H:%M:%S ") + (shown.tzname() or "UTC")


def time_zone(name: str | None) -> tzinfo:
    if name and name != "UTC":
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return UTC


@pass_context
def when_in_session(context: Any, value: Any) -> str:
    return when(value, context.get("time_zone"))


def ago(value: Any) -> str:
    if not isinstance(value, datetime):
        return ""
    seconds = (clock.now() - value).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            text = f"{n} {unit}{'s' if n != 1 else ''}"
            break
    else:
        text = f"{int(seconds)} seconds"
    return f"in {text}" if future else f"{text} ago"


def show(value: Any) -> str:
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2, default=str)
    return str(value)


def replace_query(params: Any, **changes: Any) -> str:
    """The query string with some parameters replaced (``None`` drops one), for links."""
    values = {key: value for key, value in params.items() if key not in changes}
    values.update({key: value for key, value in changes.items() if value is not None})
    return urlencode(values)


def exception_class(value: Any) -> str:
    return JobException.coerce(value).class_name if value else ""


FILTERS = {"ago": ago, "when": when_in_session, "show": show, "replace_query": replace_query,
           "duration": seconds_as_duration, "exception_class": exception_class}
