"""Decoding from a declared encoding, replacement of bad bytes, and the cleaners."""

from __future__ import annotations

import io
import sys
import unicodedata

import pytest

from rjbatch.codecs import DecodingError, LineReader, make_cleaner, printable_cleaner, read_lines
from rjbatch.codecs.text import DecodeFailure, TextDecoder


def lines_of(data: bytes, **options) -> list[str]:
    return list(LineReader(io.BytesIO(data), **options))


# --------------------------------------------------------------------------- encodings


def test_latin1_is_decoded_when_declared(fixtures):
    assert list(read_lines(fixtures / "latin1.txt", encoding="latin-1")) == ["name", "café", "naïve"]


def test_cp1252_specials_are_decoded():
    assert lines_of(b"\x80 \x93quoted\x94\n", encoding="cp1252") == ["€ “quoted”"]


def test_utf16_with_bom_is_decoded(fixtures):
    assert list(read_lines(fixtures / "utf16.csv", encoding="utf-16")) == ["id,name", "1,Ann"]


def test_a_utf8_bom_at_the_start_is_dropped(fixtures):
    assert list(read_lines(fixtures / "bom.csv")) == ["id,name", "1,Zoë"]


def test_a_bom_elsewhere_is_kept():
    assert lines_of("a\n\ufeffb\n".encode()) == ["a", "\ufeffb"]


@pytest.mark.usefixtures("small_reads")
def test_a_character_split_across_reads_is_decoded_whole():
    data = "é✓😀\n".encode() * 50
    assert lines_of(data, buffer_size=1) == ["é✓😀"] * 50


def test_invalid_utf8_names_the_file_line_and_byte_offset(fixtures):
    with pytest.raises(DecodingError) as info:
        list(read_lines(fixtures / "invalid_utf8.txt"))
    err = info.value
    assert (err.line_number, err.offset) == (2, 12)
    assert "invalid_utf8.txt, line 2, byte 12" in str(err) and "ff" in str(err)


@pytest.mark.usefixtures("small_reads")
def test_the_offset_is_exact_when_the_bad_byte_comes_late():
    data = b"ok\n" * 1000 + b"\xc3\x28\n"
    with pytest.raises(DecodingError) as info:
        lines_of(data, buffer_size=7)
    assert (info.value.line_number, info.value.offset) == (1001, 3000)


def test_a_truncated_character_at_eof_is_an_error():
    with pytest.raises(DecodingError, match="line 2"):
        lines_of(b"a\nb\xe2\x9c")


@pytest.mark.parametrize(("replace", "expected"), [("?", ["a?b", "é"]), ("", ["ab", "é"]), ("\ufffd", ["a\ufffdb", "é"])])
def test_encode_replace_substitutes_undecodable_bytes_only(replace, expected):
    assert lines_of(b"a\xffb\n\xc3\xa9\n", encode_replace=replace) == expected


def test_an_unknown_encoding_is_an_error():
    with pytest.raises(LookupError):
        LineReader(io.BytesIO(b""), encoding="no-such-codec")


def test_decoder_reports_offsets_across_calls():
    decoder = TextDecoder()
    assert decoder.decode(b"abc\n") == "abc\n"
    assert decoder.decode(b"de\xc3") == "de"
    with pytest.raises(DecodeFailure) as info:
        decoder.decode(b"x")
    assert info.value.offset == 6


# --------------------------------------------------------------------------- cleaners

REMOVED = [
    "\t", "\x00", "\x0b", "\x0c", "\x1b", "\x7f",  # Cc, TAB included
    "\x80", "\x9f", "\x85",  # C1 controls, NEL
    "\u2028", "\u2029",  # Zl, Zp
    "\u0378",  # unassigned
    "\ud800",  # surrogate
]
KEPT = [
    "a", " ", "|", "\r", "\n", "é",
    "\u00a0", "\u3000",  # space separators
    "\u200b", "\ufeff", "\u00ad",  # format characters
    "\ue000",  # private use
    "😀",
]


@pytest.mark.parametrize("char", REMOVED)
def test_printable_removes_controls_unassigned_surrogates_and_line_separators(char):
    assert printable_cleaner()(f"x{char}y") == "xy"


@pytest.mark.parametrize("char", KEPT)
def test_printable_keeps_spaces_format_characters_private_use_and_emoji(char):
    assert printable_cleaner()(f"x{char}y") == f"x{char}y"


def test_printable_matches_the_unicode_category_rule_for_every_code_point():
    removed = {"Cc", "Cn", "Cs", "Zl", "Zp"}
    everything = "".join(chr(cp) for cp in range(sys.maxunicode + 1))
    expected = "".join(
        ch for ch in everything if ch in "\r\n" or unicodedata.category(ch) not in removed
    )
    assert printable_cleaner()(everything) == expected


def test_printable_through_the_reader():
    data = "a\tb\x00c\r\nnbsp\u00a0ok\r\n".encode()
    assert lines_of(data, encode_cleaner="printable") == ["abc", "nbsp\u00a0ok"]


def test_printable_never_removes_the_delimiter_or_the_csv_separator():
    assert lines_of(b"a\x00b\x01c\x01", delimiter="\x01", encode_cleaner="printable") == ["ab", "c"]
    data = b'a\t"b\nc"\x07\n'
    assert lines_of(data, embedded_within='"', separator="\t", encode_cleaner="printable") == ['a\t"b\nc"']


def test_replace_non_printable_uses_the_replacement():
    assert lines_of(b"a\x00b\n", encode_cleaner="replace_non_printable", encode_replace="?") == ["a?b"]


def test_a_callable_cleaner_takes_and_returns_text():
    assert lines_of(b"Hello\nWorld\n", encode_cleaner=str.upper) == ["HELLO", "WORLD"]


def test_an_unknown_cleaner_is_refused():
    with pytest.raises(ValueError, match="encode_cleaner"):
        make_cleaner("shiny")
    assert make_cleaner(None) is None
