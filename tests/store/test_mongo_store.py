"""The MongoDB store: the conformance suite, and what only Rocket Job's layout has to show.

With ``RJBATCH_TEST_MONGODB_URL`` set (``mongodb://127.0.0.1:27017``), every test gets a
fresh database on that server, dropped afterwards. Without it the tests run on
mongomock, an in-process imitation of a server; the few that need what mongomock lacks
(change streams) say so in their skip reason.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import pymongo
import pytest
from bson import ObjectId
from bson.regex import Regex

from rjbatch.errors import StoreError
from rjbatch.store import open_store
from rjbatch.store.mongo import MongoStore, translate
from tests.store.conformance import NOW, StoreConformance, make_doc

REAL_SERVER = os.environ.get("RJBATCH_TEST_MONGODB_URL")
if not REAL_SERVER:
    mongomock = pytest.importorskip("mongomock")

needs_a_real_server = pytest.mark.skipif(
    not REAL_SERVER, reason="mongomock has no change streams (Collection.watch is not implemented); "
                            "set RJBATCH_TEST_MONGODB_URL to run it on a server")


def database_url(base: str, name: str) -> str:
    """``base`` (a server URL, with or without a database) pointing at database ``name``."""
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture
def url():
    name = f"rjbatch_test_{uuid.uuid4().hex[:12]}"
    if not REAL_SERVER:
        yield f"mongodb://localhost:27017/{name}"
        return
    yield database_url(REAL_SERVER, name)
    client = pymongo.MongoClient(REAL_SERVER)
    client.drop_database(name)
    client.close()


@pytest.fixture
def server():
    """mongomock's data for one test, shared by every client made from it (None: real server)."""
    return None if REAL_SERVER else mongomock.MongoClient(tz_aware=True)._store


def connect(url, server, **options) -> MongoStore:
    if server is None:
        return MongoStore(url, **options)
    return MongoStore(url, client=mongomock.MongoClient(url, tz_aware=True, _store=server), **options)


class TestMongoConformance(StoreConformance):
    NUL_IN_KEYS = False  # BSON keys are C strings

    @pytest.fixture
    def store(self, url, server):
        store = connect(url, server)
        yield store
        store.close()

    @pytest.fixture
    def other_store(self, url, server):
        store = connect(url, server)
        yield store
        store.close()


@pytest.fixture
def store(url, server):
    store = connect(url, server)
    yield store
    store.close()


def index_keys(collection):
    return [[tuple(part) for part in index["key"]] for index in collection.index_information().values()]


def piece(slice_id, records=2, **extra):
    return {"id": slice_id, "first_record_number": (slice_id - 1) * records + 1,
            "record_count": records, "serializer": "bson", "data": b"\x00" * slice_id, **extra}


# -- Rocket Job's layout ----------------------------------------------------------------
def test_jobs_live_in_one_collection_with_object_ids_types_and_the_claim_index(store):
    doc = make_doc(run_at=NOW)
    store.insert_job(doc)
    raw = store.db["jobs"].find_one()
    assert raw["_id"] == ObjectId(doc["_id"])
    assert raw["_type"] == "tests.jobs.PlainJob" and raw["_classes"] == ["Job", "PlainJob"]
    assert isinstance(raw["created_at"], datetime) and raw["run_at"] == NOW
    assert [("state", 1), ("priority", 1), ("_id", 1)] in index_keys(store.db["jobs"])
    assert store.find_job(doc["_id"])["_id"] == doc["_id"]  # a string again on the way out


def test_slices_live_in_per_job_and_category_collections(store):
    job_id = str(ObjectId())
    store.insert_slices(job_id, "main", [piece(1), piece(2)])
    store.insert_slices(job_id, "lookup", [piece(1)])
    names = set(store.db.list_collection_names())
    assert {f"inputs.{job_id}", f"inputs.{job_id}.lookup"} <= names
    assert [("state", 1), ("_id", 1)] in index_keys(store.db[f"inputs.{job_id}"])
    [claimed] = store.claim_slices(job_id, "main", "w:1:1", NOW, 1)
    store.complete_slices(job_id, "main", [(claimed["id"], {"main": piece(1), "errors": piece(1)})])
    assert {f"outputs.{job_id}", f"outputs.{job_id}.errors"} <= set(store.db.list_collection_names())
    assert store.db[f"outputs.{job_id}"].find_one()["_id"] == 1  # the input slice's id


def test_replaying_a_slice_replaces_its_output(store):
    job_id = str(ObjectId())
    store.insert_slices(job_id, "main", [piece(1)])
    store.complete_slices(job_id, "main", [(1, {"main": piece(1, data=b"first")})])
    store.complete_slices(job_id, "main", [(1, {"main": piece(1, data=b"second")})])
    [out] = store.read_output_slices(job_id, "main")
    assert out["data"] == b"second"
    assert store.count_output_slices(job_id, "main") == (1, 2)


