"""Mission Control: the web UI over rjbatch's jobs and servers (docs/web.md).

Server-rendered HTML (Starlette + Jinja2, autoescaped) that works without JavaScript
(one small static script only adds confirmations). Every state change is a POST carrying
the session's CSRF token, checked against the user's role, and written to the
``rjbatch.web.audit`` log. The pages live in one module each (jobs, job_edit, output,
servers, dirmon, api); this module authenticates and wires them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from rjbatch.errors import RjbatchError
from rjbatch.web import api, dirmon, job_edit, jobs, output, security, servers
from rjbatch.web.common import FILTERS, is_api, refuse, set_time_zone

HERE = Path(__file__).parent
# each module's ROUTES, in this order (the more specific paths come first)
PAGE_MODULES = (api, job_edit, output, jobs, servers, dirmon)

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
    env.filters.update(FILTERS)

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
                if request.headers.get("sec-fetch-site") == "cross-site":
                    return refuse(request, 403, "Cross-site requests are refused")
                if is_api(request):
                    given = request.headers.get("x-csrf-token")
                else:
                    form = await request.form()
                    given = form.get("csrf_token")
                if not security.csrf_ok(request.session, given if isinstance(given, str) else None):
                    return refuse(request, 403, "Missing or invalid CSRF token")
            return await handler(request)
        return endpoint

    async def http_error(request: Request, exc: Exception) -> Response:
        return refuse(request, getattr(exc, "status_code", 404), getattr(exc, "detail", "Not found"))

    routes = [Route(path, guard(handler), methods=methods)
              for module in PAGE_MODULES for path, handler, methods in module.ROUTES]
    routes += [Route(path, guard(handler), methods=methods) for path, handler, methods in jobs.ACTION_ROUTES]
    routes.append(Route("/session/time_zone", guard(set_time_zone), methods=["POST"]))
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    middleware = [Middleware(SecurityHeaders), Middleware(SessionMiddleware, secret_key=secret_key or secrets.token_urlsafe(32),
                             session_cookie="rjbatch_session", same_site="strict")]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: http_error})
    app.state.insecure_local = local_only
    app.state.templates = Jinja2Templates(env=env)
    return app


SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
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
