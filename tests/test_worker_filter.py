"""``rjbatch worker --filter/--exclude``: regexes on the job class, by name or import path."""

from __future__ import annotations

from rjbatch import Job
from rjbatch.worker.loop import base_filter
from rjbatch.worker.picking import WorkerFilter, next_available_job


class FilteredJob(Job):
    def perform(self) -> None:
        return None


class OtherFilteredJob(Job):
    def perform(self) -> None:
        return None


def _claims(include: str | None, exclude: str | None = None) -> set[str]:
    worker_filter = WorkerFilter(base_filter(include, exclude))
    claimed = set()
    while (job := next_available_job("w:1:1", worker_filter, Job._store())) is not None:
        claimed.add(type(job).__name__)
        job.destroy()
    return claimed


def test_an_anchored_class_name_matches_the_class_whatever_its_module():
    FilteredJob.create()
    OtherFilteredJob.create()
    assert _claims("^FilteredJob$") == {"FilteredJob"}
    FilteredJob.create()
    assert _claims(None, "^OtherFilteredJob$") == {"FilteredJob"}
    assert OtherFilteredJob.count() == 1  # left for another server


def test_unanchored_and_path_regexes_still_match_case_insensitively():
    FilteredJob.create()
    OtherFilteredJob.create()
    assert _claims("otherfiltered") == {"OtherFilteredJob"}
    assert _claims(r"^tests\.test_worker_filter\.FilteredJob$") == {"FilteredJob"}