def test_deleting_all_slices_drops_the_collections(store):
    job_id = str(ObjectId())
    store.insert_slices(job_id, "main", [piece(1), piece(2)])
    store.complete_slices(job_id, "main", [(1, {"main": piece(1)})])
    assert store.delete_slices(job_id) == 2
    assert not [n for n in store.db.list_collection_names() if job_id in n
                and store.db[n].estimated_document_count()]


def test_servers_and_dirmon_entries_have_their_unique_indexes(store):
    store.save_dirmon_entry({"_id": str(ObjectId()), "name": "a", "pattern": "/in/*.csv",
                             "state": "enabled"})
    with pytest.raises(StoreError, match="already watches"):
        store.save_dirmon_entry({"_id": str(ObjectId()), "name": "b", "pattern": "/in/*.csv",
                                 "state": "enabled"})
    unique = [index.get("unique") for index in store.db["servers"].index_information().values()
              if [tuple(part) for part in index["key"]] == [("name", 1)]]
    assert unique == [True]


def test_claim_sets_started_at_only_for_a_queued_job(store):
    queued = make_doc()
    processing = make_doc(state="running", sub_state="processing", priority=60,
                          started_at=NOW - timedelta(hours=1))
    store.insert_job(queued)
    store.insert_job(processing)
    first = store.claim_job("w:1:1", NOW)
    assert first["_id"] == queued["_id"] and first["started_at"] == NOW
    assert store.find_job(queued["_id"])["started_at"] == NOW
    second = store.claim_job("w:1:2", NOW)
    assert second["_id"] == processing["_id"]
    assert store.find_job(processing["_id"])["started_at"] == NOW - timedelta(hours=1)


def test_claim_deletes_the_finished_jobs_first(store):
    done = make_doc(state="running", worker_name="w:1:1")
    store.insert_job(done)
    assert store.claim_job("w:1:1", NOW, finished=[done["_id"]]) is None
    assert store.find_job(done["_id"]) is None


def test_increment_creates_and_adds_even_through_a_null_parent(store):
    doc = make_doc(statistics=None)
    store.insert_job(doc)
    assert store.increment_job(doc["_id"], {"statistics.rows": 5, "statistics.bad": 1})
    assert store.increment_job(doc["_id"], {"statistics.rows": 2})
    assert store.find_job(doc["_id"])["statistics"] == {"rows": 7, "bad": 1}
    assert not store.increment_job(str(ObjectId()), {"statistics.rows": 1})


def test_running_slices_of_a_dead_server_are_requeued_across_jobs_by_exact_prefix(store):
    one, two = str(ObjectId()), str(ObjectId())
    store.insert_slices(one, "main", [piece(1), piece(2)])
    store.insert_slices(two, "main", [piece(1)])
    store.claim_slices(one, "main", "host:12:1", NOW, 1)
    store.claim_slices(one, "main", "host:123:1", NOW, 1)
    store.claim_slices(two, "main", "host:12:2", NOW, 1)
    assert store.requeue_running_slices("host:12") == 2
    assert store.count_slices(one, "main") == {"queued": (1, 2), "running": (1, 2)}


def woken_by_a_write(waiting, writing) -> list[bool]:
    """What ``wait_for_change`` answered when another connection wrote during the wait."""
    waiting.change_poll_seconds = 0.005
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(waiting.wait_for_change(10)))
    thread.start()
    time.sleep(0.05)
    writing.insert_job(make_doc())
    thread.join(10)
    return results


def test_wait_for_change_polls_the_change_counter(url, server):
    waiting, writing = connect(url, server, wakeups="poll"), connect(url, server)
    assert woken_by_a_write(waiting, writing) == [True]
    assert waiting.wait_for_change(0.05) is False
    assert waiting.wait_for_change(5, stop=lambda: True) is False


def test_claims_and_completions_do_not_wake_idle_workers(store):
    job_id = str(ObjectId())
    store.insert_slices(job_id, "main", [piece(1)])
    before = store.data_version()
    [claimed] = store.claim_slices(job_id, "main", "w:1:1", NOW, 1)
    store.complete_slices(job_id, "main", [(claimed["id"], {"main": piece(1)})])
    assert store.data_version() == before


@needs_a_real_server
def test_wait_for_change_uses_a_change_stream_on_a_replica_set(url):
    waiting, writing = MongoStore(url, wakeups="changestream"), MongoStore(url)
    try:
        hello = waiting.db.client.admin.command("hello")
        if not hello.get("setName") and hello.get("msg") != "isdbgrid":
            pytest.skip("the server is a standalone: change streams need a replica set")
        assert waiting.wait_for_change(0.1) is False  # opens the stream
        results = []
        thread = threading.Thread(target=lambda: results.append(waiting.wait_for_change(10)))
        thread.start()
        time.sleep(0.1)
        writing.insert_job(make_doc())
        thread.join(15)
        assert results == [True]
    finally:
        waiting.close()
        writing.close()


