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

from rjbatch.job.fields import format_datetime
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
    """How one SQL backend names fields and writes parameters.

    The defaults are SQLite's. A field that is not a real column is read from the JSON
    document by the SQL ``doc_path`` gives for its dotted name, ``(expression, the
    expression as text for $regex, its parameter)``: the expression has one placeholder,
    for the path (SQLite: a JSON path, PostgreSQL: a ``text[]``), so no field name is
    ever pasted into SQL text. PostgreSQL compares document fields with JSON parameters
    (``doc_param``), keeps datetimes typed for its ``timestamptz`` columns
    (``column_value``), writes JSON that ``jsonb`` accepts (``json_text``) and sorts
    missing values first, as SQLite and MongoDB do.
    """

    columns: dict[str, str]
    doc_path: Callable[[str], tuple[str, str, Any]]
    placeholder: str = "?"
    json_param: Callable[[str], str] = field(default=lambda p: f"json({p})")
    regex: Callable[[str, str], str] = field(default=lambda expr, p: f"{expr} REGEXP {p}")
    class_match: Callable[[str], str] = field(default=lambda p: f"instr(classes, {p}) > 0")
    class_param: Callable[[str], Any] = field(default=lambda name: f"|{name}|")
    # every value compared with a document field travels as JSON text, written this way
    doc_param: Callable[[str], str] | None = None
    column_value: Callable[[Any], Any] = encode_value
    json_text: Callable[[Any], str] = dumps  # JSON parameters as text
    nulls_first: bool = False  # ORDER BY writes NULLS FIRST ascending, NULLS LAST descending
    # how a document field is read when the compared value holds a NUL character, where
    # doc_path's reading would not see it (SQLite's JSON functions end a string there)
    exact_path: Callable[[str], tuple[str, str, Any]] | None = None

    def expr(self, name: str, params: list[Any]) -> str:
        """The SQL reading field ``name``; a document path's parameter goes onto ``params``."""
        return self.target(name).expr(params)

    def target(self, name: str, exact: bool = False) -> Target:
        if name in self.columns:
            return Target(self.columns[name], self.columns[name], None, False)
        expr, text, path = (self.exact_path if exact and self.exact_path else self.doc_path)(name)
        return Target(expr, text, path, True)


@dataclass(frozen=True)
class Target:
    """A filtered field: its SQL, its SQL as text for regexes, and its path parameter.

    A document field's SQL has a placeholder for its path: every use of it adds the
    path to the parameters, so callers must use it in the order the SQL text reads.
    """

    sql: str
    text_sql: str
    path: Any  # the path parameter of a document field (None: a real column)
    in_doc: bool

    def expr(self, params: list[Any]) -> str:
        if self.in_doc:
            params.append(self.path)
        return self.sql

    def text(self, params: list[Any]) -> str:
        if self.in_doc:
            params.append(self.path)
        return self.text_sql


class FilterError(ValueError):
    """A filter uses an operator the SQL stores do not understand."""


def where_clause(filter: Filter | None, dialect: Dialect) -> tuple[str, list[Any]]:
    """``(sql, params)`` for a filter; an empty filter is ``1=1``."""
    params: list[Any] = []
    sql = _and(filter or {}, dialect, params)
    return sql, params


def order_clause(order: Order, dialect: Dialect) -> tuple[str, list[Any]]:
    """``(" ORDER BY ...", params)``: document fields' paths are parameters too."""
    if not order:
        return "", []
    parts: list[str] = []
    params: list[Any] = []
    for name, direction in order:
        sort = "DESC" if direction < 0 else "ASC"
        if dialect.nulls_first:
            sort += " NULLS LAST" if direction < 0 else " NULLS FIRST"
        parts.append(f"{dialect.expr(name, params)} {sort}")
    return " ORDER BY " + ", ".join(parts), params


def _and(filter: Filter, d: Dialect, params: list[Any]) -> str:
    parts = [_condition(key, value, d, params) for key, value in filter.items()]
    return "(" + " AND ".join(parts) + ")" if parts else "1=1"


