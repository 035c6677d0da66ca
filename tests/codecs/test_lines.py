"""The line reader and writer: delimiters, EOF rules, the size guard, quoted CSV records."""

from __future__ import annotations

import io
import random
import tracemalloc

import pytest

from rjbatch.codecs import (
    DelimiterNotFound,
    LineReader,
    LineWriter,
    MalformedData,
    read_line_blocks,
    read_lines,
    write_lines,
)
from rjbatch.codecs.lines import format_for, quote_for


def lines_of(data: bytes, **options) -> list[str]:
    return list(LineReader(io.BytesIO(data), **options))


# --------------------------------------------------------------------------- delimiters


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a\r\nb\r\nc", ["a", "b", "c"]),
        (b"a\nb\nc\n", ["a", "b", "c"]),
        (b"a\rb\rc\r", ["a", "b", "c"]),  # old Mac files
        (b"a\r\nb\nc", ["a", "b\nc"]),  # the first line ending found is used for the whole file
        (b"a\nb\r\nc\n", ["a", "b\r", "c"]),
        (b"x\ry\r\nz", ["x", "y", "\nz"]),  # a lone \r before the first \r\n wins
        (b"no line ending", ["no line ending"]),
    ],
)
def test_the_first_line_ending_found_is_the_delimiter(data, expected):
    assert lines_of(data) == expected


@pytest.mark.usefixtures("small_reads")
def test_a_crlf_split_across_two_reads_is_still_one_delimiter():
    assert lines_of(b"ab\r\ncd\r\n", buffer_size=3) == ["ab", "cd"]
    assert lines_of(b"a\r\nb", buffer_size=2) == ["a", "b"]


def test_crlf_and_cr_files_written_by_tools(fixtures):
    assert list(read_lines(fixtures / "cr.txt")) == ["first", "second", "third"]
    assert list(read_lines(fixtures / "crlf.csv.gz")) == ["id,name,comment", '1,Ann,"two\r\nlines"', "2,Bob,plain"]


@pytest.mark.parametrize(
    ("data", "delimiter", "expected"),
    [
        (b"aBLAHbBLAHc", "BLAH", ["a", "b", "c"]),
        (b"a\x01b\x01", "\x01", ["a", "b"]),
        (b"a\x01b\x01", b"\x01", ["a", "b"]),
        (b"a||b||||c", "||", ["a", "b", "", "c"]),
        (b"a\nb;c", ";", ["a\nb", "c"]),
    ],
)
def test_custom_and_multi_character_delimiters(data, delimiter, expected):
    assert lines_of(data, delimiter=delimiter) == expected


@pytest.mark.usefixtures("small_reads")
def test_a_multi_character_delimiter_split_across_reads():
    assert lines_of(b"oneBLAHtwoBLAHthree", delimiter="BLAH", buffer_size=3) == ["one", "two", "three"]


def test_an_empty_delimiter_is_refused():
    with pytest.raises(ValueError, match="delimiter"):
        LineReader(io.BytesIO(b"x"), delimiter="")


# --------------------------------------------------------------------------- EOF rules


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a\nb\n", ["a", "b"]),  # no empty record for the final delimiter
        (b"a\n\nb\n\n", ["a", "", "b", ""]),  # blank lines in the middle are kept
        (b"\n", [""]),
        (b"\n\n", ["", ""]),
        (b"", []),
        (b"last", ["last"]),
    ],
)
def test_end_of_file_rules(data, expected):
    assert lines_of(data) == expected


