"""Jobs the web tests (TestClient and browser) act on."""

from __future__ import annotations

from rjbatch import Job, field
from rjbatch.batch import BatchJob
from rjbatch.testing import work_all


class WebNoteJob(Job):
    destroy_on_complete = False
    pausable = True
    note = field(str, default="")

    def perform(self):
        return None


class WebBoomJob(Job):
    destroy_on_complete = False

    def perform(self):
        raise ValueError("the <b>bad</b> thing")


class WebLinesJob(BatchJob):
    """Upper-cases lines; fails on the line "bad"."""

    destroy_on_complete = False
    collect_output = True
    slice_size = 2

    def perform(self, line):
        if line == "bad":
            raise ValueError(f"cannot take {line!r}")
        return line.upper()


def failed_batch_job() -> WebLinesJob:
    """A batch job of five lines whose third slice failed on "bad"."""
    job = WebLinesJob(description="lines")
    job.upload(["a", "b", "bad", "c", "d"])
    job.save()
    work_all()
    job.reload()
    assert job.state == "failed"
    return job
