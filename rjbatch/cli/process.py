"""``rjbatch process``: upload a file, process it on local workers, download the output.

The upload runs in the foreground while worker processes already work on the first
slices; then the command waits for the job, downloads its output and exits non-zero
if the job failed. Three progress bars: bytes read, records processed, records written.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

from rjbatch import config, servers
from rjbatch.batch.job import BatchJob
from rjbatch.batch.sliced import requeue_slices_of
from rjbatch.worker.loop import WorkerSpec, worker_main

logger = logging.getLogger("rjbatch.process")


@dataclass
class ProcessOptions:
    job_class: type[BatchJob]
    source: str
    output: str
    workers: int = 0
    values: dict[str, Any] = field(default_factory=dict)
    category: str = "main"
    jobs: list[str] | None = None
    keep: bool = False
    progress: bool = True
    upload_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProcessResult:
    job: BatchJob
    records_uploaded: int
    records_written: int | None  # to the --output file
    seconds: float
    #: every output category written: name -> (file, records)
    outputs: dict[str, tuple[str, int]] = field(default_factory=dict)


def category_file(output: str, category: str) -> str:
    """Where a category other than the one asked for goes: ``out.csv.gz`` -> ``out.refunds.csv.gz``."""
    folder, _, name = output.rpartition("/")
    stem, dot, extensions = name.partition(".")
    return f"{folder}{'/' if folder else ''}{stem}.{category}{dot}{extensions}"


class _LocalWorkers:
    """Worker processes that work on one job only; dead ones are replaced, their slices requeued."""

    def __init__(self, job: BatchJob, count: int, jobs: list[str]) -> None:
        self.job = job
        self.count = count
        self.jobs = jobs
        self.context = multiprocessing.get_context("spawn")
        self.name = f"{servers.default_server_name()}:process"
        self.next_id = 1
        self.running: dict[int, tuple[BaseProcess, Any, str]] = {}

    def start(self) -> None:
        while len(self.running) < self.count:
            spec = WorkerSpec(
                server_name=self.name, worker_id=self.next_id, database=config.get_store().url,
                jobs=self.jobs, only_job_id=self.job.id, max_poll_seconds=0.5,
                re_check_seconds=config.settings.re_check_seconds, log_level=logging.CRITICAL,
                supervisor_pid=os.getpid(),
            )
            self.next_id += 1
            stop = self.context.Event()
            process = self.context.Process(target=worker_main, args=(spec, stop), name=spec.name)
            process.start()
            self.running[spec.worker_id] = (process, stop, spec.name)

    def check(self) -> None:
        """Replace workers that died; their running slices go back to the queue at once."""
        for worker_id, (process, _stop, name) in list(self.running.items()):
            if process.exitcode is not None:
                del self.running[worker_id]
                requeued = requeue_slices_of(config.get_store(), name)
                logger.warning("worker %s died (exit code %s): requeued %d slice(s)",
                               name, process.exitcode, requeued)
        self.start()

    def stop(self) -> None:
        for _process, stop, _name in self.running.values():
            stop.set()
        deadline = time.monotonic() + 30
        for process, _stop, name in self.running.values():
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
            requeue_slices_of(config.get_store(), name)
        self.running.clear()


def process_file(options: ProcessOptions) -> ProcessResult:
    started = time.monotonic()
    cls = options.job_class
    keep_after = options.keep or cls.destroy_on_complete is False  # None: the batch default
    job = cls(**options.values)
    job.destroy_on_complete = False  # downloaded first, destroyed after unless --keep
    job.save()
    workers = _LocalWorkers(job, options.workers or os.cpu_count() or 1,
                            list(options.jobs or config.job_sources()))
    progress = _Progress(options.progress, options.source)
    outputs: dict[str, tuple[str, int]] = {}
    try:
        with progress:
            workers.start()
            try:
                uploaded = job.upload(options.source, on_progress=lambda n, raw: progress.read(n, raw, job),
                                      **options.upload_options)
            except BaseException:
                job.destroy()  # the upload removed its slices: no job is left behind
                raise
            progress.uploaded(uploaded)
            while True:
                job.reload()
                if not job.is_running and not job.is_queued:
                    break
                progress.processed(job)
                workers.check()
                time.sleep(0.1)
            progress.processed(job)
            workers.stop()
            if job.is_completed:
                outputs = _download_all(job, options, progress)
    except BaseException:
        workers.stop()
        raise
    if job.is_completed and not keep_after:
        job.destroy()
    written = outputs[options.category][1] if options.category in outputs else None
    return ProcessResult(job, uploaded, written, time.monotonic() - started, outputs)


def _download_all(job: BatchJob, options: ProcessOptions, progress: _Progress) -> dict[str, tuple[str, int]]:
    """The category asked for to ``--output``; every other one that holds records beside it
    (``out.csv`` -> ``out.refunds.csv``), so no output is lost when the job goes."""
    targets = {options.category: options.output}
    if options.category == "main":
        for entry in job.output_categories:
            name = entry["name"]
            if name != "main" and job.sliced_output(name).count():
                targets[name] = category_file(options.output, name)
    progress.writing(sum(job.sliced_output(name).count() for name in targets))
    outputs: dict[str, tuple[str, int]] = {}
    done = 0
    for name, target in targets.items():
        count = job.download(target, name, on_progress=lambda n, done=done: progress.written(done + n))
        done += count
        outputs[name] = (target, count)
    progress.written(done)
    return outputs


class _Progress:
    """Rich progress bars on a terminal; silent otherwise."""

    def __init__(self, enabled: bool, source: str) -> None:
        self.enabled = enabled
        self.source = source
        self.bar: Any = None
        self._counted_at = 0.0

    def __enter__(self) -> _Progress:
        if not self.enabled:
            return self
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        size = os.path.getsize(self.source) if os.path.isfile(self.source) else None
        self.bar = Progress(
            TextColumn("{task.description:<10}"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), transient=False,
        )
        self._download_column = DownloadColumn()
        self._count_column = MofNCompleteColumn()
        self.bar.__enter__()
        self.read_task = self.bar.add_task("read", total=size, detail="")
        self.process_task = self.bar.add_task("processed", total=None, detail="")
        self.write_task = self.bar.add_task("written", total=None, detail="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def read(self, records: int, raw_bytes: int, job: BatchJob | None = None) -> None:
        if self.bar is None:
            return
        self.bar.update(self.read_task, completed=raw_bytes, detail=f"{records:,} records")
        now = time.monotonic()
        if job is not None and now - self._counted_at >= 0.25:  # the workers are already at it
            self._counted_at = now
            counts = job.input.counts()
            done = records - counts.queued_records - counts.running_records - counts.failed_records
            self.bar.update(self.process_task, total=max(records, 1), completed=max(done, 0),
                            detail=f"{max(done, 0):,} records (the upload goes on)")

    def uploaded(self, records: int) -> None:
        if self.bar is not None:
            task = self.bar.tasks[self.read_task]
            self.bar.update(self.read_task, completed=task.total or 1, total=task.total or 1,
                            detail=f"{records:,} records")
            self.bar.update(self.process_task, total=max(records, 1))

    def processed(self, job: BatchJob) -> None:
        if self.bar is not None and job.record_count:
            counts = job.input.counts()
            left = counts.queued_records + counts.running_records
            failed = counts.failed_records
            done = job.record_count - left
            self.bar.update(self.process_task, completed=done,
                            detail=f"{done:,} records" + (f", {failed:,} in failed slices" if failed else ""))

    def writing(self, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.write_task, total=max(total, 1))

    def written(self, records: int) -> None:
        if self.bar is not None:
            self.bar.update(self.write_task, completed=records, detail=f"{records:,} records")