# -- URLs and opening ---------------------------------------------------------------------
def test_open_store_dispatches_mongodb_urls(url, monkeypatch):
    if not REAL_SERVER:
        patcher = mongomock.patch(servers=(("localhost", 27017),))
        patcher.start()
        try:
            store = open_store(url)
            assert isinstance(store, MongoStore)
            assert store.db.name == url.rsplit("/", 1)[1]
            store.insert_job(make_doc())
            assert open_store(url).count_jobs({}) == 1  # another client, the same server
        finally:
            patcher.stop()
    else:
        store = open_store(url)
        assert isinstance(store, MongoStore)
        store.close()


def test_a_url_without_a_database_uses_rjbatch():
    if REAL_SERVER:
        pytest.skip("would write into the server's rjbatch database")
    with mongomock.patch(servers=(("localhost", 27017),)):
        assert MongoStore("mongodb://localhost:27017").db.name == "rjbatch"


def test_test_database_urls_keep_the_server_and_options():
    assert database_url("mongodb://a:1,b:2/?replicaSet=rs", "x") == "mongodb://a:1,b:2/x?replicaSet=rs"
    assert database_url("mongodb://u:p@h/old", "x") == "mongodb://u:p@h/x"


# -- filters ----------------------------------------------------------------------------
@pytest.mark.parametrize("filter, query", [
    ({}, {}),
    ({"state": "queued", "priority": {"$lte": 25}}, {"state": "queued", "priority": {"$lte": 25}}),
    ({"_class": "ReportJob"}, {"_classes": "ReportJob"}),
    ({"_type": {"$regex": "(?i)report"}}, {"_type": {"$regex": "report", "$options": "i"}}),
    ({"_type": {"$not": {"$regex": "(?i)other"}}}, {"_type": {"$not": Regex("other", "i")}}),
    ({"_type": {"$not": re.compile("x", re.I)}}, {"_type": {"$not": Regex("x", "i")}}),
    ({"note": {"$exists": False}}, {"note": {"$eq": None}}),
    ({"note": {"$exists": True}}, {"note": {"$ne": None}}),
    ({"$or": []}, {"_id": {"$in": []}}),
    ({"$and": []}, {}),
    ({"state": {"$ne": "x", "$exists": True}},
     {"$and": [{"state": {"$ne": "x"}}, {"state": {"$ne": None}}]}),
    ({"state": "a", "$and": [{"state": "b"}]}, {"$and": [{"state": "a"}, {"state": "b"}]}),
    ({"run_at": {"$lte": datetime(2026, 1, 1, 13, tzinfo=UTC)}},
     {"run_at": {"$lte": datetime(2026, 1, 1, 13, tzinfo=UTC)}}),
    ({"report_date": datetime(2026, 1, 2).date()}, {"report_date": "2026-01-02"}),
])
def test_filters_translate_to_mongo_queries(filter, query):
    assert translate(filter) == query


def test_ids_become_object_ids_in_every_operator():
    a, b = str(ObjectId()), str(ObjectId())
    assert translate({"_id": a}) == {"_id": ObjectId(a)}
    assert translate({"_id": {"$nin": [a, b]}}) == {"_id": {"$nin": [ObjectId(a), ObjectId(b)]}}
    assert translate({"_id": "a name, not an id"}) == {"_id": "a name, not an id"}


def test_an_unknown_operator_is_refused():
    with pytest.raises(ValueError, match=r"\$where"):
        translate({"$where": "1"})
    with pytest.raises(ValueError, match=r"\$size"):
        translate({"tags": {"$size": 2}})


# -- keys: "$" and NUL ---------------------------------------------------------------------
ESC = "\uff04"  # the key escape: FULLWIDTH DOLLAR SIGN


def test_keys_starting_with_dollar_are_stored_escaped_and_given_back_as_they_were(store):
    doc = make_doc(statistics={}, payload={"$where": "1", "$gt": {"$ne": 1}, ESC + "x": 2, "a$": 3})
    store.insert_job(doc)
    store.increment_job(doc["_id"], {"statistics.$inc.$": 1, "statistics.by.$set": 2})
    store.update_job(doc["_id"], {"$top": {"$unset": ""}})
    raw = store.db["jobs"].find_one({"_id": ObjectId(doc["_id"])})
    assert raw["payload"] == {ESC + "$where": "1", ESC + "$gt": {ESC + "$ne": 1}, ESC + ESC + "x": 2, "a$": 3}
    assert raw["statistics"] == {ESC + "$inc": {ESC + "$": 1}, "by": {ESC + "$set": 2}}
    assert raw[ESC + "$top"] == {ESC + "$unset": ""}
    found = store.find_job(doc["_id"])
    assert found["payload"] == doc["payload"] and found["$top"] == {"$unset": ""}
    assert found["statistics"] == {"$inc": {"$": 1}, "by": {"$set": 2}}
    assert store.count_jobs({"payload.$gt.$ne": 1}) == 1
    assert store.count_jobs_by("statistics.by.$set", {}) == {2: 1}


