"""Roles, passwords and CSRF tokens for Mission Control (docs/web.md, "Security")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

# weakest first: a role grants everything the roles before it grant
ROLES = ("view", "user", "dirmon", "manager", "operator", "editor", "admin")

# the weakest role allowed to do each job action (mission-control.md §3); "user" may act
# only on its own jobs (a job whose ``login`` field is the user's name)
JOB_ACTIONS = {
    "pause": "manager",
    "resume": "manager",
    "retry": "manager",
    "abort": "manager",
    "fail": "manager",
    "run_now": "manager",
    "edit": "manager",
    "destroy": "admin",
}
OWN_JOB_ACTIONS = {"pause", "resume", "retry", "abort", "edit"}
RECORD_ROLE = "editor"  # see, edit or delete a failed record's data
SERVER_ROLE = "operator"  # pause, resume, stop, destroy servers and zombies
DIRMON_ROLE = "dirmon"  # create, edit, copy, enable, disable dirmon entries
DIRMON_DESTROY_ROLE = "admin"

_PBKDF2 = "pbkdf2_sha256"


def rank(role: str) -> int:
    return ROLES.index(role)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return role


def has_role(role: str | None, needed: str) -> bool:
    return role is not None and rank(role) >= rank(needed)


def may_act(username: str | None, role: str | None, action: str, job: Any) -> bool:
    """May this user fire ``action`` on ``job`` (the permission only, not the state machine)?"""
    needed = JOB_ACTIONS.get(action)
    if needed is None or role is None:
        return False
    if has_role(role, needed):
        return True
    if action in OWN_JOB_ACTIONS and has_role(role, "user") and username:
        return getattr(job, "login", None) == username
    return False


def hash_password(password: str, iterations: int = 200_000) -> str:
    """A hash for the ``users`` mapping: ``pbkdf2_sha256$iterations$salt$hash``."""
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"{_PBKDF2}${iterations}${salt}${base64.b64encode(digest).decode()}"


# successful PBKDF2 checks, so that HTTP Basic (sent with every request) costs one hash per
# user and password, not one per request; keyed by a SHA-256 of the password, never the password
_verified: dict[tuple[str, bytes], bool] = {}


def verify_password(password: str, stored: str) -> bool:
    """Against a ``hash_password`` hash, or a plain password (constant time either way)."""
    if stored.startswith(_PBKDF2 + "$"):
        key = (stored, hashlib.sha256(password.encode()).digest())
        if key in _verified:
            return True
        try:
            _, iterations, salt, expected = stored.split("$", 3)
            digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), int(iterations))
        except ValueError:
            return False
        ok = hmac.compare_digest(base64.b64encode(digest).decode(), expected)
        if ok:
            if len(_verified) >= 1024:
                _verified.clear()
            _verified[key] = True
        return ok
    return hmac.compare_digest(password.encode(), stored.encode())


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def csrf_token(session: dict) -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(session: dict, given: str | None) -> bool:
    expected = session.get("csrf")
    return bool(expected and given) and hmac.compare_digest(str(expected), str(given))


def load_users(path: str) -> dict[str, tuple[str, str]]:
    """Users from a YAML or JSON file: ``name: {password: <hash_password() hash>, role: view}``.

    A file keeps passwords out of the command line (and ``ps``); store hashes, not passwords.
    """
    import yaml  # JSON is YAML too

    try:
        with open(path, encoding="utf-8") as file:
            data = yaml.safe_load(file) or {}
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the users file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML or JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of user names")
    users = {}
    for name, entry in data.items():
        if not (isinstance(entry, dict) and entry.get("password") and entry.get("role")):
            raise ValueError(f"{path}: user {name!r} needs a password and a role")
        try:
            users[str(name)] = (str(entry["password"]), check_role(str(entry["role"])))
        except ValueError as exc:
            raise ValueError(f"{path}: user {name!r}: {exc}") from None
    return users


def load_callable(spec: str) -> Any:
    """``package.module:function`` (the auth hook given to ``rjbatch web --auth``)."""
    import importlib

    module_name, sep, attribute = spec.partition(":")
    if not (sep and module_name and attribute):
        raise ValueError(f"expected MODULE:FUNCTION, got {spec!r}")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load {spec!r}: {exc}") from None
    if not callable(found):
        raise ValueError(f"{spec!r} is not callable")
    return found
