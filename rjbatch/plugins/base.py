"""The base plugin mixins declare: ``Job`` to a type checker, ``object`` at run time.

A mixin such as ``Cron`` uses the job's fields (``self.run_at = ...``); a type checker
must know them there and in ``class Nightly(Cron, Job)``, while at run time the mixin
stays a plain class that the job class's MRO places in front of ``Job``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rjbatch.batch.job import BatchJob as BatchJobMixin
    from rjbatch.job import Job as JobMixin
else:
    JobMixin = object
    BatchJobMixin = object

__all__ = ["BatchJobMixin", "JobMixin"]