@pytest.mark.parametrize("filter, query", [
    ({"statistics.$where": 1}, {f"statistics.{ESC}$where": 1}),
    ({"a.$.b": {"$gt": 1}}, {f"a.{ESC}$.b": {"$gt": 1}}),
    ({f"{ESC}x.y": 1}, {f"{ESC}{ESC}x.y": 1}),
    ({"payload": {"$eq": {"$where": "1"}}}, {"payload": {"$eq": {f"{ESC}$where": "1"}}}),
    ({"payload": {"k": 1, "$or": 2}}, {"payload": {"k": 1, f"{ESC}$or": 2}}),
    ({"mid$dle.x$": 1}, {"mid$dle.x$": 1}),
])
def test_keys_starting_with_dollar_never_become_operators_in_queries(filter, query):
    assert translate(filter) == query


def test_a_nul_in_a_key_is_refused_naming_it(store):
    with pytest.raises(StoreError, match=re.escape(repr("a\x00b"))):
        store.insert_job(make_doc(payload={"a\x00b": 1}))
    with pytest.raises(StoreError, match="NUL"):
        translate({"payload.a\x00b": 1})
    assert store.count_jobs({}) == 0


@pytest.mark.parametrize("category", ["$main", "a\x00b", ""])
def test_a_slice_category_mongodb_cannot_name_a_collection_after_is_refused(store, category):
    with pytest.raises(StoreError, match="invalid slice category"):
        store.insert_slices(str(ObjectId()), category, [piece(1)])


def test_an_unreachable_server_is_a_clear_error_without_the_password():
    # real pymongo, no server on port 1: fails within the short selection timeout
    with pytest.raises(StoreError, match=r"cannot use MongoDB at mongodb://rj:\*\*\*@127\.0\.0\.1:1/x"):
        MongoStore("mongodb://rj:secret@127.0.0.1:1/x", server_selection_timeout=0.2)


class FakeChangeStream:
    """Stands in for pymongo's ChangeStream: ``try_next`` returns the queued events."""

    def __init__(self, events=()):
        self.events = list(events)
        self.calls = 0

    def try_next(self):
        self.calls += 1
        if self.events:
            return self.events.pop(0)
        time.sleep(0.01)  # a server waits up to max_await_time_ms
        return None


def test_the_change_stream_wait_wakes_on_an_event_and_honours_timeout_and_stop(store, monkeypatch):
    # the logic around the stream; the stream itself needs a replica set (see below)
    stream = FakeChangeStream([{"operationType": "update"}])
    monkeypatch.setattr(store, "_use_change_stream", lambda: True)
    monkeypatch.setattr(store, "_stream", lambda: stream)
    assert store.wait_for_change(5) is True
    started = time.monotonic()
    assert store.wait_for_change(0.1) is False
    assert 0.1 <= time.monotonic() - started < 2
    assert store.wait_for_change(30, stop=lambda: True) is False


def test_without_change_streams_the_store_falls_back_to_polling(url, server, caplog):
    if REAL_SERVER:
        pytest.skip("a real server may well have change streams")
    waiting, writing = connect(url, server, wakeups="changestream"), connect(url, server)
    assert woken_by_a_write(waiting, writing) == [True]
    assert "polling for changes instead" in caplog.text


def test_a_client_without_tz_aware_still_gives_aware_utc_datetimes(url):
    """A client made by the caller may read BSON dates naive; the store makes them UTC."""
    client = mongomock.MongoClient(url) if not REAL_SERVER else pymongo.MongoClient(url)
    store = MongoStore(url, client=client)
    doc = make_doc(run_at=NOW, stamps=[NOW])
    store.insert_job(doc)
    store.insert_job(make_doc(run_at=NOW + timedelta(hours=1)))
    store.insert_slices(doc["_id"], "main", [{"id": 1, "first_record_number": 1, "record_count": 1,
                                              "serializer": "bson", "data": b"x"}])
    store.claim_slices(doc["_id"], "main", "w", NOW, 1)
    found = store.find_job(doc["_id"])
    [piece] = store.read_input_slices(doc["_id"], "main")
    for value in (found["run_at"], found["created_at"], found["stamps"][0], piece["started_at"]):
        assert value == NOW and value.utcoffset() is not None and not value.utcoffset()
    due = store.next_run_at(NOW)
    assert due == NOW + timedelta(hours=1) and due.utcoffset() is not None
