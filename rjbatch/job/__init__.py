"""The job: a durable unit of work. Subclass ``Job`` and write ``perform``.

``Job`` is put together from parts a reader can take one at a time:

- ``definition``: building a job class (``JobMeta``), the names a field may not take;
- ``record``: fields, values, validation and persistence (``JobRecord``);
- ``lifecycle``: the state machine (its table is in ``states``), actions, running and
  the worker's contract: ``from_claim``, ``begin``, ``work`` (``JobLifecycle``);
- ``queries``: ``MyJob.where(...)`` and friends (``JobQueries``);
- ``display``: run time, ``as_dict``, ``status`` (``JobDisplay``).
"""

from __future__ import annotations

from rjbatch.job.context import INLINE_WORKER, WorkContext
from rjbatch.job.definition import RESERVED, JobMeta
from rjbatch.job.display import JobDisplay, seconds_as_duration
from rjbatch.job.lifecycle import Action
from rjbatch.job.queries import JobQueries
from rjbatch.job.states import Event, JobState, SliceState, SubState


class Job(JobDisplay, JobQueries, metaclass=JobMeta):
    """A durable unit of work. Subclass it and write ``perform``."""


__all__ = ["INLINE_WORKER", "RESERVED", "Action", "Event", "Job", "JobMeta", "JobState", "SliceState",
           "SubState", "WorkContext", "seconds_as_duration"]
