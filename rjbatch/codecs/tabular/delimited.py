"""CSV and PSV lines: parsing (strict, like Ruby's CSV) and rendering (Ruby's exact text).

Parsing keeps an unquoted empty field (``a,,b``) apart from a quoted empty one
(``a,"",b``): the first is ``None``, the second ``""``. Python 3.11's csv module cannot tell
them apart, so lines are sorted cheaply: a batch without any quote is split on ``,`` (the
common case, as fast as it gets); a line with quotes is validated with one C-level regex
(Ruby rejects stray quotes that Python's csv accepts) and then read by one ``csv.reader``
for the whole batch; only when such a line holds ``""`` and an empty value does a second
regex tell which of its fields were quoted.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Sequence
from typing import Any

from .errors import MalformedLine, excerpt

ASCII_WHITESPACE = " \t\r\n\f\v"

# One CSV field, in Ruby's strict grammar: a quoted field is closed and followed by `,` or the
# end; an unquoted field holds no quote and no line break.
_QUOTED = r'"[^"]*(?:""[^"]*)*"'
_UNQUOTED = r"[^\",\r\n]*"
_FIELD = f"(?:{_QUOTED}|{_UNQUOTED})"
# A whole record; a single trailing \r (a \r\n file read with a \n delimiter) is allowed.
_CSV_RECORD = re.compile(f"{_FIELD}(?:,{_FIELD})*\\r?")
_CSV_PREFIX = re.compile(f"{_FIELD}(?:,{_FIELD})*")
# Field by field, keeping the quotes of a quoted field so that "" and empty differ.
_CSV_FIELDS = re.compile(f"(?:^|,)(?:({_QUOTED})|({_UNQUOTED}))")
# Field by field, the quoted text of each field, or "" for an unquoted one.
_CSV_KINDS = re.compile(f"(?:^|,)(?:({_QUOTED})|{_UNQUOTED})")
_NEEDS_QUOTES = re.compile(r"[,\"\r\n]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def is_blank(line: str) -> bool:
    """True when the line has no character outside ASCII white space (NBSP is not blank)."""
    return not line or (line[0] in ASCII_WHITESPACE and not line.strip(ASCII_WHITESPACE))


# ----------------------------------------------------------------------------------------
# CSV parsing


def _csv_error(line: str, line_number: int | None) -> MalformedLine:
    """Explain why ``line`` is not a valid CSV record, naming the field at fault."""
    prefix = _CSV_PREFIX.match(line)
    end = prefix.end() if prefix else 0
    field = len(_CSV_FIELDS.findall(line[:end])) or 1
    char = line[end] if end < len(line) else ""
    at_field_start = end == 0 or line[end - 1] == ","
    if char in "\r\n":
        reason = "line break in an unquoted field"
    elif char == '"' and (at_field_start or line[end - 1] == '"'):
        reason = "unclosed quoted field"
    elif char == '"':
        reason = "stray quote in an unquoted field"
    else:
        reason = "text after a closing quote"
    return MalformedLine(
        f"Malformed CSV, {reason} (field {field}, character {end + 1}): {excerpt(line)}",
        line_number=line_number,
    )


def _tokenize(line: str) -> list[str | None]:
    """Fields of a validated CSV line, ``None`` for unquoted empty and ``""`` for quoted empty."""
    if line.endswith("\r"):
        line = line[:-1]
    return [
        (quoted[1:-1].replace('""', '"') if '""' in quoted[1:-1] else quoted[1:-1])
        if quoted
        else (plain or None)
        for quoted, plain in _CSV_FIELDS.findall(line)
    ]


def csv_row(line: str, line_number: int | None = None) -> list[str | None] | None:
    """Parse one CSV record (it may hold quoted line breaks); ``None`` for a blank line."""
    if is_blank(line):
        return None
    if '"' not in line and "\r" not in line and "\n" not in line:
        row: list[Any] = line.split(",")
        return [value or None for value in row] if "" in row else row
    return _csv_rows_quoted([line], 1 if line_number is None else line_number, line_number)[0]


def csv_rows(lines: Sequence[str], line_number: int | None = None) -> list[list | None]:
    """Parse many CSV records at once; the hot path of a batch job.

    ``line_number`` is the number of ``lines[0]``; errors name ``line_number + index``
    (or the 1-based index in ``lines`` when no number is given).
    """
    text = "\n".join(lines)
    if '"' not in text and "\r" not in text and text.count("\n") == len(lines) - 1:
        rows: list[Any] = []
        append = rows.append
        for line in lines:
            if not line or (line[0] in ASCII_WHITESPACE and not line.strip(ASCII_WHITESPACE)):
                append(None)
                continue
            row = line.split(",")
            append([value or None for value in row] if "" in row else row)
        return rows
    first = 1 if line_number is None else line_number
    return _csv_rows_quoted(lines, first, first)


def _csv_rows_quoted(
    lines: Sequence[str], first: int, line_number: int | None
) -> list[list | None]:
    """The general case: validate quoted lines, then one csv.reader reads them all."""
    rows: list[Any] = [None] * len(lines)
    pending: list[int] = []
    for index, line in enumerate(lines):
        if is_blank(line):
            continue
        if '"' not in line and "\r" not in line and "\n" not in line:
            row = line.split(",")
            rows[index] = [value or None for value in row] if "" in row else row
        elif _CSV_RECORD.fullmatch(line):
            pending.append(index)
        else:
            raise _csv_error(line, None if line_number is None else first + index)
    if not pending:
        return rows
    # Every pending line is a valid record on its own, so the reader cannot run one record
    # into the next and yields exactly one row per line.
    try:
        parsed = list(csv.reader([lines[index] for index in pending], strict=True))
    except csv.Error:  # e.g. a field beyond csv.field_size_limit(): the regex has no limit
        parsed = []
    if len(parsed) != len(pending):
        parsed = [_tokenize(lines[index]) for index in pending]
    for index, row in zip(pending, parsed, strict=True):
        if "" in row:
            line = lines[index]
            if '""' in line:  # which empty fields were quoted? ask the field grammar
                kinds = _CSV_KINDS.findall(line)
                row = [value if value or kind else None for value, kind in zip(row, kinds)]  # noqa: B905
            else:
                row = [value or None for value in row]
        rows[index] = row
    return rows


# ----------------------------------------------------------------------------------------
# PSV parsing


def psv_row(line: str) -> list[str] | None:
    """Split a PSV line on ``|`` like Ruby's ``split``: trailing empty fields are dropped."""
    if is_blank(line):
        return None
    row = line.split("|")
    while row and not row[-1]:
        row.pop()
    return row


