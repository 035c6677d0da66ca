"""Several processes share one SQLite file: what one writes, the others see."""

from __future__ import annotations

import multiprocessing

import pytest

import rjbatch
from rjbatch import Job, JobNotFound
from tests.sample_jobs import NoteJob

pytestmark = pytest.mark.slow


def _in_child(url: str, action: str, job_id: str, value, queue) -> None:
    rjbatch.configure(database=url)
    try:
        job = Job.find(job_id)
        if action == "find":
            queue.put((type(job).__name__, job.note, job.state))
        elif action == "change":
            job.note = value
            job.save()
            queue.put("ok")
        elif action == "destroy":
            job.destroy()
            queue.put("ok")
        elif action == "set_priority":
            job.priority = value
            job.save()
            queue.put("ok")
        elif action == "set_note":
            job.note = value
            job.save()
            queue.put("ok")
    except Exception as exc:  # report to the parent instead of dying silently
        queue.put(f"error: {exc!r}")


def _run(url, action, job_id, value=None):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_in_child, args=(url, action, job_id, value, queue))
    process.start()
    result = queue.get(timeout=60)
    process.join(timeout=60)
    assert process.exitcode == 0
    return result


def test_a_job_created_here_is_found_changed_and_destroyed_by_other_processes(database):
    job = NoteJob.create(note="from parent")
    assert _run(database, "find", job.id) == ("NoteJob", "from parent", "queued")
    assert _run(database, "change", job.id, "from child") == "ok"
    assert job.reload().note == "from child"
    assert _run(database, "destroy", job.id) == "ok"
    with pytest.raises(JobNotFound):
        job.reload()


def test_two_processes_saving_different_fields_lose_neither_change(database):
    job = NoteJob.create(note="original", priority=50)
    # both processes read the job before either writes
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    first = context.Process(target=_in_child, args=(database, "set_priority", job.id, 7, queue))
    second = context.Process(target=_in_child, args=(database, "set_note", job.id, "edited", queue))
    first.start()
    second.start()
    assert {queue.get(timeout=60), queue.get(timeout=60)} == {"ok"}
    first.join(timeout=60)
    second.join(timeout=60)
    stored = NoteJob.find(job.id)
    assert stored.priority == 7
    assert stored.note == "edited"


def test_stale_copies_saving_different_fields_keep_both_changes():
    job = NoteJob.create(note="original")
    copy_a, copy_b = NoteJob.find(job.id), NoteJob.find(job.id)
    copy_a.priority = 9
    copy_b.note = "changed"
    copy_a.save()
    copy_b.save()
    stored = NoteJob.find(job.id)
    assert (stored.priority, stored.note) == (9, "changed")


def test_a_forked_child_opens_its_own_connection(database):
    NoteJob.create(note="before fork")
    rjbatch.get_store().count_jobs({})  # the parent's connection is open
    context = multiprocessing.get_context("fork")
    queue = context.Queue()

    def child():
        queue.put(NoteJob.create(note="child").id)

    process = context.Process(target=child)
    process.start()
    child_id = queue.get(timeout=30)
    process.join(timeout=30)
    assert NoteJob.find(child_id).note == "child"
    assert NoteJob.count() == 2


def _create_solo(url: str, rounds: int, start, done, results) -> None:
    rjbatch.configure(database=url)
    from tests.sample_jobs import SoloJob

    for _ in range(rounds):
        start.wait()
        try:
            SoloJob.create()
            results.put("created")
        except rjbatch.ValidationError:
            results.put("refused")
        done.wait()


def test_two_processes_creating_a_singleton_at_the_same_moment_make_one(database):
    from tests.sample_jobs import SoloJob

    rounds = 20
    context = multiprocessing.get_context("spawn")
    start, done = context.Barrier(3), context.Barrier(3)
    results = context.Queue()
    processes = [context.Process(target=_create_solo, args=(database, rounds, start, done, results))
                 for _ in range(2)]
    for process in processes:
        process.start()
    try:
        for round_number in range(rounds):
            start.wait(timeout=60)  # both processes create at once
            outcomes = sorted(results.get(timeout=60) for _ in range(2))
            assert outcomes == ["created", "refused"], (round_number, outcomes)
            assert SoloJob.count() == 1
            SoloJob.first().destroy()
            done.wait(timeout=60)
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
    assert all(process.exitcode == 0 for process in processes)
