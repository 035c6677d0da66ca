"""Records shown reversibly, as RJMC v7 shows them: unprintable bytes as ``\\xHH`` tokens.

Every byte that is not printable UTF-8 appears as ``\\xHH`` (a multi-byte character as
the ``\\xHH`` of each of its bytes), a literal backslash as ``\\\\``; templates
highlight each token with a tooltip naming it. ``unescape_text`` turns the shown (and
perhaps edited) text back into the record, so a failed record can be fixed in a textarea
without losing the bytes around the fix.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from rjbatch.web.common import plain

# -- text --------------------------------------------------------------
CONTROL_NAMES = ("NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "TAB", "LF", "VT", "FF",
                 "CR", "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM",
                 "SUB", "ESC", "FS", "GS", "RS", "US")
Segment = tuple[str, str | None]  # (text, None) shown as is; (token, tooltip) highlighted
_TOKEN = re.compile(r"\\(\\|x[0-9a-fA-F]{2})")


def _char_name(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return f"{CONTROL_NAMES[code]} (0x{code:02x})"
    if code == 0x7F:
        return "DEL (0x7f)"
    name = unicodedata.name(char, "")
    return f"U+{code:04X} {name}" if name else f"U+{code:04X} (not printable)"


def escape_segments(value: str | bytes) -> list[Segment]:
    """The record as text: printable characters as they are, the rest as ``\\xHH`` tokens."""
    if isinstance(value, str):
        try:
            data = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate a store cannot even hold
            data = value.encode("utf-8", "surrogatepass")
    else:
        data = bytes(value)
    segments: list[Segment] = []
    plain_run: list[str] = []
    for char in data.decode("utf-8", "surrogateescape"):  # invalid bytes become U+DC80..U+DCFF
        code = ord(char)
        if char == "\\":
            token, title = "\\\\", "a backslash"
        elif char.isprintable():
            plain_run.append(char)
            continue
        elif 0xDC80 <= code <= 0xDCFF:
            token, title = f"\\x{code - 0xDC00:02x}", f"0x{code - 0xDC00:02x}: not valid UTF-8"
        else:
            token = "".join(f"\\x{byte:02x}" for byte in char.encode("utf-8"))
            title = _char_name(char)
        if plain_run:
            segments.append(("".join(plain_run), None))
            plain_run = []
        segments.append((token, title))
    if plain_run:
        segments.append(("".join(plain_run), None))
    return segments


def escape_text(value: str | bytes) -> str:
    return "".join(text for text, _ in escape_segments(value))


def unescape_bytes(text: str) -> bytes:
    """The bytes ``escape_text`` showed: ``\\xHH`` is that byte, ``\\\\`` one backslash."""
    out = bytearray()
    position = 0
    for match in _TOKEN.finditer(text):
        out += text[position:match.start()].encode("utf-8")
        token = match.group(1)
        out += b"\\" if token == "\\" else bytes([int(token[1:], 16)])
        position = match.end()
    out += text[position:].encode("utf-8")
    return bytes(out)


def unescape_text(text: str) -> str:
    """The record ``escape_text`` showed (invalid UTF-8 kept as surrogate escapes)."""
    return unescape_bytes(text).decode("utf-8", "surrogateescape")


_JSON_PART = re.compile(r'\\(?:u[0-9a-fA-F]{4}|.)|[^\\]+', re.DOTALL)


def json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return escape_text(bytes(value))
    return plain(value)


def json_segments(value: Any) -> list[Segment]:
    """A value as JSON, its escaped control characters (and unprintable ones) highlighted.

    The text stays valid JSON: ``json.loads`` of it gives the value back.
    """
    text = json.dumps(value, ensure_ascii=False, default=json_default)
    segments: list[Segment] = []
    for match in _JSON_PART.finditer(text):
        part = match.group()
        if part.startswith("\\"):
            if part in ('\\"', "\\\\", "\\/"):
                segments.append((part, None))
            else:
                segments.append((part, _char_name(json.loads(f'"{part}"')[0])))
            continue
        run: list[str] = []
        for char in part:
            if char.isprintable():
                run.append(char)
                continue
            if run:
                segments.append(("".join(run), None))
                run = []
            segments.append((json.dumps(char)[1:-1], _char_name(char)))
        if run:
            segments.append(("".join(run), None))
    return segments
