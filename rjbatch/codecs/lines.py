"""Splitting decoded text into lines (records), and writing lines.

Speed is the point here. Each block of bytes is decoded once and split with ``str.split``; only
blocks that contain the quote character go through the quote-aware splitter, and that one is
driven by regular expressions (a real CSV state machine: a quote opens a quoted field only at
the start of a field, ``""`` inside a quoted field is a literal quote), not a Python loop over
characters and not Ruby's quote-parity count, which a stray quote (``O"Neil``) breaks.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import compress, count, repeat
from operator import contains
from typing import Any, Protocol, runtime_checkable

from . import remote
from .blocks import Readable
from .errors import (
    CodecError,
    DecodingError,
    DelimiterNotFound,
    InvalidOption,
    MalformedData,
    UnknownEncoding,
)
from .streams import EXTENSIONS, Source, open_read, open_write
from .text import Cleaner, DecodeFailure, TextDecoder, make_cleaner

#: the guard: a line (or a quoted record) may not grow beyond this many × ``buffer_size``
LINE_LIMIT_FACTOR = 100
#: bytes asked of the stream per read, whatever ``buffer_size`` says: big reads are what
#: makes Python fast here (``buffer_size`` keeps its meaning for the size guard)
MIN_READ_SIZE = 1 << 18

_AUTO = "auto"
_FORMATS = {"csv", "psv", "json", "jsonl", "fixed", "xlsx", "xlsm", "parquet", "txt"}
_SEPARATORS = {"csv": ",", "psv": "|", "tsv": "\t"}


def format_for(file_name: str | os.PathLike[str] | None) -> str | None:
    """The tabular format a name implies: the right-most extension that is a format, any case.

    ``a.csv.gz`` → ``csv``; ``a.psv.csv`` → ``csv``; ``A.CSV`` → ``csv``; ``a.txt`` → ``txt``.
    Stream extensions are skipped; other unknown extensions too (as in IOStreams).
    """
    if not file_name:
        return None
    name = os.fspath(file_name)
    base = remote.uri_file_name(name) if remote.is_uri(name) else posixpath.basename(name)
    for part in reversed(base.split(".")[1:]):
        key = part.lower()
        if key in _FORMATS or key == "tsv":
            return key
    return None


def quote_for(file_name: str | os.PathLike[str] | None) -> str | None:
    """``embedded_within="auto"``: a double quote for csv names (any case), otherwise none."""
    return '"' if format_for(file_name) == "csv" else None


def _detect_delimiter(text: str, eof: bool) -> str | None:
    """Leftmost of ``\\r\\n``, ``\\n``, ``\\r``; None when more data is needed to decide."""
    n = text.find("\n")
    r = text.find("\r")
    if r == -1:
        return "\n" if n != -1 else ("\n" if eof else None)
    if n != -1 and n < r:
        return "\n"
    if r + 1 < len(text):
        return "\r\n" if text[r + 1] == "\n" else "\r"
    return "\r" if eof else None  # a trailing \r may be half of a \r\n split across blocks


class _QuoteSplitter:
    """Splits text into records where the delimiter may sit inside quoted fields."""

    def __init__(self, quote: str, separator: str, delimiter: str, file_name: str | None = None) -> None:
        if len(quote) != 1 or len(separator) != 1:
            raise InvalidOption("embedded_within and separator must be single characters", file_name=file_name)
        if quote == separator or quote in delimiter or separator in delimiter:
            raise InvalidOption(
                f"quote {quote!r}, separator {separator!r} and delimiter {delimiter!r} must not overlap",
                file_name=file_name)
        self.quote = quote
        self.delimiter = delimiter
        q, s = re.escape(quote), re.escape(separator)
        d0, drest = re.escape(delimiter[0]), re.escape(delimiter[1:])
        # an unquoted run: anything but the separator or the delimiter
        if drest:
            unq = f"(?:[^{s}{d0}]++|{d0}(?!{drest}))*+"
        else:
            unq = f"[^{s}{d0}]*+"
        body = f"{q}[^{q}]*+(?:{q}{q}[^{q}]*+)*+"  # an opening quote and its content
        # a physical-line-free record: complete when every quoted field closes
        line_field = f"(?:{body}{q}[^{s}]*+|(?!{q})[^{s}]*+)"
        self.complete = re.compile(f"{line_field}(?:{s}{line_field})*+", re.S).fullmatch
        # whole records in a block; a quoted field still open at the end runs to \Z
        field = f"(?:{body}(?:{q}{unq}|\\Z)|(?!{q}){unq})"
        self._records = re.compile(
            f"(?!\\Z)({field}(?:{s}{field})*+)(?:{re.escape(delimiter)}|\\Z)", re.S
        ).findall

    def split(self, text: str, lines: list[str], last: str) -> tuple[list[str], str, int, bool]:
        """(records, carry, physical lines consumed, whether any record was joined).

        ``lines``/``last`` are ``text.split(delimiter)`` with the last piece popped. Sparse
        quoting checks only the lines holding a quote; dense quoting parses the whole block.
        """
        if text.count(self.quote) > len(lines) // 2:
            return self._dense(text)
        return self._sparse(lines, last)

    def _dense(self, text: str) -> tuple[list[str], str, int, bool]:
        records = self._records(text)
        d = self.delimiter
        consumed = sum(map(len, records)) + len(records) * len(d)
        if consumed > len(text):  # the last record ran to the end of the text: it is the carry
            carry = records.pop()
            consumed = len(text) - len(carry)
        else:
            carry = ""
        physical = text.count(d, 0, consumed)
        return records, carry, physical, physical != len(records)

    def _sparse(self, lines: list[str], last: str) -> tuple[list[str], str, int, bool]:
        q, d, complete = self.quote, self.delimiter, self.complete
        n = len(lines)
        out: list[str] | None = None
        start = 0
        resume = 0
        for k in [i for i, line in enumerate(lines) if q in line]:
            if k < resume or complete(lines[k]):
                continue
            # the record that begins on line k has an open quoted field: join the next lines
            m = k + 1
            while m < n:
                m += 1
                if q in lines[m - 1] and complete(d.join(lines[k:m])):
                    break
            else:
                if out is None:
                    out = []
                out.extend(lines[start:k])
                return out, d.join(lines[k:]) + d + last, k, True
            if out is None:
                out = []
            out.extend(lines[start:k])
            out.append(d.join(lines[k:m]))
            start = resume = m
        if out is None:
            return lines, last, n, False
        out.extend(lines[start:])
        return out, last, n, True


@runtime_checkable
class _MemberStream(Readable, Protocol):
    """A stream of several zip members (``StreamReader``): which member the bytes came from."""

    @property
    def members(self) -> list[str] | None: ...

    @property
    def member(self) -> str | None: ...

    @property
    def member_number(self) -> int | None: ...


class LineReader:
    """Reads lines (records) from a binary stream of already decoded/decompressed bytes.

    ``delimiter=None`` detects ``\\r\\n``, ``\\n`` or ``\\r`` (the first one found, then fixed).
    ``embedded_within='"'`` keeps delimiters inside quoted fields; ``"auto"`` switches it on
    for csv file names. A line longer than ``100 × buffer_size`` characters raises
    ``DelimiterNotFound`` (``MalformedData`` for a quoted field that never closes), so a file
    without delimiters cannot exhaust memory.

    ``line_number`` is the physical line number of the last record handed out (0 before);
    ``bytes_read`` counts bytes taken from the stream.

    On a stream of several zip members (``open_read`` of a zip, see ``streams``) each member
    ends its last line, with or without a final delimiter, and starts with a fresh decoder
    (its own BOM); ``line_number`` counts on through the members. With
    ``skip_repeated_header=True`` a member's first line is dropped when it equals the first
    member's first line (a CSV split into files that each repeat the header), and a member
    that starts with another line raises ``MalformedData`` naming both files; the dropped
    lines still count in ``line_number`` and are counted in ``repeated_headers_skipped``.
    """

    def __init__(
        self,
        stream: Readable,
        *,
        file_name: str | os.PathLike[str] | None = None,
        delimiter: str | bytes | None = None,
        buffer_size: int = 65536,
        encoding: str = "utf-8",
        encode_replace: str | None = None,
        encode_cleaner: None | str | Cleaner = None,
        embedded_within: str | None = _AUTO,
        separator: str | None = None,
        skip_repeated_header: bool = False,
    ) -> None:
        self._stream = stream
        self.file_name = os.fspath(file_name) if file_name else getattr(stream, "file_name", None)
        if buffer_size <= 0:
            raise InvalidOption("buffer_size must be positive", file_name=self.file_name)
        self.buffer_size = buffer_size
        try:
            self._decoder = TextDecoder(encoding, encode_replace)
        except UnknownEncoding as exc:
            raise UnknownEncoding(exc.reason, file_name=self.file_name) from None
        if isinstance(delimiter, bytes):
            delimiter = delimiter.decode(self._decoder.encoding)
        if delimiter is not None and not delimiter:
            raise InvalidOption("delimiter must not be empty", file_name=self.file_name)
        self.delimiter: str | None = delimiter
        if embedded_within == _AUTO:
            embedded_within = quote_for(self.file_name)
        self.embedded_within = embedded_within or None
        if separator is None:
            separator = _SEPARATORS.get(format_for(self.file_name) or "", ",")
        self.separator = separator
        keep = (delimiter or "") + (separator if self.embedded_within else "")
        self._cleaner = make_cleaner(encode_cleaner, encode_replace, keep)
        self._limit = LINE_LIMIT_FACTOR * buffer_size
        self._read_size = max(buffer_size, MIN_READ_SIZE)
        self.line_number = 0
        self.bytes_read = 0
        self.skip_repeated_header = bool(skip_repeated_header)
        #: how many member first lines ``skip_repeated_header`` dropped
        self.repeated_headers_skipped = 0
        self._started = False

    # ------------------------------------------------------------------ iteration

    def __iter__(self) -> Iterator[str]:
        """One record at a time, ``line_number`` exact for each."""
        for records, joined in self._blocks():
            end = self.line_number
            if not joined:
                n = end - len(records)
                for n, record in enumerate(records, n + 1):  # noqa: B020 - n is the counter
                    self.line_number = n
                    yield record
            else:
                # the few records that span lines, found in C; the rest count one line each
                d = self.delimiter or "\n"
                spanning = list(compress(count(), map(contains, records, repeat(d))))
                n = end - len(records) - sum(records[j].count(d) for j in spanning)
                previous = 0
                for j in spanning:
                    for n, record in enumerate(records[previous:j], n + 1):  # noqa: B020
                        self.line_number = n
                        yield record
                    record = records[j]
                    n += record.count(d) + 1
                    self.line_number = n
                    yield record
                    previous = j + 1
                for n, record in enumerate(records[previous:], n + 1):  # noqa: B020
                    self.line_number = n
                    yield record
            self.line_number = end

    def blocks(self) -> Iterator[list[str]]:
        """Lists of records, one list per block read (hundreds to thousands of records each).

        ``line_number`` is the physical line number of the last record of the list just yielded.
        """
        for records, _joined in self._blocks():
            yield records

    def _blocks(self) -> Iterator[tuple[list[str], bool]]:
        if self._started:
            raise RuntimeError("a LineReader can be iterated once")
        self._started = True
        stream = self._stream
        read = stream.read
        clean = self._cleaner
        quote = self.embedded_within
        splitter: _QuoteSplitter | None = None
        delim = self.delimiter
        if delim is not None and quote:
            splitter = _QuoteSplitter(quote, self.separator, delim, self.file_name)
        carry = ""
        eof = False
        # with a small buffer_size a whole over-long line can fit in one read: check those too
        check_complete = self._limit < self._read_size
        # zip members: a change of zipped.member_number ends the member read so far
        zipped = stream if isinstance(stream, _MemberStream) else None
        if zipped is not None and len(zipped.members or ()) < 2:
            zipped = None
        member: int | None = 0  # the member the text in hand came from
        pending = b""  # the first bytes of the next member, read before the previous one ended
        # where a repeated header is dropped: the members' stream (None: nowhere)
        headers = zipped if self.skip_repeated_header else None
        first_line: str | None = None  # the first member's first line
        member_start = False  # the next record handed out is a member's first line
        while not eof:
            if pending:  # a new member: a new file for the decoder
                data, pending = pending, b""
                self._decoder.restart()
                member_start = headers is not None
            else:
                data = read(self._read_size)
                self.bytes_read += len(data)
            final = not data
            if zipped is not None and data and zipped.member_number != member:
                if member:  # end the previous member first, as if at the end of the file
                    pending, data, final = data, b"", True
                member = zipped.member_number
            if data:
                text = self._decode(data, False, carry, delim)
            else:
                eof = not pending
                text = self._decode(b"", True, carry, delim)
            if clean is not None and text:
                text = clean(text)
            if delim is not None and splitter is None and carry and len(delim) == 1:
                # common case: split the new text alone and glue the carry to its first piece
                # (saves copying every block once)
                lines = text.split(delim)
                lines[0] = carry + lines[0]
                last = lines.pop()
                if final and last:
                    lines.append(last)
                    last = ""
                carry = last
                if len(carry) > self._limit:
                    self._check_guard(carry, None, self.line_number + len(lines) + 1)
                if lines:
                    if check_complete and max(map(len, lines)) > self._limit:
                        self._long_record(lines, False)
                    self.line_number += len(lines)
                    if headers is not None:
                        first_line, member_start = self._drop_header(lines, first_line, member_start, headers)
                    if lines:
                        yield lines, False
                continue
            if carry:
                text = carry + text
            if delim is None:
                delim = _detect_delimiter(text, final)
                if delim is None:
                    carry = text
                    self._check_guard(carry, None)
                    continue
                self.delimiter = delim
                if quote:
                    splitter = _QuoteSplitter(quote, self.separator, delim, self.file_name)
            lines = text.split(delim)
            last = lines.pop()
            joined = False
            if splitter is not None and splitter.quote in text:
                lines, last, physical, joined = splitter.split(text, lines, last)
            else:
                physical = len(lines)
            if final and last:
                if splitter is not None and splitter.quote in last and not splitter.complete(last):
                    raise MalformedData(
                        f"unbalanced quote: a quoted field ({quote}) opened in the record "
                        f"starting on line {self.line_number + physical + 1} never closes",
                        file_name=self.file_name,
                        line_number=self.line_number + physical + 1,
                    )
                lines.append(last)
                n = last.count(delim) + 1
                physical += n
                joined = joined or n > 1
                last = ""
            carry = last
            if len(carry) > self._limit:
                self._check_guard(carry, splitter, self.line_number + physical + 1)
            if lines:
                if check_complete and max(map(len, lines)) > self._limit:
                    self._long_record(lines, joined)
                if headers is not None:
                    first_line, member_start = self._drop_header(lines, first_line, member_start, headers)
                self.line_number += physical
                if lines:
                    yield lines, joined

    def _drop_header(
        self, lines: list[str], first_line: str | None, member_start: bool, stream: _MemberStream
    ) -> tuple[str | None, bool]:
        """Remember the first member's first line; drop a later member's first line equal to it.

        A later member that starts with another line holds another table (its header would
        become data, its rows be cut to the first one's columns): ``MalformedData`` naming
        both files. Returns the new ``(first_line, member_start)``; ``lines`` changes in place.
        """
        if first_line is None:
            return lines[0], False
        if member_start:
            if lines[0] != first_line:
                members = stream.members or []
                raise MalformedData(
                    f"{stream.member} starts with {lines[0][:80]!r}, not the header of {members[0]} "
                    f"({first_line[:80]!r}): upload its files separately (zip_entry=...)",
                    file_name=self.file_name)
            del lines[0]
            self.repeated_headers_skipped += 1
        return first_line, False

    # ------------------------------------------------------------------ helpers

    def _decode(self, data: bytes, final: bool, carry: str, delim: str | None) -> str:
        try:
            return self._decoder.decode(data, final)
        except DecodeFailure as exc:
            text = carry + exc.prefix
            line = self.line_number + text.count(delim or "\n") + 1
            raise DecodingError(
                exc.reason + " (pass encoding= or encode_replace=)",
                file_name=self.file_name,
                line_number=line,
                offset=exc.offset,
            ) from None

    def _long_record(self, records: list[str], joined: bool) -> None:
        d = self.delimiter or "\n"
        line = self.line_number
        for record in records:
            if len(record) > self._limit:
                self._check_guard(record, None, line + 1)
            line += record.count(d) + 1 if joined else 1

    def _check_guard(self, carry: str, splitter: _QuoteSplitter | None, line: int | None = None) -> None:
        if len(carry) <= self._limit:
            return
        line = line if line is not None else self.line_number + 1
        if splitter is not None and not splitter.complete(carry):
            raise MalformedData(
                f"unbalanced quote: a quoted field ({splitter.quote}) opened in the record "
                f"starting on line {line} is still open after {len(carry):,} characters "
                f"(limit {LINE_LIMIT_FACTOR} × buffer_size)",
                file_name=self.file_name,
                line_number=line,
            )
        shown = repr(self.delimiter) if self.delimiter else "(auto: \\r\\n, \\n or \\r)"
        raise DelimiterNotFound(
            f"delimiter {shown} not found within {len(carry):,} characters "
            f"(limit {LINE_LIMIT_FACTOR} × buffer_size={self.buffer_size:,}); the file has no "
            "line breaks, the delimiter is wrong, or buffer_size must be raised",
            file_name=self.file_name,
            line_number=line,
            offset=self.bytes_read,
        )


def read_lines(source: Source, **options: Any) -> Iterator[str]:
    """Every line (record) of a path, URI or binary file object, through its stream chain.

    Takes the options of ``read_line_blocks``. Use ``LineReader`` on an ``open_read``
    stream instead when you need ``line_number`` as you go; this function skips that
    bookkeeping (a third faster per line).
    """
    for block in read_line_blocks(source, **options):
        yield from block


def read_line_blocks(
    source: Source,
    *,
    file_name: str | os.PathLike[str] | None = None,
    streams: Sequence[str] | str | None = None,
    delimiter: str | bytes | None = None,
    buffer_size: int = 65536,
    encoding: str = "utf-8",
    encode_replace: str | None = None,
    encode_cleaner: None | str | Cleaner = None,
    embedded_within: str | None = _AUTO,
    separator: str | None = None,
    zip_entry: str | None = None,
    transport_params: dict[str, Any] | None = None,
    skip_repeated_header: bool = False,
) -> Iterator[list[str]]:
    """Lists of records (one per block read): the fast path for bulk consumers.

    ``zip_entry`` picks zip entries by exact name or glob (default: every file entry);
    ``skip_repeated_header`` drops a later zip member's first line that repeats the first
    member's (see ``LineReader``).
    """
    with open_read(
        source, file_name=file_name, streams=streams, zip_entry=zip_entry,
        transport_params=transport_params,
    ) as f:
        yield from LineReader(
            f, file_name=f.file_name, delimiter=delimiter, buffer_size=buffer_size,
            encoding=encoding, encode_replace=encode_replace, encode_cleaner=encode_cleaner,
            embedded_within=embedded_within, separator=separator,
            skip_repeated_header=skip_repeated_header,
        ).blocks()


# --------------------------------------------------------------------------- writing


def _as_text(value: Any) -> str:
    if value is None:  # Ruby writes nil as an empty line
        return ""
    return value if isinstance(value, str) else str(value)


class LineWriter:
    """Writes lines through the stream chain: ``with LineWriter("out.csv.gz") as w: w.write(x)``.

    Each line is followed by ``delimiter``; ``None`` becomes an empty line, other non-strings
    are written with ``str()``, or with ``to_text`` when given (it sees only the lines that
    are not strings, so strings pay nothing for it). The target appears (atomically, for a
    local path) on exit.
    """

    _CHUNK = 4096

    def __init__(
        self,
        target: Source,
        *,
        file_name: str | os.PathLike[str] | None = None,
        streams: Sequence[str] | str | None = None,
        delimiter: str = "\n",
        encoding: str = "utf-8",
        zip_entry: str | None = None,
        transport_params: dict[str, Any] | None = None,
        to_text: Callable[[Any], str] | None = None,
    ) -> None:
        self._to_text = to_text or _as_text
        self._cm = open_write(
            target, file_name=file_name, streams=streams, zip_entry=zip_entry,
            transport_params=transport_params,
        )
        self.delimiter = delimiter
        self.encoding = encoding
        self.lines_written = 0
        self._write: Callable[[bytes], Any] | None = None

    def __enter__(self) -> LineWriter:
        f = self._cm.__enter__()
        self._write = f.write
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        self._write = None
        return self._cm.__exit__(exc_type, exc, tb)

    def _out(self) -> Callable[[bytes], Any]:
        if self._write is None:
            raise CodecError("LineWriter is not open: use it in a with statement")
        return self._write

    def write(self, line: Any) -> None:
        """Write one line (its delimiter is added)."""
        text = line if line.__class__ is str else self._to_text(line)
        self._out()((text + self.delimiter).encode(self.encoding))
        self.lines_written += 1

    def write_many(self, lines: Iterable[Any]) -> int:
        """Write many lines, joined in chunks; returns how many."""
        out = self._out()
        d = self.delimiter
        count = 0
        if isinstance(lines, list | tuple):
            chunks: Iterable[Sequence[Any]] = (
                lines[i : i + self._CHUNK] for i in range(0, len(lines), self._CHUNK)
            )
        else:
            chunks = _chunked(lines, self._CHUNK)
        for chunk in chunks:
            if not chunk:
                continue
            try:
                text = d.join(chunk)
            except TypeError:
                text = d.join(map(self._to_text, chunk))
            out((text + d).encode(self.encoding))
            count += len(chunk)
        self.lines_written += count
        return count


def _chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    append = chunk.append
    for item in items:
        append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
            append = chunk.append
    if chunk:
        yield chunk


def write_lines(
    target: Source,
    lines: Iterable[Any],
    *,
    file_name: str | os.PathLike[str] | None = None,
    streams: Sequence[str] | str | None = None,
    delimiter: str = "\n",
    encoding: str = "utf-8",
    zip_entry: str | None = None,
    transport_params: dict[str, Any] | None = None,
) -> int:
    """Write every line to a path, URI or binary file object; returns the number written."""
    with LineWriter(
        target, file_name=file_name, streams=streams, delimiter=delimiter, encoding=encoding,
        zip_entry=zip_entry, transport_params=transport_params,
    ) as writer:
        return writer.write_many(lines)


__all__ = [
    "EXTENSIONS",
    "LineReader",
    "LineWriter",
    "format_for",
    "quote_for",
    "read_line_blocks",
    "read_lines",
    "write_lines",
]
