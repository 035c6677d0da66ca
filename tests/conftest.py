"""Every test gets its own SQLite file, so tests never see each other's jobs."""

from __future__ import annotations

import pytest

import rjbatch
from rjbatch import config


@pytest.fixture(autouse=True)
def database(tmp_path, monkeypatch, request):
    monkeypatch.delenv("RJBATCH_DATABASE", raising=False)
    monkeypatch.delenv("RJBATCH_JOBS", raising=False)
    url = f"sqlite:///{tmp_path}/rjbatch.db"
    url = _mongo_database_url(request) or url
    url = _postgres_database_url(request) or url
    config.reset_store()
    rjbatch.configure(database=url)
    yield url
    config.reset_store()
    config.settings.database = None


def _mongo_database_url(request) -> str | None:
    """With RJBATCH_TEST_DATABASE=mongodb: a fresh database for this test.

    On RJBATCH_TEST_MONGODB_URL's server when it is set (dropped afterwards), otherwise on
    mongomock. mongomock lives inside this process: a test that runs workers or the CLI
    in other processes cannot share its data and is skipped.
    """
    import os

    if os.environ.get("RJBATCH_TEST_DATABASE", "").lower() not in ("mongodb", "mongo"):
        return None
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    name = f"rjbatch_test_{uuid.uuid4().hex[:12]}"
    server = os.environ.get("RJBATCH_TEST_MONGODB_URL")
    if server:
        import pymongo

        def drop() -> None:
            with pymongo.MongoClient(server) as client:
                client.drop_database(name)

        request.addfinalizer(drop)
        parts = urlsplit(server)
        return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    if request.node.module.__name__ in _OTHER_PROCESSES:
        pytest.skip("mongomock lives in one process: this test's workers run in others "
                    "(set RJBATCH_TEST_MONGODB_URL to run it on a server)")
    import mongomock

    patcher = mongomock.patch(servers=(("localhost", 27017),))
    patcher.start()
    request.addfinalizer(patcher.stop)
    return f"mongodb://localhost:27017/{name}"


# test modules that start worker or CLI processes (skipped on mongomock)
_OTHER_PROCESSES = {
    "tests.test_batch_processes", "tests.test_multiprocess", "tests.test_scheduling_processes",
    "tests.test_worker_processes",
}


@pytest.fixture
def frozen_clock():
    from datetime import UTC, datetime

    from rjbatch import clock

    with clock.frozen(datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)) as frozen:
        yield frozen


# -- PostgreSQL -------------------------------------------------------------------------
# RJBATCH_TEST_DATABASE=postgresql runs the suite on RJBATCH_TEST_POSTGRES_URL's server
# (default: postgres@127.0.0.1:5432). One database per session, created empty and migrated
# once, dropped at the end; every test starts with its tables emptied (about a
# millisecond, where creating a database costs tens).
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _postgres_database_url(request) -> str | None:
    """With RJBATCH_TEST_DATABASE=postgresql: the session's database, emptied for this test."""
    import os

    if os.environ.get("RJBATCH_TEST_DATABASE", "").lower() not in ("postgresql", "postgres"):
        return None
    database = request.getfixturevalue("postgres_database")
    database.empty()
    return database.url


class PostgresServer:
    """Creates, empties and drops the test databases of one PostgreSQL server."""

    # the store's tables live in its own schema, "rjbatch" by default
    TABLES = ("rjbatch.jobs", "rjbatch.input_slices", "rjbatch.output_slices", "rjbatch.servers",
              "rjbatch.dirmon_entries")

    def __init__(self, admin_url: str) -> None:
        import os
        import uuid

        import psycopg

        self.admin_url = admin_url
        self.admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
        self.prefix = f"rjbatch_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.count = 0

    def url_of(self, name: str) -> str:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.admin_url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))

    def create(self) -> str:
        """A new empty database; its URL."""
        self.count += 1
        name = f"{self.prefix}_{self.count}"
        self.admin.execute(f'CREATE DATABASE "{name}"')
        return self.url_of(name)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1].split("?")[0]
        self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self.admin.close()


class PostgresDatabase:
    """The session's test database: migrated once, emptied before every test."""

    def __init__(self, server: PostgresServer) -> None:
        import psycopg

        from rjbatch.store.postgres import PostgresStore

        self.server = server
        self.url = server.create()
        PostgresStore(self.url).close()  # migrate once
        self.connection = psycopg.connect(self.url, autocommit=True)
        self.connection.execute("SET lock_timeout = '5s'")

    def empty(self) -> None:
        import psycopg

        # DELETE, not TRUNCATE: a millisecond on the few rows a test leaves, and no
        # exclusive lock to wait for
        statement = "; ".join(f"DELETE FROM {table}" for table in PostgresServer.TABLES)
        try:
            self.connection.execute(statement)
        except psycopg.errors.LockNotAvailable:
            # a process of an earlier test still holds a row: end its sessions
            self.connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()")
            self.connection.execute(statement)

    def close(self) -> None:
        self.connection.close()
        self.server.drop(self.url)


@pytest.fixture(scope="session")
def postgres_server():
    """The PostgreSQL server to test on; skipped when unreachable, but failed in CI."""
    import os

    url = os.environ.get("RJBATCH_TEST_POSTGRES_URL", POSTGRES_ADMIN_URL)
    try:
        server = PostgresServer(url)
    except Exception as exc:  # noqa: BLE001 - psycopg missing or the server down
        reason = " ".join(str(exc).split()) or type(exc).__name__
        message = f"PostgreSQL not available at {url}: {reason}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set: not skipping)", pytrace=False)
        pytest.skip(message)
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_database(postgres_server):
    database = PostgresDatabase(postgres_server)
    yield database
    database.close()


@pytest.fixture
def servers(database, tmp_path):
    """Starts ``rjbatch worker`` processes on the test's database; kills them all afterwards."""
    from tests.processes import Servers

    pool = Servers(database, tmp_path)
    yield pool
    pool.kill_all()
