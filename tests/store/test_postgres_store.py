"""The PostgreSQL store: the conformance suite, and what only PostgreSQL has to show.

Runs on ``RJBATCH_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``,
used only to create and drop test databases). Skipped when that server is unreachable,
except in CI (``CI`` set), where that fails.
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rjbatch.errors import StoreError
from rjbatch.store import open_store
from tests.store.conformance import NOW, StoreConformance, make_doc, make_slice

JOB = "65a4f0c2e1b2c3d4e5f60718"
REPOSITORY = Path(__file__).resolve().parents[2]


def connect(url):
    from rjbatch.store.postgres import PostgresStore

    return PostgresStore(url)


@pytest.fixture
def url(postgres_database):
    postgres_database.empty()
    return postgres_database.url


@pytest.fixture
def store(url):
    store = connect(url)
    yield store
    store.close()


@pytest.fixture
def other_store(url):
    store = connect(url)
    yield store
    store.close()


@pytest.fixture
def fresh_url(postgres_server):
    """A database of its own, empty: no schema yet."""
    url = postgres_server.create()
    yield url
    postgres_server.drop(url)


class TestPostgresConformance(StoreConformance):
    NUL_IN_KEYS = False  # jsonb and text cannot hold NUL
    NUL_IN_VALUES = "replaced"


def explain(store, sql, params):
    """The plan PostgreSQL ran; the statement's changes are rolled back."""
    import psycopg

    connection = store._connection()
    with connection.transaction():
        rows = connection.execute("EXPLAIN (ANALYZE) " + sql, params).fetchall()
        plan = "\n".join(row["QUERY PLAN"] for row in rows)
        raise psycopg.Rollback()
    return plan


def run_python(script, *args):
    """A Python process running ``script`` from the repository root (it imports ``tests``)."""
    return subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPOSITORY)


# -- opening ------------------------------------------------------------------------------
def test_open_store_dispatches_both_url_schemes(url):
    from rjbatch.store.postgres import PostgresStore

    for scheme_url in (url, url.replace("postgresql://", "postgres://", 1)):
        store = open_store(scheme_url)
        assert isinstance(store, PostgresStore)
        store.insert_job(make_doc())
        store.close()
    assert connect(url).count_jobs({}) == 2


def test_an_unreachable_server_is_a_clear_error_without_the_password():
    from rjbatch.store.postgres import PostgresStore

    with pytest.raises(StoreError) as raised:
        PostgresStore("postgresql://rj:secret@127.0.0.1:1/nowhere", connect_timeout=2)
    message = str(raised.value)
    assert message.startswith("cannot connect to PostgreSQL at postgresql://rj:***@127.0.0.1:1/nowhere: ")
    assert "secret" not in message


# -- layout -------------------------------------------------------------------------------
def test_hot_fields_are_typed_columns_and_the_rest_jsonb(store):
    store.insert_job(make_doc(run_at=NOW, note="x"))
    rows = store._execute("SELECT column_name, data_type FROM information_schema.columns"
                          " WHERE table_name = 'jobs'").fetchall()
    types = {row["column_name"]: row["data_type"] for row in rows}
    assert types["run_at"] == types["created_at"] == "timestamp with time zone"
    assert types["doc"] == "jsonb" and types["classes"] == "ARRAY" and types["priority"] == "integer"
    row = store._execute("SELECT doc, run_at FROM jobs").fetchone()
    assert row["doc"] == {"note": "x"} and row["run_at"] == NOW
    found = store.find_job(store.find_jobs({})[0]["_id"])
    assert found["run_at"] == NOW and found["run_at"].tzinfo is not None


