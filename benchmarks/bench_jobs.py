"""Job classes the rjbatch benchmarks run in worker processes (``--jobs benchmarks/bench_jobs.py``)."""

from __future__ import annotations

from benchmarks.peers._tasks import noop
from benchmarks.peers.batch_peers import transform_row
from rjbatch import Job, field
from rjbatch.batch import BatchJob
from rjbatch.tabular import TabularInput, TabularOutput


class BenchNoopJob(Job):
    """The queue benchmark's job: the same probe-writing no-op every peer runs."""

    job_number = field(int)

    def perform(self) -> None:
        noop(self.job_number)


class BenchLinesJob(BatchJob):
    """Workload 1: short lines, no-op perform, every line written back in order."""

    slice_size = 1000
    collect_output = True
    destroy_on_complete = False

    def perform(self, line: str) -> str:
        return line


class BenchCsvJob(TabularInput, TabularOutput, BatchJob):
    """Workload 2: CSV rows as dicts, upper-case city, total = amount * quantity, CSV out."""

    slice_size = 1000
    collect_output = True
    destroy_on_complete = False
    tabular_output_header = ["id", "name", "email", "city", "country", "amount", "quantity", "date",
                             "status", "note", "total"]

    def perform(self, row: dict) -> dict:
        return transform_row(row)
