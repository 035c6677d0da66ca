"""Mission Control: the web UI over rjbatch's jobs and servers (docs/web.md).

Server-rendered HTML (Starlette + Jinja2, autoescaped) that works without JavaScript
(one small static script only adds confirmations). Every state change is a POST carrying
the session's CSRF token, checked against the user's role, and written to the
``rjbatch.web.audit`` log. The pages live in one module each (jobs, job_edit, output,
servers, dirmon, api); this module authenticates and wires them.
"""

from __future__ import annotations

import inspect
import os
import secrets
from collections.abc import Callable, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import jinja2
from anyio.lowlevel import RunVar
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from rjbatch.errors import RjbatchError
from rjbatch.web import api, dirmon, job_edit, jobs, output, security, servers
from rjbatch.web.common import (
    FILTERS,
    audit,
    client_of,
    in_thread,
    is_api,
    printable,
    refuse,
    render,
    set_time_zone,
)

HERE = Path(__file__).parent
# each module's ROUTES, in this order (the more specific paths come first)
PAGE_MODULES = (job_edit, api, output, jobs, servers, dirmon)

# with insecure_local, requests from elsewhere are refused even if the server was bound
# wider by hand ("testclient" is Starlette's TestClient)
LOCAL_CLIENTS = ("127.0.0.1", "::1", "localhost", "testclient")

Authenticator = Callable[[Request], "tuple[str, str] | None"]

