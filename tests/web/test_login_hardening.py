"""Logging in: the same work for unknown names, failures audited, guessing slowed then
refused (429), password checks and the store off the event loop, Secure cookies."""

from __future__ import annotations

import base64
import contextlib
import logging
import socket
import statistics
import threading
import time
from collections.abc import Iterator

import anyio
import httpx
import pytest

from rjbatch.web import create_app, hash_password, security
from rjbatch.web.security import LoginLimits, LoginThrottle
from tests.web.helpers import USERS, client
from tests.web.sample_jobs import WebNoteJob

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

# limits that never slow nor refuse: for the timing tests, where every attempt must cost its check
UNLIMITED = LoginLimits(slow_after=10**6, user_slow_after=10**6, client_failures=10**6, user_failures=10**6)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def from_client(app, host: str, auth=None):
    """A TestClient whose requests come from ``host``."""
    from starlette.testclient import TestClient

    test_client = TestClient(app, client=(host, 50000))
    if auth:
        test_client.auth = auth
    return test_client


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- (a) the same work for unknown and known names --------------------------------------------
def test_an_unknown_name_costs_what_a_known_one_does():
    users = {"ada": (hash_password("secret"), "admin"), "vic": ("look", "view")}
    app = create_app(users=users, login_limits=UNLIMITED)

    kinds = {"known (hash)": "ada", "known (plain)": "vic", "unknown": "nobody-here"}

    async def measure() -> dict[str, float]:
        """Round-robin over the kinds, so a change of load on the machine hits each alike."""
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        transport = httpx.ASGITransport(app=app, client=("10.9.9.9", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://mc") as http:
            await http.get("/api/jobs", headers=basic("ada", "warm-up"))
            for _ in range(9):
                for kind, user in kinds.items():
                    started = time.perf_counter()
                    response = await http.get("/api/jobs", headers=basic(user, "wrong"))
                    times[kind].append(time.perf_counter() - started)
                    assert response.status_code == 401
        return {kind: statistics.median(values) for kind, values in times.items()}

    medians = anyio.run(measure)
    print("median failed-login seconds:", {name: round(value, 4) for name, value in medians.items()})
    unknown = medians["unknown"]
    for name in ("known (hash)", "known (plain)"):
        ratio = max(unknown, medians[name]) / min(unknown, medians[name])
        assert ratio < 2, (name, medians)
    assert unknown > 0.005  # it did run a PBKDF2 (about 40 ms here), not answer at once


def test_check_login_runs_pbkdf2_for_unknown_names_and_wrong_plain_passwords(monkeypatch):
    calls = []
    real = security.hashlib.pbkdf2_hmac
    monkeypatch.setattr(security.hashlib, "pbkdf2_hmac", lambda *a: calls.append(a[3]) or real(*a))
    users = {"ada": (hash_password("secret", iterations=1000), "admin"), "vic": ("look", "view")}
    calls.clear()
    dummy = security.dummy_hash(users)
    assert dummy.split("$")[1] == "1000"  # as costly as the users' own hashes
    assert security.check_login(users, "nobody", "x", dummy) is None and calls == [1000]
    assert security.check_login(users, "vic", "wrong", dummy) is None and calls == [1000, 1000]
    assert security.check_login(users, "ada", "wrong", dummy) is None and len(calls) == 3
    assert security.check_login(users, "ada", "secret", dummy) == "admin" and len(calls) == 4
    assert security.cached_login(users, "ada", "secret") == "admin"  # the next one costs nothing
    assert security.cached_login(users, "ada", "wrong") is None
    assert security.check_login(users, "vic", "look", dummy) == "view"
    assert security.dummy_hash({"vic": ("look", "view")}).split("$")[1] == str(security.DEFAULT_ITERATIONS)


# -- (b) failed logins are audited ------------------------------------------------------------
def test_a_failed_login_is_a_warning_with_the_name_and_the_client(caplog):
    app = create_app(users=USERS)
    with caplog.at_level(logging.INFO, logger="rjbatch.web.audit"):
        assert from_client(app, "10.1.2.3", ("ada", "nope")).get("/jobs").status_code == 401
        assert from_client(app, "10.1.2.4", ("ghost\nuser=ada", "x")).get("/jobs").status_code == 401
        assert from_client(app, "10.1.2.5", ("ada", "secret")).get("/jobs").status_code == 200
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert lines[0] == (logging.WARNING, "failed login user=ada client=10.1.2.3 known_user=yes")
    # a name is anyone's text: no line break gets into the log
    assert lines[1] == (logging.WARNING, "failed login user=ghost\\x0auser=ada client=10.1.2.4 known_user=no")
    assert len(lines) == 2 and "nope" not in caplog.text  # never the password


# -- (c) guessing slowed, then refused ----------------------------------------------------------
def test_repeated_failures_get_429_and_a_correct_password_from_another_client_still_works(caplog):
    app = create_app(users=USERS, login_limits=LoginLimits(client_failures=3, slow_after=100, window=60))
    guesser = from_client(app, "10.0.0.66", ("ada", "guess"))
    assert [guesser.get("/jobs").status_code for _ in range(3)] == [401, 401, 401]
    with caplog.at_level(logging.INFO, logger="rjbatch.web.audit"):
        refused = guesser.get("/jobs")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "Too many failed logins" in refused.text
    assert "refused login user=ada client=10.0.0.66 reason=too-many-failures" in caplog.text
    # the right password from the refused client is refused too: it must not learn it guessed right
    assert from_client(app, "10.0.0.66", ("ada", "secret")).get("/jobs").status_code == 429
    api = from_client(app, "10.0.0.66", ("ada", "x")).get("/api/jobs")
    assert api.status_code == 429 and "error" in api.json()
    # anyone else is let in
    assert from_client(app, "10.0.0.7", ("ada", "secret")).get("/jobs").status_code == 200
    assert from_client(app, "10.0.0.8", ("vic", "look")).get("/jobs").status_code == 200


def test_failures_of_one_name_from_many_clients_lock_it_for_new_clients_only():
    limits = LoginLimits(client_failures=100, slow_after=100, user_failures=4, user_slow_after=100)
    app = create_app(users=USERS, login_limits=limits)
    assert from_client(app, "10.0.1.1", ("ed", "fix")).get("/jobs").status_code == 200  # ed's own machine
    for n in range(4):
        assert from_client(app, f"10.0.2.{n}", ("ed", "guess")).get("/jobs").status_code == 401
    assert from_client(app, "10.0.3.1", ("ed", "fix")).get("/jobs").status_code == 429
    assert from_client(app, "10.0.1.1", ("ed", "fix")).get("/jobs").status_code == 200
    assert from_client(app, "10.0.3.1", ("max", "man")).get("/jobs").status_code == 200  # other names: fine


def test_the_throttle_slows_then_refuses_and_forgets_after_the_window():
    clock = FakeTime()
    throttle = LoginThrottle(LoginLimits(window=60, slow_after=2, delay=0.5, max_delay=1.2, client_failures=5,
                                         user_failures=8, user_slow_after=6), users=["ada"], now=clock)
    delays = []
    for _ in range(5):
        assert throttle.retry_after("c1", "ada") is None
        delays.append(throttle.failed("c1", "ada"))
        clock.now += 1
    assert delays == [0.0, 0.5, 1.0, 1.2, 1.2]  # from the 2nd on, slower and slower, up to max_delay
    assert throttle.retry_after("c1", "ada") == 55  # now 1005; the first failure leaves the window at 1060
    assert throttle.retry_after("c2", "ada") is None  # another client (ada has 5 of 8 failures)
    clock.now += 54
    assert throttle.retry_after("c1", "ada") == 1
    clock.now += 1
    assert throttle.retry_after("c1", "ada") is None


def test_the_throttle_is_bounded_in_size():
    throttle = LoginThrottle(LoginLimits(max_clients=5, max_known_clients=2), users=["ada"])
    for n in range(50):
        throttle.failed(f"10.0.0.{n}", f"name-{n}")
        throttle.succeeded(f"10.0.0.{n}", "ada")
    assert len(throttle._clients) == 5
    assert list(throttle._users) == []  # only known names are counted per user
    assert len(throttle._known["ada"]) == 2


def test_failed_answers_are_held_back_without_blocking_others():
    app = create_app(users=USERS, login_limits=LoginLimits(slow_after=1, delay=0.15, max_delay=0.15,
                                                           client_failures=100))
    slow = from_client(app, "10.0.4.1", ("vic", "wrong"))
    slow.get("/jobs")
    started = time.perf_counter()
    assert slow.get("/jobs").status_code == 401
    assert time.perf_counter() - started >= 0.15


# -- (d) the event loop stays free while passwords are checked ----------------------------------
@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """``app`` under a real uvicorn on a free port, in a thread: real sockets, one event loop."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_an_ordinary_request_stays_fast_while_others_send_wrong_passwords():
    """Six clients send wrong passwords (a PBKDF2 check each, ~40 ms) as fast as they are
    answered; meanwhile a logged-in user's requests take a couple of milliseconds. With the
    checks on the event loop (before), they took the queue of checks: ~220 ms here."""
    app = create_app(users=USERS, login_limits=UNLIMITED)
    job = WebNoteJob.create(description="ordinary")
    stop, guesses = threading.Event(), [0]

    def guess(base: str) -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            while not stop.is_set():
                assert http.get("/api/jobs", auth=("ada", f"guess-{guesses[0]}")).status_code == 401
                guesses[0] += 1

    with serving(app) as base, httpx.Client(base_url=base, auth=("vic", "look"), timeout=30) as http:
        for _ in range(3):  # log in once (then cached), open the thread pool's connections
            assert http.get(f"/api/jobs/{job.id}").status_code == 200
            assert http.get("/jobs").status_code == 200
        guessers = [threading.Thread(target=guess, args=(base,)) for _ in range(6)]
        for thread in guessers:
            thread.start()
        api, page = [], []
        try:
            time.sleep(0.3)  # the guessing is under way
            deadline = time.monotonic() + 20
            while len(api) < 25 or (guesses[0] < 10 and time.monotonic() < deadline):
                started = time.perf_counter()
                assert http.get(f"/api/jobs/{job.id}").status_code == 200
                api.append(time.perf_counter() - started)
                started = time.perf_counter()
                assert http.get("/jobs").status_code == 200
                page.append(time.perf_counter() - started)
                time.sleep(0.01)
            checked = guesses[0]
        finally:
            stop.set()
            for thread in guessers:
                thread.join(30)
    print(f"under {checked} wrong passwords: /api/jobs/ID median {statistics.median(api) * 1000:.1f} ms "
          f"(max {max(api) * 1000:.1f}), /jobs median {statistics.median(page) * 1000:.1f} ms "
          f"(max {max(page) * 1000:.1f})")
    assert checked >= 10  # the passwords really were being checked meanwhile
    assert statistics.median(api) < 0.020
    assert statistics.median(page) < 0.020


def test_handlers_run_off_the_event_loop(monkeypatch):
    """Every page handler is a plain function, run in a thread by create_app (only the two
    that touch neither the store nor a template are awaited on the loop)."""
    import inspect

    from rjbatch.web import app as app_module
    from rjbatch.web import jobs

    on_loop = sorted(handler.__name__ for module in app_module.PAGE_MODULES
                     for _, handler, _ in module.ROUTES if inspect.iscoroutinefunction(handler))
    on_loop += [handler.__name__ for _, handler, _ in jobs.ACTION_ROUTES if inspect.iscoroutinefunction(handler)]
    assert on_loop == ["api_csrf", "home"]

    import threading

    seen = []
    real = app_module.security.csrf_token
    monkeypatch.setattr(app_module.security, "csrf_token",
                        lambda session: seen.append(threading.current_thread().name) or real(session))
    assert client(create_app(users=USERS), ("vic", "look")).get("/jobs").status_code == 200
    assert seen and all(name != "MainThread" and "AnyIO worker" in name for name in seen), seen


# -- (e) Secure cookies ---------------------------------------------------------------------
def test_secure_cookies_mark_the_session_cookie_secure():
    plain = client(create_app(users=USERS), ("vic", "look")).get("/jobs")
    assert "rjbatch_session=" in plain.headers["set-cookie"] and "secure" not in plain.headers["set-cookie"].lower()
    secure = client(create_app(users=USERS, secure_cookies=True), ("vic", "look")).get("/jobs")
    cookie = secure.headers["set-cookie"].lower()
    assert "rjbatch_session=" in cookie and "; secure" in cookie and "samesite=strict" in cookie


def test_serve_hands_the_new_options_to_the_app(monkeypatch):
    import uvicorn

    from rjbatch.web import serve

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: started.update(app=app, options=kw))
    serve(insecure_local=True, secure_cookies=True, dirmon_whitelist=["/data"], log_level="info")
    app = started["app"]
    assert started["options"] == {"log_level": "info"}  # uvicorn gets only its own options
    assert app.state.dirmon_whitelist == ["/data"]
    cookie = client(app).get("/jobs").headers["set-cookie"].lower()
    assert "; secure" in cookie
