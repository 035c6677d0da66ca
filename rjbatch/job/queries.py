"""Finding jobs: the class-level shortcuts to ``Query``, and the operations on many jobs.

``MyJob.where(...)``, ``MyJob.failed()``... each start a ``Query`` over the class and
its subclasses; ``requeue_dead_server``, ``pause_all`` and ``resume_all`` fire events on
every job they find.
"""

from __future__ import annotations

import re
from typing import Any, Self

from bson import ObjectId

from rjbatch.errors import JobNotFound
from rjbatch.job import registry
from rjbatch.job.lifecycle import JobLifecycle
from rjbatch.job.query import Query
from rjbatch.job.states import Event


class JobQueries(JobLifecycle):
    """Class methods that find jobs (a query over the class and its subclasses)."""

    @classmethod
    def query(cls) -> Query[Self]:
        return Query(cls)

    @classmethod
    def where(cls, filter: dict[str, Any] | None = None, /, **equals: Any) -> Query[Self]:
        return Query(cls).where(filter, **equals)

    @classmethod
    def find(cls, job_id: str | ObjectId) -> Self:
        """The job with this id; raises JobNotFound (also for a job of another class)."""
        doc = cls._store().find_job(str(job_id))
        if doc is None or (cls._classes != ["Job"] and not registry.is_kind_of(doc, cls)):
            raise JobNotFound(f"{cls.__name__} {job_id} not found")
        return cls._from_doc(doc)  # the stored class: cls or a subclass of it

    @classmethod
    def first(cls) -> Self | None:
        return Query(cls).first()

    @classmethod
    def last(cls) -> Self | None:
        return Query(cls).last()

    @classmethod
    def count(cls) -> int:
        return Query(cls).count()

    @classmethod
    def all(cls) -> list[Self]:
        return Query(cls).all()

    @classmethod
    def delete_all(cls) -> int:
        return Query(cls).delete_all()

    @classmethod
    def destroy_all(cls) -> int:
        return Query(cls).destroy_all()

    @classmethod
    def queued(cls) -> Query[Self]:
        return Query(cls).queued()

    @classmethod
    def running(cls) -> Query[Self]:
        return Query(cls).running()

    @classmethod
    def completed(cls) -> Query[Self]:
        return Query(cls).completed()

    @classmethod
    def failed(cls) -> Query[Self]:
        return Query(cls).failed()

    @classmethod
    def aborted(cls) -> Query[Self]:
        return Query(cls).aborted()

    @classmethod
    def paused(cls) -> Query[Self]:
        return Query(cls).paused()

    @classmethod
    def scheduled(cls) -> Query[Self]:
        return Query(cls).scheduled()

    @classmethod
    def queued_now(cls) -> Query[Self]:
        return Query(cls).queued_now()

    @classmethod
    def counts_by_state(cls) -> dict[str, int]:
        """Jobs per state, plus ``scheduled`` and ``queued_now`` splits of queued."""
        return Query(cls).counts_by_state()

    # -- on many jobs ------------------------------------------------------------------
    @classmethod
    def requeue_dead_server(cls, name: str) -> int:
        """Requeue what a dead server (or one dead worker) was running.

        Returns how many jobs and batch slices went back to the queue.
        """
        from rjbatch.batch.sliced import requeue_slices_of

        requeued = requeue_slices_of(cls._store(), name)  # batch work shared by workers
        from rjbatch.job import Job

        for job in Job.running().where(worker_name__regex=f"^{re.escape(name)}(:|$)"):
            if job.may(Event.REQUEUE, name):
                shared = job._shares_work()
                job.requeue(name)
                requeued += 0 if shared else 1  # a batch job being processed stays running
        return requeued

    @classmethod
    def pause_all(cls) -> int:
        jobs = list(cls.running()) + list(cls.queued())
        for job in jobs:
            job.pause()
        return len(jobs)

    @classmethod
    def resume_all(cls) -> int:
        jobs = list(cls.paused())
        for job in jobs:
            job.resume()
        return len(jobs)
