"""Housekeeping: old jobs removed by state, zombie servers removed and their work requeued."""

from __future__ import annotations

from datetime import timedelta

from rjbatch import clock, config, servers
from rjbatch.job import Job
from rjbatch.job.fields import field
from rjbatch.plugins import Cron, Singleton


class HousekeepingJob(Cron, Singleton, Job):
    """Every 15 minutes by default. A retention of ``None`` keeps jobs in that state."""

    priority = 25
    description = "Cleans out historical jobs, and zombie servers."
    cron_schedule = "*/15 * * * * UTC"
    aborted_retention = field(timedelta, timedelta(days=7), user_editable=True, copy_on_restart=True)
    completed_retention = field(timedelta, timedelta(days=7), user_editable=True, copy_on_restart=True)
    failed_retention = field(timedelta, timedelta(days=14), user_editable=True, copy_on_restart=True)
    paused_retention = field(timedelta, user_editable=True, copy_on_restart=True)
    queued_retention = field(timedelta, user_editable=True, copy_on_restart=True)
    destroy_zombies = field(bool, True, user_editable=True, copy_on_restart=True)

    def perform(self) -> dict[str, int]:
        now = clock.now()
        removed: dict[str, int] = {}
        for state in ("aborted", "completed", "failed", "paused"):
            retention = getattr(self, f"{state}_retention")
            if retention is not None:
                query = Job.where(state=state, completed_at__lte=now - retention)
                removed[state] = query.destroy_all()
        if self.queued_retention is not None:
            query = Job.where(state="queued", created_at__lte=now - self.queued_retention)
            removed["queued"] = query.where(_id__ne=self.id).destroy_all()
        if self.destroy_zombies:
            removed["zombie_servers"] = len(servers.destroy_zombies(config.get_store()))
        return removed
