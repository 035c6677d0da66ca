"""``rjbatch web`` as a user runs it: a real uvicorn process over a SQLite file."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from rjbatch import Job
from rjbatch.web import hash_password

pytestmark = pytest.mark.slow


class CliNoteJob(Job):
    destroy_on_complete = False

    def perform(self):
        return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rjbatch_web(database: str, tmp_path: Path, *args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "RJBATCH_WEB_SECRET_KEY": "test-secret"}
    process = subprocess.Popen([sys.executable, "-m", "rjbatch", "web", "--database", database,
                                "--port", str(port), "--quiet", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path,
                               env=env, start_new_session=True)
    return process, f"http://127.0.0.1:{port}"


def get(url: str, auth: tuple[str, str] | None = None, deadline: float = 20.0) -> tuple[int, str]:
    """GET, retrying until the server listens."""
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    stop = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > stop:
                raise
            time.sleep(0.1)


@pytest.fixture
def stop_afterwards():
    processes: list[subprocess.Popen] = []
    yield processes.append
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)


def test_insecure_local_serves_the_job_list_on_loopback(database, tmp_path, stop_afterwards):
    job = CliNoteJob.create(description="seen from the web")
    process, base = rjbatch_web(database, tmp_path, "--insecure-local")
    stop_afterwards(process)
    status, body = get(f"{base}/jobs")
    assert status == 200 and "seen from the web" in body and job.id in body
    status, body = get(f"{base}/api/jobs/{job.id}")
    assert status == 200 and json.loads(body)["state"] == "queued"


def test_a_users_file_requires_a_login_and_sets_the_role(database, tmp_path, stop_afterwards):
    users = tmp_path / "users.yaml"
    users.write_text(f"ada:\n  password: '{hash_password('s3cret')}'\n  role: view\n")
    job = CliNoteJob.create()
    process, base = rjbatch_web(database, tmp_path, "--users", str(users))
    stop_afterwards(process)
    assert get(f"{base}/jobs")[0] == 401
    assert get(f"{base}/jobs", ("ada", "wrong"))[0] == 401
    status, body = get(f"{base}/jobs/{job.id}", ("ada", "s3cret"))
    assert status == 200 and "ada (view)" in body and "<button" not in body.split("</nav>", 1)[1]


def test_it_refuses_to_start_open_to_the_network_without_a_login(database, tmp_path):
    result = subprocess.run([sys.executable, "-m", "rjbatch", "web", "--database", database,
                             "--host", "0.0.0.0", "--insecure-local"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "rjbatch: error: insecure_local serves on 127.0.0.1 only, not '0.0.0.0'"]
    result = subprocess.run([sys.executable, "-m", "rjbatch", "web", "--database", database],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 1 and "needs users or an auth hook" in result.stderr


def test_a_bad_users_file_is_one_clear_line(database, tmp_path):
    users = tmp_path / "users.yaml"
    users.write_text("ada:\n  password: x\n  role: overlord\n")
    result = subprocess.run([sys.executable, "-m", "rjbatch", "web", "--database", database,
                             "--users", str(users)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"rjbatch: error: {users}: user 'ada': unknown role 'overlord': one of view, user, dirmon, manager,"
        " operator, editor, admin"]