# ----------------------------------------------------------------------------------------
# Rendering


def ruby_float(value: float) -> str:
    """A float as Ruby's ``Float#to_s`` writes it: ``1.0e+20``, ``1.0e+15``, ``Infinity``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        return f"{mantissa}e{exponent}"
    if 1e15 <= abs(value) < 1e16 and value.is_integer():  # Ruby: exponent form one digit sooner
        sign = "-" if text.startswith("-") else ""
        whole, _, fraction = text.lstrip("-").partition(".")
        digits = (whole + fraction).rstrip("0")
        return f"{sign}{digits[0]}.{digits[1:] or '0'}e+15"
    return text


def ruby_str(value: Any) -> str:
    """Text of a non-None value, spelled the way Ruby's ``to_s`` spells it where they differ."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return ruby_float(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def csv_field(value: Any) -> str:
    """One field as Ruby's ``CSV.generate_line`` writes it (iostreams.md §4.3)."""
    if value is None:
        return ""
    text = value if value.__class__ is str else ruby_str(value)
    if not text:
        return '""'
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_line(values: Sequence[Any]) -> str:
    """A row as one CSV line without a line ending: ``None`` is empty, ``""`` is ``""``."""
    try:
        line = ",".join(values)
    except TypeError:
        try:  # the usual reason is a None, which is an empty field
            line = ",".join(["" if value is None else value for value in values])
        except TypeError:  # a number, a date, ...: field by field
            return ",".join(map(csv_field, values))
    if (
        '"' not in line
        and "\n" not in line
        and "\r" not in line
        and line.count(",") == len(values) - 1
        and "" not in values
    ):
        return line
    return ",".join(map(csv_field, values))


def psv_field(value: Any) -> str:
    """One PSV field: ``|`` becomes ``:`` and a line break a space, as there is no quoting."""
    if value is None:
        return ""
    text = value if value.__class__ is str else ruby_str(value)
    if "|" in text:
        text = text.replace("|", ":")
    if "\n" in text or "\r" in text:
        text = _LINE_BREAK.sub(" ", text)
    return text


def psv_line(values: Sequence[Any]) -> str:
    """A row as one PSV line without a line ending."""
    try:
        line = "|".join(values)
    except TypeError:
        return "|".join(map(psv_field, values))
    if line.count("|") == len(values) - 1 and "\n" not in line and "\r" not in line:
        return line
    return "|".join(map(psv_field, values))
