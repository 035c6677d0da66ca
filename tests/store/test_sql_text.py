"""No value reaches SQL text: filters, sort keys and paths built by the SQL stores.

The conformance suite shows odd keys and values round-trip on every store; this shows
why they cannot do harm: whatever a filter holds, the SQL text the dialects write is
made of the fixed column names, operators and placeholders only.
"""

from __future__ import annotations

import re

import pytest

from rjbatch.store import postgres, sqlite
from rjbatch.store.sqlfilter import order_clause, where_clause
from tests.store.conformance import ODD

DIALECTS = {"sqlite": sqlite.JOBS, "postgresql": postgres.JOBS}
# what SQL text may hold besides placeholders: names, numbers, operators, and the few
# quoted constants the dialects write themselves; a minus, but never "--"
ALLOWED = re.compile(r"""(?<!-)-(?!-)|[A-Za-z_][A-Za-z_0-9]*|\?|%s|\d+|'null'|::|\|\||[()=<>!~,.#\[\] ]+""")


def sql_words(sql: str) -> str:
    """What is left of ``sql`` once every allowed token is taken out (empty: nothing else)."""
    return ALLOWED.sub("", sql)


@pytest.mark.parametrize("dialect", DIALECTS.values(), ids=list(DIALECTS))
@pytest.mark.parametrize("key", ODD)
def test_odd_names_and_values_become_parameters_only(dialect, key):
    key = "sentinel" + key  # so that any of it in the SQL text shows
    filter = {
        f"payload.{key}": key, f"other.{key}": {"$ne": key, "$in": [key, None], "$nin": [key]},
        f"third.{key}": {"$regex": key, "$exists": True}, "note": {"$not": {"$regex": key}},
        "$or": [{f"deep.{key}.{key}": {"$gt": key}}, {"worker_name": key}], "_class": key,
        "_type": {"$in": [key]}, "x": {"$lte": {key: [key]}},
    }
    sql, params = where_clause(filter, dialect)
    ordering, order_params = order_clause([(f"rank.{key}", -1), ("priority", 1)], dialect)
    assert sql_words(sql + ordering) == "", sql + ordering
    assert "sentinel" not in sql + ordering
    assert sql.count(dialect.placeholder) == len(params)
    assert ordering.count(dialect.placeholder) == len(order_params)


@pytest.mark.parametrize("key", ODD)
def test_sql_writes_of_odd_field_names_go_through_parameters(key):
    key = "sentinel" + key
    for assign, mark in ((sqlite._assignments, "?"), (postgres._assignments, "%s")):
        assignments, params = assign({"state": "queued"}, {key: {key: key}, "note": key})
        assert sql_words(assignments) == "" and "sentinel" not in assignments
        assert assignments.count(mark) == len(params)
