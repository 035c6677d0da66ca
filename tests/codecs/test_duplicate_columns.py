"""A column name that occurs twice is an error naming it (or, on request, numbered): never
one value silently kept for several columns."""

from __future__ import annotations

import json

import pytest

from rjbatch.codecs.tabular import (
    InvalidHeader,
    InvalidLayout,
    Tabular,
    TabularError,
    cleanse_header,
)
from rjbatch.codecs.tabular.header import RowMapper, resolve_duplicates, restrict_columns


def test_a_header_with_a_name_three_times_after_cleansing_names_it_and_its_positions():
    with pytest.raises(InvalidHeader) as caught:
        Tabular().parse_header("id,name,name,Name")
    assert str(caught.value).startswith("duplicate column 'name' (columns 2, 3, 4)")
    assert "from header names 'name', 'name', 'Name'" in str(caught.value)
    assert "duplicate_columns='rename'" in str(caught.value)


def test_exact_duplicates_name_no_originals_and_every_duplicated_name_is_listed():
    with pytest.raises(InvalidHeader) as caught:
        Tabular().parse_header("a,b,a,b,c")
    assert str(caught.value) == (
        "duplicate column 'a' (columns 1, 3); duplicate column 'b' (columns 2, 4)"
        " (duplicate_columns='rename' numbers them)"
    )


@pytest.mark.parametrize("fmt, header", [("psv", "id|Name|name"), ("xlsx", ["id", "Name", "name", None])])
def test_psv_and_spreadsheet_headers_are_checked_too(fmt, header):
    with pytest.raises(InvalidHeader, match=r"duplicate column 'name' \(columns 2, 3\)"):
        Tabular(fmt).parse_header(header)


def test_rename_numbers_the_later_ones_and_keeps_every_value():
    tabular = Tabular(duplicate_columns="rename")
    assert tabular.parse_header("id,name,name,Name") == ["id", "name", "name_2", "name_3"]
    assert tabular.parse("1,a,b,c") == {"id": "1", "name": "a", "name_2": "b", "name_3": "c"}
    assert tabular.parse_many(["1,a,b,c"]) == [tabular.parse("1,a,b,c")]
    assert tabular.render_header() == "id,name,name_2,name_3"


def test_rename_skips_names_already_in_the_header():
    assert resolve_duplicates(["a", "a", "a_2", "a"], "rename") == ["a", "a_3", "a_2", "a_4"]
    assert resolve_duplicates(["a", "a", "a_2", "a_2"], "rename") == ["a", "a_3", "a_2", "a_2_2"]


def test_blank_and_rejected_columns_may_repeat():
    assert Tabular().parse_header("a,,,b") == ["a", "", "", "b"]
    tabular = Tabular(allowed_columns=["a"], skip_unknown=True)
    assert tabular.parse_header("a,x,X") == ["a", "__rejected__x", "__rejected__X"]
    tabular = Tabular(allowed_columns=["a"], skip_unknown=True)
    tabular.parse_header("a,x,x")
    assert tabular.parse("1,2,3") == {"a": "1"}


def test_an_allowed_column_twice_is_still_a_duplicate():
    with pytest.raises(InvalidHeader, match=r"duplicate column 'a' \(columns 1, 3\)"):
        Tabular(allowed_columns=["a", "b"]).parse_header("a,b,A")
    tabular = Tabular(allowed_columns=["a", "b"], duplicate_columns="rename")
    assert tabular.parse_header("a,b,A") == ["a", "b", "a_2"]


def test_required_columns_are_checked_after_renaming():
    tabular = Tabular(required_columns=["name"], duplicate_columns="rename")
    assert tabular.parse_header("Name,name") == ["name", "name_2"]


def test_restrict_columns_takes_the_option():
    with pytest.raises(InvalidHeader, match="duplicate column 'x'"):
        restrict_columns(["x", "X"])
    assert restrict_columns(["x", "X"], duplicate_columns="rename") == (["x", "x_2"], [])
    assert restrict_columns(["x", "X"], cleanse=False) == (["x", "X"], [])


def test_cleanse_header_keeps_duplicates_unless_asked():
    assert cleanse_header(["B", "b"]) == ["b", "b"]
    assert cleanse_header(["B", "b"], duplicate_columns="rename") == ["b", "b_2"]
    with pytest.raises(InvalidHeader, match=r"duplicate column 'b' \(columns 1, 2\) from header names 'B', 'b'"):
        cleanse_header(["B", "b"], duplicate_columns="error")


def test_preset_columns_with_duplicates_are_refused_the_same_way():
    with pytest.raises(InvalidHeader, match=r"^duplicate column 'a' \(columns 1, 3\)"):
        Tabular(columns=["a", "b", "a"])
    with pytest.raises(InvalidHeader, match=r"^duplicate column 'a' \(columns 1, 2\)"):
        Tabular("json", columns=["a", "a"])
    assert Tabular(columns=["a", "b", "a"], duplicate_columns="rename").columns == ["a", "b", "a_2"]
    tabular = Tabular()
    with pytest.raises(InvalidHeader, match="duplicate column 'x'"):
        tabular.columns = ["x", "x"]
    with pytest.raises(InvalidHeader, match="duplicate column 'x'"):
        RowMapper(["x", "y", "x"])


def test_the_option_is_stored_in_settings_and_rebuilt():
    tabular = Tabular(duplicate_columns="rename")
    tabular.parse_header("a,A")
    settings = json.loads(json.dumps(tabular.settings()))
    assert settings["duplicate_columns"] == "rename"
    clone = Tabular.from_settings(settings)
    assert clone.duplicate_columns == "rename"
    assert clone.columns == ["a", "a_2"]
    assert Tabular().settings()["duplicate_columns"] == "error"
    old = {k: v for k, v in Tabular(columns=["a"]).settings().items() if k != "duplicate_columns"}
    assert Tabular.from_settings(old).duplicate_columns == "error"  # settings stored before
    with pytest.raises(InvalidHeader, match="duplicate column 'a'"):
        Tabular.from_settings({**old, "columns": ["a", "a"]})


def test_an_unknown_option_value_is_refused():
    with pytest.raises(TabularError, match="duplicate_columns must be one of"):
        Tabular(duplicate_columns="merge")


def test_a_fixed_layout_with_a_key_twice_is_invalid():
    with pytest.raises(InvalidLayout, match=r"Duplicate keys \['a'\]"):
        Tabular("fixed", format_options={"layout": [{"key": "a", "size": 1}, {"key": "a", "size": 2}]})
