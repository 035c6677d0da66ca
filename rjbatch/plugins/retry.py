"""Retry: a failed job is retried later, with Delayed Job's backoff, up to ``retry_limit``.

The delay before retry number c+1 is ``c**4 + 15 + randint(0, 29) * (c + 1)`` seconds:
15–44 s, then 16–74 s, ... about three weeks over 25 retries. The last exception is kept
while retries remain (Rocket Job's docs said it is cleared; its code kept it), so the
reason stays visible.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from rjbatch import clock
from rjbatch.job.callbacks import after_fail
from rjbatch.job.fields import field, parse_datetime
from rjbatch.plugins.base import JobMixin


def retry_delay(failures: int, rng: random.Random | None = None) -> timedelta:
    """How long to wait after ``failures`` earlier failures (Delayed Job's formula)."""
    jitter = (rng or random).randint(0, 29)
    return timedelta(seconds=failures**4 + 15 + jitter * (failures + 1))


class Retry(JobMixin):
    """Mixin: ``class FlakyJob(Retry, Job): retry_limit = 5``. ``retry_limit = 0`` disables it."""

    retry_limit = field(int, 25, user_editable=True, copy_on_restart=True, required=True)
    failed_at_list = field(list, [])

    def retry_pending(self) -> bool:
        """A failed job with retries left, not expired, is retried by this plugin."""
        return (self.is_failed and not self.is_expired
                and len(self.failed_at_list or []) < (self.retry_limit or 0))

    @after_fail
    def _retry_after_fail(self) -> None:
        if not self.retry_pending():
            return
        now = clock.now()
        failures = len(self.failed_at_list or [])
        self.run_at = now + retry_delay(failures)
        self.failed_at_list = [*(self.failed_at_list or []), now]
        exception = self.exception
        self.fire("retry")
        if exception is not None:
            self.exception = exception
            if self.is_persisted:
                self.update_attribute("exception", exception)

    @property
    def retry_count(self) -> int:
        return len(self.failed_at_list or [])

    @property
    def failure_times(self) -> list[datetime]:
        """When each earlier attempt failed, as datetimes (a list field stores them as text)."""
        return [parse_datetime(at) if isinstance(at, str) else at for at in self.failed_at_list or []]
