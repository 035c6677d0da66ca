"""The SQLite store: the conformance suite, and what only a file database has to show."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from rjbatch.errors import StoreError
from rjbatch.store import open_store
from rjbatch.store.sqlite import SQLiteStore, path_from_url
from tests.store.conformance import StoreConformance, make_doc


class TestSQLiteConformance(StoreConformance):
    @pytest.fixture
    def url(self, tmp_path):
        return f"sqlite:///{tmp_path}/conformance.db"

    @pytest.fixture
    def store(self, url):
        store = SQLiteStore(url)
        yield store
        store.close()

    @pytest.fixture
    def other_store(self, url):
        store = SQLiteStore(url)
        yield store
        store.close()


def test_urls_name_relative_absolute_and_memory_databases():
    assert path_from_url("sqlite:///rjbatch.db") == "rjbatch.db"
    assert path_from_url("sqlite:////var/lib/rjbatch.db") == "/var/lib/rjbatch.db"
    assert path_from_url("sqlite:///:memory:") == ":memory:"


def test_memory_database_works_in_one_process():
    store = open_store("sqlite:///:memory:")
    store.insert_job(make_doc(note="x"))
    assert store.count_jobs({"note": "x"}) == 1


def test_file_uses_wal_and_records_its_schema_version(tmp_path):
    path = tmp_path / "wal.db"
    SQLiteStore(f"sqlite:///{path}").count_jobs({})
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA user_version").fetchone()[0] >= 1
    indexes = {row[1] for row in connection.execute("PRAGMA index_list(jobs)")}
    assert "jobs_claim" in indexes


def test_claim_uses_the_claim_index_not_a_sort_of_the_queue(tmp_path):
    store = SQLiteStore(f"sqlite:///{tmp_path}/plan.db")
    from rjbatch.store.sqlite import SQL

    sql = SQL["claim_job"].format(filter="1=1").replace("UPDATE", "-- UPDATE", 1)
    select = sql[sql.index("SELECT id FROM (") : sql.rindex(")")]
    plan = " ".join(row[3] for row in store._execute("EXPLAIN QUERY PLAN " + select, ["t", "t"]))
    assert "jobs_claim" in plan
    assert "SCAN jobs" not in plan


def test_a_newer_schema_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "future.db"
    SQLiteStore(f"sqlite:///{path}")
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version = 999")
    connection.close()
    with pytest.raises(StoreError, match="schema version 999"):
        SQLiteStore(f"sqlite:///{path}")


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        SQLiteStore(f"sqlite:///{tmp_path}/nowhere/rjbatch.db")


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("just some text, not sqlite" * 100)
    with pytest.raises(StoreError, match="notes.txt"):
        SQLiteStore(f"sqlite:///{path}")


def test_a_folder_given_as_the_database_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="is a folder"):
        SQLiteStore(f"sqlite:///{tmp_path}")


def test_a_database_that_cannot_be_created_is_a_clear_error():
    # /proc refuses new files even to root, so this holds wherever the tests run
    with pytest.raises(StoreError, match="cannot use database /proc/rjbatch.db.*writable"):
        SQLiteStore("sqlite:////proc/rjbatch.db")


def test_unknown_scheme_is_refused():
    with pytest.raises(StoreError, match="unknown database URL scheme"):
        open_store("oracle://db")


@pytest.mark.slow
def test_claims_from_many_processes_never_overlap(tmp_path):
    url = f"sqlite:///{tmp_path}/procs.db"
    store = SQLiteStore(url)
    for _ in range(600):
        store.insert_job(make_doc())
    script = (
        "import sys, datetime\n"
        "from rjbatch.store.sqlite import SQLiteStore\n"
        "s = SQLiteStore(sys.argv[1])\n"
        "now = datetime.datetime.now(datetime.UTC)\n"
        "while (d := s.claim_job(sys.argv[2], now)) is not None:\n"
        "    print(d['_id'])\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, url, f"p{i}"], stdout=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    ids = []
    for process in processes:
        out, _ = process.communicate(timeout=120)
        ids += out.split()
    assert len(ids) == 600 and len(set(ids)) == 600


def test_an_unknown_synchronous_mode_is_refused_before_it_reaches_a_pragma(tmp_path):
    with pytest.raises(StoreError, match="unknown SQLite synchronous mode 'NORMAL; DROP TABLE jobs'"):
        SQLiteStore(f"sqlite:///{tmp_path}/sync.db", synchronous="NORMAL; DROP TABLE jobs")
    assert SQLiteStore(f"sqlite:///{tmp_path}/sync.db", synchronous="full").synchronous == "FULL"


def test_keys_a_json_path_cannot_name_go_through_python_and_the_document_stays_plain_json(tmp_path):
    import json

    from rjbatch.store.sqlite import _doc_path

    # quotes, backslashes and control characters: SQLite 3.40 matches them escaped but
    # creates them unescaped; everything else is SQLite's own json_extract / json_set
    assert _doc_path("statistics.O'Brien $%_;--é")[0] == "json_extract(doc, ?)"
    for awkward in ('say "hi"', "back\\slash", "new\nline", "nul\x00"):
        assert _doc_path(f"statistics.{awkward}")[0] == "rjbatch_extract(doc, ?)"
    store = SQLiteStore(f"sqlite:///{tmp_path}/keys.db")
    doc = make_doc(statistics={"say \"hi\"": 1})  # as an older rjbatch wrote it, too
    store.insert_job(doc)
    store.increment_job(doc["_id"], {'statistics.say "hi"': 1, "statistics.back\\slash": 2})
    store.increment_job(doc["_id"], {"statistics.plain": 1})
    raw = store._execute("SELECT doc FROM jobs").fetchone()[0]
    assert json.loads(raw)["statistics"] == {'say "hi"': 2, "back\\slash": 2, "plain": 1}
    assert store.count_jobs({'statistics.say "hi"': 2}) == 1
