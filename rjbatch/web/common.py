"""What every Mission Control page shares: rendering, flashes, lookups, the audit log.

Handlers in the page modules (jobs, servers, dirmon, ...) are plain functions
``handler(request) -> Response``; ``create_app`` wraps each one with authentication and
the CSRF check, leaves ``request.state.username``/``role`` (and, for a POST, the parsed
``request.state.form`` or the raw ``request.state.body``) for them, and runs it with
``in_thread``: handlers call the synchronous store, and templates query it too (the
sidebar's counts), so none of that may run on the event loop, where one slow query or
password check would stall every other client. Only handlers that touch neither may be
``async def`` (they are awaited on the loop).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import pass_context
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from rjbatch import clock
from rjbatch.errors import JobNotFound
from rjbatch.job import Job, seconds_as_duration
from rjbatch.job.exception import JobException
from rjbatch.web import security

audit = logging.getLogger("rjbatch.web.audit")
T = TypeVar("T")

# offered in the top bar; any IANA name may be posted
TIME_ZONES = ("UTC", "America/Los_Angeles", "America/Chicago", "America/New_York", "America/Sao_Paulo",
              "Europe/London", "Europe/Paris", "Europe/Berlin", "Africa/Johannesburg", "Asia/Dubai",
              "Asia/Kolkata", "Asia/Singapore", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney")
STATES = ("queued", "running", "completed", "failed", "aborted", "paused")
# every page's sidebar and list: "scheduled" is queued with run_at in the future
LIST_STATES = ("scheduled", "queued", "running", "completed", "failed", "aborted", "paused")


async def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking work (the store, ``find_job``, templates that query) in a worker thread."""
    return await run_in_threadpool(function, *args, **kwargs)


def form_of(request: Request) -> FormData:
    """The POSTed form, parsed on the event loop by ``create_app`` before the handler's thread."""
    form = getattr(request.state, "form", None)
    return form if isinstance(form, FormData) else FormData()


def json_body(request: Request) -> Any:
    """The POSTed JSON (an API call), or 400."""
    try:
        return json.loads(getattr(request.state, "body", b"") or b"null")
    except ValueError:
        raise HTTPException(400, "the body is not valid JSON") from None


def client_of(request: Request) -> str:
    return request.client.host if request.client else "-"


def printable(value: Any, limit: int = 100) -> str:
    """A value for one audit line: no line breaks or control characters, not too long
    (user names typed at the login prompt are anyone's text)."""
    text = str(value)
    cleaned = "".join(c if c == " " or (c.isprintable() and not c.isspace()) else f"\\x{ord(c):02x}"
                      for c in text)
    return repr(cleaned[:limit]) if " " in cleaned or len(cleaned) > limit or not cleaned else cleaned


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


def require_fields(request: Request, job_class: type | None, names: Iterable[str], what: str, target: str) -> None:
    """Stop with a 403 (and a WARNING audit line) unless this user may set every field in
    ``names`` on ``job_class``: the one check of a class's ``admin_only_fields`` (code a
    worker runs) for the job edit form, the JSON API and dirmon entry properties."""
    refused = security.fields_refused(request.state.role, job_class, names)
    if refused:
        audit.warning("refused user=%s role=%s action=%s %s fields=%s client=%s", request.state.username,
                      request.state.role, what, target, ",".join(refused), client_of(request))
        class_name = getattr(job_class, "__name__", "the job")
        raise HTTPException(403, f"Only an admin may set {', '.join(refused)} of {class_name}: "
                                 "it is code that a worker runs")


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


def audit_action(request: Request, what: str, target: str, **details: Any) -> None:
    client = client_of(request)
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
        n = int(seconds)
        text = f"{n} second{'s' if n != 1 else ''}"
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
