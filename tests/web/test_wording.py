"""Mission Control says what a user can do, in plain words."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rjbatch.batch import BatchJob
from rjbatch.testing import work_all
from rjbatch.web import create_app
from rjbatch.web.common import ago
from tests.web.helpers import USERS, client

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


class Picky(BatchJob):
    def perform(self, record):
        raise ValueError(f"bad {record}")


def test_only_those_who_may_fix_failed_records_are_told_to_fix_them():
    job = Picky()
    job.upload(["a"])
    job.save()
    work_all()
    app = create_app(users=USERS)
    viewer, editor = client(app, ("vic", "look")), client(app, ("ed", "fix"))
    assert "See the failed records" in viewer.get(f"/jobs/{job.id}").text
    assert "fix the failed records" not in viewer.get(f"/jobs/{job.id}").text
    assert "Fix or delete" not in viewer.get(f"/jobs/{job.id}/failed").text
    assert "See and fix the failed records" in editor.get(f"/jobs/{job.id}").text
    assert "Fix or delete" in editor.get(f"/jobs/{job.id}/failed").text


def test_one_second_is_singular(frozen_clock):
    from rjbatch import clock

    assert ago(clock.now() - timedelta(seconds=1)) == "1 second ago"
    assert ago(clock.now() - timedelta(seconds=5)) == "5 seconds ago"
