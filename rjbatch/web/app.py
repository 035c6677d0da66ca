"""Mission Control: the web UI over rjbatch's jobs and servers (docs/web.md).

Server-rendered HTML (Starlette + Jinja2, autoescaped), no JavaScript framework. Every
state change is a POST carrying the session's CSRF token, checked against the user's
role, and written to the ``rjbatch.web.audit`` log.
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from rjbatch import clock
from rjbatch.batch import BatchJob
from rjbatch.config import get_store
from rjbatch.errors import InvalidTransition, JobNotFound, RjbatchError, ValidationError
from rjbatch.exception import JobException
from rjbatch.job import Job
from rjbatch.servers import all_servers
from rjbatch.web import security

audit = logging.getLogger("rjbatch.web.audit")

HERE = Path(__file__).parent
PAGE_SIZE = 20
STATES = ("queued", "running", "completed", "failed", "aborted", "paused")
ACTIONS = ("pause", "resume", "retry", "abort", "run_now", "destroy")
ACTION_LABELS = {"pause": "Pause", "resume": "Resume", "retry": "Retry", "abort": "Abort",
                 "run_now": "Run now", "destroy": "Destroy"}
# order of each list (mission-control.md §1.2)
ORDERS = {
    "all": ("-id",),
    "queued": ("priority", "created_at"),
    "running": ("priority", "created_at"),
    "completed": ("-completed_at",),
    "failed": ("-completed_at",),
    "aborted": ("-completed_at",),
    "paused": ("-completed_at",),
}
STANDARD_FIELDS = (set(Job._fields) | set(BatchJob._fields) | {f"{state}_at" for state in STATES}
                   | {"id", "class", "duration", "seconds"})

# with insecure_local, requests from elsewhere are refused even if the server was bound
# wider by hand ("testclient" is Starlette's TestClient)
LOCAL_CLIENTS = ("127.0.0.1", "::1", "localhost", "testclient")

Authenticator = Callable[[Request], "tuple[str, str] | None"]


class AppError(RjbatchError):
    """Refused to start: the configuration is not safe."""


def create_app(*, users: dict[str, tuple[str, str]] | None = None, auth: Authenticator | None = None,
               insecure_local: bool = False, secret_key: str | None = None) -> Starlette:
    """The Mission Control application.

    ``auth(request)`` returns ``(username, role)`` or ``None`` (refused); or ``users`` maps a
    username to ``(password or hash_password() hash, role)`` for HTTP Basic. With neither,
    only ``insecure_local=True`` starts it, and then every request is an admin: bind it to
    127.0.0.1 (``rjbatch.web.serve`` does).
    """
    if auth is None and not users and not insecure_local:
        raise AppError("Mission Control needs an auth hook or users "
                       "(or insecure_local=True, served on 127.0.0.1 only)")
    for name, entry in (users or {}).items():
        if not (isinstance(entry, tuple | list) and len(entry) == 2):
            raise AppError(f"users[{name!r}] must be (password, role)")
        security.check_role(entry[1])

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["ago"] = _ago
    env.filters["when"] = _when
    env.filters["show"] = _show
    templates = Jinja2Templates(env=env)

    local_only = bool(insecure_local and auth is None and not users)

    def identify(request: Request) -> tuple[str, str] | None:
        if auth is not None:
            found = auth(request)
            if found is not None:
                security.check_role(found[1])
            return found
        if users:
            given = security.basic_credentials(request.headers.get("authorization"))
            if given is None or given[0] not in users:
                return None
            password, role = users[given[0]]
            return (given[0], role) if security.verify_password(given[1], password) else None
        return ("local", "admin")

    def guard(handler: Callable) -> Callable:
        async def endpoint(request: Request) -> Response:
            user = identify(request)
            if user is None:
                headers = {"WWW-Authenticate": 'Basic realm="rjbatch"'} if users and auth is None else {}
                return Response("Authentication required\n", 401, headers=headers)
            if local_only and request.client and request.client.host not in LOCAL_CLIENTS:
                return Response("insecure_local serves the local machine only\n", 403)
            request.state.username, request.state.role = user
            if request.method == "POST":
                if request.url.path.startswith(_root(request) + "/api/"):
                    given = request.headers.get("x-csrf-token")
                else:
                    form = await request.form()
                    given = form.get("csrf_token")
                if not security.csrf_ok(request.session, given if isinstance(given, str) else None):
                    return _refuse(request, 403, "Missing or invalid CSRF token")
            return await handler(request)
        return endpoint

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        role = request.state.role
        context.update(
            root=_root(request), username=request.state.username, role=role,
            csrf_token=security.csrf_token(request.session), flashes=request.session.pop("flash", []),
            counts=_counts(), states=STATES, labels=ACTION_LABELS,
            can_edit_records=security.has_role(role, security.RECORD_ROLE),
        )
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    # -- pages ----------------------------------------------------------------------------
    async def home(request: Request) -> Response:
        return RedirectResponse(_root(request) + "/jobs", 303)

    async def job_list(request: Request) -> Response:
        state = request.query_params.get("state", "all")
        if state not in ORDERS:
            raise HTTPException(404, f"no such state: {state}")
        q = request.query_params.get("q", "").strip()
        page = _int(request.query_params.get("page"), 1)
        query = _list_query(state, q)
        total = query.count()
        pages = max(1, math.ceil(total / PAGE_SIZE))
        page = min(max(page, 1), pages)
        jobs = query.skip((page - 1) * PAGE_SIZE).limit(PAGE_SIZE).all()
        rows = [{"job": job, "state": _display_state(job),
                 "actions": _actions(request, job, in_list=True)} for job in jobs]
        return render(request, "jobs.html", state=state, q=q, page=page, pages=pages, total=total, rows=rows)

    async def job_page(request: Request) -> Response:
        job = _find(request.path_params["job_id"])
        data = job.as_dict()
        custom = {k: v for k, v in data.items() if k not in STANDARD_FIELDS}
        return render(request, "job.html", job=job, state=_display_state(job), data=data, custom=custom,
                      exception=_exception(job.exception), batch=_batch_info(job),
                      actions=_actions(request, job))

    async def job_action(request: Request) -> Response:
        job = _find(request.path_params["job_id"])
        action = request.path_params["action"]
        root = _root(request)
        try:
            _perform(request, job, action)
        except PermissionError as exc:
            return _refuse(request, 403, str(exc))
        except (InvalidTransition, RjbatchError) as exc:
            _flash(request, "danger", f"Could not {action} the job: {exc}")
            return RedirectResponse(f"{root}/jobs/{job.id}", 303)
        _flash(request, "success", f"{ACTION_LABELS.get(action, action)}: done")
        if action == "destroy":
            return RedirectResponse(f"{root}/jobs", 303)
        return RedirectResponse(f"{root}/jobs/{job.id}", 303)

    async def failed_records(request: Request) -> Response:
        job = _find(request.path_params["job_id"])
        if not hasattr(job, "input"):
            raise HTTPException(404, "not a batch job")
        return render(request, "failed.html", job=job, records=_failed_records(job))

    async def record_action(request: Request) -> Response:
        job = _find(request.path_params["job_id"])
        action = request.path_params["action"]
        slice_id = _int(request.path_params["slice_id"], -1)
        root = _root(request)
        if not hasattr(job, "input") or action not in ("update", "delete"):
            raise HTTPException(404, "no such action")
        if not security.has_role(request.state.role, security.RECORD_ROLE):
            return _refuse(request, 403, "Not allowed to edit failed records")
        form = await request.form()
        try:
            if action == "update":
                value = _parse_record(str(form.get("value", "")), str(form.get("kind", "text")))
                job.input.update_failed_record(slice_id, value)
            else:
                job.input.delete_failed_record(slice_id)
        except (RjbatchError, ValueError) as exc:
            _flash(request, "danger", f"Could not {action} the record: {exc}")
            return RedirectResponse(f"{root}/jobs/{job.id}/failed", 303)
        _audit(request, f"{action}_failed_record slice={slice_id}", job)
        _flash(request, "success", f"Failed record in slice {slice_id}: {action}d")
        return RedirectResponse(f"{root}/jobs/{job.id}/failed", 303)

    async def servers_page(request: Request) -> Response:
        servers = sorted(all_servers(get_store()), key=lambda s: s.name)
        return render(request, "servers.html", servers=servers)

    # -- JSON API -------------------------------------------------------------------------
    async def api_csrf(request: Request) -> Response:
        return JSONResponse({"csrf_token": security.csrf_token(request.session)})

    async def api_jobs(request: Request) -> Response:
        state = request.query_params.get("state", "all")
        if state not in ORDERS:
            return JSONResponse({"error": f"no such state: {state}"}, 404)
        q = request.query_params.get("q", "").strip()
        page = max(_int(request.query_params.get("page"), 1), 1)
        query = _list_query(state, q)
        jobs = query.skip((page - 1) * PAGE_SIZE).limit(PAGE_SIZE).all()
        return _json({"counts": _counts(), "total": query.count(), "page": page, "page_size": PAGE_SIZE,
                      "jobs": [_summary(job) for job in jobs]})

    async def api_job(request: Request) -> Response:
        try:
            job = Job.find(request.path_params["job_id"])
        except JobNotFound:
            return JSONResponse({"error": "job not found"}, 404)
        return _json({**job.status(), "state": _display_state(job),
                      "actions": _actions(request, job)})

    async def api_action(request: Request) -> Response:
        try:
            job = Job.find(request.path_params["job_id"])
        except JobNotFound:
            return JSONResponse({"error": "job not found"}, 404)
        action = request.path_params["action"]
        try:
            _perform(request, job, action)
        except PermissionError as exc:
            return JSONResponse({"error": str(exc)}, 403)
        except (InvalidTransition, RjbatchError) as exc:
            return JSONResponse({"error": str(exc)}, 409)
        if action == "destroy":
            return _json({"id": job.id, "destroyed": True})
        return _json({"id": job.id, "state": _display_state(Job.find(job.id))})

    # -- errors ---------------------------------------------------------------------------
    def _refuse(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith(_root(request) + "/api/"):
            return JSONResponse({"error": message}, status)
        return Response(message + "\n", status, media_type="text/plain")

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        detail = getattr(exc, "detail", "Not found")
        if request.url.path.startswith(_root(request) + "/api/"):
            return JSONResponse({"error": detail}, status)
        return Response(f"{detail}\n", status, media_type="text/plain")

    def route(path: str, handler: Callable, methods: list[str]) -> Route:
        return Route(path, guard(handler), methods=methods)

    routes = [
        route("/", home, ["GET"]),
        route("/jobs", job_list, ["GET"]),
        route("/jobs/{job_id}", job_page, ["GET"]),
        route("/jobs/{job_id}/failed", failed_records, ["GET"]),
        route("/jobs/{job_id}/failed/{slice_id}/{action}", record_action, ["POST"]),
        route("/jobs/{job_id}/{action}", job_action, ["POST"]),
        route("/servers", servers_page, ["GET"]),
        route("/api/csrf", api_csrf, ["GET"]),
        route("/api/jobs", api_jobs, ["GET"]),
        route("/api/jobs/{job_id}", api_job, ["GET"]),
        route("/api/jobs/{job_id}/{action}", api_action, ["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [Middleware(SecurityHeaders), Middleware(SessionMiddleware, secret_key=secret_key or secrets.token_urlsafe(32),
                             session_cookie="rjbatch_session", same_site="strict")]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: not_found})
    app.state.insecure_local = local_only
    return app


SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline';"
     b" frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    (b"x-frame-options", b"DENY"),  # no clickjacking of the action buttons
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- helpers ------------------------------------------------------------------------------
def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _flash(request: Request, kind: str, message: str) -> None:
    request.session.setdefault("flash", []).append([kind, message])


def _find(job_id: str) -> Job:
    try:
        return Job.find(job_id)
    except JobNotFound:
        raise HTTPException(404, f"Could not find job with id: {job_id}") from None


def _counts() -> dict[str, int]:
    by_state = Job.where().counts_by_state()
    counts = {state: by_state.get(state, 0) for state in STATES}
    counts["scheduled"] = by_state.get("scheduled", 0)
    counts["all"] = sum(counts[state] for state in STATES)
    return counts


def _list_query(state: str, q: str) -> Any:
    query = Job.where() if state == "all" else Job.where(state=state)
    if q:
        pattern = "(?i)" + re.escape(q)
        query = query.where({"$or": [{"_type": {"$regex": pattern}}, {"description": {"$regex": pattern}}]})
    return query.order_by(*ORDERS[state])


def _display_state(job: Job) -> str:
    if job.state == "queued" and job.run_at is not None and job.run_at > clock.now():
        return "scheduled"
    if job.state == "running" and not job.worker_name and getattr(job, "sub_state", None) != "processing":
        return "sleeping"
    return job.state


def _available(job: Job, action: str) -> bool:
    if action == "destroy":
        return True
    if action == "run_now":
        return job.state == "queued" and job.run_at is not None and job.run_at > clock.now()
    return job.may(action)


def _actions(request: Request, job: Job, in_list: bool = False) -> list[str]:
    """The actions this user may fire on this job now (abort only on the job page)."""
    username, role = request.state.username, request.state.role
    return [action for action in ACTIONS
            if not (in_list and action == "abort")
            and _available(job, action) and security.may_act(username, role, action, job)]


def _perform(request: Request, job: Job, action: str) -> None:
    if action not in ACTIONS:
        raise RjbatchError(f"unknown action {action!r}")
    if not security.may_act(request.state.username, request.state.role, action, job):
        audit.warning("refused user=%s role=%s action=%s job=%s", request.state.username,
                      request.state.role, action, job.id)
        raise PermissionError(f"Not allowed to {action} this job")
    if not _available(job, action):
        raise InvalidTransition(action, _display_state(job), type(job).__name__)
    if action == "destroy":
        job.destroy()
    else:
        getattr(job, action)()
    _audit(request, action, job)


def _audit(request: Request, what: str, job: Job) -> None:
    client = request.client.host if request.client else "-"
    audit.info("user=%s role=%s action=%s job=%s class=%s client=%s", request.state.username,
               request.state.role, what, job.id, type(job).__name__, client)


def _summary(job: Job) -> dict[str, Any]:
    return {"id": job.id, "class": type(job).__name__, "description": job.description,
            "state": _display_state(job), "priority": job.priority, "created_at": job.created_at,
            "completed_at": job.completed_at, "percent_complete": job.percent_complete}


def _json(data: Any, status: int = 200) -> Response:
    body = json.dumps(data, default=_plain)
    return Response(body, status, media_type="application/json")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, JobException):
        return {"class_name": value.class_name, "message": value.message, "backtrace": value.backtrace}
    return str(value)


def _exception(value: Any) -> JobException | None:
    return JobException.coerce(value) if value else None


def _batch_info(job: Job) -> dict[str, Any] | None:
    if not hasattr(job, "input") or job.is_new_record:
        return None
    counts = job._store().count_slices(job.id, job.input.category)
    queued, active, failed = (counts.get(s, (0, 0))[0] for s in ("queued", "running", "failed"))
    slice_size = getattr(type(job), "slice_size", 0) or 0
    record_count = getattr(job, "record_count", None)
    total = math.ceil(record_count / slice_size) if record_count and slice_size else queued + active + failed
    completed = max(total - queued - active - failed, 0)
    total = max(total, queued + active + failed + completed)

    def share(n: int) -> float:
        return round(100 * n / total, 2) if total else 0.0

    return {"queued": queued, "active": active, "failed": failed, "completed": completed, "total": total,
            "percent": job.percent_complete, "record_count": record_count, "slice_size": slice_size,
            "sub_state": getattr(job, "sub_state", None),
            "bar": [("completed", completed, share(completed)), ("active", active, share(active)),
                    ("failed", failed, share(failed)), ("queued", queued, share(queued))],
            "groups": job.input.group_exceptions() if failed else [],
            "statistics": getattr(job, "statistics", None) or {},
            "categories": {"input": getattr(job, "input_categories", None) or [],
                           "output": getattr(job, "output_categories", None) or []}}


def _failed_records(job: Job) -> list[dict[str, Any]]:
    rows = []
    for piece in job.input.slices("failed"):
        records = job.input.records(piece)
        index = (piece.get("processing_record_number") or 1) - 1
        if not 0 <= index < len(records):
            continue
        record = records[index]
        kind = "text" if isinstance(record, str) else "json"
        rows.append({"slice_id": piece["id"], "record": record, "kind": kind,
                     "text": record if kind == "text" else json.dumps(record, default=str),
                     "record_number": (piece.get("first_record_number") or 1) + index,
                     "exception": JobException.coerce(piece["exception"])})
    return rows


def _parse_record(text: str, kind: str) -> Any:
    if kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"not valid JSON: {exc}") from None
    return text


def _when(value: Any) -> str:
    if not isinstance(value, datetime):
        return "" if value is None else str(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(value: Any) -> str:
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


def _show(value: Any) -> str:
    if isinstance(value, datetime):
        return _when(value)
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2, default=str)
    return str(value)
