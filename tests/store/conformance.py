"""The store conformance suite: every backend runs these same tests.

A backend's test module subclasses :class:`StoreConformance` and provides a ``store``
fixture giving an empty store, and ``other_store`` giving a second connection to it.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from rjbatch.errors import StoreError

NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)


def make_doc(**values):
    doc = {
        "_id": str(ObjectId()), "_type": "tests.jobs.PlainJob", "_classes": ["Job", "PlainJob"],
        "state": "queued", "sub_state": None, "priority": 50, "run_at": None,
        "created_at": NOW, "worker_name": None, "note": None,
    }
    doc.update(values)
    return doc


def make_slice(slice_id, record_count=10, **values):
    """A slice as the batch layer writes it: ``record_count`` records from upload order."""
    return {"id": slice_id, "first_record_number": (slice_id - 1) * record_count + 1,
            "record_count": record_count, "serializer": "bson",
            "data": f"slice {slice_id}".encode(), **values}


# Keys and values that have broken SQL built as text, or that mean something to a JSON
# path, a text[] literal, a LIKE pattern, MongoDB or this suite's own escapes. No dots:
# a dot in a path means nesting (tested on its own). NUL is tested on its own too.
ODD = [
    "O'Brien", "''", 'say "hi"', '"', "$dollar", "$", "$[]", "mid$dle", "back\\slash",
    "trailing\\", "\\u0000", "\\", "100%", "%", "under_score", "_", "semi;colon",
    "-- comment", "'; DROP TABLE jobs; --", "é", "漢字", "😀 emoji", "new\nline", "tab\tx",
    "{a,b}", "a,b", "[0]", "*", "?", "＄fullwidth", " spaced ",
]


def as_datetime(value):
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


class StoreConformance:
    # What the backend does with the NUL character, which some cannot store: in a key,
    # True (kept) or False (refused, a StoreError naming the key); in a text value,
    # "exact" or "replaced" (by U+FFFD, documented: a failure message must be storable).
    NUL_IN_KEYS = True
    NUL_IN_VALUES = "exact"

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
            make_doc(priority=10, note="alpha", state="queued", tags={"region": "eu"}, count=3),
            make_doc(priority=20, note="beta", state="running", worker_name="h:1:1",
                     due=NOW - timedelta(minutes=1)),
            make_doc(priority=30, note=None, state="failed", run_at=NOW + timedelta(hours=1)),
            make_doc(priority=40, note="delta", state="queued", _type="tests.jobs.OtherJob",
                     _classes=["Job", "PlainJob", "OtherJob"], due=NOW, count=12),
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
        ({"_type": {"$regex": "(?i)otherjob"}}, [40]),
        ({"note": {"$nin": ["alpha", None]}}, [20, 40]),
        ({"note": {"$ne": "alpha"}}, [20, 30, 40]),
        ({"worker_name": {"$in": [None]}}, [10, 30, 40]),
        ({"priority": {"$in": []}}, []),
        ({"priority": {"$nin": []}}, [10, 20, 30, 40]),
        ({"tags.region": {"$exists": True}}, [10]),
        ({"tags.region": {"$in": ["eu", "us"]}}, [10]),
        ({"due": {"$lt": NOW}}, [20]),
        ({"due": {"$gte": NOW}}, [40]),
        ({"count": {"$gt": 5}}, [40]),
        ({"count": 3}, [10]),
    ])
    def test_filters_select_the_expected_jobs(self, store, population, filter, expected):
        found = store.find_jobs(filter, [("priority", 1)])
        assert [doc["priority"] for doc in found] == expected
        assert store.count_jobs(filter) == len(expected)

    def test_order_limit_and_skip(self, store, population):
        found = store.find_jobs({}, [("priority", -1)], limit=2, skip=1)
        assert [doc["priority"] for doc in found] == [30, 20]

    def test_missing_values_sort_first_ascending_and_last_descending(self, store, population):
        assert [d["priority"] for d in store.find_jobs({}, [("note", 1)])] == [30, 10, 20, 40]
        assert [d["priority"] for d in store.find_jobs({}, [("note", -1)])] == [40, 20, 10, 30]
        assert [d["priority"] for d in store.find_jobs({}, [("run_at", -1), ("priority", 1)])] == [
            30, 10, 20, 40]

    def test_default_order_is_creation_order(self, store, population):
        assert [d["_id"] for d in store.find_jobs({})] == [d["_id"] for d in population]

    def test_iter_jobs_streams_every_match(self, store):
        for priority in range(1, 101):
            store.insert_job(make_doc(priority=priority))
        seen = [doc["priority"] for doc in store.iter_jobs({}, [("priority", 1)], batch_size=7)]
        assert seen == list(range(1, 101))

    def test_count_jobs_by_state(self, store, population):
        assert store.count_jobs_by("state", {}) == {"queued": 2, "running": 1, "failed": 1}

    # -- odd keys and values --------------------------------------------------------------
    @pytest.fixture
    def canary(self, store):
        """A job no write of these tests aims at; it must come out of each as it went in."""
        doc = make_doc(priority=1, note="canary", statistics={"rows": 7, "by_name": {"x": 1}},
                       payload={"x": "y"}, rank={"x": 0})
        store.insert_job(doc)
        before = store.find_job(doc["_id"])
        yield doc
        assert store.find_job(doc["_id"]) == before

    def test_odd_statistics_keys_round_trip_through_increments(self, store, canary):
        job = make_doc(statistics={})
        store.insert_job(job)
        increments = {f"statistics.by_name.{key}": number for number, key in enumerate(ODD, 1)}
        assert store.increment_job(job["_id"], increments)
        assert store.increment_job(job["_id"], increments)  # found again, not added beside
        assert store.increment_job(job["_id"], {"statistics.rows": 1, "statistics.by_name.O'Brien": 1})
        expected = {key: 2 * number for number, key in enumerate(ODD, 1)}
        expected["O'Brien"] += 1
        assert store.find_job(job["_id"])["statistics"] == {"by_name": expected, "rows": 1}
        for key in ODD:  # one key at a time too, as a worker with one odd name sends it
            assert store.increment_job(job["_id"], {f"statistics.single.{key}": 1.5})
        assert store.find_job(job["_id"])["statistics"]["single"] == {key: 1.5 for key in ODD}

    def test_a_dot_in_a_statistics_key_means_nesting(self, store, canary):
        job = make_doc(statistics={})
        store.insert_job(job)
        assert store.increment_job(job["_id"], {"statistics.by_name.Mr. O'Brien": 2,
                                                "statistics.by_name.Mr.$x": 1})
        assert store.find_job(job["_id"])["statistics"] == {
            "by_name": {"Mr": {" O'Brien": 2, "$x": 1}}}

    def test_odd_keys_and_values_of_dict_fields_round_trip_and_are_found(self, store, canary):
        payload = {key: key for key in ODD}
        payload["dot.ted"] = "a dot in a stored key is just a character"
        payload["nested"] = {key: {key: key, "list": [key, 1.5, None, True]} for key in ODD}
        job = make_doc(payload={"first": 1}, note=None)
        other = make_doc(payload={key: key + "!" for key in ODD}, note="'; DROP TABLE jobs; --")
        store.insert_job(job)
        store.insert_job(other)
        assert store.update_job(job["_id"], {"payload": payload, "note": "\\'%_;--\"é漢😀\n",
                                             "$top": {"$set": "$inc"}})
        found = store.find_job(job["_id"])
        assert found["payload"] == payload
        assert found["note"] == "\\'%_;--\"é漢😀\n" and found["$top"] == {"$set": "$inc"}
        assert store.find_job(other["_id"])["payload"] == {key: key + "!" for key in ODD}
        ids = [job["_id"]]
        for key in ODD:
            name = f"payload.{key}"
            assert [d["_id"] for d in store.find_jobs({name: key})] == ids, key
            assert store.count_jobs({name: key}) == 1, key
            assert store.count_jobs({name: {"$in": [key, "nothing"]}}) == 1, key
            assert store.count_jobs({name: {"$ne": key}}) == 2, key  # the canary has none
            assert store.count_jobs({name: {"$nin": [key], "$exists": True}}) == 1, key
            assert store.count_jobs({f"payload.nested.{key}": {"$exists": True}}) == 1, key
            assert store.count_jobs({f"payload.nested.{key}.{key}": key}) == 1, key
            anchored = "^" + re.escape(key) + "$"
            assert [d["_id"] for d in store.find_jobs({name: {"$regex": anchored}})] == ids, key
            assert store.count_jobs({name: {"$not": {"$regex": anchored}}}) == 2, key
        assert store.count_jobs({"note": {"$regex": "'; DROP"}}) == 1
        assert store.count_jobs({"note": "'; DROP TABLE jobs; --"}) == 1
        assert store.count_jobs({"note": {"$regex": re.escape("%_;--\"é漢😀")}}) == 1

    def test_a_job_field_name_with_a_dot_is_refused(self, store, canary):
        job = make_doc()
        store.insert_job(job)
        with pytest.raises(StoreError, match="invalid job field name 'a.b'"):
            store.update_job(job["_id"], {"note": "x", "a.b": 1})
        with pytest.raises(StoreError, match="invalid job field name 'a.b'"):
            store.insert_job(make_doc(**{"a.b": 1}))
        assert store.find_job(job["_id"])["note"] is None
        assert store.count_jobs({}) == 2

    def test_ordering_and_grouping_by_fields_with_odd_names(self, store, canary):
        jobs = [make_doc(priority=10 + n, rank={key: (n * 7 + i) % 3 for i, key in enumerate(ODD)})
                for n in range(3)]
        for job in jobs:
            store.insert_job(job)
        for i, key in enumerate(ODD):
            by = [(n * 7 + i) % 3 for n in range(3)]
            expected = sorted(range(3), key=lambda n, by=by: by[n])
            for direction in (1, -1):
                found = store.find_jobs({"priority": {"$gte": 10}}, [(f"rank.{key}", direction)])
                order = expected if direction == 1 else expected[::-1]
                assert [d["_id"] for d in found] == [jobs[n]["_id"] for n in order], key
            # the canary has rank.x only: a missing value sorts first
            assert store.find_jobs({}, [(f"rank.{key}", 1)], limit=1)[0]["_id"] == canary["_id"]
            counts = store.count_jobs_by(f"rank.{key}", {"priority": {"$gte": 10}})
            assert counts == {value: by.count(value) for value in set(by)}, key

    def test_nul_in_a_key_is_kept_or_refused_naming_the_key(self, store, canary):
        key = "nul\x00key"
        job = make_doc(statistics={}, payload={"x": 1})
        store.insert_job(job)
        writes = {
            "increment": lambda: store.increment_job(job["_id"], {f"statistics.{key}": 1}),
            "update": lambda: store.update_job(job["_id"], {"payload": {"x": 1, key: 2}}),
        }
        if self.NUL_IN_KEYS:
            for write in writes.values():
                assert write()
            store.insert_job(make_doc(payload={key: 3}))
            found = store.find_job(job["_id"])
            assert found["statistics"] == {key: 1} and found["payload"] == {"x": 1, key: 2}
            assert store.count_jobs({f"payload.{key}": 2}) == 1
            assert store.count_jobs({f"payload.{key}": {"$exists": True}}) == 2
            return
        before = store.find_job(job["_id"])
        for what, write in [*writes.items(), ("insert", lambda: store.insert_job(make_doc(payload={key: 3}))),
                            ("filter", lambda: store.count_jobs({f"payload.{key}": 2}))]:
            with pytest.raises(StoreError, match="NUL") as raised:
                write()
            assert repr(key)[1:-1] in str(raised.value), what  # the key, named
        assert store.find_job(job["_id"]) == before
        assert store.count_jobs({}) == 2

    def test_nul_in_a_value_is_kept_or_replaced_and_still_found(self, store, canary):
        value = "before\x00after"
        job = make_doc(note=value, payload={"text": value, "list": [value]})
        store.insert_job(job)
        stored = value if self.NUL_IN_VALUES == "exact" else "before\ufffdafter"
        found = store.find_job(job["_id"])
        assert found["note"] == stored and found["payload"] == {"text": stored, "list": [stored]}
        assert store.count_jobs({"note": value}) == 1
        assert store.count_jobs({"payload.text": value}) == 1
        assert store.update_job(job["_id"], {"note": value + "!"})
        assert store.find_job(job["_id"])["note"] == stored + "!"

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

    def test_claim_deletes_finished_jobs_in_the_same_call(self, store):
        done = make_doc(state="running", worker_name="w:1:1")
        not_running = make_doc(state="queued", priority=90)  # a finished id no longer running stays
        follower = make_doc(priority=10)
        for doc in (done, not_running, follower):
            store.insert_job(doc)
        claimed = store.claim_job("w:1:1", NOW, finished=[done["_id"], not_running["_id"]])
        assert claimed["_id"] == follower["_id"]
        assert store.find_job(done["_id"]) is None
        assert store.find_job(not_running["_id"])["state"] == "queued"

    def test_claim_with_finished_jobs_and_nothing_to_claim_still_deletes_them(self, store):
        done = make_doc(state="running", worker_name="w:1:1")
        batch_done = make_doc(state="running", sub_state="processing", worker_name="w:1:1")
        store.insert_job(done)
        store.insert_job(batch_done)  # finished, so not joined
        assert store.claim_job("w:1:1", NOW, finished=[done["_id"], batch_done["_id"]]) is None
        assert store.count_jobs({}) == 0

    def test_claim_sets_started_at_only_when_taken_from_the_queue(self, store):
        earlier = NOW - timedelta(hours=1)
        batch = make_doc(state="running", sub_state="processing", started_at=earlier)
        store.insert_job(batch)
        store.claim_job("w:1:2", NOW)
        assert as_datetime(store.find_job(batch["_id"])["started_at"]) == earlier
        queued = make_doc(priority=1)
        store.insert_job(queued)
        claimed = store.claim_job("w:1:3", NOW)
        assert claimed["_id"] == queued["_id"]
        assert as_datetime(claimed["started_at"]) == NOW
        assert claimed["worker_name"] == "w:1:3" and claimed["state"] == "running"

    # -- counters and schedules -----------------------------------------------------------
    def test_increment_adds_at_dotted_paths_creating_what_is_missing(self, store):
        doc = make_doc(statistics={})
        store.insert_job(doc)
        assert store.increment_job(doc["_id"], {"statistics.rows": 5, "statistics.bad.lines": 1})
        assert store.increment_job(doc["_id"], {"statistics.rows": 2, "statistics.seconds": 1.5})
        assert store.find_job(doc["_id"])["statistics"] == {"rows": 7, "bad": {"lines": 1}, "seconds": 1.5}
        assert store.find_job(doc["_id"])["note"] is None  # the rest of the document is untouched

    def test_increment_of_a_missing_job_reports_false(self, store):
        assert not store.increment_job(str(ObjectId()), {"statistics.rows": 1})

    def test_concurrent_increments_all_count(self, store, other_store):
        doc = make_doc(statistics={})
        store.insert_job(doc)

        def add(which):
            for _ in range(50):
                which.increment_job(doc["_id"], {"statistics.rows": 1})

        threads = [threading.Thread(target=add, args=(s,)) for s in (store, other_store, store, other_store)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert store.find_job(doc["_id"])["statistics"] == {"rows": 200}

    def test_next_run_at_is_the_earliest_scheduled_queued_job(self, store):
        assert store.next_run_at(NOW) is None
        store.insert_job(make_doc(run_at=NOW - timedelta(minutes=5)))  # due already
        store.insert_job(make_doc(state="paused", run_at=NOW + timedelta(minutes=1)))
        store.insert_job(make_doc())
        assert store.next_run_at(NOW) is None
        store.insert_job(make_doc(run_at=NOW + timedelta(minutes=30)))
        store.insert_job(make_doc(run_at=NOW + timedelta(minutes=10)))
        assert as_datetime(store.next_run_at(NOW)) == NOW + timedelta(minutes=10)

    # -- slices -----------------------------------------------------------------------------
    JOB = "65a4f0c2e1b2c3d4e5f60718"

    def test_inserted_slices_read_back_in_id_order_and_queued(self, store):
        store.insert_slices(self.JOB, "main", [make_slice(i) for i in (2, 1, 3)])
        read = store.read_input_slices(self.JOB, "main")
        assert [s["id"] for s in read] == [1, 2, 3]
        first = read[0]
        assert first["data"] == b"slice 1" and isinstance(first["data"], bytes)
        assert (first["first_record_number"], first["record_count"], first["serializer"]) == (1, 10, "bson")
        assert first["state"] == "queued" and first["failure_count"] == 0
        assert not first["worker_name"] and not first["exception"]
        assert store.read_input_slices(self.JOB, "other") == []

    def test_next_slice_id_follows_inputs_and_outputs_per_category(self, store):
        assert store.next_slice_id(self.JOB, "main") == 1
        store.insert_slices(self.JOB, "main", [make_slice(i) for i in (1, 2, 3)])
        assert store.next_slice_id(self.JOB, "main") == 4
        assert store.next_slice_id(self.JOB, "lookup") == 1
        claimed = store.claim_slices(self.JOB, "main", "w:1:1", NOW, 3)
        store.complete_slices(self.JOB, "main", [(s["id"], {"main": make_slice(s["id"])}) for s in claimed])
        assert store.read_input_slices(self.JOB, "main") == []
        assert store.next_slice_id(self.JOB, "main") == 4  # the outputs keep the ids taken

    def test_claim_slices_takes_the_lowest_ids_up_to_the_limit(self, store):
        store.insert_slices(self.JOB, "main", [make_slice(i) for i in range(1, 6)])
        claimed = store.claim_slices(self.JOB, "main", "w:1:1", NOW, 2)
        assert [s["id"] for s in claimed] == [1, 2]
        assert claimed[0]["data"] == b"slice 1"
        assert claimed[0]["state"] == "running" and claimed[0]["worker_name"] == "w:1:1"
        assert as_datetime(claimed[0]["started_at"]) == NOW
        assert [s["id"] for s in store.claim_slices(self.JOB, "main", "w:1:2", NOW, 10)] == [3, 4, 5]
        assert store.claim_slices(self.JOB, "main", "w:1:2", NOW, 10) == []
        stored = {s["id"]: s["worker_name"] for s in store.read_input_slices(self.JOB, "main")}
        assert stored == {1: "w:1:1", 2: "w:1:1", 3: "w:1:2", 4: "w:1:2", 5: "w:1:2"}

    def test_claim_slices_keeps_jobs_and_categories_apart(self, store):
        other_job = str(ObjectId())
        store.insert_slices(self.JOB, "main", [make_slice(1)])
        store.insert_slices(self.JOB, "lookup", [make_slice(1)])
        store.insert_slices(other_job, "main", [make_slice(1)])
        assert len(store.claim_slices(self.JOB, "main", "w", NOW, 10)) == 1
        assert store.count_slices(self.JOB, "lookup") == {"queued": (1, 10)}
        assert store.count_slices(other_job, "main") == {"queued": (1, 10)}

    def test_concurrent_slice_claims_never_take_a_slice_twice(self, store, other_store):
        store.insert_slices(self.JOB, "main", [make_slice(i) for i in range(1, 301)])
        taken: list[int] = []
        lock = threading.Lock()

        def claimer(which, name):
            while True:
                claimed = which.claim_slices(self.JOB, "main", name, NOW, 3)
                if not claimed:
                    return
                assert len(claimed) <= 3
                with lock:
                    taken.extend(s["id"] for s in claimed)

        threads = [threading.Thread(target=claimer, args=(s, f"w:{i}"))
                   for i, s in enumerate([store, other_store, store, other_store])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(taken) == list(range(1, 301))

    def test_released_slices_are_queued_again_untouched(self, store):
        store.insert_slices(self.JOB, "main", [make_slice(i) for i in (1, 2, 3)])
        claimed = store.claim_slices(self.JOB, "main", "w:1:1", NOW, 3)
        store.release_slices(self.JOB, "main", [s["id"] for s in claimed[1:]])
        assert store.count_slices(self.JOB, "main") == {"running": (1, 10), "queued": (2, 20)}
        released = store.read_input_slices(self.JOB, "main", state="queued")
        assert [(s["id"], s["worker_name"], s["failure_count"]) for s in released] == [(2, None, 0), (3, None, 0)]
        assert [s["id"] for s in store.claim_slices(self.JOB, "main", "w:1:2", NOW, 5)] == [2, 3]

    def test_complete_slices_deletes_inputs_and_writes_outputs(self, store):
        store.insert_slices(self.JOB, "main", [make_slice(i) for i in (1, 2, 3)])
        claimed = store.claim_slices(self.JOB, "main", "w:1:1", NOW, 2)
        store.complete_slices(self.JOB, "main", [
            (1, {"main": make_slice(1, data=b"out 1"), "errors": make_slice(1, record_count=1, data=b"bad")}),
            (2, {"main": make_slice(2, data=b"out 2")}),
        ])
        assert [s["id"] for s in claimed] == [1, 2]
        assert [s["id"] for s in store.read_input_slices(self.JOB, "main")] == [3]
        out = store.read_output_slices(self.JOB, "main")
        assert [(s["id"], s["data"], s["record_count"]) for s in out] == [(1, b"out 1", 10), (2, b"out 2", 10)]
        assert isinstance(out[0]["data"], bytes) and out[0]["first_record_number"] == 1
        assert store.count_output_slices(self.JOB, "main") == (2, 20)
        assert store.count_output_slices(self.JOB, "errors") == (1, 1)
        assert store.count_output_slices(self.JOB, "nothing") == (0, 0)
        both = store.output_slices_for(self.JOB, 1)
        assert {name: s["data"] for name, s in both.items()} == {"main": b"out 1", "errors": b"bad"}
        assert store.output_slices_for(self.JOB, 3) == {}

    def test_completing_a_slice_again_replaces_its_output(self, store):
        store.insert_slices(self.JOB, "main", [make_slice(1)])
        store.claim_slices(self.JOB, "main", "w:1:1", NOW, 1)
        store.complete_slices(self.JOB, "main", [(1, {"main": make_slice(1, data=b"first")})])
        # a worker that died after writing is replayed: same slice, output written again
        store.complete_slices(self.JOB, "main", [(1, {"main": make_slice(1, record_count=4, data=b"second")})])
        assert [(s["id"], s["data"]) for s in store.read_output_slices(self.JOB, "main")] == [(1, b"second")]
        assert store.count_output_slices(self.JOB, "main") == (1, 4)

    def test_the_store_refuses_a_second_active_job_with_the_same_singleton_key(self, store):
        from rjbatch.errors import SingletonTaken

        first = make_doc(_id="65a4f0c2e1b2c3d4e5f60001", _singleton="app.Solo")
        store.insert_job(first)
        with pytest.raises(SingletonTaken):
            store.insert_job(make_doc(_id="65a4f0c2e1b2c3d4e5f60002", _singleton="app.Solo"))
        store.insert_job(make_doc(_id="65a4f0c2e1b2c3d4e5f60003", _singleton="app.Other"))
        store.insert_job(make_doc(_id="65a4f0c2e1b2c3d4e5f60004", _singleton="app.Solo", state="completed"))
        with pytest.raises(SingletonTaken):  # back to queued while another is active
            store.update_job("65a4f0c2e1b2c3d4e5f60004", {"state": "queued"})
        assert store.update_job(first["_id"], {"state": "failed"})
        assert store.update_job("65a4f0c2e1b2c3d4e5f60004", {"state": "queued"})
        store.insert_job(make_doc(_id="65a4f0c2e1b2c3d4e5f60005"))  # no key: no limit
        store.insert_job(make_doc(_id="65a4f0c2e1b2c3d4e5f60006"))

    def test_a_stale_workers_slice_commits_are_refused(self, store):
        store.insert_slices(self.JOB, "main", [make_slice(1), make_slice(2), make_slice(3)])
        store.claim_slices(self.JOB, "main", "a:1:1", NOW, 3)
        store.requeue_running_slices("a:1")  # its server was thought dead
        store.claim_slices(self.JOB, "main", "b:2:1", NOW, 2)  # slices 1 and 2 taken by another
        refused = store.complete_slices(self.JOB, "main", [(1, {"main": make_slice(1, data=b"stale")})], "a:1:1")
        assert refused == [1]
        assert store.read_output_slices(self.JOB, "main") == []
        assert not store.fail_slice(self.JOB, "main", 2, 1, {"class_name": "E", "message": "m"},
                                    {"main": make_slice(2, data=b"stale")}, "a:1:1")
        assert store.count_slices(self.JOB, "main") == {"running": (2, 20), "queued": (1, 10)}
        assert store.complete_slices(self.JOB, "main", [(1, {"main": make_slice(1, data=b"fresh")})], "b:2:1") == []
        assert store.fail_slice(self.JOB, "main", 2, 1, {"class_name": "E", "message": "m"}, {}, "b:2:1")
        assert [(s["id"], s["data"]) for s in store.read_output_slices(self.JOB, "main")] == [(1, b"fresh")]
        assert store.count_slices(self.JOB, "main") == {"failed": (1, 10), "queued": (1, 10)}

    def test_fail_slice_records_the_failure_and_keeps_partial_output(self, store):
        store.insert_slices(self.JOB, "main", [make_slice(1), make_slice(2)])
        store.claim_slices(self.JOB, "main", "w:1:1", NOW, 2)
        exception = {"class_name": "ValueError", "message": "bad row", "backtrace": ["a", "b"]}
        store.fail_slice(self.JOB, "main", 1, 4, exception, {"main": make_slice(1, record_count=3, data=b"part")})
        [failed] = store.read_input_slices(self.JOB, "main", state="failed")
        assert failed["id"] == 1 and failed["state"] == "failed"
        assert failed["failure_count"] == 1 and failed["processing_record_number"] == 4
        assert failed["exception"] == exception and not failed["worker_name"]
        assert failed["data"] == b"slice 1"  # the input stays for a retry
        assert store.output_slices_for(self.JOB, 1)["main"]["data"] == b"part"
        assert store.count_slices(self.JOB, "main") == {"failed": (1, 10), "running": (1, 10)}

    def test_retry_failed_slices_queues_them_again_keeping_where_they_failed(self, store):
        store.insert_slices(self.JOB, "main", [make_slice(i) for i in (1, 2, 3)])
        store.claim_slices(self.JOB, "main", "w:1:1", NOW, 3)
        for slice_id in (1, 3):
            store.fail_slice(self.JOB, "main", slice_id, 2, {"message": "x"}, {})
        assert store.retry_failed_slices(self.JOB, "main") == 2
        assert store.retry_failed_slices(self.JOB, "main") == 0
        queued = store.read_input_slices(self.JOB, "main", state="queued")
        assert [(s["id"], s["processing_record_number"], s["failure_count"]) for s in queued] == [
            (1, 2, 1), (3, 2, 1)]
        store.claim_slices(self.JOB, "main", "w:1:1", NOW, 1)
        store.fail_slice(self.JOB, "main", 1, 5, {"message": "again"}, {})
        [again] = store.read_input_slices(self.JOB, "main", state="failed")
        assert (again["failure_count"], again["processing_record_number"]) == (2, 5)

    def test_requeue_running_slices_matches_whole_name_segments_across_jobs(self, store):
        other_job = str(ObjectId())
        store.insert_slices(self.JOB, "main", [make_slice(i) for i in range(1, 6)])
        store.insert_slices(other_job, "main", [make_slice(1), make_slice(2)])
        for name in ("host:12:1", "host:12:2", "host:123:1", "host:12", "other:1"):
            store.claim_slices(self.JOB, "main", name, NOW, 1)
        store.claim_slices(other_job, "main", "host:12:3", NOW, 1)
        store.claim_slices(other_job, "main", "host:1", NOW, 1)
        assert store.requeue_running_slices("host:12") == 4
        running = {s["worker_name"] for s in store.read_input_slices(self.JOB, "main", state="running")}
        assert running == {"host:123:1", "other:1"}
        assert store.count_slices(other_job, "main") == {"queued": (1, 10), "running": (1, 10)}
        requeued = store.read_input_slices(self.JOB, "main", state="queued")
        assert all(s["worker_name"] is None and s["started_at"] is None for s in requeued)
        assert store.requeue_running_slices("host:123:1") == 1  # a worker by its full name

    def test_requeue_job_slices_touches_one_job_and_category(self, store):
        other_job = str(ObjectId())
        store.insert_slices(self.JOB, "main", [make_slice(1), make_slice(2)])
        store.insert_slices(self.JOB, "lookup", [make_slice(1)])
        store.insert_slices(other_job, "main", [make_slice(1)])
        store.claim_slices(self.JOB, "main", "host:7:1", NOW, 1)
        store.claim_slices(self.JOB, "main", "host:77:1", NOW, 1)
        store.claim_slices(self.JOB, "lookup", "host:7:1", NOW, 1)
        store.claim_slices(other_job, "main", "host:7:2", NOW, 1)
        assert store.requeue_job_slices(self.JOB, "main", "host:7") == 1
        assert store.count_slices(self.JOB, "main") == {"queued": (1, 10), "running": (1, 10)}
        assert store.count_slices(self.JOB, "lookup") == {"running": (1, 10)}
        assert store.count_slices(other_job, "main") == {"running": (1, 10)}

    def test_count_slices_by_state_with_records(self, store):
        assert store.count_slices(self.JOB, "main") == {}
        store.insert_slices(self.JOB, "main", [make_slice(i, record_count=i) for i in (1, 2, 3, 4)])
        store.claim_slices(self.JOB, "main", "w", NOW, 2)
        store.fail_slice(self.JOB, "main", 2, 1, {"message": "x"}, {})
        assert store.count_slices(self.JOB, "main") == {"running": (1, 1), "failed": (1, 2), "queued": (2, 7)}

    def test_read_slices_pages_by_id(self, store):
        store.insert_slices(self.JOB, "main", [make_slice(i) for i in range(1, 8)])
        store.claim_slices(self.JOB, "main", "w", NOW, 2)
        assert [s["id"] for s in store.read_input_slices(self.JOB, "main", limit=3)] == [1, 2, 3]
        assert [s["id"] for s in store.read_input_slices(self.JOB, "main", after_id=3, limit=3)] == [4, 5, 6]
        assert [s["id"] for s in store.read_input_slices(self.JOB, "main", after_id=6)] == [7]
        assert [s["id"] for s in store.read_input_slices(self.JOB, "main", state="queued", limit=2)] == [3, 4]
        assert [s["id"] for s in store.read_input_slices(self.JOB, "main", state="running", after_id=1)] == [2]
        claimed = store.claim_slices(self.JOB, "main", "w", NOW, 5)
        store.complete_slices(self.JOB, "main", [(s["id"], {"main": make_slice(s["id"])}) for s in claimed])
        pages, after = [], 0
        while page := store.read_output_slices(self.JOB, "main", after_id=after, limit=2):
            pages.append([s["id"] for s in page])
            after = page[-1]["id"]
        assert pages == [[3, 4], [5, 6], [7]]

    def test_update_input_slice_changes_its_data(self, store):
        store.insert_slices(self.JOB, "main", [make_slice(1), make_slice(2)])
        assert store.update_input_slice(self.JOB, "main", 2, {"data": b"fixed", "record_count": 9})
        fixed = store.read_input_slices(self.JOB, "main", after_id=1)[0]
        assert (fixed["data"], fixed["record_count"]) == (b"fixed", 9)
        assert store.read_input_slices(self.JOB, "main")[0]["data"] == b"slice 1"
        assert not store.update_input_slice(self.JOB, "main", 99, {"data": b"x"})
        with pytest.raises(StoreError):
            store.update_input_slice(self.JOB, "main", 1, {"job_id": "elsewhere"})

    def test_delete_slices_by_category_kind_and_first_id(self, store):
        def setup():
            store.delete_slices(self.JOB)
            store.insert_slices(self.JOB, "main", [make_slice(i) for i in range(1, 6)])
            store.insert_slices(self.JOB, "lookup", [make_slice(1)])
            claimed = store.claim_slices(self.JOB, "main", "w", NOW, 2)
            store.complete_slices(self.JOB, "main", [(s["id"], {"main": make_slice(s["id"])}) for s in claimed])

        setup()
        assert store.delete_slices(self.JOB, "main", "input", from_id=4) == 2
        assert [s["id"] for s in store.read_input_slices(self.JOB, "main")] == [3]
        assert store.count_output_slices(self.JOB, "main") == (2, 20)
        setup()
        assert store.delete_slices(self.JOB, kind="output") == 2
        assert store.count_slices(self.JOB, "main") == {"queued": (3, 30)}
        setup()
        assert store.delete_slices(self.JOB, "lookup") == 1
        assert store.count_slices(self.JOB, "main") == {"queued": (3, 30)}
        setup()
        assert store.delete_slices(self.JOB, "main", from_id=2) == 3 + 1  # inputs 3-5, output 2
        assert store.delete_slices(self.JOB) == 1 + 1  # output 1, the lookup input
        assert store.delete_slices(self.JOB) == 0

    # -- servers ----------------------------------------------------------------------------
    def test_servers_are_saved_found_updated_and_deleted(self, store):
        beat = NOW - timedelta(seconds=5)
        store.save_server({"name": "web:2", "state": "running", "max_workers": 2, "started_at": NOW,
                           "heartbeat_at": beat, "hostname": "web", "pid": 2, "workers": []})
        store.save_server({"name": "app:1", "state": "starting", "max_workers": 4, "started_at": NOW,
                           "heartbeat_at": NOW, "hostname": "app", "pid": 1, "workers": []})
        found = store.find_server("web:2")
        assert (found["state"], found["max_workers"], found["hostname"], found["pid"]) == ("running", 2, "web", 2)
        assert as_datetime(found["heartbeat_at"]) == beat and as_datetime(found["started_at"]) == NOW
        assert [s["name"] for s in store.find_servers()] == ["app:1", "web:2"]
        assert store.find_server("nobody") is None

        workers = [{"name": "web:2:1", "pid": 21}]
        assert store.update_server("web:2", {"heartbeat_at": NOW, "workers": workers})
        found = store.find_server("web:2")
        assert as_datetime(found["heartbeat_at"]) == NOW and found["workers"] == workers
        assert found["hostname"] == "web"  # untouched
        assert not store.update_server("nobody", {"state": "paused"})

    def test_server_updates_apply_only_while_the_condition_holds(self, store):
        store.save_server({"name": "a:1", "state": "running", "max_workers": 1, "started_at": NOW,
                           "heartbeat_at": NOW})
        assert store.update_server("a:1", {"state": "zombie"}, where={"state": {"$ne": "zombie"}})
        assert not store.update_server("a:1", {"state": "zombie"}, where={"state": {"$ne": "zombie"}})
        assert not store.update_server("a:1", {"state": "paused"}, where={"state": {"$in": ["running"]}})
        assert store.find_server("a:1")["state"] == "zombie"

    def test_saving_a_server_again_replaces_its_record(self, store):
        store.save_server({"name": "a:1", "state": "running", "max_workers": 1, "started_at": NOW,
                           "heartbeat_at": NOW, "pid": 1, "old": True})
        store.save_server({"name": "a:1", "state": "starting", "max_workers": 3, "started_at": NOW,
                           "heartbeat_at": NOW, "pid": 2})
        found = store.find_server("a:1")
        assert (found["state"], found["max_workers"], found["pid"]) == ("starting", 3, 2)
        assert "old" not in found
        assert len(store.find_servers()) == 1

    def test_deleting_a_server(self, store):
        store.save_server({"name": "a:1", "state": "running", "max_workers": 1, "started_at": NOW,
                           "heartbeat_at": NOW})
        assert store.delete_server("a:1")
        assert not store.delete_server("a:1")
        assert store.find_servers() == []

    # -- dirmon entries ---------------------------------------------------------------------
    @staticmethod
    def dirmon_entry(name, pattern, state="enabled", **extra):
        return {"_id": str(ObjectId()), "name": name, "pattern": pattern, "state": state,
                "job_class_name": "PlainJob", "properties": {"priority": 5}, "archive_directory": "done",
                "exception": None, **extra}

    def test_dirmon_entries_are_saved_found_and_deleted(self, store):
        one = self.dirmon_entry("b-orders", "/in/orders/*.csv")
        two = self.dirmon_entry("a-refunds", "/in/refunds/*.csv", state="disabled")
        store.save_dirmon_entry(one)
        store.save_dirmon_entry(two)
        found = store.find_dirmon_entries()
        assert [e["name"] for e in found] == ["a-refunds", "b-orders"]
        assert found[1] == one
        assert [e["_id"] for e in store.find_dirmon_entries({"state": "enabled"})] == [one["_id"]]
        by_either = {"$or": [{"_id": "a-refunds"}, {"name": "a-refunds"}]}
        assert [e["_id"] for e in store.find_dirmon_entries(by_either)] == [two["_id"]]
        assert store.delete_dirmon_entry(one["_id"])
        assert not store.delete_dirmon_entry(one["_id"])
        assert [e["_id"] for e in store.find_dirmon_entries()] == [two["_id"]]

    def test_saving_a_dirmon_entry_again_updates_it(self, store):
        entry = self.dirmon_entry("orders", "/in/*.csv", state="pending")
        store.save_dirmon_entry(entry)
        entry.update(state="enabled", pattern="/in/*.txt", properties={"priority": 1})
        store.save_dirmon_entry(entry)
        [found] = store.find_dirmon_entries()
        assert (found["state"], found["pattern"], found["properties"]) == ("enabled", "/in/*.txt", {"priority": 1})

    def test_two_dirmon_entries_cannot_watch_one_pattern(self, store):
        store.save_dirmon_entry(self.dirmon_entry("one", "/in/*.csv"))
        with pytest.raises(StoreError):
            store.save_dirmon_entry(self.dirmon_entry("two", "/in/*.csv"))
        assert [e["name"] for e in store.find_dirmon_entries()] == ["one"]

    # -- datetimes --------------------------------------------------------------------------
    # Every datetime given to a store comes back as an aware UTC datetime, on every kind of
    # record, at the top level or inside dicts and lists; text that only looks like a
    # timestamp stays text.
    LOOKALIKE = "2026-01-15T12:00:00.000Z"

    @staticmethod
    def assert_utc(value, expected):
        assert isinstance(value, datetime), f"{value!r} is a {type(value).__name__}, not a datetime"
        assert value.tzinfo is not None and value.utcoffset() == timedelta(0), value
        assert value == expected

    def test_job_datetimes_come_back_as_aware_utc_datetimes(self, store):
        later = NOW + timedelta(hours=1)
        doc = make_doc(run_at=NOW - timedelta(minutes=1), expires_at=later, started_at=None,
                       completed_at=None, throttled_at=NOW, failed_at_list=[NOW, later],
                       nested={"at": later, "list": [1, NOW, {"deep": NOW}], "text": self.LOOKALIKE},
                       note=self.LOOKALIKE)
        store.insert_job(doc)
        other = make_doc(started_at=NOW, completed_at=later, state="completed")
        store.insert_job(other)

        def check(found):
            self.assert_utc(found["run_at"], NOW - timedelta(minutes=1))
            self.assert_utc(found["expires_at"], later)
            self.assert_utc(found["created_at"], NOW)
            self.assert_utc(found["throttled_at"], NOW)
            for value, expected in zip(found["failed_at_list"], [NOW, later], strict=True):
                self.assert_utc(value, expected)
            self.assert_utc(found["nested"]["at"], later)
            assert found["nested"]["list"][0] == 1
            self.assert_utc(found["nested"]["list"][1], NOW)
            self.assert_utc(found["nested"]["list"][2]["deep"], NOW)
            assert found["nested"]["text"] == self.LOOKALIKE and found["note"] == self.LOOKALIKE

        check(store.find_job(doc["_id"]))
        check(store.find_jobs({"_id": doc["_id"]})[0])
        check(next(iter(store.iter_jobs({"_id": doc["_id"]}))))
        claimed = store.claim_job("w", NOW)
        check(claimed)
        self.assert_utc(claimed["started_at"], NOW)
        found = store.find_job(other["_id"])
        self.assert_utc(found["started_at"], NOW)
        self.assert_utc(found["completed_at"], later)
        assert store.find_job(other["_id"])["run_at"] is None

    def test_updated_job_datetimes_come_back_as_datetimes_and_replaced_ones_do_not(self, store):
        doc = make_doc(throttled_at=NOW, failed_at_list=[NOW], marks={"a": NOW})
        store.insert_job(doc)
        later = NOW + timedelta(days=1)
        odd = 'say "hi"'  # a key SQLite's JSON paths cannot name: another way of writing
        assert store.update_job(doc["_id"], {"throttled_at": self.LOOKALIKE, "completed_at": later,
                                             "failed_at_list": ["x", later], "marks": {odd: later}})
        found = store.find_job(doc["_id"])
        assert found["throttled_at"] == self.LOOKALIKE
        self.assert_utc(found["completed_at"], later)
        assert found["failed_at_list"][0] == "x"
        self.assert_utc(found["failed_at_list"][1], later)
        self.assert_utc(found["marks"][odd], later)
        assert store.update_job(doc["_id"], {odd: NOW, "note": later})
        found = store.find_job(doc["_id"])
        self.assert_utc(found[odd], NOW)
        self.assert_utc(found["note"], later)
        assert store.update_jobs({"_id": doc["_id"]}, {"note": self.LOOKALIKE, "run_at": later}) == 1
        found = store.find_job(doc["_id"])
        assert found["note"] == self.LOOKALIKE
        self.assert_utc(found["run_at"], later)
        self.assert_utc(found["marks"][odd], later)  # untouched
        self.assert_utc(store.next_run_at(NOW), later)
        # a field that held datetimes and now holds other values gives those back as they are
        assert store.update_job(doc["_id"], {"note": "soon", "failed_at_list": [3, "x"], "marks": None})
        found = store.find_job(doc["_id"])
        assert (found["note"], found["failed_at_list"], found["marks"]) == ("soon", [3, "x"], None)

    def test_slice_datetimes_come_back_as_aware_utc_datetimes(self, store):
        store.insert_slices(self.JOB, "main", [make_slice(1), make_slice(2)])
        [taken] = store.claim_slices(self.JOB, "main", "w", NOW, 1)
        self.assert_utc(taken["started_at"], NOW)
        running, queued = store.read_input_slices(self.JOB, "main")
        self.assert_utc(running["started_at"], NOW)
        assert queued["started_at"] is None
        self.assert_utc(store.read_input_slices(self.JOB, "main", state="running")[0]["started_at"], NOW)

    def test_server_datetimes_come_back_as_aware_utc_datetimes(self, store):
        beat = NOW + timedelta(seconds=15)
        store.save_server({"name": "a:1", "state": "running", "max_workers": 1, "started_at": NOW,
                           "heartbeat_at": NOW, "workers": [{"name": "a:1:1", "started_at": NOW}]})
        found = store.find_server("a:1")
        self.assert_utc(found["started_at"], NOW)
        self.assert_utc(found["heartbeat_at"], NOW)
        self.assert_utc(found["workers"][0]["started_at"], NOW)
        assert store.update_server("a:1", {"heartbeat_at": beat, "workers": [{"name": "a:1:1", "seen_at": beat}]})
        [found] = store.find_servers()
        self.assert_utc(found["started_at"], NOW)
        self.assert_utc(found["heartbeat_at"], beat)
        assert "started_at" not in found["workers"][0]
        self.assert_utc(found["workers"][0]["seen_at"], beat)

    def test_dirmon_entry_datetimes_come_back_as_aware_utc_datetimes(self, store):
        entry = self.dirmon_entry("orders", "/in/*.csv", properties={"run_at": NOW, "note": self.LOOKALIKE},
                                  checked_at=NOW)
        store.save_dirmon_entry(entry)
        [found] = store.find_dirmon_entries()
        self.assert_utc(found["properties"]["run_at"], NOW)
        self.assert_utc(found["checked_at"], NOW)
        assert found["properties"]["note"] == self.LOOKALIKE

    # -- wake-ups ---------------------------------------------------------------------------
    def test_wait_for_change_wakes_when_another_connection_adds_work(self, store, other_store):
        store.data_version()  # connected, and listening where that takes a connection
        results: list[tuple[bool, float]] = []

        def wait():
            started = time.monotonic()
            results.append((store.wait_for_change(20), time.monotonic() - started))

        thread = threading.Thread(target=wait)
        thread.start()
        time.sleep(0.2)
        other_store.insert_job(make_doc())
        thread.join(30)
        [(changed, waited)] = results
        assert changed and waited < 10

    def test_work_added_between_two_waits_is_not_missed(self, store, other_store):
        store.wait_for_change(0.05)  # an idle worker waited, then went to claim...
        other_store.insert_job(make_doc())  # ...and work arrived before it waited again
        started = time.monotonic()
        assert store.wait_for_change(10) is True
        assert time.monotonic() - started < 5
        assert store.wait_for_change(0.05) is False  # that change counts once

    def test_wait_for_change_gives_up_at_the_timeout_or_when_told_to_stop(self, store):
        started = time.monotonic()
        assert store.wait_for_change(0.2) is False
        assert 0.15 <= time.monotonic() - started < 5
        started = time.monotonic()
        assert store.wait_for_change(30, stop=lambda: True) is False
        assert time.monotonic() - started < 5
