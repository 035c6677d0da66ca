"""The web tests need Mission Control's extras (starlette, jinja2, python-multipart,
itsdangerous, and httpx for the TestClient); without them they are not collected."""

import importlib.util

MISSING = [name for name in ("starlette", "jinja2", "multipart", "itsdangerous", "httpx")
           if importlib.util.find_spec(name) is None]

if MISSING:
    collect_ignore_glob = ["test_*.py"]
