"""JSON records: one JSON document per line, or a whole file holding one JSON array.

Lines are parsed and rendered one at a time by ``Tabular("json")``; ``read_json`` reads a whole
file either way, streaming the array element by element so a large file is never held in
memory at once.

Rendering keeps JSON's own types (strings, numbers, ``true``/``false``, ``null``, arrays,
objects; tuples and sets become arrays). Values JSON has no type for become strings spelled
as csv spells them (``delimited.ruby_str``): ``Decimal`` ``"12.50"``, date ``"2026-01-01"``,
datetime ``"2026-01-01 10:00:00"`` (a space; aware: ``"...+00:00"``), time ``"10:30:00"``,
UUID its text, bytes as UTF-8 text. So a record renders to the same text in every format.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator
from typing import IO, Any, cast

from .delimited import json_default
from .errors import MalformedLine, excerpt

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"
_CHUNK = 1 << 16
#: A single array element larger than this is reported as malformed instead of buffered.
MAX_ELEMENT_CHARS = 64 << 20

JsonSource = str | os.PathLike | IO[bytes] | IO[str] | Iterable[str]


def json_value(line: str, line_number: int | None = None) -> Any:
    """Decode one JSON line, with an error that names the line."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        raise MalformedLine(
            f"Malformed JSON, {error.msg} (character {error.pos + 1}): {excerpt(line)}",
            line_number=line_number,
        ) from None


def json_line(record: Any) -> str:
    """Compact JSON, non-ASCII kept as is; Decimals, dates, UUIDs... as their csv text."""
    try:
        return json.dumps(
            record, separators=(",", ":"), ensure_ascii=False, default=json_default, allow_nan=False
        )
    except ValueError as error:  # NaN / Infinity have no JSON spelling
        raise MalformedLine(f"Cannot render JSON: {error}: {excerpt(record)}") from None


# ----------------------------------------------------------------------------------------
# Whole files


def _chunks(source: JsonSource) -> Iterator[str]:
    """The text of ``source`` in pieces (a line iterable gets its newlines back)."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8-sig") as handle:
            yield from iter(lambda: handle.read(_CHUNK), "")
        return
    if not hasattr(source, "read"):
        for line in source:  # lines from the line reader, without their delimiter
            yield line
            yield "\n"
        return
    if isinstance(source, io.TextIOBase):
        read = source.read
        yield from iter(lambda: read(_CHUNK), "")
        return
    # Any other file object is read as bytes (a text one is an io.TextIOBase, done above).
    text = io.TextIOWrapper(cast(IO[bytes], source), encoding="utf-8-sig")
    try:
        yield from iter(lambda: text.read(_CHUNK), "")
    finally:
        text.detach()  # leave the caller's file open


def read_json(source: JsonSource) -> Iterator[Any]:
    """Yield the records of a JSON-lines file or of a file holding one JSON array.

    ``source`` is a path, a binary or text file object, or an iterable of lines. A file whose
    first non-blank character is ``[`` is read as an array, element by element; otherwise
    every non-blank line is one record. Errors name the physical line.
    """
    chunks = _chunks(source)
    buffer = ""
    for chunk in chunks:
        buffer += chunk
        if buffer.strip(_WHITESPACE):
            break
    start = len(buffer) - len(buffer.lstrip(_WHITESPACE))
    if start == len(buffer):
        return
    if buffer[start] == "[":
        yield from _read_array(buffer, start + 1, chunks)
    else:
        yield from _read_lines(buffer, chunks)


def _read_lines(buffer: str, chunks: Iterator[str]) -> Iterator[Any]:
    line_number = 0
    for chunk in chunks:
        buffer += chunk
        if "\n" not in chunk:
            continue
        *lines, buffer = buffer.split("\n")
        for line in lines:
            line_number += 1
            if line.strip(_WHITESPACE):
                yield json_value(line, line_number)
    for line in buffer.split("\n"):
        line_number += 1
        if line.strip(_WHITESPACE):
            yield json_value(line, line_number)


class _ArrayReader:
    """A growing window over the text of an array, with the line number of its start."""

    def __init__(self, buffer: str, chunks: Iterator[str]) -> None:
        self.buffer = buffer
        self.chunks = chunks
        self.eof = False
        self.first_line = 1
        self.read_size = 1

    def more(self) -> bool:
        """Append at least one more chunk; False at the end of the file."""
        if self.eof:
            return False
        added = 0
        for chunk in self.chunks:
            self.buffer += chunk
            added += len(chunk)
            if added >= _CHUNK * self.read_size:
                break
        else:
            self.eof = True
        self.read_size = min(self.read_size * 2, 256)  # big elements: fewer re-parses
        return added > 0 or not self.eof

    def skip_whitespace(self, pos: int) -> int:
        while True:
            while pos < len(self.buffer) and self.buffer[pos] in _WHITESPACE:
                pos += 1
            if pos < len(self.buffer) or not self.more():
                return pos

    def compact(self, pos: int) -> int:
        if pos > (1 << 20):
            self.first_line += self.buffer.count("\n", 0, pos)
            self.buffer = self.buffer[pos:]
            return 0
        return pos

    def error(self, message: str, pos: int) -> MalformedLine:
        line_number = self.first_line + self.buffer.count("\n", 0, pos)
        return MalformedLine(f"Malformed JSON array, {message}", line_number=line_number)


def _read_array(buffer: str, pos: int, chunks: Iterator[str]) -> Iterator[Any]:
    reader = _ArrayReader(buffer, chunks)
    pos = reader.skip_whitespace(pos)
    if pos < len(reader.buffer) and reader.buffer[pos] == "]":
        pos += 1
    else:
        while True:
            if pos == len(reader.buffer):
                raise reader.error("the array is not closed with ']'", pos)
            reader.read_size = 1
            while True:
                try:
                    value, end = _DECODER.raw_decode(reader.buffer, pos)
                except json.JSONDecodeError as error:
                    if len(reader.buffer) - pos < MAX_ELEMENT_CHARS and reader.more():
                        continue
                    raise reader.error(error.msg, error.pos) from None
                if end == len(reader.buffer) and reader.more():
                    continue  # a number may go on in the next chunk
                break
            yield value
            pos = reader.skip_whitespace(end)
            if pos == len(reader.buffer):
                raise reader.error("the array is not closed with ']'", pos)
            char = reader.buffer[pos]
            pos += 1
            if char == "]":
                break
            if char != ",":
                raise reader.error(f"expected ',' or ']' but found {char!r}", pos - 1)
            pos = reader.compact(reader.skip_whitespace(pos))
    pos = reader.skip_whitespace(pos)
    if pos < len(reader.buffer):
        raise reader.error(
            f"unexpected text after the array: {excerpt(reader.buffer[pos : pos + 40])}", pos
        )