def _condition(key: str, value: Any, d: Dialect, params: list[Any]) -> str:
    if key == "$or":
        return "(" + " OR ".join(_and(f, d, params) for f in value) + ")" if value else "0=1"
    if key == "$and":
        return "(" + " AND ".join(_and(f, d, params) for f in value) + ")" if value else "1=1"
    if key == "_class":
        params.append(d.class_param(value))
        return d.class_match(d.placeholder)
    target = d.target(key, exact=_has_nul(value))
    if isinstance(value, dict) and value and all(k.startswith("$") for k in value):
        return "(" + " AND ".join(_operator(target, op, arg, d, params) for op, arg in value.items()) + ")"
    return _operator(target, "$eq", value, d, params)


def _has_nul(value: Any) -> bool:
    """Whether a compared value (or an operator's argument) holds a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(item) for item in value.values())
    if isinstance(value, list | tuple | set):
        return any(_has_nul(item) for item in value)
    return hasattr(value, "pattern") and _has_nul(value.pattern)


def _param(value: Any, d: Dialect, params: list[Any], target: Target) -> str:
    if target.in_doc and d.doc_param is not None:
        params.append(d.json_text(value))
        return d.doc_param(d.placeholder)
    if isinstance(value, dict | list):
        params.append(d.json_text(value))
        return d.json_param(d.placeholder)
    params.append(d.column_value(value))
    return d.placeholder


def _operator(target: Target, op: str, arg: Any, d: Dialect, params: list[Any]) -> str:
    # each target.expr(params) adds the field's path parameter: call it where the SQL
    # text reads it, left to right, before the parameters that follow it
    if op == "$eq":
        expr = target.expr(params)
        return f"{expr} IS NULL" if arg is None else f"{expr} = {_param(arg, d, params, target)}"
    if op == "$ne":
        if arg is None:
            return f"{target.expr(params)} IS NOT NULL"
        first, second = target.expr(params), target.expr(params)
        return f"({first} IS NULL OR {second} != {_param(arg, d, params, target)})"
    if op in ("$lt", "$lte", "$gt", "$gte"):
        sign = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}[op]
        expr = target.expr(params)
        return f"{expr} {sign} {_param(arg, d, params, target)}"
    if op in ("$in", "$nin"):
        values = list(arg)
        has_null = any(v is None for v in values)
        values = [v for v in values if v is not None]
        if op == "$in":
            parts = []
            if values:
                expr = target.expr(params)
                listed = ", ".join(_param(v, d, params, target) for v in values)
                parts.append(f"{expr} IN ({listed})")
            if has_null:
                parts.append(f"{target.expr(params)} IS NULL")
            return "(" + " OR ".join(parts) + ")" if parts else "0=1"
        if not values:
            return f"{target.expr(params)} IS NOT NULL" if has_null else "1=1"
        first, second = target.expr(params), target.expr(params)
        listed = ", ".join(_param(v, d, params, target) for v in values)
        if has_null:
            return f"({first} IS NOT NULL AND {second} NOT IN ({listed}))"
        return f"({first} IS NULL OR {second} NOT IN ({listed}))"
    if op == "$exists":
        return f"{target.expr(params)} IS {'NOT ' if arg else ''}NULL"
    if op == "$regex":
        pattern = arg.pattern if hasattr(arg, "pattern") else str(arg)
        text = target.text(params)
        params.append(d.column_value(pattern))  # PostgreSQL's refuses a NUL, by name
        return d.regex(text, d.placeholder)
    if op == "$not":
        if isinstance(arg, dict) and set(arg) == {"$regex"}:
            arg = arg["$regex"]
        elif not hasattr(arg, "pattern"):
            raise FilterError(f"$not takes a $regex, got {arg!r}")
        expr = target.expr(params)
        return f"({expr} IS NULL OR NOT {_operator(target, '$regex', arg, d, params)})"
    raise FilterError(f"unsupported filter operator {op}")
