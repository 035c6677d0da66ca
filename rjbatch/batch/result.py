"""Sending a record's result to a named output category."""

from __future__ import annotations

from typing import Any, NamedTuple


class Result(NamedTuple):
    """``return Result(line, "invalid")``: this value goes to the ``invalid`` category."""

    value: Any
    category: str = "main"


class Results(list):
    """Several results from one record, each to its own category."""
