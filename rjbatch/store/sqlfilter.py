"""Translate the store's Mongo-like filters into SQL, for the SQL backends.

One translator, a dialect per backend: how a field is reached (a real column or a
path into the JSON document), how parameters are written and how values are encoded.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rjbatch.fields import format_datetime
from rjbatch.store.protocol import Filter, Order


def encode_value(value: Any) -> Any:
    """A Python value as the SQL parameter that compares equal to its stored form."""
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def dumps(value: Any) -> str:
    """JSON text with datetimes in the stored ISO form (sortable as text)."""
    return json.dumps(value, default=_json_default, separators=(",", ":"), ensure_ascii=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot store a {type(value).__name__} in a job document")


@dataclass
class Dialect:
    """How one SQL backend names fields and writes parameters."""

    columns: dict[str, str]
    doc_path: Callable[[str], str]
    placeholder: str = "?"
    json_param: Callable[[str], str] = field(default=lambda p: f"json({p})")
    regex: Callable[[str, str], str] = field(default=lambda expr, p: f"{expr} REGEXP {p}")
    class_match: Callable[[str], str] = field(default=lambda p: f"instr(classes, {p}) > 0")

    def expr(self, name: str) -> str:
        if name in self.columns:
            return self.columns[name]
        return self.doc_path(name)


class FilterError(ValueError):
    """A filter uses an operator the SQL stores do not understand."""


def where_clause(filter: Filter | None, dialect: Dialect) -> tuple[str, list[Any]]:
    """``(sql, params)`` for a filter; an empty filter is ``1=1``."""
    params: list[Any] = []
    sql = _and(filter or {}, dialect, params)
    return sql, params


def order_clause(order: Order, dialect: Dialect) -> str:
    if not order:
        return ""
    parts = [f"{dialect.expr(name)} {'DESC' if direction < 0 else 'ASC'}" for name, direction in order]
    return " ORDER BY " + ", ".join(parts)


def _and(filter: Filter, d: Dialect, params: list[Any]) -> str:
    parts = [_condition(key, value, d, params) for key, value in filter.items()]
    return "(" + " AND ".join(parts) + ")" if parts else "1=1"


def _condition(key: str, value: Any, d: Dialect, params: list[Any]) -> str:
    if key == "$or":
        return "(" + " OR ".join(_and(f, d, params) for f in value) + ")" if value else "0=1"
    if key == "$and":
        return "(" + " AND ".join(_and(f, d, params) for f in value) + ")" if value else "1=1"
    if key == "_class":
        params.append(f"|{value}|")
        return d.class_match(d.placeholder)
    expr = d.expr(key)
    if isinstance(value, dict) and value and all(k.startswith("$") for k in value):
        return "(" + " AND ".join(_operator(expr, op, arg, d, params) for op, arg in value.items()) + ")"
    return _operator(expr, "$eq", value, d, params)


def _param(value: Any, d: Dialect, params: list[Any]) -> str:
    if isinstance(value, dict | list):
        params.append(dumps(value))
        return d.json_param(d.placeholder)
    params.append(encode_value(value))
    return d.placeholder


def _operator(expr: str, op: str, arg: Any, d: Dialect, params: list[Any]) -> str:
    if op == "$eq":
        return f"{expr} IS NULL" if arg is None else f"{expr} = {_param(arg, d, params)}"
    if op == "$ne":
        if arg is None:
            return f"{expr} IS NOT NULL"
        return f"({expr} IS NULL OR {expr} != {_param(arg, d, params)})"
    if op in ("$lt", "$lte", "$gt", "$gte"):
        sign = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}[op]
        return f"{expr} {sign} {_param(arg, d, params)}"
    if op in ("$in", "$nin"):
        values = list(arg)
        has_null = any(v is None for v in values)
        values = [v for v in values if v is not None]
        listed = ", ".join(_param(v, d, params) for v in values)
        if op == "$in":
            parts = [f"{expr} IN ({listed})"] if values else []
            if has_null:
                parts.append(f"{expr} IS NULL")
            return "(" + " OR ".join(parts) + ")" if parts else "0=1"
        if not values:
            return f"{expr} IS NOT NULL" if has_null else "1=1"
        if has_null:
            return f"({expr} IS NOT NULL AND {expr} NOT IN ({listed}))"
        return f"({expr} IS NULL OR {expr} NOT IN ({listed}))"
    if op == "$exists":
        return f"{expr} IS {'NOT ' if arg else ''}NULL"
    if op == "$regex":
        pattern = arg.pattern if hasattr(arg, "pattern") else str(arg)
        params.append(pattern)
        return d.regex(expr, d.placeholder)
    if op == "$not":
        if isinstance(arg, dict) and set(arg) == {"$regex"}:
            return f"({expr} IS NULL OR NOT {_operator(expr, '$regex', arg['$regex'], d, params)})"
        if hasattr(arg, "pattern"):
            return f"({expr} IS NULL OR NOT {_operator(expr, '$regex', arg, d, params)})"
        raise FilterError(f"$not takes a $regex, got {arg!r}")
    raise FilterError(f"unsupported filter operator {op}")
