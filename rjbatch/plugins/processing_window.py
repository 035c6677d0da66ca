"""ProcessingWindow: a job runs only inside a window that opens on a cron schedule.

A job created (or retried) outside its window is scheduled for the window's next
start; one started outside it goes back to the queue with ``run_at`` at the next start
(Rocket Job left ``run_at`` alone, so workers could spin on it). The window is
``[start, start + processing_duration)``: its first second is inside.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rjbatch import clock
from rjbatch.job.callbacks import after_start, before_create, before_retry, before_validation
from rjbatch.job.fields import field
from rjbatch.plugins.base import JobMixin, check_schedule


class ProcessingWindow(JobMixin):
    """Mixin: ``processing_schedule = "30 8 * * *"``, ``processing_duration = timedelta(hours=12)``."""

    processing_schedule = field(str, user_editable=True, copy_on_restart=True, required=True)
    processing_duration = field(timedelta, user_editable=True, copy_on_restart=True, required=True)

    @before_validation
    def _window_check(self) -> None:
        check_schedule(self, "processing_schedule", "schedule")

    def is_processing_window_active(self) -> bool:
        from rjbatch import cron

        now = clock.now()
        opened = cron.previous_time(self.processing_schedule, now + timedelta(seconds=1))
        return now < opened + self.processing_duration

    def _next_window(self) -> datetime:
        from rjbatch import cron

        return cron.next_time(self.processing_schedule, clock.now())

    @before_create
    def _window_on_create(self) -> None:
        if self.processing_schedule and self.processing_duration and not self.is_processing_window_active():
            self.run_at = self._next_window()

    @before_retry
    def _window_on_retry(self) -> None:
        self._window_on_create()

    @after_start
    def _window_on_start(self) -> None:
        if self.is_processing_window_active():
            return
        next_start = self._next_window()
        self.logger.info("outside its processing window: re-scheduled to run at %s", next_start)
        worker = self.worker_name
        self.run_at = next_start
        self.fire("requeue", worker)
