"""Singleton: at most one instance of the class queued, running or paused at a time.

Every instance is stored with its class's import path as its ``singleton_key``, and each store
keeps a unique index on it over the queued, running and paused jobs: two processes creating one
at the same moment cannot both succeed, whatever the timing (Rocket Job checked, then
inserted, and both could win). The check on save stays, for a clear error in the common
case; the index is the guarantee. Rocket Job's message said "paused" but did not count
paused instances; rjbatch counts them.
"""

from __future__ import annotations

from typing import Any

from rjbatch.job import states
from rjbatch.job.callbacks import before_validation
from rjbatch.job.record import singleton_message
from rjbatch.plugins.base import JobMixin

ACTIVE = tuple(str(state) for state in states.ACTIVE)


class Singleton(JobMixin):
    """Mixin: ``class DailyImport(Singleton, Job)``; ``create`` raises while another is active."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.singleton_key = f"{cls.__module__}.{cls.__qualname__}"  # one per concrete class

    @before_validation
    def _singleton_check(self) -> None:
        if self.state not in ACTIVE:
            return
        other = type(self).where(state__in=list(ACTIVE), _id__ne=self.id).first()
        if other is not None:
            self.errors.add("state", singleton_message(type(self).__name__))
