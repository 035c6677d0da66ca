"""Batch jobs of the data-path tests, loaded by the CLI (``--jobs tests/data_path_jobs.py``).

Kept out of the test modules on purpose: a test process that never imports this file
reads the jobs as a process without their classes would (a downloader, Mission Control).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from rjbatch.batch import BatchJob, Result
from rjbatch.tabular import TabularInput, TabularOutput


class FlightsJob(TabularInput, TabularOutput, BatchJob):
    """Two tabular output categories; perform adds a column and returns typed values."""

    slice_size = 3
    output_categories = ["main", "late"]

    def perform(self, row: dict) -> dict | Result:
        delay = float(row["delay"])
        out = {"id": int(row["id"]), "carrier": row["carrier"], "delay": delay,
               "late": delay > 10, "day": date.fromisoformat(row["day"]) if row.get("day") else None}
        return Result(out, "late") if out["late"] else out


class TotalsJob(TabularInput, TabularOutput, BatchJob):
    """Adds a total; the default header is the input's columns, then ``total``."""

    slice_size = 2

    def perform(self, row: dict) -> dict:
        if row["qty"] in (None, "", "x"):
            raise ValueError(f"qty {row['qty']!r} is not a number")
        row["total"] = int(row["price"]) * int(row["qty"])
        return row


class EchoRowsJob(TabularInput, TabularOutput, BatchJob):
    """Rows out as they came in: the formats' parsing and rendering alone."""

    slice_size = 2

    def perform(self, row: dict) -> dict:
        return row


class OrderLinesJob(TabularInput, TabularOutput, BatchJob):
    """The same rows from any tabular format: typed, normalised, a total added."""

    slice_size = 2

    def perform(self, row: dict) -> dict:
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"]))
        price = Decimal(str(row["price"])).quantize(Decimal("0.01"))
        qty = int(row["qty"])
        return {"order": str(row["order"]), "day": day, "price": price, "qty": qty, "total": price * qty}


class FixedOrderLinesJob(OrderLinesJob):
    """The same, from a fixed-width file described by a layout."""

    tabular_input_options = {"format_options": {"layout": [
        {"key": "order", "size": 4}, {"key": "day", "size": 10}, {"key": "price", "size": 7},
        {"key": "qty", "size": 3}]}}