# PBKDF2 checks run in their own few threads, never in the pool that serves the store, so a
# flood of wrong passwords queues up here while every other request goes on; one
# RunVar per event loop (a limiter belongs to the loop that made it)
HASH_THREADS = max(1, (os.cpu_count() or 2) // 2)
MAX_WAITING_CHECKS = 64  # beyond this many queued checks a login is answered 429 at once
_hash_limiter: RunVar[anyio.CapacityLimiter] = RunVar("rjbatch_hash_limiter")


def hash_limiter() -> anyio.CapacityLimiter:
    try:
        return _hash_limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(HASH_THREADS)
        _hash_limiter.set(limiter)
        return limiter


def error_page(request: Request, status: int, message: str) -> Response:
    """A refusal (403) as a page of the site (its base template, without the job counts);
    JSON for the API; other errors as one line of text."""
    if is_api(request) or status != 403:
        return refuse(request, status, message)
    if not hasattr(request.state, "role"):  # refused before anyone was identified
        request.state.username = request.state.role = None
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return render(request, "error.html", status, code=status, reason=reason, message=message)


def as_page(request: Request, response: Response) -> Response:
    """A page module's plain-text 403 (``common.refuse``) as the site's 403 page."""
    if (response.status_code == 403 and not is_api(request) and hasattr(response, "body")
            and (response.media_type or "").startswith("text/plain")):
        return error_page(request, 403, bytes(response.body).decode("utf-8", "replace").strip())
    return response


async def favicon(request: Request) -> Response:
    """Browsers ask for /favicon.ico whatever the page links (no login needed, as /static)."""
    return FileResponse(HERE / "static" / "favicon.ico", media_type="image/x-icon")


class AppError(RjbatchError):
    """Refused to start: the configuration is not safe."""


class TooManyAttempts(Exception):
    """A login refused before its password is checked (429 with Retry-After)."""

    def __init__(self, retry_after: int, why: str = "Too many failed logins") -> None:
        super().__init__(f"{why}: try again in {retry_after} seconds")
        self.retry_after = retry_after


def create_app(*, users: dict[str, tuple[str, str]] | None = None, auth: Authenticator | None = None,
               insecure_local: bool = False, secret_key: str | None = None, secure_cookies: bool = False,
               dirmon_whitelist: Sequence[str] | None = None,
               login_limits: security.LoginLimits | None = None) -> Starlette:
    """The Mission Control application.

    ``auth(request)`` returns ``(username, role)`` or ``None`` (refused); or ``users`` maps a
    username to ``(password or hash_password() hash, role)`` for HTTP Basic. With neither,
    only ``insecure_local=True`` starts it, and then every request is an admin: bind it to
    127.0.0.1 (``rjbatch.web.serve`` does). ``secure_cookies`` marks the session cookie
    ``Secure`` (behind HTTPS). ``dirmon_whitelist``: the folders dirmon entries saved here may
    watch (default: ``rjbatch.configure(dirmon_whitelist=...)`` or
    ``RJBATCH_DIRMON_WHITELIST``, read on every save). ``login_limits``: how failed logins are
    slowed and refused (``security.LoginLimits``).
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
    accounts = {name: (str(entry[0]), str(entry[1])) for name, entry in (users or {}).items()}
    dummy = security.dummy_hash(accounts)
    throttle = security.LoginThrottle(login_limits, users=accounts)

    async def check_password(request: Request, username: str, password: str) -> tuple[str, str] | None:
        """HTTP Basic against ``users``: limited per client and user, audited, off the loop."""
        client = client_of(request)
        # first, even before the cache: a refused client must not learn whether a guess is right
        wait = throttle.retry_after(client, username)
        if wait is not None:
            audit.warning("refused login user=%s client=%s reason=too-many-failures retry_after=%s",
                          printable(username), client, wait)
            raise TooManyAttempts(wait)
        role = security.cached_login(accounts, username, password)  # verified before: no PBKDF2
        if role is None:
            if hash_limiter().statistics().tasks_waiting >= MAX_WAITING_CHECKS:
                audit.warning("refused login user=%s client=%s reason=busy", printable(username), client)
                raise TooManyAttempts(1, "Too many logins are being checked")
            role = await anyio.to_thread.run_sync(security.check_login, accounts, username, password, dummy,
                                                  limiter=hash_limiter())
        if role is None:
            delay = throttle.failed(client, username)
            audit.warning("failed login user=%s client=%s known_user=%s", printable(username), client,
                          "yes" if username in accounts else "no")
            if delay:
                await anyio.sleep(delay)  # slows a guesser down without holding the loop
            return None
        throttle.succeeded(client, username)
        return (username, role)

    async def identify(request: Request) -> tuple[str, str] | None:
        if auth is not None:
            found = await in_thread(auth, request)  # a hook may look the user up somewhere slow
            if inspect.isawaitable(found):  # an async hook
                found = await found
            if found is not None:
                security.check_role(found[1])
            return found
        if accounts:
            given = security.basic_credentials(request.headers.get("authorization"))
            if given is None:
                return None
            return await check_password(request, *given)
        return ("local", "admin")

    def guard(handler: Callable) -> Callable:
        blocking = not inspect.iscoroutinefunction(handler)

        async def endpoint(request: Request) -> Response:
            try:
                user = await identify(request)
            except TooManyAttempts as exc:
                response = error_page(request, 429, str(exc))
                response.headers["Retry-After"] = str(exc.retry_after)
                return response
            if user is None:
                headers = {"WWW-Authenticate": 'Basic realm="rjbatch"'} if accounts and auth is None else {}
                return Response("Authentication required\n", 401, headers=headers)
            if local_only and request.client and request.client.host not in LOCAL_CLIENTS:
                return error_page(request, 403, "insecure_local serves the local machine only")
            request.state.username, request.state.role = user
            if request.method == "POST":
                if request.headers.get("sec-fetch-site") == "cross-site":
                    return error_page(request, 403, "Cross-site requests are refused")
                if is_api(request):
                    given: object = request.headers.get("x-csrf-token")
                    request.state.body = await request.body()
                else:
                    form = request.state.form = await request.form()
                    given = form.get("csrf_token")
                if not security.csrf_ok(request.session, given if isinstance(given, str) else None):
                    return error_page(request, 403, "Missing or invalid CSRF token")
            response = await in_thread(handler, request) if blocking else await handler(request)
            return as_page(request, response)
        return endpoint

    async def http_error(request: Request, exc: Exception) -> Response:
        return error_page(request, getattr(exc, "status_code", 404), getattr(exc, "detail", "Not found"))

    routes: list[BaseRoute] = [Route(path, guard(handler), methods=methods)
                               for module in PAGE_MODULES for path, handler, methods in module.ROUTES]
    routes += [Route(path, guard(handler), methods=methods) for path, handler, methods in jobs.ACTION_ROUTES]
    routes.append(Route("/session/time_zone", guard(set_time_zone), methods=["POST"]))
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    routes.append(Route("/favicon.ico", favicon))
    middleware = [Middleware(SecurityHeaders),
                  Middleware(SessionMiddleware, secret_key=secret_key or secrets.token_urlsafe(32),
                             session_cookie="rjbatch_session", same_site="strict", https_only=secure_cookies)]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: http_error})
    app.state.insecure_local = local_only
    app.state.templates = Jinja2Templates(env=env)
    app.state.dirmon_whitelist = None if dirmon_whitelist is None else [str(path) for path in dirmon_whitelist]
    app.state.login_throttle = throttle
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
