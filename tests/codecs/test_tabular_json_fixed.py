"""JSON lines and fixed-width layouts, parsed and rendered (docs/codecs.md, Formats)."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest

from rjbatch.codecs.tabular import (
    InvalidLayout,
    InvalidLineLength,
    MalformedLine,
    Tabular,
    TabularError,
    ValueTooLong,
    read_json,
)

# -- json ------------------------------------------------------------------------------------


def test_json_lines_parse_as_they_are_without_a_header():
    tabular = Tabular("json")
    assert not tabular.header_required
    assert tabular.render_header() is None
    assert tabular.parse('{"First Name":"Jack","age":21,"tags":["a"],"x":null}') == {
        "First Name": "Jack",  # keys are not cleansed
        "age": 21,
        "tags": ["a"],
        "x": None,
    }
    assert tabular.parse("  ") is None


def test_json_with_columns_narrows_records_and_fills_missing_keys():
    tabular = Tabular("json", columns=["name", "age"])
    assert tabular.parse_many(['{"name":"Jack","extra":1}', "", '["Jill",22]']) == [
        {"name": "Jack", "age": None},
        None,
        {"name": "Jill", "age": 22},
    ]
    assert tabular.render({"age": 3, "name": "x", "extra": 1}) == '{"name":"x","age":3}'
    assert tabular.render(["y", None]) == '{"name":"y","age":null}'


def test_json_errors_name_the_line():
    tabular = Tabular("json")
    with pytest.raises(MalformedLine, match=r"^line 12: Malformed JSON, Expecting"):
        tabular.parse_many(['{"a":1}', '{"a":'], line_number=11)
    with pytest.raises(
        MalformedLine, match=r"^line 2: A JSON record must be an object, not an array"
    ):
        tabular.parse_many(["{}", "[1, 2]"])
    with pytest.raises(
        MalformedLine, match=r"^line 1: A JSON record must be an object, not a number"
    ):
        tabular.parse_many(["42"])


def test_json_render_is_compact_keeps_non_ascii_and_spells_python_values():
    tabular = Tabular("json")
    record = {
        "name": "Zoë/ü",
        "n": 1.0,
        "big": 1e20,
        "none": None,
        "ok": True,
        "day": dt.date(2021, 3, 5),
        "at": dt.datetime(2021, 3, 5, 10, 0, tzinfo=dt.UTC),
        "amount": Decimal("1.10"),
    }
    assert tabular.render(record) == (
        '{"name":"Zoë/ü","n":1.0,"big":1e+20,"none":null,"ok":true,"day":"2021-03-05",'
        '"at":"2021-03-05 10:00:00+00:00","amount":"1.10"}'
    )
    with pytest.raises(MalformedLine, match="Cannot render JSON"):
        tabular.render({"x": float("nan")})


def test_json_round_trips():
    tabular = Tabular("json")
    records = [{"a": 1, "b": [1, {"c": None}], "d": "x\ny\u2028"}, {"e": -0.5}]
    assert tabular.parse_many(tabular.render_many(records)) == records


def test_read_json_reads_json_lines_from_a_path_file_or_lines(tmp_path):
    text = '{"a":1}\n\n  {"a":2}\r\n{"a":3}'
    path = tmp_path / "x.jsonl"
    path.write_text(text, encoding="utf-8")
    expected = [{"a": 1}, {"a": 2}, {"a": 3}]
    assert list(read_json(path)) == expected
    assert list(read_json(str(path))) == expected
    binary = io.BytesIO(text.encode())
    assert list(read_json(binary)) == expected
    assert not binary.closed  # the caller's file stays open
    assert list(read_json(io.StringIO(text))) == expected
    assert list(read_json(text.split("\n"))) == expected


def test_read_json_streams_an_array_of_objects(monkeypatch):
    from rjbatch.codecs.tabular import jsonl

    monkeypatch.setattr(jsonl, "_CHUNK", 7)  # elements, numbers and strings span chunks
    records = [{"id": i, "name": f"n{i}" * (i % 5), "score": i * 1234.5} for i in range(200)]
    text = "\ufeff \n[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n"
    assert list(read_json(io.BytesIO(text.encode()))) == records
    assert list(read_json(io.BytesIO(b"[]"))) == []
    assert list(read_json(io.BytesIO(b"[12345678901234567890, 2]"))) == [12345678901234567890, 2]
    assert list(read_json(io.BytesIO(b""))) == []


def test_read_json_array_errors_name_the_physical_line():
    with pytest.raises(MalformedLine, match=r"^line 3: Malformed JSON array, Expecting"):
        list(read_json(io.StringIO('[\n{"a":1},\n{"a":}\n]')))
    with pytest.raises(MalformedLine, match=r"^line 2: Malformed JSON array, expected ',' or ']'"):
        list(read_json(io.StringIO('[{"a":1}\n{"a":2}]')))
    with pytest.raises(MalformedLine, match="not closed"):
        list(read_json(io.StringIO('[{"a":1},')))
    with pytest.raises(MalformedLine, match="unexpected text after the array"):
        list(read_json(io.StringIO('[{"a":1}] x')))
    with pytest.raises(MalformedLine, match=r"^line 2: Malformed JSON"):
        list(read_json(io.StringIO('{"a":1}\n{oops}')))


# -- fixed width -----------------------------------------------------------------------------

LAYOUT = [
    {"key": "name", "size": 5},
    {"size": 3},
    {"key": "age", "size": 4, "type": "integer"},
    {"key": "weight", "size": 7, "type": "float", "decimals": 2},
]


def fixed(layout=LAYOUT, **options) -> Tabular:
    return Tabular("fixed", format_options={"layout": layout, **options})


def test_fixed_renders_the_reference_examples():
    tabular = fixed()
    assert tabular.render({"name": "Jacks", "age": 12, "weight": 3.14159}) == "Jacks   00120003.14"
    assert tabular.render({"name": "Al", "age": -5, "weight": -1.5}) == "Al      -005-001.50"
    assert tabular.render({"name": None}) == "        00000000.00"
    assert tabular.render({}) == ""  # an empty record is a blank line, as in Ruby


def test_fixed_parses_strips_and_converts_by_type():
    tabular = fixed()
    assert not tabular.header_required
    assert tabular.columns == ["name", "age", "weight"]
    assert tabular.parse("Jacks   00120003.14") == {"name": "Jacks", "age": 12, "weight": 3.14}
    assert tabular.parse(" J   xxx -05  1e2  ") == {"name": "J", "age": -5, "weight": 100.0}
    assert tabular.parse("     abc           ") == {"name": "", "age": None, "weight": None}
    assert tabular.parse("") is None


def test_fixed_string_values_are_truncated_unless_truncate_is_false():
    assert fixed().render({"name": "Jackson", "age": 1}) == "Jacks   00010000.00"
    with pytest.raises(ValueTooLong, match="'Jackson' is too long for fixed-width column 'name'"):
        fixed(truncate=False).render({"name": "Jackson"})


def test_fixed_numbers_are_never_truncated():
    with pytest.raises(ValueTooLong, match="column 'age' of size 4"):
        fixed().render({"age": 123456})
    with pytest.raises(ValueTooLong, match="column 'weight' of size 7"):
        fixed().render({"weight": 12345.5})
    with pytest.raises(TabularError, match="'abc' for integer column 'age' is not a number"):
        fixed().render({"age": "abc"})
    assert fixed().render({"age": "12.7", "weight": "2"}) == "        00120002.00"


def test_fixed_lines_of_the_wrong_length_name_their_line():
    with pytest.raises(InvalidLineLength, match=r"^line 9: .* has 18 characters but .* needs 19"):
        fixed().parse_many(["Jacks   00120003.14", "Jacks   00120003.1"], line_number=8)
    with pytest.raises(InvalidLineLength, match="has 20 characters"):
        fixed().parse("Jacks   00120003.140")


def test_fixed_numbers_that_do_not_parse_name_their_line_and_column():
    with pytest.raises(MalformedLine, match=r"^line 4: Fixed-width column 'age' is not an integer"):
        fixed().parse("Jacks   12a 0003.14", line_number=4)


def test_a_remainder_column_takes_the_rest_of_the_line_of_any_length():
    tabular = fixed([{"key": "code", "size": 3}, {"key": "rest", "size": "remainder"}])
    assert tabular.parse("abc  the rest ") == {"code": "abc", "rest": "the rest"}
    assert tabular.parse("abc") == {"code": "abc", "rest": ""}
    assert tabular.parse("ab") == {"code": "ab", "rest": None}
    assert tabular.render({"code": "x", "rest": "no padding"}) == "x  no padding"


def test_fixed_layouts_are_checked():
    with pytest.raises(InvalidLayout, match="needs a non-empty 'layout'"):
        Tabular("fixed")
    with pytest.raises(InvalidLayout, match="Missing required 'size'"):
        fixed([{"key": "a"}])
    with pytest.raises(InvalidLayout, match="Only the last"):
        fixed([{"key": "a", "size": "remainder"}, {"key": "b", "size": 1}])
    with pytest.raises(InvalidLayout, match="Unknown type 'date'"):
        fixed([{"key": "a", "size": 1, "type": "date"}])
    with pytest.raises(InvalidLayout, match="must be a positive integer"):
        fixed([{"key": "a", "size": 0}])


def test_fixed_round_trips_and_its_settings_rebuild_it():
    tabular = fixed()
    records = [{"name": "Ann", "age": 7, "weight": 1.25}, {"name": "", "age": -12, "weight": -0.5}]
    lines = tabular.render_many(records)
    assert [len(line) for line in lines] == [19, 19]
    rebuilt = Tabular.from_settings(json.loads(json.dumps(tabular.settings())))
    assert rebuilt.parse_many(lines) == records