def test_an_empty_file_has_zero_lines(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    assert list(read_lines(tmp_path / "empty.csv")) == []
    assert list(read_line_blocks(tmp_path / "empty.csv")) == []


# --------------------------------------------------------------------------- line numbers and blocks


def test_line_number_counts_physical_lines_of_each_record():
    reader = LineReader(io.BytesIO(b'h\na,"x\ny\nz"\nb\n\nc'), embedded_within='"')
    seen = [(line, reader.line_number) for line in reader]
    assert seen == [("h", 1), ('a,"x\ny\nz"', 4), ("b", 5), ("", 6), ("c", 7)]


@pytest.mark.usefixtures("small_reads")
def test_blocks_are_lists_and_line_number_follows_them():
    data = b"".join(b"%d\n" % i for i in range(1000))
    reader = LineReader(io.BytesIO(data), buffer_size=64)
    total = []
    for block in reader.blocks():
        assert isinstance(block, list) and block
        total.extend(block)
        assert reader.line_number == len(total)
    assert total == [str(i) for i in range(1000)]
    assert reader.bytes_read == len(data)


def test_read_line_blocks_gives_the_same_records_as_read_lines(tmp_path):
    path = tmp_path / "many.txt.gz"
    write_lines(path, (f"record {i}" for i in range(200_000)))
    blocks = list(read_line_blocks(path))
    assert len(blocks) > 1
    assert [line for block in blocks for line in block] == list(read_lines(path))


def test_a_reader_is_iterated_once():
    reader = LineReader(io.BytesIO(b"a\n"))
    assert list(reader) == ["a"]
    with pytest.raises(RuntimeError):
        list(reader)


# --------------------------------------------------------------------------- the size guard


class EndlessLine(io.RawIOBase):
    """``size`` bytes of "x" and then a newline, produced on the fly (nothing held in memory)."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self.remaining <= 0:
            return 0
        n = min(len(b), self.remaining)
        b[:n] = b"x" * n
        self.remaining -= n
        self.served += n
        return n


def test_a_100_mb_line_without_delimiter_fails_fast_with_bounded_memory():
    source = EndlessLine(100 * 1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(DelimiterNotFound) as info:
            list(read_lines(source, file_name="huge.txt", delimiter="\n"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert "huge.txt" in message and "line 1" in message and "buffer_size" in message
    assert source.served < 10 * 1024 * 1024  # stopped after ~6.5 MB, not 100 MB
    assert peak < 60 * 1024 * 1024


def test_the_guard_also_fires_while_detecting_the_delimiter():
    with pytest.raises(DelimiterNotFound, match=r"auto.*huge\.bin, line 1|huge\.bin, line 1.*auto"):
        list(read_lines(EndlessLine(20 * 1024 * 1024), file_name="huge.bin"))


def test_the_guard_names_the_line_where_the_long_line_starts():
    data = b"short\nshort\n" + b"y" * 2000
    with pytest.raises(DelimiterNotFound, match="line 3"):
        lines_of(data, buffer_size=10, file_name="x.txt")


def test_a_larger_buffer_size_allows_longer_lines():
    data = b"a" * 5000 + b"\nb\n"
    with pytest.raises(DelimiterNotFound):
        lines_of(data, buffer_size=16)
    assert lines_of(data, buffer_size=64) == ["a" * 5000, "b"]


# --------------------------------------------------------------------------- quoted CSV records


def test_a_quoted_field_keeps_its_embedded_newline():
    data = b'id,comment\n1,"first\nsecond"\n2,plain\n'
    assert lines_of(data, embedded_within='"') == ["id,comment", '1,"first\nsecond"', "2,plain"]


def test_doubled_quotes_inside_a_quoted_field_are_literal():
    data = b'1,"say ""hi""\nthere"\n2,"ends with quote"""\n3,x\n'
    assert lines_of(data, embedded_within='"') == ['1,"say ""hi""\nthere"', '2,"ends with quote"""', "3,x"]


def test_a_stray_quote_inside_an_unquoted_field_does_not_join_lines():
    # Ruby's parity count fails on this file with "Unbalanced delimited field"
    data = b'name,city\nO"Neil,Cork\nSmith,Dublin\n'
    assert lines_of(data, embedded_within='"') == ["name,city", 'O"Neil,Cork', "Smith,Dublin"]


def test_a_stray_quote_does_not_hide_a_real_quoted_field_after_it():
    # two quotes, even parity, but the second opens a real multi-line field
    data = b'O"Neil,"multi\nline"\nnext,row\n'
    assert lines_of(data, embedded_within='"') == ['O"Neil,"multi\nline"', "next,row"]


def test_an_unbalanced_quote_at_eof_names_the_line_where_the_record_began():
    data = b'h1,h2\na,b\nc,"never\nclosed\nat all\n'
    with pytest.raises(MalformedData) as info:
        lines_of(data, embedded_within='"', file_name="bad.csv")
    assert info.value.line_number == 3
    assert "bad.csv, line 3" in str(info.value) and "unbalanced quote" in str(info.value)


def test_a_quoted_field_open_for_too_long_is_malformed():
    data = b'a,"' + b"x\n" * 5000
    with pytest.raises(MalformedData, match="still open"):
        lines_of(data, embedded_within='"', buffer_size=16)


def test_quote_handling_with_crlf_and_another_separator():
    data = b'a|"b\r\nc"|d\r\ne|f\r\n'
    assert lines_of(data, embedded_within='"', separator="|") == ['a|"b\r\nc"|d', "e|f"]


@pytest.mark.parametrize(
    ("name", "quote"),
    [
        ("in.csv", '"'),
        ("IN.CSV", '"'),  # Ruby: case-sensitive; we treat upper case names the same
        ("in.csv.gz.enc", '"'),
        ("in.psv.csv", '"'),
        ("in.csv.psv", None),  # Ruby: ".csv" substring → quoting; the format here is psv
        ("in.txt", None),
        ("in.json", None),
        ("in.xlsx", None),
        (None, None),
    ],
)
def test_auto_quoting_follows_the_format_of_the_file_name(name, quote):
    assert quote_for(name) == quote


def test_auto_quoting_is_on_for_csv_names_and_can_be_switched_off():
    data = b'a,"b\nc"\n'
    assert lines_of(data, file_name="x.csv") == ['a,"b\nc"']
    assert lines_of(data, file_name="x.csv", embedded_within=None) == ['a,"b', 'c"']
    assert lines_of(data, file_name="x.txt") == ['a,"b', 'c"']
    assert lines_of(data, file_name="x.txt", embedded_within='"') == ['a,"b\nc"']


def test_separator_follows_the_format_when_quoting_is_asked_for():
    assert format_for("x.psv.gz") == "psv"
    data = b'a|"b\nc"\n'
    assert lines_of(data, file_name="x.psv", embedded_within='"') == ['a|"b\nc"']


def _reference_records(text: str, q: str, sep: str, d: str) -> list[str]:
    """A plain character-by-character CSV record splitter, slow but obviously right."""
    records, start, i, state = [], 0, 0, "start"
    while i < len(text):
        c = text[i]
        if state == "quoted":
            if c == q:
                if text[i + 1 : i + 2] == q:
                    i += 2
                    continue
                state = "field"
            i += 1
            continue
        if text.startswith(d, i):
            records.append(text[start:i])
            i += len(d)
            start, state = i, "start"
            continue
        state = "quoted" if (state == "start" and c == q) else ("start" if c == sep else "field")
        i += 1
    if state == "quoted":
        raise MalformedData("unbalanced")
    if start < len(text):
        records.append(text[start:])
    return records


@pytest.mark.usefixtures("small_reads")
@pytest.mark.parametrize("delimiter", ["\n", "\r\n", "XY"])
def test_quoted_splitting_matches_a_reference_state_machine(delimiter):
    rng = random.Random(delimiter)
    alphabet = ["a", "b", ",", '"', '"', "\n", "\r", "X", delimiter]
    for _ in range(1500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 50)))
        try:
            expected: object = _reference_records(text, '"', ",", delimiter)
        except MalformedData:
            expected = "unbalanced"
        try:
            got: object = lines_of(
                text.encode(), delimiter=delimiter, embedded_within='"', buffer_size=rng.randint(1, 8)
            )
        except MalformedData:
            got = "unbalanced"
        except DelimiterNotFound:
            continue  # a record longer than the tiny guard
        assert got == expected, (text, delimiter)


