"""Throttles decide whether a claimed job must wait; the reason is kept on the job."""

from __future__ import annotations

import rjbatch
from rjbatch import Job, field
from rjbatch.testing import work_next
from rjbatch.worker.picking import WorkerFilter, next_available_job


class LimitedJob(Job):
    throttle_running_jobs = 1
    destroy_on_complete = False

    def perform(self):
        return None


def test_throttle_running_jobs_sends_the_job_back_and_records_why():
    running = LimitedJob.create()
    running.start("other:1:1")
    waiting = LimitedJob.create()
    worker_filter = WorkerFilter()
    assert next_available_job("w:1:1", worker_filter, Job._store()) is None
    waiting.reload()
    assert waiting.is_queued and waiting.worker_name is None
    assert waiting.throttled_by.startswith("throttle_running_jobs: 1 running")
    assert waiting.throttled_at is not None
    assert worker_filter.current == {"_type": {"$nin": [LimitedJob._type_path]}}


def test_failed_paused_and_queued_jobs_do_not_count_against_the_limit():
    for event in ("fail", "pause"):
        job = LimitedJob.create()
        job.start("x:1:1") if event == "fail" else None
        getattr(job, event)()
    LimitedJob.create()
    waiting = LimitedJob.create()
    assert work_next() is not None
    assert work_next().id == waiting.id


def test_a_throttle_group_spans_classes():
    class GroupA(Job):
        throttle_running_jobs = 1
        throttle_group = "warehouse"

    class GroupB(Job):
        throttle_running_jobs = 1
        throttle_group = "warehouse"

    GroupA.create().start("x:1:1")
    b = GroupB.create()
    assert next_available_job("w:1:1", WorkerFilter(), Job._store()) is None
    assert GroupB.find(b.id).throttled_by.endswith("in group warehouse")


def test_custom_throttles_by_class_or_by_id_in_definition_order():
    class Replica(Job):
        lag = field(int, 0)
        busy = field(bool, False)

        @rjbatch.throttle
        def replica_behind(self):
            return self.lag > 300

        @rjbatch.throttle(filter="id")
        def this_one_busy(self):
            return self.busy

    lagging = Replica.create(lag=600)
    worker_filter = WorkerFilter()
    assert next_available_job("w:1:1", worker_filter, Job._store()) is None
    assert Replica.find(lagging.id).throttled_by == "replica_behind"
    assert worker_filter.current == {"_type": {"$nin": [Replica._type_path]}}
    lagging.delete()
    busy = Replica.create(busy=True)
    worker_filter = WorkerFilter()
    assert next_available_job("w:1:1", worker_filter, Job._store()) is None
    assert worker_filter.current == {"_id": {"$nin": [busy.id]}}


def test_throttle_filters_reset_after_re_check_seconds():
    worker_filter = WorkerFilter({"_type": {"$regex": "Report"}}, re_check_seconds=0)
    worker_filter.merge({"_id": {"$nin": ["a"]}})
    worker_filter.merge({"_id": {"$nin": ["b"]}})
    assert worker_filter.current["_id"] == {"$nin": ["a", "b"]}
    assert worker_filter.reset_if_due()
    assert worker_filter.current == {"_type": {"$regex": "Report"}}


def test_a_raising_throttle_fails_the_job():
    class Broken(Job):
        @rjbatch.throttle
        def check(self):
            raise RuntimeError("cannot reach the replica")

    job = Broken.create()
    assert work_next() is None
    assert Broken.find(job.id).is_failed
