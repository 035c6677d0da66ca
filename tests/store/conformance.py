"""The store conformance suite: every backend runs these same tests.

A backend's test module subclasses :class:`StoreConformance` and provides a ``store``
fixture giving an empty store, and ``other_store`` giving a second connection to it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)


def make_doc(**values):
    doc = {
        "_id": str(ObjectId()), "_type": "tests.jobs.PlainJob", "_classes": ["Job", "PlainJob"],
        "state": "queued", "sub_state": None, "priority": 50, "run_at": None,
        "created_at": NOW, "worker_name": None, "note": None,
    }
    doc.update(values)
    return doc


def as_datetime(value):
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


class StoreConformance:
    # -- documents ----------------------------------------------------------------------
    def test_inserted_job_is_found_with_its_fields(self, store):
        doc = make_doc(note="hello", nested={"a": [1, 2, {"b": True}]}, number=1.5)
        store.insert_job(doc)
        found = store.find_job(doc["_id"])
        assert found["note"] == "hello"
        assert found["nested"] == {"a": [1, 2, {"b": True}]}
        assert found["number"] == 1.5
        assert found["_type"] == "tests.jobs.PlainJob"
        assert found["_classes"] == ["Job", "PlainJob"]
        assert as_datetime(found["created_at"]) == NOW

    def test_missing_job_is_none(self, store):
        assert store.find_job(str(ObjectId())) is None

    def test_update_changes_only_the_given_fields(self, store):
        doc = make_doc(note="a", other="keep")
        store.insert_job(doc)
        assert store.update_job(doc["_id"], {"note": "b", "priority": 10})
        found = store.find_job(doc["_id"])
        assert (found["note"], found["other"], found["priority"]) == ("b", "keep", 10)

    def test_concurrent_updates_of_different_fields_both_survive(self, store, other_store):
        doc = make_doc(note="a", other="x")
        store.insert_job(doc)
        store.update_job(doc["_id"], {"note": "from one"})
        other_store.update_job(doc["_id"], {"other": "from two"})
        found = store.find_job(doc["_id"])
        assert (found["note"], found["other"]) == ("from one", "from two")

    def test_conditional_update_applies_only_while_the_condition_holds(self, store):
        doc = make_doc(state="running", sub_state="processing")
        store.insert_job(doc)
        where = {"state": "running", "sub_state": "processing"}
        assert store.update_job(doc["_id"], {"sub_state": "after"}, where)
        assert not store.update_job(doc["_id"], {"sub_state": "after"}, where)

    def test_update_of_a_missing_job_reports_false(self, store):
        assert not store.update_job(str(ObjectId()), {"note": "x"})

    def test_setting_a_field_to_none_clears_it(self, store):
        doc = make_doc(note="x", run_at=NOW)
        store.insert_job(doc)
        store.update_job(doc["_id"], {"note": None, "run_at": None})
        found = store.find_job(doc["_id"])
        assert found["note"] is None and found["run_at"] is None

    def test_delete_job_and_delete_jobs(self, store):
        docs = [make_doc(priority=p) for p in (10, 20, 30)]
        for doc in docs:
            store.insert_job(doc)
        assert store.delete_job(docs[0]["_id"])
        assert not store.delete_job(docs[0]["_id"])
        assert store.delete_jobs({"priority": {"$gte": 20}}) == 2
        assert store.count_jobs({}) == 0

    def test_update_jobs_changes_every_match(self, store):
        for state in ("failed", "failed", "queued"):
            store.insert_job(make_doc(state=state))
        assert store.update_jobs({"state": "failed"}, {"state": "queued"}) == 2
        assert store.count_jobs({"state": "queued"}) == 3

    # -- filters ------------------------------------------------------------------------
    @pytest.fixture
    def population(self, store):
        docs = [
            make_doc(priority=10, note="alpha", state="queued", tags={"region": "eu"}),
            make_doc(priority=20, note="beta", state="running", worker_name="h:1:1"),
            make_doc(priority=30, note=None, state="failed", run_at=NOW + timedelta(hours=1)),
            make_doc(priority=40, note="delta", state="queued", _type="tests.jobs.OtherJob",
                     _classes=["Job", "PlainJob", "OtherJob"]),
        ]
        for doc in docs:
            store.insert_job(doc)
        return docs

    @pytest.mark.parametrize("filter, expected", [
        ({}, [10, 20, 30, 40]),
        ({"state": "queued"}, [10, 40]),
        ({"state": {"$ne": "queued"}}, [20, 30]),
        ({"priority": {"$gt": 10, "$lte": 30}}, [20, 30]),
        ({"priority": {"$lt": 20}}, [10]),
        ({"priority": {"$gte": 40}}, [40]),
        ({"priority": {"$in": [10, 40, 99]}}, [10, 40]),
        ({"priority": {"$nin": [10, 40]}}, [20, 30]),
        ({"note": "beta"}, [20]),
        ({"note": None}, [30]),
        ({"note": {"$ne": None}}, [10, 20, 40]),
        ({"note": {"$in": ["alpha", None]}}, [10, 30]),
        ({"note": {"$nin": ["alpha"]}}, [20, 30, 40]),
        ({"note": {"$exists": False}}, [30]),
        ({"tags.region": "eu"}, [10]),
        ({"run_at": {"$gt": NOW}}, [30]),
        ({"run_at": None}, [10, 20, 40]),
        ({"_type": {"$regex": "Other"}}, [40]),
        ({"_type": {"$not": {"$regex": "Other"}}}, [10, 20, 30]),
        ({"_class": "OtherJob"}, [40]),
        ({"_class": "PlainJob"}, [10, 20, 30, 40]),
        ({"$or": [{"priority": 10}, {"state": "failed"}]}, [10, 30]),
        ({"$and": [{"state": "queued"}, {"priority": {"$gt": 10}}]}, [40]),
        ({"worker_name": {"$regex": "^h:1"}}, [20]),
    ])
    def test_filters_select_the_expected_jobs(self, store, population, filter, expected):
        found = store.find_jobs(filter, [("priority", 1)])
        assert [doc["priority"] for doc in found] == expected
        assert store.count_jobs(filter) == len(expected)

    def test_order_limit_and_skip(self, store, population):
        found = store.find_jobs({}, [("priority", -1)], limit=2, skip=1)
        assert [doc["priority"] for doc in found] == [30, 20]

    def test_default_order_is_creation_order(self, store, population):
        assert [d["_id"] for d in store.find_jobs({})] == [d["_id"] for d in population]

    def test_iter_jobs_streams_every_match(self, store):
        for priority in range(1, 101):
            store.insert_job(make_doc(priority=priority))
        seen = [doc["priority"] for doc in store.iter_jobs({}, [("priority", 1)], batch_size=7)]
        assert seen == list(range(1, 101))

    def test_count_jobs_by_state(self, store, population):
        assert store.count_jobs_by("state", {}) == {"queued": 2, "running": 1, "failed": 1}

    # -- the claim ----------------------------------------------------------------------
    def test_claim_on_an_empty_queue_is_none(self, store):
        assert store.claim_job("w:1:1", NOW) is None

    def test_claim_sets_running_and_the_worker_in_the_store(self, store):
        doc = make_doc()
        store.insert_job(doc)
        claimed = store.claim_job("w:1:1", NOW)
        assert claimed["_id"] == doc["_id"]
        assert claimed["_claimed_from"] == "queued"
        stored = store.find_job(doc["_id"])
        assert stored["state"] == "running" and stored["worker_name"] == "w:1:1"
        assert store.claim_job("w:1:2", NOW) is None  # a running regular job is not taken

    def test_claim_skips_jobs_scheduled_in_the_future_and_takes_due_ones(self, store):
        later = make_doc(run_at=NOW + timedelta(hours=1))
        due = make_doc(run_at=NOW)
        past = make_doc(run_at=NOW - timedelta(hours=1))
        for doc in (later, due, past):
            store.insert_job(doc)
        claimed = {store.claim_job("w", NOW)["_id"], store.claim_job("w", NOW)["_id"]}
        assert claimed == {due["_id"], past["_id"]}
        assert store.claim_job("w", NOW) is None

    def test_claim_follows_priority_then_creation_order(self, store):
        fifty = make_doc(priority=50)
        thirty = make_doc(priority=30)
        fifty_later = make_doc(priority=50)
        for doc in (fifty, thirty, fifty_later):
            store.insert_job(doc)
        store.update_job(thirty["_id"], {"priority": 90})
        order = [store.claim_job("w", NOW)["_id"] for _ in range(3)]
        assert order == [fifty["_id"], fifty_later["_id"], thirty["_id"]]

    def test_claim_joins_batch_jobs_only_while_processing(self, store):
        before = make_doc(state="running", sub_state="before")
        after = make_doc(state="running", sub_state="after")
        processing = make_doc(state="running", sub_state="processing", priority=60)
        for doc in (before, after, processing):
            store.insert_job(doc)
        claimed = store.claim_job("w:1:2", NOW)
        assert claimed["_id"] == processing["_id"]
        assert claimed["_claimed_from"] == "running"
        again = store.claim_job("w:1:3", NOW)  # a processing batch job can be joined again
        assert again["_id"] == processing["_id"]

    def test_claim_prefers_a_higher_priority_queued_job_over_a_processing_batch(self, store):
        store.insert_job(make_doc(state="running", sub_state="processing", priority=50))
        urgent = make_doc(priority=10)
        store.insert_job(urgent)
        assert store.claim_job("w", NOW)["_id"] == urgent["_id"]

    def test_claim_honours_the_worker_filter(self, store):
        skipped = make_doc(priority=1)
        other = make_doc(priority=2, _type="tests.jobs.OtherJob")
        third = make_doc(priority=3)
        for doc in (skipped, other, third):
            store.insert_job(doc)
        claimed = store.claim_job("w", NOW, {"_id": {"$nin": [skipped["_id"]]},
                                             "_type": {"$not": {"$regex": "Other"}}})
        assert claimed["_id"] == third["_id"]

    def test_concurrent_claims_never_take_the_same_job_twice(self, store, other_store):
        for _ in range(200):
            store.insert_job(make_doc())
        taken: list[str] = []
        lock = threading.Lock()

        def claimer(which, name):
            while True:
                doc = which.claim_job(name, NOW)
                if doc is None:
                    return
                with lock:
                    taken.append(doc["_id"])

        threads = [threading.Thread(target=claimer, args=(s, f"w:{i}"))
                   for i, s in enumerate([store, other_store, store, other_store])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(taken) == 200
        assert len(set(taken)) == 200

    def test_data_version_moves_when_another_connection_commits(self, store, other_store):
        before = store.data_version()
        other_store.insert_job(make_doc())
        assert store.data_version() != before
