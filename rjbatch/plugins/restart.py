"""Restart: when a job completes or is aborted, a new instance takes its place.

Only ``copy_on_restart`` fields (and a batch job's category settings) are copied. A
failed job is aborted, which restarts it — unless a ``Retry`` plugin on the same job
still has retries left: then the retry comes first and the restart only once they run
out (Rocket Job did both at once).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from rjbatch.errors import ValidationError
from rjbatch.job.callbacks import after_abort, after_complete, after_fail
from rjbatch.plugins.base import JobMixin

log = logging.getLogger("rjbatch.plugins")

SAVE_TRIES = 10
SAVE_PAUSE_SECONDS = 0.5


class Restart(JobMixin):
    """Mixin: ``class NightlyJob(Restart, Job)``."""

    @after_complete
    def _restart_after_complete(self) -> None:
        self._create_restarted_instance()

    @after_abort
    def _restart_after_abort(self) -> None:
        self._create_restarted_instance()

    @after_fail
    def _restart_after_fail(self) -> None:
        if not self.is_failed or self.retry_pending():
            return
        self.fire("abort")

    def restart_values(self) -> dict[str, Any]:
        """The values the next instance starts with."""
        values = {name: getattr(self, name) for name in self.copy_on_restart_fields()}
        for name in ("input_categories", "output_categories"):
            if name in self.field_names():
                values[name] = [
                    {k: v for k, v in category.items() if k not in ("columns", "file_name")}
                    for category in getattr(self, name) or []
                ]
        return values

    def _create_restarted_instance(self) -> Any:
        if self.is_expired:
            log.info("%s %s expired: not restarted", type(self).__name__, self.id)
            return None
        job = type(self)(**self.restart_values())
        for attempt in range(1, SAVE_TRIES + 1):
            try:
                return job.save()
            except ValidationError as exc:  # e.g. a Singleton whose old instance is still running
                if attempt == SAVE_TRIES:
                    log.error("could not restart %s after %d tries: %s", type(self).__name__, attempt, exc)
                    return None
                time.sleep(SAVE_PAUSE_SECONDS)
        return None

