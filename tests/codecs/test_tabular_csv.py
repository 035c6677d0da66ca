"""CSV and PSV lines: parsing and rendering as IOStreams does (docs/codecs.md, Formats)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from rjbatch.codecs.errors import MalformedData
from rjbatch.codecs.tabular import MalformedLine, MissingHeader, Tabular

FIXTURES = Path(__file__).parent / "fixtures" / "tabular"
# What Ruby 3.1 / csv 3.2.2 did with the same input (made by fixtures/tabular/ruby_csv.rb).
RUBY = json.loads((FIXTURES / "ruby_csv.json").read_text(encoding="utf-8"))
# Ruby's CSV auto-detects a bare line break in an unquoted field as a new row separator and
# silently returns only the first row; rjbatch raises instead (docs/codecs.md).
RUBY_QUIRKS = {"x\ny,z"}


def parse_values(line: str, width: int) -> list:
    """The first ``width`` values of a CSV line, through both the single and the batch parser.

    One column more than expected is asked for, and must come back empty (a short row).
    """
    tabular = Tabular(columns=[f"c{i}" for i in range(width + 1)])
    one = tabular.parse(line)
    many = tabular.parse_many(["a", line, "b"])[1]
    assert one == many
    *values, extra = one.values()
    assert extra is None
    return values


@pytest.mark.parametrize(
    "case",
    [case for case in RUBY["parsed"] if "row" in case and case["line"] not in RUBY_QUIRKS],
    ids=repr,
)
def test_csv_parses_like_ruby(case):
    assert parse_values(case["line"], len(case["row"])) == case["row"]


@pytest.mark.parametrize(
    "case",
    [case for case in RUBY["parsed"] if "error" in case],
    ids=repr,
)
def test_csv_rejects_what_ruby_rejects(case):
    tabular = Tabular(columns=["a", "b"])
    with pytest.raises(MalformedLine, match="Malformed CSV"):
        tabular.parse(case["line"])
    with pytest.raises(MalformedLine, match="line 2: Malformed CSV"):
        tabular.parse_many(["ok", case["line"]])


@pytest.mark.parametrize("case", RUBY["rendered"], ids=repr)
def test_csv_renders_exactly_like_ruby(case):
    assert Tabular(columns=["x"]).render(case["row"]) == case["line"]


def test_empty_field_is_none_and_quoted_empty_field_is_empty_string():
    tabular = Tabular(columns=["a", "b", "c"])
    assert tabular.parse('a,,""') == {"a": "a", "b": None, "c": ""}
    assert tabular.parse_many(['a,,""', '"",,x', ',"",']) == [
        {"a": "a", "b": None, "c": ""},
        {"a": "", "b": None, "c": "x"},
        {"a": None, "b": "", "c": None},
    ]


def test_an_escaped_quote_is_not_mistaken_for_a_quoted_empty_field():
    tabular = Tabular(columns=["a", "b", "c"])
    assert tabular.parse('"x,"",y",,""') == {"a": 'x,",y', "b": None, "c": ""}
    assert tabular.parse_many(['"say ""hi""",,']) == [{"a": 'say "hi"', "b": None, "c": None}]


def test_values_keep_white_space_and_leading_zeros():
    tabular = Tabular(columns=["a", "b"])
    assert tabular.parse("  007 ,\t1.50") == {"a": "  007 ", "b": "\t1.50"}


def test_a_record_with_quoted_line_breaks_is_one_record():
    tabular = Tabular()
    tabular.parse_header("name,notes,n")
    record = {"name": "Jack", "notes": 'line one\r\nline, "two"\nthree', "n": "1"}
    assert tabular.parse_many(['Jack,"line one\r\nline, ""two""\nthree",1', "Jill,,2"]) == [
        record,
        {"name": "Jill", "notes": None, "n": "2"},
    ]
    assert tabular.parse(tabular.render(record)) == record


def test_a_trailing_carriage_return_is_dropped_but_not_one_inside_quotes():
    tabular = Tabular(columns=["a", "b"])
    assert tabular.parse("x,y\r") == {"a": "x", "b": "y"}
    assert tabular.parse_many(['x,"y\r"\r']) == [{"a": "x", "b": "y\r"}]


def test_an_unbalanced_quote_names_the_line_number_given():
    tabular = Tabular(columns=["a", "b"])
    with pytest.raises(MalformedLine, match=r"^line 7: Malformed CSV, unclosed quoted field") as e:
        tabular.parse('x,"y', line_number=7)
    assert e.value.line_number == 7
    assert isinstance(e.value, MalformedData)  # the same family as the line reader's errors


def test_parse_many_errors_name_the_line_from_the_first_line_number():
    tabular = Tabular(columns=["a", "b"])
    lines = ["1,2", "3,4", 'O"Neil,5']
    with pytest.raises(MalformedLine, match=r"^line 103: .*stray quote.*field 1") as e:
        tabular.parse_many(lines, line_number=101)
    assert e.value.line_number == 103
    with pytest.raises(MalformedLine, match=r"^line 3: "):
        tabular.parse_many(lines)  # no number given: the 1-based position in the slice


