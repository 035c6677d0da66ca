"""Mission Control, rjbatch's web UI: ``create_app`` for any ASGI server, ``serve`` to run it."""

from __future__ import annotations

from typing import Any

from rjbatch.web.app import AppError, create_app
from rjbatch.web.security import ROLES, hash_password

__all__ = ["ROLES", "AppError", "create_app", "hash_password", "serve"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(host: str = "127.0.0.1", port: int = 8080, insecure_local: bool = False,
          users: dict[str, tuple[str, str]] | None = None, **options: Any) -> None:
    """Run Mission Control with uvicorn.

    Without ``users`` (or an ``auth`` hook in ``options``) it starts only with
    ``insecure_local=True``, where every request is an admin: it then binds to the loopback
    interface only and refuses any other ``host``. ``secret_key``, ``secure_cookies``,
    ``dirmon_whitelist`` and ``login_limits`` go to ``create_app``; the other options to uvicorn.
    """
    auth = options.pop("auth", None)
    app_options = {key: options.pop(key) for key in ("secret_key", "secure_cookies", "dirmon_whitelist", "login_limits")
                   if key in options}
    if not users and auth is None:
        if not insecure_local:
            raise AppError("Mission Control needs users or an auth hook "
                           "(or insecure_local=True, served on 127.0.0.1 only)")
        if host not in LOOPBACK:
            raise AppError(f"insecure_local serves on 127.0.0.1 only, not {host!r}")
    app = create_app(users=users, auth=auth, insecure_local=insecure_local, **app_options)
    import uvicorn

    uvicorn.run(app, host=host, port=port, **options)
