"""Bytes to text: decoding from a declared encoding, replacement of bad bytes, and cleaners.

Ruby's ``:encode`` stream converted *from whatever the bytes were tagged as* (binary for files),
which either raised on any non-ASCII byte or replaced valid UTF-8 byte by byte. We decode from a
declared source encoding instead (default UTF-8), incrementally, so a character split across two
blocks is fine, and report the byte offset of undecodable input.
"""

from __future__ import annotations

import codecs
import functools
import re
import sys
import unicodedata
from collections.abc import Callable

from .errors import InvalidOption, UnknownEncoding

Cleaner = Callable[[str], str]

_BOM = "\ufeff"


class DecodeFailure(Exception):
    """Raised by ``TextDecoder``; the line reader turns it into a ``DecodingError`` with a line."""

    def __init__(self, offset: int, prefix: str, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset  # absolute byte offset of the first bad byte
        self.prefix = prefix  # text decoded from this call before the bad byte
        self.reason = reason


@functools.lru_cache(maxsize=64)
def _replace_handler(replacement: str) -> str:
    name = f"rjbatch.replace.{replacement.encode('unicode_escape').decode('ascii')}"

    def handler(exc: UnicodeError) -> tuple[str, int]:
        if isinstance(exc, UnicodeDecodeError):
            return replacement, exc.end
        raise exc

    codecs.register_error(name, handler)
    return name


def canonical_encoding(encoding: str) -> str:
    """Python's canonical codec name; raises ``UnknownEncoding`` (a ``LookupError``) for an
    unknown one."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise UnknownEncoding(f"unknown encoding {encoding!r}") from None


class TextDecoder:
    """Incremental decoder that knows the absolute byte offset of what it has consumed.

    ``replace=None`` is strict: bad input raises ``DecodeFailure``. A string replaces each
    undecodable byte sequence (``""`` drops it). A UTF-8 BOM at the very start is dropped.
    """

    def __init__(self, encoding: str = "utf-8", replace: str | None = None) -> None:
        self.encoding = canonical_encoding(encoding)
        errors = "strict" if replace is None else _replace_handler(replace)
        self._decoder = codecs.getincrementaldecoder(self.encoding)(errors)
        self._strip_bom = self.encoding == "utf-8"
        self.bytes_in = 0

    def restart(self) -> None:
        """Start a new file (the next zip member): fresh decoder state, a BOM is dropped again.

        ``bytes_in`` keeps counting, so offsets stay those of the whole stream.
        """
        self._decoder.reset()
        self._strip_bom = self.encoding == "utf-8"

    def decode(self, data: bytes, final: bool = False) -> str:
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise self._failure(exc, data) from None
        self.bytes_in += len(data)
        if self._strip_bom and text:
            self._strip_bom = False
            if text.startswith(_BOM):
                text = text[1:]
        return text

    def _failure(self, exc: UnicodeDecodeError, data: bytes) -> DecodeFailure:
        # exc.object is (bytes pending from the last call) + data; find where it starts.
        pending = len(exc.object) - len(data)
        offset = self.bytes_in - pending + exc.start
        try:
            prefix = exc.object[: exc.start].decode(self.encoding, "replace")
        except Exception:  # noqa: BLE001 - best effort, only used to count lines
            prefix = ""
        bad = exc.object[exc.start : min(exc.end, exc.start + 4)]
        reason = f"invalid {self.encoding} data (bytes {bad.hex(' ')}): {exc.reason}"
        return DecodeFailure(offset, prefix, reason)


# --------------------------------------------------------------------------- cleaners

# Ruby's :printable keeps [[:print:]] plus \r and \n. For Unicode text that removes exactly
# the characters whose category is Cc, Cn, Cs, Zl or Zp (docs/codecs.md, Text).
_REMOVED_CATEGORIES = frozenset({"Cc", "Cn", "Cs", "Zl", "Zp"})


@functools.lru_cache(maxsize=1)
def _non_printable_ranges() -> tuple[tuple[int, int], ...]:
    """Code point ranges removed by ``printable`` (computed once, ~0.3 s, on first use)."""
    ranges: list[tuple[int, int]] = []
    start = None
    category = unicodedata.category
    for cp in range(sys.maxunicode + 1):
        bad = cp not in (10, 13) and category(chr(cp)) in _REMOVED_CATEGORIES
        if bad and start is None:
            start = cp
        elif not bad and start is not None:
            ranges.append((start, cp - 1))
            start = None
    if start is not None:
        ranges.append((start, sys.maxunicode))
    return tuple(ranges)


def _class(ranges: list[tuple[int, int]]) -> str:
    parts = []
    for a, b in ranges:
        parts.append(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}")
    return "[" + "".join(parts) + "]"


def _without(ranges: list[tuple[int, int]], keep: str) -> list[tuple[int, int]]:
    out = list(ranges)
    for ch in set(keep):
        cp = ord(ch)
        nxt = []
        for a, b in out:
            if a <= cp <= b:
                if a < cp:
                    nxt.append((a, cp - 1))
                if cp < b:
                    nxt.append((cp + 1, b))
            else:
                nxt.append((a, b))
        out = nxt
    return out


_ASCII_REMOVED = [(0, 9), (11, 12), (14, 31), (127, 127)]


@functools.lru_cache(maxsize=32)
def _printable_patterns(keep: str) -> tuple[re.Pattern[str], Callable[[], re.Pattern[str]]]:
    ascii_re = re.compile(_class(_without(_ASCII_REMOVED, keep)))

    @functools.lru_cache(maxsize=1)
    def full() -> re.Pattern[str]:
        return re.compile(_class(_without(list(_non_printable_ranges()), keep)))

    return ascii_re, full


def printable_cleaner(replacement: str = "", keep: str = "") -> Cleaner:
    """Remove (or replace) non-printable characters by Ruby's rule; never touches ``keep``.

    ``keep`` holds the line delimiter's characters so that cleaning cannot merge lines even
    when the delimiter is itself a control character (``"\\t"``, ``"\\x01"``).
    """
    ascii_re, full = _printable_patterns(keep)

    def clean(text: str) -> str:
        if text.isascii():
            if ascii_re.search(text) is None:
                return text
            return ascii_re.sub(replacement, text)
        return full().sub(replacement, text)

    return clean


def make_cleaner(
    cleaner: None | str | Cleaner, replace: str | None = None, keep: str = ""
) -> Cleaner | None:
    """Turn ``encode_cleaner`` into a function: None, "printable", "replace_non_printable", callable."""
    if cleaner is None:
        return None
    if callable(cleaner):
        return cleaner
    name = str(cleaner).lstrip(":")
    if name == "printable":
        return printable_cleaner("", keep)
    if name == "replace_non_printable":
        return printable_cleaner(replace or "", keep)
    raise InvalidOption(
        f"encode_cleaner must be None, 'printable', 'replace_non_printable' or a callable, "
        f"not {cleaner!r}"
    )
