"""Mission Control in a real browser: uvicorn in a thread, Debian's headless Chromium.

One server and one browser serve the whole session; each test gets fresh browser
contexts (cookies, so a fresh session and CSRF token) logged in with HTTP Basic. The app
finds its store through ``rjbatch.config.get_store()`` on every request, so the server
started once serves whichever SQLite file the autouse ``database`` fixture of
tests/conftest.py configured for the running test.

Playwright never downloads a browser here (never run ``playwright install``): it drives
the system Chromium (``apt-get install chromium``, or ``RJBATCH_CHROMIUM=/path``). Without
it, or without playwright or the web extras, these tests skip, except in CI (``CI`` set),
where they fail instead.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

CHROMIUM = os.environ.get("RJBATCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
IN_CI = bool(os.environ.get("CI"))

MISSING = [name for name in ("starlette", "jinja2", "multipart", "itsdangerous", "httpx",
                             "uvicorn", "playwright")
           if importlib.util.find_spec(name) is None]

if MISSING and not IN_CI:  # in CI the import errors show instead
    collect_ignore_glob = ["test_*.py"]


def unavailable(reason: str) -> None:
    """Skip, or fail in CI: CI must never pass by skipping the browser tests."""
    if IN_CI:
        pytest.fail(f"{reason} (CI is set: not skipping)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerThread:
    """A uvicorn server for ``app`` on a free 127.0.0.1 port, in a daemon thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="mission-control", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Mission Control did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def base_url() -> Iterator[str]:
    """Mission Control with the web tests' USERS, served for the whole session."""
    from rjbatch.web import create_app
    from tests.web.helpers import USERS

    assert set(PASSWORDS) == set(USERS), "PASSWORDS must log in every user of tests.web.helpers"
    server = ServerThread(create_app(users=USERS)).start()
    yield server.url
    server.stop()
    assert not server.thread.is_alive(), "the Mission Control thread did not stop"


@pytest.fixture(scope="package")  # closed when tests/e2e ends: its event loop must not outlive it
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        unavailable(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Dialogs:
    """The confirm dialogs the pages of one test raised; ``accept`` answers them."""

    accept: bool = True
    messages: list[str] = field(default_factory=list)

    def answer(self, dialog: Any) -> None:
        self.messages.append(dialog.message)
        if self.accept:
            dialog.accept()
        else:
            dialog.dismiss()


@pytest.fixture
def dialogs() -> Dialogs:
    return Dialogs()


PASSWORDS = {"ada": "secret", "vic": "look", "ed": "fix", "uma": "own", "dina": "dir",
             "max": "man", "otto": "ops"}


@pytest.fixture
def login(browser: Any, base_url: str, dialogs: Dialogs) -> Iterator[Callable[[str], Any]]:
    """``login("vic")``: a page in a new browser context of that user (see tests.web.helpers)."""
    contexts = []

    def open_page(username: str) -> Any:
        context = browser.new_context(
            base_url=base_url, viewport={"width": 1280, "height": 900},
            http_credentials={"username": username, "password": PASSWORDS[username]})
        context.set_default_timeout(5_000)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", dialogs.answer)
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(login: Callable[[str], Any]) -> Any:
    """A page of ada, the admin."""
    return login("ada")
