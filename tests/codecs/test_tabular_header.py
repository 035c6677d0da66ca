"""Header rows: cleansing, column restrictions, rows to dicts (docs/codecs.md, Header rows)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rjbatch.codecs.errors import CodecError
from rjbatch.codecs.tabular import (
    InvalidHeader,
    MissingHeader,
    Tabular,
    TabularError,
    UnknownFormat,
    cleanse_column,
    cleanse_header,
)


@pytest.mark.parametrize(
    ("name", "cleansed"),
    [
        (" First Name ", "first_name"),
        ("LAST-name", "last_name"),
        ("Zip  Code", "zip_code"),
        ('Quoted "Col"', "quoted_col"),
        ("", ""),
        (None, ""),
        ("Café", "caf"),
        # not `ncode_caf`, as one might read the rule: the algorithm (and Ruby 3.1, run while
        # writing this test) turns the space into `_` before deleting `É`: `ncode_caf_`.
        ("Ünïcode_Caf É", "ncode_caf_"),
    ],
)
def test_cleansing_matches_the_examples_of_the_reference(name, cleansed):
    assert cleanse_column(name) == cleansed


def test_cleansing_strips_only_ascii_white_space_and_nul():
    # NBSP and U+3000 are not stripped as white space; they are non-word and deleted later,
    # but a NBSP *inside* a name does not become "_" the way a space does.
    assert cleanse_column("\t\x00 a \x00\n") == "a"
    assert cleanse_column("a\u00a0b") == "ab"
    assert cleanse_column("a b") == "a_b"
    assert cleanse_column("a\u3000b") == "ab"


def test_cleansing_collapses_runs_of_white_space_and_dashes():
    assert cleanse_column("a \t\v\f b") == "a_b"
    assert cleanse_column("a---b") == "a_b"
    assert cleanse_column("a - b") == "a___b"


def test_cleansing_converts_non_strings_and_keeps_order_and_duplicates():
    assert cleanse_header(["B", 2021, "b", True]) == ["b", "2021", "b", "true"]


def test_a_header_row_is_cleansed_and_becomes_the_columns():
    tabular = Tabular()
    assert tabular.header_required
    assert tabular.parse_header("First Name, Last-Name ,Zip") == ["first_name", "last_name", "zip"]
    assert not tabular.header_required
    assert tabular.parse("Jack,Jones,12345") == {
        "first_name": "Jack",
        "last_name": "Jones",
        "zip": "12345",
    }


def test_a_blank_header_line_is_skipped_and_the_next_line_is_tried():
    tabular = Tabular()
    assert tabular.parse_header("   ") is None
    assert tabular.header_required
    assert tabular.parse_header("a,b") == ["a", "b"]


def test_header_cleanser_none_keeps_names_as_given():
    tabular = Tabular(header_cleanser="none")
    assert tabular.parse_header(" First Name ,B") == [" First Name ", "B"]
    assert tabular.parse("1,2") == {" First Name ": "1", "B": "2"}


def test_unknown_header_cleanser_is_rejected():
    with pytest.raises(TabularError, match="header_cleanser"):
        Tabular(header_cleanser="ruby")


def test_unknown_columns_raise_by_default_naming_the_original_names():
    tabular = Tabular(allowed_columns=["name", "age"])
    with pytest.raises(InvalidHeader, match=r"Unknown columns after cleansing: 'Extra Col'"):
        tabular.parse_header("Name,Age,Extra Col")


def test_skip_unknown_drops_rejected_columns_but_keeps_their_position():
    tabular = Tabular(allowed_columns=["name", "age"], skip_unknown=True)
    columns = tabular.parse_header("Name,Extra,Age")
    assert columns == ["name", "__rejected__Extra", "age"]
    assert tabular.rejected_columns == ["Extra"]
    assert tabular.parse("Jack,x,21") == {"name": "Jack", "age": "21"}
    assert tabular.parse_many(["Jill,y,22"]) == [{"name": "Jill", "age": "22"}]


def test_blank_header_names_count_as_unknown_when_columns_are_allowed():
    tabular = Tabular(allowed_columns=["a"])
    with pytest.raises(InvalidHeader, match="Unknown columns after cleansing: ''"):
        tabular.parse_header("a,,")


def test_every_column_unknown_raises_even_with_skip_unknown():
    tabular = Tabular(allowed_columns=["x"], skip_unknown=True)
    with pytest.raises(InvalidHeader, match="All columns are unknown after cleansing: 'a', 'b'"):
        tabular.parse_header("a,b")


def test_missing_required_columns_raise_listing_them():
    tabular = Tabular(required_columns=["name", "zip", "age"])
    with pytest.raises(InvalidHeader, match="Missing columns after cleansing: 'zip', 'age'"):
        tabular.parse_header("Name,Other")


def test_required_columns_are_compared_after_cleansing():
    tabular = Tabular(required_columns=["first_name"])
    assert tabular.parse_header("First Name") == ["first_name"]


def test_allowed_columns_apply_to_names_as_given_when_not_cleansed():
    tabular = Tabular(allowed_columns=["Name"], header_cleanser="none", skip_unknown=True)
    assert tabular.parse_header("Name,Extra") == ["Name", "__rejected__Extra"]


def test_preset_columns_mean_no_header_row_and_are_never_cleansed():
    tabular = Tabular(columns=["First Name", "age"], allowed_columns=["nothing"])
    assert not tabular.header_required
    assert tabular.columns == ["First Name", "age"]
    assert tabular.parse("Jack,21") == {"First Name": "Jack", "age": "21"}


def test_short_rows_fill_none_and_extra_values_are_dropped():
    tabular = Tabular(columns=["a", "b", "c"])
    assert tabular.parse("1") == {"a": "1", "b": None, "c": None}
    assert tabular.parse("1,2,3,4,5") == {"a": "1", "b": "2", "c": "3"}
    assert tabular.parse_many(["1", "1,2,3,4"]) == [
        {"a": "1", "b": None, "c": None},
        {"a": "1", "b": "2", "c": "3"},
    ]


def test_duplicate_columns_are_an_error_naming_the_column_and_its_positions():
    tabular = Tabular()
    with pytest.raises(
        InvalidHeader,
        match=r"duplicate column 'name' \(columns 2, 3, 4\) from header names "
        r"'name', 'name', 'Name'",
    ):
        tabular.parse_header("id,name,name,Name")
    assert tabular.header_required  # nothing was kept


def test_blank_header_names_are_not_keys():
    tabular = Tabular()
    tabular.parse_header("a,,c")
    assert tabular.parse("1,2,3") == {"a": "1", "c": "3"}


def test_blank_lines_after_the_header_are_none_but_commas_alone_are_not_blank():
    tabular = Tabular(columns=["a", "b"])
    assert tabular.parse("") is None
    assert tabular.parse(" \t\r") is None
    assert tabular.parse(",") == {"a": None, "b": None}
    nbsp = "\u00a0"
    assert tabular.parse(nbsp) == {"a": nbsp, "b": None}  # NBSP is not blank
    assert tabular.parse_many(["", "1,2", "  "]) == [None, {"a": "1", "b": "2"}, None]


def test_rows_cannot_be_read_before_the_columns_are_known():
    with pytest.raises(MissingHeader, match="line 4: The csv format needs its columns"):
        Tabular().parse("a,b", line_number=4)
    with pytest.raises(MissingHeader):
        Tabular().parse_many(["a,b"])
    assert Tabular().parse_many(["", " "]) == [None, None]


def test_an_xlsx_row_header_and_rows_become_dicts():
    tabular = Tabular("xlsx")
    assert tabular.header_required
    assert tabular.parse_header(["Name", "Born", None, None]) == ["name", "born"]
    assert tabular.parse_row(["Jack", 1990]) == {"name": "Jack", "born": 1990}
    assert tabular.parse_row([]) is None
    assert tabular.parse_row(None) is None


def test_settings_are_plain_json_and_rebuild_an_equivalent_tabular():
    tabular = Tabular(allowed_columns=["name", "age"], skip_unknown=True)
    tabular.parse_header("Name,Extra,Age")
    settings = json.loads(json.dumps(tabular.settings()))
    worker = Tabular.from_settings(settings)
    assert not worker.header_required  # the worker never looks for a header
    assert worker.columns == tabular.columns
    assert worker.parse("Jack,x,21") == tabular.parse("Jack,x,21") == {"name": "Jack", "age": "21"}


def test_errors_are_codec_errors_and_value_errors():
    with pytest.raises(UnknownFormat, match="Unknown tabular format 'xml'") as caught:
        Tabular("xml")
    assert isinstance(caught.value, CodecError)
    assert isinstance(caught.value, ValueError)


def test_format_names_ignore_case_and_accept_aliases():
    assert Tabular("CSV").format == "csv"
    assert Tabular("jsonl").format == "json"
    assert Tabular("xlsm").format == "xlsx"


def test_format_options_are_rejected_by_formats_without_options():
    with pytest.raises(TabularError, match="accepts no format_options"):
        Tabular("csv", format_options={"layout": []})


def test_the_tabular_package_imports_nothing_from_the_job_layer():
    import ast

    import rjbatch.codecs.tabular as package

    folder = Path(package.__file__).parent
    for source in folder.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith("rjbatch") or name.startswith("rjbatch.codecs"), (
                    f"{source.name} imports {name}"
                )