def test_indexes_serve_the_claims(store):
    indexes = {row["indexname"]: row["indexdef"] for row in store._execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()").fetchall()}
    assert "(state, priority, id)" in indexes["jobs_claim"]
    assert "WHERE ((state = 'running'::text) AND (sub_state = 'processing'::text))" in indexes["jobs_processing"]
    assert "WHERE (state = 'queued'::text)" in indexes["input_slices_queued"]


def test_claims_walk_indexes_even_before_the_tables_have_statistics(fresh_url):
    from rjbatch.store.postgres import SQL

    store = connect(fresh_url)
    for priority in range(3000):
        store.insert_job(make_doc(priority=priority % 7))
    store.insert_slices(JOB, "main", [make_slice(i) for i in range(1, 3001)])
    analyzed = store._execute("SELECT count(*) AS n FROM pg_stat_user_tables WHERE relname = 'jobs'"
                              " AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)").fetchone()
    if analyzed["n"]:
        pytest.skip("autovacuum analyzed the table already")
    plan = explain(store, SQL["claim_job"].format(filter="1=1"), [[], "w", NOW, [], NOW, NOW, "w", NOW])
    assert "Index Scan using jobs_claim" in plan and "Sort" not in plan
    plan = explain(store, SQL["claim_slices"], ["w", NOW, JOB, "main", 10])
    assert "Tid Scan" in plan and "Index Scan using input_slices_queued" in plan and "Sort" not in plan
    outputs = [["main"] * 3, [1, 2, 3], [1, 11, 21], [10] * 3, ["bson"] * 3, [b"x"] * 3]
    unfenced = explain(store, SQL["complete_slices"], [JOB, "main", [1, 2, 3], None, None, JOB, *outputs,
                                                                None])
    assert "Index Cond: ((job_id = " in unfenced and "Seq Scan on input_slices" not in unfenced
    # fenced by the worker: the slices it holds (a handful) are found by either index
    fenced = explain(store, SQL["complete_slices"], [JOB, "main", [1, 2, 3], "w", "w", JOB, *outputs, "w"])
    assert "Index Scan using input_slices_" in fenced and "Seq Scan on input_slices" not in fenced
    store.close()


# -- SKIP LOCKED ----------------------------------------------------------------------------
def test_a_claim_passes_over_a_job_another_transaction_holds_without_waiting(store, url):
    import psycopg

    first, second = make_doc(priority=1), make_doc(priority=2)
    store.insert_job(first)
    store.insert_job(second)
    with psycopg.connect(url) as holder:  # not autocommit: the lock lasts until rollback
        holder.execute("SELECT id FROM rjbatch.jobs WHERE id = %s FOR UPDATE", [first["_id"]])
        started = time.monotonic()
        assert store.claim_job("w:1:1", NOW)["_id"] == second["_id"]
        assert time.monotonic() - started < 2
        assert store.claim_job("w:1:2", NOW) is None
        holder.rollback()
    assert store.claim_job("w:1:3", NOW)["_id"] == first["_id"]


CLAIM_JOBS = """
import sys, datetime
from rjbatch.store.postgres import PostgresStore
store = PostgresStore(sys.argv[1])
now = datetime.datetime.now(datetime.UTC)
while (doc := store.claim_job(sys.argv[2], now)) is not None:
    print(doc["_id"])
"""

PROCESS_SLICES = """
import sys, datetime
from rjbatch.store.postgres import PostgresStore
store = PostgresStore(sys.argv[1])
now = datetime.datetime.now(datetime.UTC)
while claimed := store.claim_slices(sys.argv[3], "main", sys.argv[2], now, 5):
    done = [(s["id"], {"main": {**s, "data": sys.argv[2].encode()}}) for s in claimed]
    store.complete_slices(sys.argv[3], "main", done)
    print(" ".join(str(s["id"]) for s in claimed))
"""


@pytest.mark.slow
def test_job_claims_from_many_processes_never_overlap(store, url):
    for _ in range(800):
        store.insert_job(make_doc())
    processes = [run_python(CLAIM_JOBS, url, f"p{i}") for i in range(4)]
    ids = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        ids += out.split()
    assert len(ids) == 800 and len(set(ids)) == 800
    assert store.count_jobs({"state": "running"}) == 800


@pytest.mark.slow
def test_slice_claims_from_many_processes_process_every_slice_once(store, url):
    store.insert_slices(JOB, "main", [make_slice(i, record_count=1) for i in range(1, 2001)])
    processes = [run_python(PROCESS_SLICES, url, f"p{i}", JOB) for i in range(4)]
    ids = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        ids += [int(i) for i in out.split()]
    assert sorted(ids) == list(range(1, 2001))
    assert store.count_slices(JOB, "main") == {}
    assert store.count_output_slices(JOB, "main") == (2000, 2000)


# -- LISTEN / NOTIFY ------------------------------------------------------------------------
def test_only_writes_that_may_bring_work_notify(store, other_store):
    def notified(action) -> bool:
        before = store.data_version()
        action()
        return store.data_version() != before

    queued = make_doc()
    assert notified(lambda: other_store.insert_job(queued))
    assert not notified(lambda: other_store.claim_job("w:1:1", NOW))  # queued -> running
    assert not notified(lambda: other_store.insert_job(make_doc(state="completed")))
    assert notified(lambda: other_store.update_job(queued["_id"], {"state": "queued", "worker_name": None}))
    batch = make_doc(state="running", sub_state="before")
    other_store.insert_job(batch)
    assert notified(lambda: other_store.update_job(batch["_id"], {"sub_state": "processing"}))
    assert notified(lambda: other_store.insert_slices(JOB, "main", [make_slice(1), make_slice(2)]))
    assert not notified(lambda: other_store.claim_slices(JOB, "main", "w:1:1", NOW, 2))
    assert notified(lambda: other_store.release_slices(JOB, "main", [2]))
    assert not notified(lambda: other_store.complete_slices(JOB, "main", [(1, {})]))


def test_a_connection_is_not_woken_by_its_own_writes(store):
    store.insert_job(make_doc())
    store.insert_slices(JOB, "main", [make_slice(1)])
    assert store.wait_for_change(0.2) is False


def test_a_notification_that_came_during_other_work_is_not_lost(store, other_store):
    store.data_version()
    other_store.insert_job(make_doc())
    store.count_jobs({})  # the notification arrives while this query runs
    started = time.monotonic()
    assert store.wait_for_change(10) is True
    assert time.monotonic() - started < 1
    assert store.wait_for_change(0.05) is False  # and it counts once


def test_stop_is_seen_within_a_few_milliseconds(store):
    stop_at = time.monotonic() + 0.1
    started = time.monotonic()
    assert store.wait_for_change(10, stop=lambda: time.monotonic() >= stop_at) is False
    assert time.monotonic() - started < 0.5


def test_idle_workers_wake_within_milliseconds_of_new_work(store, other_store, record_property):
    store.data_version()  # connected and listening
    latencies = []
    for _ in range(30):
        woke: list[tuple[bool, float]] = []

        def wait(woke=woke):
            woke.append((store.wait_for_change(10), time.monotonic()))

        thread = threading.Thread(target=wait)
        thread.start()
        time.sleep(0.02)
        written = time.monotonic()
        other_store.insert_job(make_doc())
        thread.join(15)
        assert woke and woke[0][0]
        latencies.append((woke[0][1] - written) * 1000)
    median = statistics.median(latencies)
    record_property("wakeup_ms_median", round(median, 2))
    record_property("wakeup_ms_max", round(max(latencies), 2))
    print(f"wake-up after a commit: median {median:.2f} ms, max {max(latencies):.2f} ms")
    assert median < 50


# -- migrations ---------------------------------------------------------------------------
def test_migrating_twice_changes_nothing(fresh_url):
    from rjbatch.store.postgres import SCHEMA_VERSION, PostgresStore

    first = PostgresStore(fresh_url)
    assert first.schema_version() == SCHEMA_VERSION
    first.insert_job(make_doc())
    second = PostgresStore(fresh_url)
    rows = second._execute("SELECT version FROM rjbatch_schema ORDER BY version").fetchall()
    assert [row["version"] for row in rows] == list(range(1, SCHEMA_VERSION + 1))
    assert second.count_jobs({}) == 1
    first.close()
    second.close()


OPEN_AND_INSERT = """
import sys
from rjbatch.store.postgres import PostgresStore
from tests.store.conformance import make_doc
PostgresStore(sys.argv[1]).insert_job(make_doc())
"""


@pytest.mark.slow
def test_processes_opening_a_new_database_together_migrate_it_once(fresh_url):
    from rjbatch.store.postgres import SCHEMA_VERSION, PostgresStore

    processes = [run_python(OPEN_AND_INSERT, fresh_url) for _ in range(6)]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    store = PostgresStore(fresh_url)
    assert store.count_jobs({}) == 6
    rows = store._execute("SELECT version FROM rjbatch_schema").fetchall()
    assert sorted(row["version"] for row in rows) == list(range(1, SCHEMA_VERSION + 1))
    store.close()


def test_a_newer_schema_is_refused_with_a_clear_message(fresh_url):
    from rjbatch.store.postgres import PostgresStore

    PostgresStore(fresh_url)._execute("INSERT INTO rjbatch_schema (version) VALUES (999)")
    with pytest.raises(StoreError, match="schema version 999"):
        PostgresStore(fresh_url)


# -- a schema of its own ------------------------------------------------------------------
def with_query(url, query):
    return url + ("&" if "?" in url else "?") + query


def admin(url):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def tables_of(connection, schema):
    rows = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1",
                              [schema]).fetchall()
    return [row[0] for row in rows]


