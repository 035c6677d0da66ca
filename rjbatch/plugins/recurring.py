"""Cron: a job that schedules itself, and schedules its next run when it ends.

Saving a job whose ``cron_schedule`` is new or changed sets ``run_at`` to the next
occurrence (unless ``run_at`` was set in the same save). When it completes or is
aborted, the next instance is created with the ``copy_on_restart`` fields, so long runs
never pile up. When it fails, the next instance is created too, and the failed one
keeps its error but loses its schedule (a retry of it will not schedule again). With the
Retry plugin, retries come first and the schedule moves on only once they run out.
"""

from __future__ import annotations

from typing import Any

from rjbatch.job.callbacks import after_fail, before_save, before_validation
from rjbatch.job.fields import field
from rjbatch.plugins.base import check_schedule
from rjbatch.plugins.restart import Restart


class Cron(Restart):
    """Mixin: ``class NightlyJob(Cron, Job): cron_schedule = "0 1 * * * America/New_York"``."""

    cron_schedule = field(str, user_editable=True, copy_on_restart=True)

    @before_validation
    def _cron_check(self) -> None:
        check_schedule(self, "cron_schedule", "cron_schedule")

    @before_save
    def _cron_schedule_run_at(self) -> None:
        if not self.cron_schedule:
            return
        changed = self.changed_fields()
        if self.is_new_record:
            due = self.run_at is None
        else:
            due = "cron_schedule" in changed and "run_at" not in changed
        if due:
            from rjbatch import cron

            self.run_at = cron.next_time(self.cron_schedule)

    def _create_restarted_instance(self) -> Any:
        if not self.cron_schedule:
            return None  # a one-off run (or a failed instance): nothing to schedule
        return super()._create_restarted_instance()

    @after_fail
    def _restart_after_fail(self) -> None:  # replaces Restart's abort-on-fail
        if not self.is_failed or self.retry_pending() or not self.cron_schedule:
            return
        self._create_restarted_instance()
        self.cron_schedule = None
        if self.is_persisted:
            self.update_attribute("cron_schedule", None)
