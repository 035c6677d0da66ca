"""The base plugin mixins declare: ``Job`` to a type checker, ``object`` at run time.

A mixin such as ``Cron`` uses the job's fields (``self.run_at = ...``); a type checker
must know them there and in ``class Nightly(Cron, Job)``, while at run time the mixin
stays a plain class that the job class's MRO places in front of ``Job``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rjbatch.batch.job import BatchJob as BatchJobMixin
    from rjbatch.job import Job as JobMixin
else:
    JobMixin = object
    BatchJobMixin = object



def check_schedule(job: Any, name: str, label: str) -> None:
    """Add a validation error to ``job`` when its cron field ``name`` does not parse."""
    expression = getattr(job, name)
    if not expression:
        return
    from rjbatch import cron

    try:
        cron.parse(expression)
    except cron.InvalidCron as exc:
        job.errors.add(name, f'Invalid {label}: "{expression}": {exc.reason}')


__all__ = ["BatchJobMixin", "JobMixin", "check_schedule"]