def test_a_bad_line_does_not_swallow_the_lines_after_it():
    tabular = Tabular(columns=["a"])
    with pytest.raises(MalformedLine, match="^line 1: "):
        tabular.parse_many(['"open', 'close"'])


def test_a_field_longer_than_the_csv_module_limit_still_parses():
    tabular = Tabular(columns=["a", "b"])
    big = "x" * (csv.field_size_limit() + 10)
    assert tabular.parse_many([f'"{big}","q"', "1,2"]) == [
        {"a": big, "b": "q"},
        {"a": "1", "b": "2"},
    ]


def test_a_header_only_file_parses_to_no_records():
    tabular = Tabular()
    lines = ["name,age"]
    assert tabular.parse_header(lines[0]) == ["name", "age"]
    records = [r for r in tabular.parse_many(lines[1:]) if r is not None]
    assert records == []
    assert tabular.parse_many([]) == []


def test_parse_many_matches_parse_line_by_line_on_random_input():
    rng = random.Random(8)
    pieces = ["a", "", '""', '"b,c"', '"d""e"', '"f\ng"', " h ", "007", '""""', "ü"]
    lines = [",".join(rng.choice(pieces) for _ in range(rng.randint(1, 6))) for _ in range(300)]
    lines += ["", "   ", ","]
    tabular = Tabular(columns=[f"c{i}" for i in range(6)])
    assert tabular.parse_many(lines) == [tabular.parse(line) for line in lines]


def test_csv_round_trips_every_kind_of_value():
    tabular = Tabular(columns=["a", "b", "c", "d"])
    rng = random.Random(3)
    values = [None, "", " ", "plain", "a,b", 'q"q', '"', "x\ny", "x\r\ny", "\r", "ü é", "|", "''"]
    records = [{k: rng.choice(values) for k in "abcd"} for _ in range(400)]
    lines = tabular.render_many(records)
    assert lines == [tabular.render(record) for record in records]
    assert tabular.parse_many(lines) == records


def test_render_narrows_dicts_to_the_columns():
    tabular = Tabular(columns=["a", "b", "c"])
    assert tabular.render({"c": 3, "a": 1, "extra": "x"}) == "1,,3"
    assert tabular.render(["x", None, ""]) == 'x,,""'
    assert tabular.render({}) == ""
    assert tabular.render([]) == ""
    assert tabular.render({"other": 1}) == ",,"


def test_render_spells_values_the_ruby_way():
    tabular = Tabular(columns=[f"c{i}" for i in range(7)])
    assert tabular.render([True, False, 1.0, 1e20, 1e15, float("inf"), [1, "a"]]) == (
        'true,false,1.0,1.0e+20,1.0e+15,Infinity,"[1, ""a""]"'
    )


def test_render_header_writes_names_as_given():
    tabular = Tabular(columns=["First Name", "a,b", ""])
    assert tabular.render_header() == 'First Name,"a,b",""'
    with pytest.raises(MissingHeader):
        Tabular().render_header()
    with pytest.raises(MissingHeader, match="needs columns= to render a dict"):
        Tabular().render({"a": 1})


def test_psv_splits_on_pipes_without_quoting_and_drops_trailing_empty_fields():
    tabular = Tabular("psv")
    assert tabular.parse_header("Name|Last Name|Note") == ["name", "last_name", "note"]
    assert tabular.parse('x|"y"|a,b') == {"name": "x", "last_name": '"y"', "note": "a,b"}
    assert tabular.parse("x||") == {"name": "x", "last_name": None, "note": None}
    assert tabular.parse("|y") == {"name": "", "last_name": "y", "note": None}
    assert tabular.parse('O"Neil||z') == {"name": 'O"Neil', "last_name": "", "note": "z"}
    assert tabular.parse("||") is None  # nothing left after dropping empty fields
    assert tabular.parse_many(["a|b|c", "", "d"]) == [
        {"name": "a", "last_name": "b", "note": "c"},
        None,
        {"name": "d", "last_name": None, "note": None},
    ]


def test_psv_render_replaces_pipes_and_line_breaks_and_writes_none_as_empty():
    tabular = Tabular("psv", columns=["a", "b", "c"])
    assert tabular.render({"a": "x|y", "b": None, "c": "l1\r\nl2\nl3"}) == "x:y||l1 l2 l3"
    assert tabular.render(["", 1.5, True]) == "|1.5|true"
    assert tabular.render_header() == "a|b|c"


def test_psv_round_trips_values_without_pipes_or_line_breaks():
    tabular = Tabular("psv", columns=["a", "b", "c"])
    records = [{"a": "1", "b": "two words", "c": 'q"'}, {"a": "x", "b": "", "c": "z"}]
    assert tabular.parse_many(tabular.render_many(records)) == records
