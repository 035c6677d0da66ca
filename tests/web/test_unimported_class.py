"""Mission Control shows and downloads a batch job whose class it never imported exactly
as it would with the class: the stored category settings decide, not the class."""

from __future__ import annotations

import csv
import io

import pytest

from rjbatch.web import create_app
from tests.test_batch_data_path import _completed_in_another_process
from tests.web.helpers import USERS, client

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def test_job_page_and_category_downloads_of_a_class_mission_control_never_imported(tmp_path):
    job_id = _completed_in_another_process(tmp_path)  # FlightsJob, slice_size 3, main and late
    editor = client(create_app(users=USERS), ("ed", "fix"))
    page = editor.get(f"/jobs/{job_id}")
    assert page.status_code == 200
    assert "<th>Slice size</th><td>3</td>" in page.text
    late = editor.get(f"/jobs/{job_id}/output/download?category=late&format=csv")
    assert late.status_code == 200
    assert list(csv.reader(io.StringIO(late.text))) == [
        ["id", "carrier", "delay", "day", "late"], ["2", "AA", "30.0", "2026-01-02", "true"],
        ["4", "UA", "11.0", "2026-01-04", "true"]]
    as_parquet = editor.get(f"/jobs/{job_id}/output/download?category=late&format=parquet")
    import pyarrow.parquet as pq

    assert pq.read_table(io.BytesIO(as_parquet.content)).column("id").to_pylist() == [2, 4]
    browse = editor.get(f"/api/jobs/{job_id}/output?category=late")
    assert browse.json()["columns"] == ["id", "carrier", "delay", "day", "late"]
    assert [r["value"]["id"] for r in browse.json()["records"]] == [2, 4]