def functions_of(connection, schema):
    rows = connection.execute("SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                              " WHERE n.nspname = %s ORDER BY 1", [schema]).fetchall()
    return [row[0] for row in rows]


RJBATCH_TABLES = ["dirmon_entries", "input_slices", "jobs", "output_slices", "rjbatch_schema", "servers"]


def test_tables_live_in_a_schema_of_their_own(fresh_url):
    store = connect(fresh_url)
    store.insert_job(make_doc())
    with admin(fresh_url) as connection:
        assert tables_of(connection, "rjbatch") == RJBATCH_TABLES
        assert functions_of(connection, "rjbatch") == ["rjbatch_increment", "rjbatch_notify"]
        assert tables_of(connection, "public") == [] and functions_of(connection, "public") == []
    assert store.schema == "rjbatch" and store.url == fresh_url
    store.close()


def test_the_store_shares_a_database_that_has_its_own_jobs_table(fresh_url):
    with admin(fresh_url) as connection:
        connection.execute("CREATE TABLE jobs (id serial PRIMARY KEY, title text, state text)")
        connection.execute("INSERT INTO jobs (title, state) VALUES ('invoice run', 'queued'),"
                           " ('O''Brien export', 'done')")
        connection.execute("CREATE INDEX jobs_claim ON jobs (state)")  # a name rjbatch uses too
    store, other = connect(fresh_url), connect(fresh_url)
    doc = make_doc(statistics={})
    store.insert_job(doc)
    store.insert_slices(JOB, "main", [make_slice(1)])
    before = store.data_version()
    other.insert_job(make_doc(priority=60))  # the triggers' notifications still arrive
    assert store.data_version() != before
    assert store.increment_job(doc["_id"], {"statistics.by_name.O'Brien": 1})
    assert store.claim_job("w:1:1", NOW)["_id"] == doc["_id"]
    assert store.count_jobs({}) == 2 and store.count_slices(JOB, "main") == {"queued": (1, 10)}
    assert store.find_job(doc["_id"])["statistics"] == {"by_name": {"O'Brien": 1}}
    with admin(fresh_url) as connection:
        rows = connection.execute("SELECT id, title, state FROM public.jobs ORDER BY id").fetchall()
        assert rows == [(1, "invoice run", "queued"), (2, "O'Brien export", "done")]
        assert tables_of(connection, "public") == ["jobs"]
    store.close()
    other.close()


def test_a_schema_named_in_the_url_keeps_its_own_jobs(fresh_url):
    named = connect(with_query(fresh_url, "connect_timeout=5&schema=myapp_jobs"))
    default = connect(fresh_url)
    named.insert_job(make_doc(note="named"))
    default.insert_job(make_doc(note="default"))
    assert [d["note"] for d in named.find_jobs({})] == ["named"]
    assert [d["note"] for d in default.find_jobs({})] == ["default"]
    assert named.schema == "myapp_jobs" and "schema=myapp_jobs" in named.url
    with admin(fresh_url) as connection:
        assert tables_of(connection, "myapp_jobs") == RJBATCH_TABLES
    named.close()
    default.close()


@pytest.mark.parametrize("schema", ["MyJobs", "my-jobs", "x;DROP TABLE jobs", '"quoted"', "pg_jobs",
                                    "information_schema", "1st", "", "a" * 64, "jobs%20x"])
def test_a_schema_name_that_is_not_a_plain_identifier_is_refused_by_name(schema):
    from rjbatch.store.postgres import PostgresStore, split_url

    url = f"postgresql://nobody@127.0.0.1:1/db?schema={schema}"
    with pytest.raises(StoreError, match="invalid PostgreSQL schema name"):
        split_url(url)
    with pytest.raises(StoreError, match="invalid PostgreSQL schema name"):
        PostgresStore(url)  # before any connection is tried


def test_the_schema_parameter_is_not_given_to_libpq():
    from rjbatch.store.postgres import split_url

    assert split_url("postgresql://u:p@h:5/db?sslmode=require&schema=jobs_1&options=-csearch_path%3Dx") == (
        "postgresql://u:p@h:5/db?sslmode=require&options=-csearch_path%3Dx", "jobs_1")
    assert split_url("postgresql://h/db") == ("postgresql://h/db", "rjbatch")
    assert split_url("postgresql://h/db?schema=a_b") == ("postgresql://h/db", "a_b")


def create_old_layout(url):
    """The tables as rjbatch before the schema of its own made them: in public."""
    from rjbatch.store.postgres import SQL

    with admin(url) as connection, connection.transaction():
        connection.execute("CREATE TABLE IF NOT EXISTS rjbatch_schema ("
                           " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        connection.execute(SQL["schema_1"])
        connection.execute("INSERT INTO rjbatch_schema (version) VALUES (1)")


def test_tables_of_an_older_rjbatch_in_public_move_into_the_schema_keeping_everything(fresh_url, caplog):
    create_old_layout(fresh_url)
    with admin(fresh_url) as connection:  # the application's own table beside them
        connection.execute("CREATE TABLE accounts (id int)")
        connection.execute("INSERT INTO accounts VALUES (1)")
    old = connect(with_query(fresh_url, "schema=public"))  # what the older rjbatch saw
    queued, running = make_doc(statistics={"rows": 2}), make_doc(state="running", sub_state="processing")
    old.insert_job(queued)
    old.insert_job(running)
    old.insert_slices(running["_id"], "main", [make_slice(i) for i in (1, 2, 3)])
    old.claim_slices(running["_id"], "main", "w:1:1", NOW, 1)
    old.complete_slices(running["_id"], "main", [(1, {"main": make_slice(1, data=b"out 1")})])
    old.save_server({"name": "host:1", "state": "running", "max_workers": 2})
    old.save_dirmon_entry({"_id": str(make_doc()["_id"]), "name": "in", "pattern": "/in/*", "state": "enabled"})
    old.close()

    store, other = connect(fresh_url), connect(fresh_url)
    assert "moved rjbatch's tables" in caplog.text
    assert store.find_job(queued["_id"])["statistics"] == {"rows": 2}
    assert store.count_jobs({}) == 2
    assert [s["id"] for s in store.read_input_slices(running["_id"], "main")] == [2, 3]
    assert [s["data"] for s in store.read_output_slices(running["_id"], "main")] == [b"out 1"]
    assert store.find_server("host:1")["max_workers"] == 2
    assert [e["pattern"] for e in store.find_dirmon_entries()] == ["/in/*"]
    from rjbatch.store import postgres as postgres_module

    assert store.schema_version() == postgres_module.SCHEMA_VERSION  # moved, then migrated on
    # the functions and triggers came along
    assert store.increment_job(queued["_id"], {"statistics.rows": 1})
    assert store.find_job(queued["_id"])["statistics"] == {"rows": 3}
    before = store.data_version()
    other.insert_job(make_doc())
    assert store.data_version() != before
    assert store.claim_job("w:1:2", NOW)["_id"] == queued["_id"]
    with admin(fresh_url) as connection:
        assert tables_of(connection, "public") == ["accounts"] and functions_of(connection, "public") == []
        assert tables_of(connection, "rjbatch") == RJBATCH_TABLES
        assert connection.execute("SELECT id FROM public.accounts").fetchall() == [(1,)]
    store.close()
    other.close()
    third = connect(fresh_url)  # and the next process finds them in place
    assert third.count_jobs({}) == 3
    third.close()


def test_a_version_table_beside_an_applications_own_jobs_is_not_taken_for_rjbatchs(fresh_url):
    with admin(fresh_url) as connection:
        connection.execute("CREATE TABLE jobs (id serial PRIMARY KEY, title text)")
        connection.execute("INSERT INTO jobs (title) VALUES ('keep me')")
        connection.execute("CREATE TABLE rjbatch_schema (version integer)")
        for table in ("input_slices", "output_slices", "servers", "dirmon_entries"):
            connection.execute(f"CREATE TABLE {table} (id int)")
    with pytest.raises(StoreError, match="not the tables of an older rjbatch"):
        connect(fresh_url)
    with admin(fresh_url) as connection:
        assert connection.execute("SELECT title FROM public.jobs").fetchall() == [("keep me",)]
        assert "jobs" in tables_of(connection, "public") and tables_of(connection, "rjbatch") == []


def test_a_schema_holding_an_applications_jobs_table_is_not_taken_over(fresh_url):
    with admin(fresh_url) as connection:
        connection.execute("CREATE SCHEMA app")
        connection.execute("CREATE TABLE app.jobs (id int)")
    with pytest.raises(StoreError, match="already has tables rjbatch did not create \\(jobs\\)"):
        connect(with_query(fresh_url, "schema=app"))
    with admin(fresh_url) as connection:
        assert tables_of(connection, "app") == ["jobs"]


def test_a_user_without_create_on_the_database_uses_a_schema_made_for_it(fresh_url):
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    role = f"rjbatch_test_role_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(fresh_url)
    as_role = urlunsplit((parts.scheme, f"{role}@{parts.hostname}:{parts.port}", parts.path, "", ""))
    with admin(fresh_url) as connection:
        connection.execute(f"CREATE ROLE {role} LOGIN")
    try:
        with pytest.raises(StoreError,
                           match="cannot create schema 'rjbatch'.*CREATE SCHEMA rjbatch AUTHORIZATION"):
            connect(as_role)
        with admin(fresh_url) as connection:
            connection.execute(f"CREATE SCHEMA rjbatch AUTHORIZATION {role}")
        store = connect(as_role)
        store.insert_job(make_doc())
        assert store.count_jobs({}) == 1
        store.close()
    finally:
        with admin(fresh_url) as connection:
            connection.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role])
            connection.execute(f"DROP OWNED BY {role}")
            connection.execute(f"DROP ROLE {role}")


