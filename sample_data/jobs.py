"""Example jobs for the sample files (``--jobs sample_data/jobs.py``)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from rjbatch import Job, field
from rjbatch.batch import BatchJob, Result
from rjbatch.tabular import TabularInput, TabularOutput


class OrderTotalsJob(TabularInput, TabularOutput, BatchJob):
    """Each order row gets a total; refunds go to their own category."""

    slice_size = 500
    collect_output = True
    output_categories = ["main", "refunds"]
    tabular_output_header = ["order_id", "customer", "city", "country", "amount", "quantity", "total",
                             "status"]

    def perform(self, row: dict) -> dict | Result:
        try:
            amount = Decimal(row["amount"])
        except (InvalidOperation, TypeError):
            raise ValueError(f"amount {row['amount']!r} is not a number") from None
        quantity = int(row["quantity"])
        if quantity < 1:
            raise ValueError(f"quantity {quantity} must be at least 1")
        row["city"] = row["city"].upper()
        row["total"] = str(amount * quantity)
        if row["status"] == "refunded":
            return Result(row, "refunds")
        return row


class ReverseJob(BatchJob):
    """Reverses each line; short lines go to the ``invalid`` category."""

    collect_output = True
    output_categories = ["main", "invalid"]

    def perform(self, line: str) -> str | Result:
        if len(line) < 5:
            return Result(line, "invalid")
        return line[::-1]


class HelloJob(Job):
    """The smallest job: ``rjbatch create HelloJob --set name=you`` then ``rjbatch work``."""

    name = field(str, default="World")

    def perform(self) -> str:
        print(f"Hello {self.name}")
        return self.name
