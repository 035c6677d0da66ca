"""Every test gets its own SQLite file, so tests never see each other's jobs."""

from __future__ import annotations

import pytest

import rjbatch
from rjbatch import config


@pytest.fixture(autouse=True)
def database(tmp_path, monkeypatch):
    monkeypatch.delenv("RJBATCH_DATABASE", raising=False)
    monkeypatch.delenv("RJBATCH_JOBS", raising=False)
    url = f"sqlite:///{tmp_path}/rjbatch.db"
    config.reset_store()
    rjbatch.configure(database=url)
    yield url
    config.reset_store()
    config.settings.database = None


@pytest.fixture
def frozen_clock():
    from datetime import UTC, datetime

    from rjbatch import clock

    with clock.frozen(datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)) as frozen:
        yield frozen
