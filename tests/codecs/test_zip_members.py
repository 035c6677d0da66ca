"""A zip of several files is read whole: every member, in archive order, as one stream of lines.

The fixtures are made by the real ``zip`` command (fixtures/make_fixtures.sh).
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile

import pytest

from rjbatch.codecs import (
    LineReader,
    MalformedData,
    ZipEntryNotFound,
    open_read,
    read_line_blocks,
    read_lines,
)
from rjbatch.codecs.tabular import (
    Tabular,
    TabularError,
    read_parquet,
    read_xlsx,
    write_parquet,
    write_xlsx,
)
from tests.codecs.conftest import OneWay

ALL_LINES = [
    "id,name", "1,Ann", "2,Bob",  # part1.csv
    "id,name", "3,Cy", "4,Di",  # part2.csv, no newline at its end
    "read me",  # notes.txt (more/ is a directory: skipped)
    "id,name", "5,Ed",  # more/part3.csv
]  # fmt: skip


def numbered(path, **options) -> list[tuple[int, str]]:
    with open_read(path, zip_entry=options.pop("zip_entry", None)) as stream:
        reader = LineReader(stream, **options)
        return [(reader.line_number, line) for line in reader]


def test_every_member_is_read_in_archive_order_and_a_line_never_spans_two(fixtures):
    assert list(read_lines(fixtures / "split_csv.zip")) == ALL_LINES


def test_the_bytes_are_the_plain_concatenation_and_the_stream_names_its_members(fixtures):
    with open_read(fixtures / "split_csv.zip") as stream:
        assert stream.members == ["part1.csv", "part2.csv", "notes.txt", "more/part3.csv"]
        assert stream.member_number == 0 and stream.member is None
        seen = []
        while data := stream.read(5):
            seen.append((stream.member, data))
    assert b"".join(data for _, data in seen) == (
        b"id,name\n1,Ann\n2,Bob\n" b"id,name\n3,Cy\n4,Di" b"read me\n" b"id,name\n5,Ed\n"
    )
    # a read never returns bytes of two members
    assert b"".join(d for m, d in seen if m == "part2.csv") == b"id,name\n3,Cy\n4,Di"
    with open_read(fixtures / "lines.txt.zip") as stream:
        assert stream.members == ["lines.txt"]
    with open_read(fixtures / "lines.txt.gz") as stream:
        assert stream.members is None and stream.member_number is None


def test_skip_repeated_header_drops_a_members_first_line_equal_to_the_first_ones(fixtures):
    lines = list(read_lines(fixtures / "split_csv.zip", zip_entry="*.csv", skip_repeated_header=True))
    assert lines == ["id,name", "1,Ann", "2,Bob", "3,Cy", "4,Di", "5,Ed"]


def test_skip_repeated_header_refuses_a_member_that_starts_otherwise_naming_it(fixtures):
    with pytest.raises(MalformedData, match="notes.txt starts with 'read me', not the header of part1.csv"):
        list(read_lines(fixtures / "split_csv.zip", skip_repeated_header=True))


def test_line_numbers_count_physical_lines_through_the_members(fixtures):
    assert numbered(fixtures / "split_csv.zip") == list(enumerate(ALL_LINES, 1))
    with open_read(fixtures / "split_csv.zip", zip_entry="*.csv") as stream:
        reader = LineReader(stream, skip_repeated_header=True)
        pairs = [(reader.line_number, line) for line in reader]
        assert reader.repeated_headers_skipped == 2
    assert [n for n, _ in pairs] == [1, 2, 3, 5, 6, 8]


@pytest.mark.usefixtures("small_reads")
@pytest.mark.parametrize("buffer_size", [1, 3, 7, 64])
def test_member_boundaries_hold_whatever_the_read_size(fixtures, buffer_size):
    with open_read(fixtures / "split_csv.zip", zip_entry="*.csv") as stream:
        reader = LineReader(stream, buffer_size=buffer_size, skip_repeated_header=True)
        blocks = list(reader.blocks())
    assert [line for block in blocks for line in block] == [
        "id,name", "1,Ann", "2,Bob", "3,Cy", "4,Di", "5,Ed",
    ]  # fmt: skip
    assert reader.line_number == 8
    assert all(blocks)  # a block emptied by the dropped header is not handed out
    with open_read(fixtures / "split_csv.zip", zip_entry="*.csv") as stream:
        reader = LineReader(stream, buffer_size=buffer_size, skip_repeated_header=True)
        pairs = [(reader.line_number, line) for line in reader]
    assert [n for n, _ in pairs] == [1, 2, 3, 5, 6, 8]


def test_a_glob_picks_matching_members_by_base_name_or_by_path(fixtures):
    lines = list(read_lines(fixtures / "split_csv.zip", zip_entry="*.csv", skip_repeated_header=True))
    assert lines == ["id,name", "1,Ann", "2,Bob", "3,Cy", "4,Di", "5,Ed"]
    assert list(read_lines(fixtures / "split_csv.zip", zip_entry="more/*.csv")) == ["id,name", "5,Ed"]
    assert list(read_lines(fixtures / "split_csv.zip", zip_entry="MORE/*.CSV")) == ["id,name", "5,Ed"]
    both = list(read_lines(fixtures / "split_csv.zip", zip_entry="part?.csv"))
    assert both == ALL_LINES[:6] + ALL_LINES[7:]  # more/part3.csv too: its base name matches


def test_an_exact_name_reads_that_member_only(fixtures):
    assert list(read_lines(fixtures / "split_csv.zip", zip_entry="part2.csv")) == ALL_LINES[3:6]
    assert list(read_lines(fixtures / "split_csv.zip", zip_entry="more/part3.csv")) == ALL_LINES[7:]


def test_no_matching_member_names_the_entries(fixtures):
    with pytest.raises(ZipEntryNotFound, match=r"no zip entry matches '\*\.tsv' \(entries: part1"):
        list(read_lines(fixtures / "split_csv.zip", zip_entry="*.tsv"))
    with pytest.raises(ZipEntryNotFound, match=r"no zip entry 'part9.csv'.*more/part3.csv"):
        list(read_lines(fixtures / "split_csv.zip", zip_entry="part9.csv"))


def test_crlf_members_with_a_bom_each_split_at_the_member_end(fixtures):
    # one.csv ends without its CRLF; both start with a UTF-8 BOM (as Excel writes them)
    path = fixtures / "crlf_bom_parts.zip"
    with open_read(path) as stream:
        reader = LineReader(stream, embedded_within='"', skip_repeated_header=True)
        assert list(reader) == ["a,b", "1,2", '3,"x\r\ny"']
        assert reader.delimiter == "\r\n"
        assert reader.line_number == 5  # the quoted CRLF is a line break too


def test_a_quote_left_open_at_a_members_end_does_not_run_into_the_next(fixtures):
    with pytest.raises(MalformedData, match="line 2.*never closes"):
        list(read_lines(fixtures / "unclosed_quote_parts.zip", embedded_within='"'))
    good = read_lines(fixtures / "unclosed_quote_parts.zip", embedded_within='"', zip_entry="good.csv")
    assert list(good) == ["a,b", '2,"closed"']


def test_a_split_csv_reads_into_records_with_one_header(fixtures):
    tabular = Tabular("csv")
    blocks = read_line_blocks(fixtures / "split_csv.zip", zip_entry="*.csv", skip_repeated_header=True)
    records = []
    for block in blocks:
        if tabular.header_required:
            tabular.parse_header(block[0])
            block = block[1:]
        records += tabular.parse_many(block)
    assert [r["id"] for r in records] == ["1", "2", "3", "4", "5"]


def test_macos_metadata_members_are_skipped_unless_named(tmp_path):
    path = tmp_path / "finder.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data.csv", "a\n1\n")
        zf.writestr("__MACOSX/._data.csv", b"\x00\x05\x16\x07junk")
    assert list(read_lines(path)) == ["a", "1"]
    assert list(read_lines(path, zip_entry="*.csv")) == ["a", "1"]
    with open_read(path, zip_entry="__MACOSX/._data.csv") as stream:
        assert stream.read() == b"\x00\x05\x16\x07junk"


def test_a_non_seekable_zip_of_several_members_is_spooled(fixtures):
    source = OneWay((fixtures / "split_csv.zip").read_bytes())
    assert list(read_lines(source, file_name="split_csv.zip")) == ALL_LINES


@pytest.mark.skipif(shutil.which("zip") is None, reason="needs the zip command")
def test_a_whole_file_format_in_a_zip_of_several_members_needs_zip_entry(tmp_path):
    write_xlsx(tmp_path / "a.xlsx", [["a"], [1]])
    write_xlsx(tmp_path / "b.xlsx", [["a"], [2]])
    write_parquet(tmp_path / "a.parquet", [{"a": 1}])
    write_parquet(tmp_path / "b.parquet", [{"a": 2}])
    for kind, read in (("xlsx", read_xlsx), ("parquet", read_parquet)):
        path = tmp_path / f"books.{kind}.zip"
        # the real zip command, as a person would make the archive
        subprocess.run(["zip", "-q", "-j", str(path), str(tmp_path / f"a.{kind}"),
                        str(tmp_path / f"b.{kind}")], check=True)  # fmt: skip
        with open_read(path) as stream:
            with pytest.raises(TabularError, match=rf"zip holds 2 entries \(a.{kind}, b.{kind}\)"):
                list(read(stream))
        with open_read(path, zip_entry=f"b.{kind}") as stream:
            rows = list(read(stream))
        assert rows == ([["a"], [2]] if kind == "xlsx" else [{"a": 2}])
