"""Helpers that make job tests synchronous: no worker processes, no sleeps."""

from __future__ import annotations

from rjbatch.worker.inline import work_all, work_next

__all__ = ["work_all", "work_next"]