OPEN_OLD_LAYOUT = """
import sys
from rjbatch.store.postgres import PostgresStore
print(PostgresStore(sys.argv[1]).count_jobs({}))
"""


@pytest.mark.slow
def test_processes_opening_an_old_layout_together_move_it_once(fresh_url):
    create_old_layout(fresh_url)
    old = connect(with_query(fresh_url, "schema=public"))
    for _ in range(5):
        old.insert_job(make_doc())
    old.close()
    processes = [run_python(OPEN_OLD_LAYOUT, fresh_url) for _ in range(5)]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert out.strip() == "5"
    with admin(fresh_url) as connection:
        assert tables_of(connection, "rjbatch") == RJBATCH_TABLES and tables_of(connection, "public") == []


def test_a_nul_in_a_column_value_or_a_regex_is_refused_by_name(store):
    with pytest.raises(StoreError, match="NUL character"):
        store.find_jobs({"worker_name": "host\x00:1"})
    with pytest.raises(StoreError, match="NUL character"):
        store.count_jobs({"note": {"$regex": "a\x00"}})
    with pytest.raises(StoreError, match=repr("statistics.a\x00b")[1:-1].replace("\\", "\\\\")):
        store.increment_job(JOB, {"statistics.a\x00b": 1})


# -- connections ----------------------------------------------------------------------------
def test_each_thread_has_its_own_connection(store):
    pids = [store._session().backend_pid]
    thread = threading.Thread(target=lambda: pids.append(store._session().backend_pid))
    thread.start()
    thread.join()
    assert len(set(pids)) == 2


