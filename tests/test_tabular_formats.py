"""Tabular input in every format, through ``rjbatch process`` and through ``upload`` then a
worker: the same rows, the same output, new columns kept, dates as dates."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from tests.test_cli import rjbatch

JOBS = str(Path(__file__).with_name("data_path_jobs.py"))
ROWS = [  # order, day, price, qty
    ("1", date(2026, 1, 1), Decimal("2.50"), 3),
    ("2", date(2026, 2, 28), Decimal("10.00"), 1),
    ("3", date(2026, 12, 31), Decimal("0.99"), 12),
    ("4", date(2025, 6, 15), Decimal("7.25"), 4),
    ("5", date(2026, 7, 4), Decimal("100.00"), 2),
]
EXPECTED = "order,day,price,qty,total\n" + "".join(
    f"{o},{d.isoformat()},{p},{q},{p * q}\n" for o, d, p, q in ROWS)


def write_input(folder: Path, fmt: str) -> Path:
    """The rows in one format, written as its own tools write it."""
    header = ["order", "day", "price", "qty"]
    if fmt in ("csv", "psv"):
        sep = "," if fmt == "csv" else "|"
        text = sep.join(header) + "\n" + "".join(sep.join([o, d.isoformat(), str(p), str(q)]) + "\n"
                                                 for o, d, p, q in ROWS)
        path = folder / f"orders.{fmt}"
        path.write_text(text)
    elif fmt == "jsonl":
        import json

        path = folder / "orders.jsonl"
        path.write_text("".join(json.dumps({"order": o, "day": d.isoformat(), "price": str(p), "qty": q}) + "\n"
                                for o, d, p, q in ROWS))
    elif fmt == "xlsx":
        import openpyxl

        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append(header)
        for o, d, p, q in ROWS:
            sheet.append([int(o), d, float(p), q])
            sheet.cell(sheet.max_row, 2).number_format = "yyyy-mm-dd"
        path = folder / "orders.xlsx"
        book.save(path)
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({"order": [o for o, *_ in ROWS], "day": pa.array([d for _, d, _, _ in ROWS], pa.date32()),
                          "price": pa.array([p for _, _, p, _ in ROWS], pa.decimal128(9, 2)),
                          "qty": pa.array([q for *_, q in ROWS], pa.int32())})
        path = folder / "orders.parquet"
        pq.write_table(table, path)
    else:  # fixed width: order 4, day 10, price 7, qty 3
        path = folder / "orders.txt"
        path.write_text("".join(f"{o:<4}{d.isoformat()}{p!s:>7}{q:>3}\n" for o, d, p, q in ROWS))
    return path


FORMATS = ("csv", "psv", "jsonl", "xlsx", "parquet", "fixed")


def job_for(fmt: str) -> str:
    return "FixedOrderLinesJob" if fmt == "fixed" else "OrderLinesJob"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_tabular_format_through_process_and_through_upload_then_a_worker(tmp_path, fmt):
    source = write_input(tmp_path, fmt)
    rjbatch("process", source.name, "--job", job_for(fmt), "--jobs", JOBS, "--workers", "2",
            "--output", "processed.csv", "--quiet", cwd=tmp_path)
    assert (tmp_path / "processed.csv").read_text() == EXPECTED

    job_id = rjbatch("upload", source.name, "--job", job_for(fmt), "--jobs", JOBS, cwd=tmp_path).stdout.strip()
    server = subprocess.Popen([sys.executable, "-m", "rjbatch", "worker", "--workers", "2", "--jobs", JOBS],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while '"completed"' not in rjbatch("show", job_id, cwd=tmp_path).stdout:
            assert time.monotonic() < deadline, "the worker did not complete the job"
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(30)
    rjbatch("download", job_id, "worked.csv", cwd=tmp_path)
    rjbatch("download", job_id, "worked.parquet", cwd=tmp_path)
    assert (tmp_path / "worked.csv").read_text() == EXPECTED
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "worked.parquet")
    assert table.column("day").to_pylist() == [d for _, d, _, _ in ROWS]  # dates as dates
    assert table.column("total").to_pylist() == [p * q for _, _, p, q in ROWS]  # decimals exact


@pytest.mark.slow
def test_an_xlsx_workbook_of_many_rows_completes_under_process_with_two_workers(tmp_path):
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["order", "day", "price", "qty"])
    for n in range(1, 20_001):
        sheet.append([n, date(2026, 1, 1 + n % 28), n % 100 + 0.5, n % 7 + 1])
    book.save(tmp_path / "orders.xlsx")
    rjbatch("process", "orders.xlsx", "--job", "OrderLinesJob", "--jobs", JOBS, "--workers", "2",
            "--output", "out.csv", "--quiet", cwd=tmp_path)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert len(rows) == 20_000
    for n, row in enumerate(rows, 1):
        price = Decimal(str(n % 100 + 0.5)).quantize(Decimal("0.01"))
        assert row == {"order": str(n), "day": date(2026, 1, 1 + n % 28).isoformat(), "price": str(price),
                       "qty": str(n % 7 + 1), "total": str(price * (n % 7 + 1))}
