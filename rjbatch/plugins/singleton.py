"""Singleton: at most one instance of the class queued, running or paused at a time.

Checked on every save of an instance that is itself queued, running or paused. Rocket
Job's message said "paused" but did not count paused instances; rjbatch counts them.
"""

from __future__ import annotations

from rjbatch.callbacks import before_validation

ACTIVE = ("queued", "running", "paused")


class Singleton:
    """Mixin: ``class DailyImport(Singleton, Job)``; ``create`` raises while another is active."""

    @before_validation
    def _singleton_check(self) -> None:
        if self.state not in ACTIVE:
            return
        other = type(self).where(state__in=list(ACTIVE), _id__ne=self.id).first()
        if other is not None:
            self.errors.add(
                "state", f"Another instance of {type(self).__name__} is already running, queued, or paused"
            )