def test_a_forked_child_never_touches_its_parents_session(store):
    store.insert_job(make_doc())
    parent_backend = store._session().backend_pid
    inherited = store._session().connection
    pid = os.fork()
    if pid == 0:  # the child: use the store, then close and drop what it inherited
        code = 1
        try:
            if store._session().backend_pid != parent_backend:
                store.insert_job(make_doc())
                inherited.close()
                gc.collect()
                store.close()
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store._session().backend_pid == parent_backend  # the same session, still alive
    assert store.count_jobs({}) == 2


def test_a_lost_connection_is_replaced_on_the_next_call(store, url):
    import psycopg

    store.insert_job(make_doc())
    backend = store._session().backend_pid
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend])
    with pytest.raises(psycopg.OperationalError):
        store.count_jobs({})
    assert store.count_jobs({}) == 1
    assert store._session().backend_pid != backend


def test_times_come_back_as_aware_utc_datetimes(store):
    store.insert_job(make_doc(run_at=datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)))
    [doc] = store.find_jobs({})
    assert doc["run_at"] == datetime(2026, 3, 1, 9, 30, 0, 123000, tzinfo=UTC)  # milliseconds, as stored
    assert doc["created_at"].utcoffset().total_seconds() == 0


def test_a_nul_character_which_jsonb_cannot_hold_is_replaced(store):
    doc = make_doc(note="before\x00after", exception={"message": "bad byte \x00"})
    store.insert_job(doc)  # a job failing on binary input must still be able to say so
    found = store.find_job(doc["_id"])
    assert found["note"] == "before\ufffdafter" and found["exception"]["message"] == "bad byte \ufffd"
    assert store.update_job(doc["_id"], {"note": "\\u0000 is text here"})
    assert store.find_job(doc["_id"])["note"] == "\\u0000 is text here"