def test_dense_and_sparse_quoting_give_the_same_records():
    rng = random.Random(3)
    rows = []
    for i in range(3000):
        fields = [f'"v{i}"' if rng.random() < 0.9 else "plain" for _ in range(6)]
        if i % 7 == 0:
            fields.append('"multi\nline ""q"""')
        rows.append(",".join(fields))
    dense = "\n".join(rows).encode()  # nearly every field quoted
    sparse = "\n".join(r if i % 50 == 0 else f"{i},x,y" for i, r in enumerate(rows)).encode()
    for data in (dense, sparse):
        expected = _reference_records(data.decode(), '"', ",", "\n")
        assert lines_of(data, embedded_within='"') == expected


# --------------------------------------------------------------------------- writing


def test_write_lines_adds_the_delimiter_and_renders_none_as_an_empty_line(tmp_path):
    path = tmp_path / "out.txt"
    assert write_lines(path, ["x", None, 5, "é"]) == 4
    assert path.read_bytes() == "x\n\n5\né\n".encode()


def test_write_lines_with_custom_delimiter_and_encoding(tmp_path):
    path = tmp_path / "out.txt"
    write_lines(path, ["café", "b"], delimiter="\r\n", encoding="latin-1")
    assert path.read_bytes() == b"caf\xe9\r\nb\r\n"
    assert list(read_lines(path, encoding="latin-1")) == ["café", "b"]


def test_line_writer_writes_incrementally(tmp_path):
    path = tmp_path / "inc.txt.gz"
    with LineWriter(path) as writer:
        writer.write("first")
        assert writer.write_many(f"n{i}" for i in range(10_000)) == 10_000
        writer.write_many([])
        writer.write("last")
        assert writer.lines_written == 10_002
    lines = list(read_lines(path))
    assert lines[0] == "first" and lines[-1] == "last" and len(lines) == 10_002


def test_line_writer_must_be_opened():
    writer = LineWriter(io.BytesIO())
    with pytest.raises(Exception, match="with statement"):
        writer.write("x")


def test_write_lines_to_a_binary_file_object():
    out = io.BytesIO()
    write_lines(out, ["a", "b"])
    assert out.getvalue() == b"a\nb\n"
