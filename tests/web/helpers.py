"""Clients for the web tests: users of every kind, a CSRF token, a form POST."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():  # Starlette prefers httpx2 when it is installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from rjbatch.web import hash_password

USERS = {
    "ada": (hash_password("secret"), "admin"),
    "vic": ("look", "view"),
    "ed": ("fix", "editor"),
    "uma": ("own", "user"),
    "dina": ("dir", "dirmon"),
    "max": ("man", "manager"),
    "otto": ("ops", "operator"),
}


def client(app, auth=None) -> TestClient:
    """A TestClient, logged in with HTTP Basic when ``auth=(user, password)``."""
    test_client = TestClient(app)
    if auth:
        test_client.auth = auth
    return test_client


def csrf(client: TestClient) -> str:
    return client.get("/api/csrf").json()["csrf_token"]


def post(client: TestClient, path: str, **data: str):
    """A form POST with the session's CSRF token, not following the redirect."""
    return client.post(path, data={"csrf_token": csrf(client), **data}, follow_redirects=False)


def content_of(page: str) -> str:
    """The page below the top bar (whose time-zone form every role may use)."""
    return page.split("</nav>", 1)[1]
