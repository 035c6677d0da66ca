"""The batch paths of CSV (``parse_many``, ``render_many``) give exactly what the one-line
paths (``parse``, ``render``) give, on the edge cases each of their shortcuts must notice."""

from __future__ import annotations

import collections
import copy
import csv
import datetime
import decimal
import pickle
import random

import pytest

from rjbatch.codecs.tabular import MalformedLine, Tabular, TabularError

COLUMNS = [f"c{i}" for i in range(4)]


def outcome(call, *args, **kwargs):
    """The value, or the class and message of the error: what must match."""
    try:
        return "ok", call(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any difference matters
        return "error", type(exc).__name__, str(exc)


def line_by_line(tabular: Tabular, lines: list[str], first: int) -> tuple:
    return outcome(
        lambda: [tabular.parse(line, line_number=first + i) for i, line in enumerate(lines)]
    )


def assert_parse_many_matches_parse(tabular: Tabular, lines: list[str], first: int = 1) -> None:
    assert outcome(tabular.parse_many, lines, line_number=first) == line_by_line(
        tabular, lines, first
    )


# -- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize("columns", [COLUMNS, None], ids=["columns", "no columns"])
def test_an_unclosed_quote_is_not_read_into_the_next_line(columns):
    # Joined, the two lines look like one valid record: each must be checked on its own.
    tabular = Tabular(columns=columns)
    for lines in (['a,"x', 'y",b'], ["ok,1", 'a,"x', 'y",b', "c,d"], ['"', '"']):
        with pytest.raises(MalformedLine, match="unclosed quoted field"):
            tabular.parse_many(lines)


@pytest.mark.parametrize("columns", [COLUMNS, None], ids=["columns", "no columns"])
def test_a_stray_quote_that_pythons_csv_accepts_is_rejected_with_its_line(columns):
    tabular = Tabular(columns=columns)
    lines = ['ok,"fine ""quoted"""', "plain,line", 'a,b"c', 'also,"bad" x']
    with pytest.raises(MalformedLine, match="line 13: Malformed CSV, stray quote"):
        tabular.parse_many(lines, line_number=11)


def test_quoted_empty_fields_stay_empty_strings_next_to_escaped_quotes():
    tabular = Tabular(columns=COLUMNS)
    lines = [
        '"",a,,""',
        '"""",,"",x',  # an escaped quote alone, then a quoted empty field
        'a,"x"",""y",,""',  # ,"", inside a quoted field: not an empty field
        'a,b,c,"d"""',  # ends with "" but holds no empty field
        '"""a",,b,',
        "plain,,line,",
        '""',
    ]
    assert_parse_many_matches_parse(tabular, lines)
    assert tabular.parse_many(lines)[1] == {"c0": '"', "c1": None, "c2": "", "c3": "x"}
    assert tabular.parse_many(lines)[2] == {"c0": "a", "c1": 'x","y', "c2": None, "c3": ""}


def test_blank_short_and_long_lines_anywhere_in_a_batch():
    tabular = Tabular(columns=COLUMNS)
    plain = ["a,b,c,d", "e,f,g,h", "i,j,k,l"]
    quoted = ['"a",b,c,d', 'e,"f,g",h,i']
    odd = ["", "  ", "\t", "x", "x,y", "1,2,3,4,5", ",,,", '"x"', '"x",y,z,w,v']
    rng = random.Random(5)
    for _ in range(200):
        lines = [rng.choice(plain + quoted + odd) for _ in range(rng.randint(1, 12))]
        assert_parse_many_matches_parse(tabular, lines, first=rng.choice([1, 40]))


@pytest.mark.parametrize(
    "columns",
    [["a"], ["a", "b"], ["a", "", "b"], ["a", "__rejected__x", "__rejected__x"], ["", "a", ""]]
    + [["x'y", 'q"', "\\"]],
)
def test_any_columns_blank_rejected_or_repeated_skipped_ones(columns):
    tabular = Tabular(columns=columns)
    lines = ["1,2,3", "4,5", "", '"6",7,"8"', "9,,", ' ,", ",', "a"]
    assert_parse_many_matches_parse(tabular, lines)
    assert_parse_many_matches_parse(tabular, ["1,2,3", "4,5,6"])
    assert_parse_many_matches_parse(tabular, ['"1",2,3', "4,5,6", "7,8,9"])


def test_a_field_beyond_the_csv_module_limit_among_other_lines():
    limit = csv.field_size_limit()
    try:
        csv.field_size_limit(4)  # every reader-based shortcut hits it
        for columns in (COLUMNS, None):
            tabular = Tabular(columns=columns)
            lines = ["a,b,c,d", '"long value",,"",x', 'q,"r""s",t,u', "", "e,f"]
            assert_parse_many_matches_parse(tabular, lines)
    finally:
        csv.field_size_limit(limit)


def test_line_breaks_in_a_batch_go_line_by_line():
    tabular = Tabular(columns=COLUMNS)
    lines = ['a,"b\nc",d,e', "f,g,h,i", 'j,"k\r\nl",,""', "m,n\r", '"o",p,q,r\r']
    assert_parse_many_matches_parse(tabular, lines)
    with pytest.raises(MalformedLine, match="line 2: Malformed CSV, line break"):
        tabular.parse_many(["a,b,c,d", "x\ny,z"])


def test_parse_many_matches_parse_on_random_batches():
    rng = random.Random(11)
    pieces = ["a", "", '""', '"b,c"', '"d""e"', " h ", "007", '""""', "ü", ",", '"', 'x"y']
    pieces += ['"\r"', "\t", "é,è", '"a""', '",""x"']
    for _ in range(300):
        width = rng.randint(1, 6)
        tabular = Tabular(columns=[f"c{i}" for i in range(width)])
        lines = [
            ",".join(rng.choice(pieces) for _ in range(max(1, width + rng.choice([0, 0, -1, 1]))))
            for _ in range(rng.randint(1, 25))
        ]
        assert_parse_many_matches_parse(tabular, lines, first=rng.randint(1, 9))


# -- rendering ------------------------------------------------------------------------------


class Text(str):
    """A str subclass: written as its text, like a str."""


def render_one_by_one(tabular: Tabular, records: list) -> tuple:
    return outcome(lambda: [tabular.render(record) for record in records])


VALUES = [
    None, "", " ", "plain", "a,b", 'q"q', '"', "x\ny", "x\r\ny", "\r", "ü é", "0",
    0, 1, -5, 10**20, 1.0, 1.5, 1e20, 1e15, -0.0, float("inf"), True, False,
    [1, "a,b"], (2,), {"k": "v"}, b"by,tes", datetime.date(2021, 3, 5), decimal.Decimal("1.10"),
    Text(""), Text("t,u"), Text("v"),
]  # fmt: skip


@pytest.mark.parametrize(
    "columns",
    [[], ["a"], ["a", "b"], ["a", "b", "c", "d"], ["a", "", "b"], ["a", "__rejected__x", ""]],
)
def test_render_many_matches_render_on_random_records(columns):
    rng = random.Random(len(columns))
    tabular = Tabular(columns=columns)
    keys = [*columns, "other", ""]
    for _ in range(150):
        kind = rng.random()
        if kind < 0.4:  # plain strings: the fastest path, and what it must notice
            pool = ["a", "b c", "d,e", 'f"g', "", "h\ni", "j\rk", "é", " "]
        elif kind < 0.7:  # strings and None
            pool = ["a", "d,e", 'f"g', "", None, "é"]
        else:  # anything
            pool = VALUES
        records: list = [
            {key: rng.choice(pool) for key in keys if rng.random() < 0.9}
            for _ in range(rng.randint(0, 20))
        ]
        if rng.random() < 0.2 and records:
            records[rng.randrange(len(records))] = {}
        assert outcome(tabular.render_many, records) == render_one_by_one(tabular, records)


def test_render_many_of_mixed_records_keeps_their_order():
    tabular = Tabular(columns=["a", "b"])
    missing = collections.defaultdict(lambda: "DEFAULT", a="1")
    records = [
        {"a": "x", "b": "y"},
        missing,  # must read like .get(): no default
        collections.Counter(a=3),
        collections.OrderedDict(b="o,k"),
        ["l", None, "ignored?"],
        {},
        None,
        ("t", ""),
        {"a": None, "b": ""},
    ]
    expected = [tabular.render(record) for record in records]
    assert tabular.render_many(records) == expected
    assert tabular.render_many(iter(records)) == expected
    assert tabular.render_many([missing, missing]) == ["1,", "1,"]
    assert "b" not in missing
    with pytest.raises(TabularError, match="not str"):
        tabular.render_many([{"a": "1"}, "a string"])


def test_render_many_of_sparse_and_empty_dicts():
    tabular = Tabular(columns=["a", "b", "c"])
    records = [{"a": "1", "c": "3"}, {}, {"b": None}, {"other": "x"}, {"a": "", "b": 'q"', "c": 4}]
    assert tabular.render_many(records) == ["1,,3", "", ",,", ",,", '"","q""",4']


def test_render_many_of_a_typical_slice_round_trips():
    rng = random.Random(2)
    columns = ["id", "name", "amount", "date", "note"]
    tabular = Tabular(columns=columns)
    notes = ["plain note", "late, by 2 days", 'said "hi"', "", None, "two\nlines"]
    records = [
        {
            "id": str(i),
            "name": rng.choice(["Jack", "José", "O'Brien"]),
            "amount": f"{rng.randint(0, 99999) / 100:.2f}",
            "date": "2024-01-02",
            "note": rng.choice(notes),
        }
        for i in range(1000)
    ]
    lines = tabular.render_many(records)
    assert lines == [tabular.render(record) for record in records]
    assert tabular.parse_many(lines) == records


def test_a_tabular_still_pickles_and_copies():
    for columns in (["a", "b"], ["a", "", "b"], ["a"]):
        tabular = Tabular(columns=columns)
        for clone in (pickle.loads(pickle.dumps(tabular)), copy.deepcopy(tabular)):
            assert clone.parse_many(['1,"2",3', "4,,"]) == tabular.parse_many(['1,"2",3', "4,,"])
            assert clone.render_many([{"a": "x,y", "b": None}]) == tabular.render_many(
                [{"a": "x,y", "b": None}]
            )
