"""Job classes used by tests that run in other processes (they must be importable)."""

from __future__ import annotations

import os
import time
from datetime import date

import rjbatch
from rjbatch import Job, field
from rjbatch.batch import BatchJob
from rjbatch.plugins import Cron, Singleton


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


def append_line(path: str, line: str) -> None:
    """One atomic append (O_APPEND, one write): safe from many processes at once."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


class RecordJob(Job):
    """Appends "<priority> <id> <pid>" to a file when performed."""

    log_path = field(str)

    def perform(self):
        append_line(self.log_path, f"{self.priority} {self.id} {os.getpid()}")


class FirstRunHangsJob(Job):
    """The first run writes its pid to a marker file and hangs; later runs finish."""

    destroy_on_complete = False
    marker = field(str)
    hang_seconds = field(float, 60.0)

    def perform(self):
        if not os.path.exists(self.marker):
            append_line(self.marker, str(os.getpid()))
            time.sleep(self.hang_seconds)
        return "done"


class ThrottledJob(Job):
    """At most one runs at a time, across every worker."""

    throttle_running_jobs = 1
    log_path = field(str)

    def perform(self):
        append_line(self.log_path, f"start {time.time()}")
        time.sleep(0.05)
        append_line(self.log_path, f"end {time.time()}")


class DoubleJob(BatchJob):
    """Doubles each number; pauses briefly every ``pause_every`` records so tests can
    kill workers in the middle of the job."""

    collect_output = True
    destroy_on_complete = False
    pause_every = field(int, 0)
    pause_seconds = field(float, 0.005)

    def perform(self, number):
        if self.pause_every and number % self.pause_every == 0:
            time.sleep(self.pause_seconds)
        return number * 2


class TickJob(Cron, Job):
    """Every second; appends the occurrence it was scheduled for."""

    cron_schedule = "* * * * * * UTC"
    log_path = field(str, copy_on_restart=True)

    def perform(self):
        append_line(self.log_path, self.run_at.isoformat())


class LinesImportJob(BatchJob):
    """Dirmon's target in tests: upper-cases each line."""

    collect_output = True
    destroy_on_complete = False

    def perform(self, line):
        return line.upper()


class CallbackJob(Job):
    """Destroyed on completion (the default) although it has an ``after_complete`` callback."""

    log_path = field(str)

    @rjbatch.after_complete
    def note_completion(self):
        append_line(self.log_path, self.id)

    def perform(self):
        return None


class SpanJob(Job):
    """Logs "start <pid> <time>" and, after sleeping, "end <pid> <time>": runs must not overlap."""

    destroy_on_complete = False
    log_path = field(str)
    sleep_seconds = field(float, 3.0)

    def perform(self):
        append_line(self.log_path, f"start {os.getpid()} {time.time()}")
        time.sleep(self.sleep_seconds)
        append_line(self.log_path, f"end {os.getpid()} {time.time()}")


class SlowRecordsJob(BatchJob):
    """Logs every perform call; each record takes ``pause_seconds``."""

    collect_output = True
    destroy_on_complete = False
    slice_size = 2
    log_path = field(str)
    pause_seconds = field(float, 0.3)

    def perform(self, number):
        append_line(self.log_path, str(number))
        time.sleep(self.pause_seconds)
        return number * 2


class SoloJob(Singleton, Job):
    """At most one queued, running or paused at a time."""

    def perform(self):
        return None
