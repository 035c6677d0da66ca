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

from rjbatch.job import Action, states
from rjbatch.job.callbacks import before_validation
from rjbatch.job.record import singleton_message
from rjbatch.plugins.base import JobMixin

ACTIVE = tuple(str(state) for state in states.ACTIVE)


class Singleton(JobMixin):
    """Mixin: ``class DailyImport(Singleton, Job)``; ``create`` raises while another is active."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.singleton_key = f"{cls.__module__}.{cls.__qualname__}"  # one per concrete class

    def can(self, action: Action | str) -> bool:
        """Retry is not offered while another instance is active: it would be refused."""
        if not super().can(action):
            return False
        return Action(action) is not Action.RETRY or not self._other_active()

    def _other_active(self) -> bool:
        return type(self).where(state__in=list(ACTIVE), _id__ne=self.id).exists()

    @before_validation
    def _singleton_check(self) -> None:
        if self.state in ACTIVE and self._other_active():
            self.errors.add("state", singleton_message(type(self).__name__))
