"""Job classes used by tests that run in other processes (they must be importable)."""

from __future__ import annotations

import os
import time
from datetime import date

from rjbatch import Job, field


class NoteJob(Job):
    destroy_on_complete = False
    note = field(str)
    counter = field(int, 0)

    def perform(self):
        self.counter += 1
        return self.note


class SleepJob(Job):
    destroy_on_complete = False
    sleep_seconds = field(float, 0.0)
    pid = field(int)

    def perform(self):
        self.pid = os.getpid()
        time.sleep(self.sleep_seconds)


class DatedJob(Job):
    destroy_on_complete = False
    report_date = field(date, default=lambda: date.today())
