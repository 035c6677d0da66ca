"""Roles, passwords, login limits and CSRF tokens for Mission Control (docs/web.md, "Security")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# weakest first: a role grants everything the roles before it grant
ROLES = ("view", "user", "dirmon", "manager", "operator", "editor", "admin")

# the weakest role allowed to do each job action (RJMC's, see docs/web.md, Security model);
# "user" may act only on its own jobs (a job whose ``login`` field is the user's name)
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
ADMIN_ONLY_ROLE = "admin"  # sets a job class's admin_only_fields (code a worker runs)

_PBKDF2 = "pbkdf2_sha256"
DEFAULT_ITERATIONS = 200_000


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


def admin_only_fields(job_class: type | None) -> frozenset[str]:
    """The fields of ``job_class`` only an admin may set from Mission Control.

    A job class lists them in a class attribute ``admin_only_fields`` (``OnDemandJob``: its
    ``code``). The sets of every class in the MRO are joined, so a subclass can add fields
    but never drop one its parent protects.
    """
    names: set[str] = set()
    for klass in getattr(job_class, "__mro__", ()):
        names.update(vars(klass).get("admin_only_fields", ()) or ())
    return frozenset(names)


def fields_refused(role: str | None, job_class: type | None, names: Iterable[str]) -> list[str]:
    """Which of ``names`` this role may not set on ``job_class`` (sorted; empty: all allowed)."""
    if has_role(role, ADMIN_ONLY_ROLE):
        return []
    protected = admin_only_fields(job_class)
    return sorted({name for name in names if name in protected})


def hash_password(password: str, iterations: int = DEFAULT_ITERATIONS) -> str:
    """A hash for the ``users`` mapping: ``pbkdf2_sha256$iterations$salt$hash``."""
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"{_PBKDF2}${iterations}${salt}${base64.b64encode(digest).decode()}"


# successful checks, so that HTTP Basic (sent with every request) costs one PBKDF2 per user
# and password, not one per request; keyed by an HMAC of the password under a key of this
# process, never the password (nor a plain hash of it)
_verified: dict[tuple[str, bytes], bool] = {}
_CACHE_KEY = secrets.token_bytes(32)


def _cache_key(password: str, stored: str) -> tuple[str, bytes]:
    return stored, hmac.new(_CACHE_KEY, password.encode(), hashlib.sha256).digest()


def _remember(key: tuple[str, bytes]) -> None:
    if len(_verified) >= 1024:
        _verified.clear()
    _verified[key] = True


def verify_password(password: str, stored: str) -> bool:
    """Against a ``hash_password`` hash, or a plain password (constant time either way)."""
    if stored.startswith(_PBKDF2 + "$"):
        key = _cache_key(password, stored)
        if key in _verified:
            return True
        try:
            _, iterations, salt, expected = stored.split("$", 3)
            digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), int(iterations))
        except ValueError:
            return False
        ok = hmac.compare_digest(base64.b64encode(digest).decode(), expected)
        if ok:
            _remember(key)
        return ok
    # digests first: compare_digest on the texts would tell their lengths apart
    return hmac.compare_digest(hashlib.sha256(password.encode()).digest(), hashlib.sha256(stored.encode()).digest())


def dummy_hash(users: Mapping[str, tuple[str, str]]) -> str:
    """A hash nobody's password matches, as costly as the users' own (the most iterations
    among them): checked for unknown names, so they take as long as known ones."""
    rounds = [int(stored.split("$")[1]) for stored, _ in users.values()
              if stored.startswith(_PBKDF2 + "$") and stored.split("$")[1].isdigit()]
    salt = secrets.token_hex(16)
    return f"{_PBKDF2}${max(rounds, default=DEFAULT_ITERATIONS)}${salt}$not-a-hash"


def cached_login(users: Mapping[str, tuple[str, str]], username: str, password: str) -> str | None:
    """The role, when this user and password were verified before in this process (no PBKDF2:
    cheap enough for the event loop); None means "not known yet", not "wrong"."""
    entry = users.get(username)
    if entry is not None and _cache_key(password, entry[0]) in _verified:
        return entry[1]
    return None


def check_login(users: Mapping[str, tuple[str, str]], username: str, password: str, dummy: str) -> str | None:
    """The user's role if the password is right, else None, after the same work either way.

    Why: answering an unknown name faster than a known one tells a guesser which names
    exist. An unknown name is checked against ``dummy`` (see ``dummy_hash``), and a wrong
    plain-text password costs the dummy check too. Blocking (PBKDF2): call it in a thread.
    """
    entry = users.get(username)
    if entry is None:
        verify_password(password, dummy)
        return None
    stored, role = entry
    if stored.startswith(_PBKDF2 + "$"):
        return role if verify_password(password, stored) else None
    if verify_password(password, stored):
        _remember(_cache_key(password, stored))
        return role
    verify_password(password, dummy)
    return None


@dataclass(frozen=True)
class LoginLimits:
    """How failed logins are slowed, then refused (``LoginThrottle``).

    Failures count per client address and per user name within ``window`` seconds. From
    ``slow_after`` failures of a client (``user_slow_after`` of a user name) on, each failed
    answer waits ``delay`` seconds more than the last (at most ``max_delay``); at ``client_failures`` failures a client is refused (429) without
    its password being checked, until the window lets it try again. At ``user_failures``
    failures of one user name (from any clients), clients that have not logged in as that
    user within ``known_client_seconds`` are refused for it as well; those that have still
    get in, so a guesser cannot lock the real user out. In memory, per process: several
    processes each count their own.
    """

    window: float = 300.0
    slow_after: int = 3
    delay: float = 0.25
    max_delay: float = 2.0
    client_failures: int = 10
    user_slow_after: int = 10
    user_failures: int = 30
    known_client_seconds: float = 7 * 24 * 3600.0
    max_clients: int = 10_000  # clients remembered at once (least recently failed go first)
    max_known_clients: int = 64  # per user


class LoginThrottle:
    """Failed-login counts per client and per user name, bounded in size (see ``LoginLimits``).

    Only names in ``users`` are counted per user, so guessing names cannot fill memory or
    push a real user's count out. Called from the event loop; a lock keeps it safe anyway.
    """

    def __init__(self, limits: LoginLimits | None = None, users: Iterable[str] = (),
                 now: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or LoginLimits()
        self.users = frozenset(users)
        self.now = now
        self._clients: OrderedDict[str, deque[float]] = OrderedDict()
        self._users: dict[str, deque[float]] = {}
        self._known: dict[str, OrderedDict[str, float]] = {}
        self._lock = threading.Lock()

    def _recent(self, times: deque[float] | None) -> deque[float]:
        if times is None:
            return deque()
        cutoff = self.now() - self.limits.window
        while times and times[0] <= cutoff:
            times.popleft()
        return times

    def _wait(self, times: deque[float], limit: int) -> float | None:
        """Seconds until ``times`` falls below ``limit`` failures, or None when it is below."""
        if len(times) < limit:
            return None
        return max(times[len(times) - limit] + self.limits.window - self.now(), 1.0)

    def _known_client(self, username: str, client: str) -> bool:
        clients = self._known.get(username)
        seen = clients.get(client) if clients is not None else None
        return seen is not None and self.now() - seen < self.limits.known_client_seconds

    def retry_after(self, client: str, username: str) -> int | None:
        """Seconds this client must wait before trying ``username`` again, or None: go ahead."""
        with self._lock:
            waits = [self._wait(self._recent(self._clients.get(client)), self.limits.client_failures)]
            if username in self.users and not self._known_client(username, client):
                waits.append(self._wait(self._recent(self._users.get(username)), self.limits.user_failures))
            found = [wait for wait in waits if wait is not None]
            return math.ceil(max(found)) if found else None

    def failed(self, client: str, username: str) -> float:
        """Count a failure; the seconds to hold the answer back (0 before ``slow_after``)."""
        limits = self.limits
        with self._lock:
            at = self.now()
            times = self._recent(self._clients.pop(client, None))
            times.append(at)
            while len(times) > limits.client_failures:
                times.popleft()
            self._clients[client] = times  # most recent last: the first is evicted when full
            while len(self._clients) > limits.max_clients:
                self._clients.popitem(last=False)
            over = len(times) - limits.slow_after
            if username in self.users:
                own = self._recent(self._users.setdefault(username, deque(maxlen=limits.user_failures)))
                own.append(at)
                over = max(over, len(own) - limits.user_slow_after)
        return 0.0 if over < 0 else min(limits.delay * (over + 1), limits.max_delay)

    def succeeded(self, client: str, username: str) -> None:
        """Remember the client as one this user logs in from (it stays let in for that user)."""
        with self._lock:
            known = self._known.setdefault(username, OrderedDict())
            known.pop(client, None)
            known[client] = self.now()
            while len(known) > self.limits.max_known_clients:
                known.popitem(last=False)


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
    import yaml

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
    """``package.module:function`` (the auth hook given to ``rjbatch web --auth``), found in
    the current folder too."""
    module_name, sep, attribute = spec.partition(":")
    if not (sep and module_name and attribute):
        raise ValueError(f"expected MODULE:FUNCTION, got {spec!r}")
    from rjbatch.config import import_module

    try:
        found = getattr(import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load {spec!r}: {exc}") from None
    if not callable(found):
        raise ValueError(f"{spec!r} is not callable")
    return found
