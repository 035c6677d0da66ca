"""CSV and PSV lines: parsing (strict, like Ruby's CSV) and rendering (Ruby's exact text).

Parsing keeps an unquoted empty field (``a,,b``) apart from a quoted empty one
(``a,"",b``): the first is ``None``, the second ``""``. Python 3.11's csv module cannot tell
them apart, and accepts some lines that Ruby rejects, so a batch of lines (``csv_dicts``,
``csv_rows``) is read in a few C-level passes:

- lines without a quote are split on ``,`` (and, given the columns, unpacked straight into
  dicts by a generated list comprehension, which turns ``""`` into None);
- lines holding a quote are checked all at once by one regex of Ruby's grammar, then read
  by one strict ``csv.reader``, whose row count also shows an unclosed quote; only lines
  that may hold a quoted empty field (``""`` between commas or at an end) are read again
  field by field, to tell ``""`` from None;
- a batch holding a line break, or a field beyond ``csv.field_size_limit()``, goes line by
  line (``_csv_rows_quoted``), which also raises Ruby's errors.

Rendering a batch (``csv_lines``) joins each row with ``,`` in C, finds in C the lines that
show a quote, an extra comma, a line break or an empty string, and quotes field by field
only those rows. Python's ``csv.writer`` is no help: it writes ``None`` and ``""`` alike,
and is slower than this.

Values that are not strings (what a data job's ``perform()`` returns) are spelled by
``ruby_str``, the one spelling shared by csv, psv, fixed width and the strings of json:

- ``None`` is an empty field; ``True``/``False`` are ``true``/``false``;
- ``int`` as is; ``float`` as Ruby's ``Float#to_s`` (``1.0e+20``);
- ``Decimal`` in plain notation, its scale kept (``12.50``, ``Decimal("1E+2")`` is ``100``;
  only exponents beyond ±100 keep the exponent form);
- ``date`` ``2026-01-01``; ``time`` ``10:30:00``; ``datetime`` ISO-8601 with a space,
  ``2026-01-01 10:00:00``, microseconds when there are some (``10:00:00.250000``), and an
  aware one with its offset (``2026-01-01 10:00:00+00:00``): Python's ``str()``, which
  spreadsheets and databases read as a date-time where the ``T`` form stays text;
- ``UUID`` its canonical text; ``bytes`` decoded as UTF-8 (bad bytes replaced);
- lists, tuples and dicts as compact-ish JSON text (``[1, "a"]``), their rich values
  spelled the same way inside JSON strings.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import re
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import compress, repeat
from operator import contains, getitem, ne, not_, or_
from typing import TYPE_CHECKING, Any, cast, overload

from .errors import MalformedLine, excerpt

if TYPE_CHECKING:
    from .header import RowMapper

ASCII_WHITESPACE = " \t\r\n\f\v"

# One CSV field, in Ruby's strict grammar: a quoted field is closed and followed by `,` or the
# end; an unquoted field holds no quote and no line break.
_QUOTED = r'"[^"]*(?:""[^"]*)*"'
_UNQUOTED = r"[^\",\r\n]*"
_FIELD = f"(?:{_QUOTED}|{_UNQUOTED})"
# A whole record; a single trailing \r (a \r\n file read with a \n delimiter) is allowed.
# The grammar is deterministic (a quote after an opening quote either doubles or closes it,
# and a closing quote must be followed by `,` or the end), so possessive quantifiers and an
# atomic group match exactly the same records, only sooner.
_RECORD = r'(?>"[^"]*+(?:""[^"]*+)*+"|[^",\r\n]*+)(?:,(?>"[^"]*+(?:""[^"]*+)*+"|[^",\r\n]*+))*+'
_CSV_RECORD = re.compile(_RECORD + r"\r?")
# Lines holding quotes (and no \r or \n), joined by "\n". The text before a line's first quote
# holds no quote: it is skipped at once (`[^"]` is sre's fastest loop, and cannot run past
# the line, which holds a quote), and that quote must open a field (follow a `,` or start
# the line); the grammar then reads the rest. A quoted field could run over the "\n" into
# the next line (as in a record): the caller must also make sure that csv.reader reads
# each line as one record; given that, this matches when every line is a valid record.
_QUOTED_LINE = r'[^"]*+(?<![^,\n])' + _RECORD
_CSV_QUOTED_LINES = re.compile(f"(?:{_QUOTED_LINE}\n)*+{_QUOTED_LINE}")
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
    """Parse many CSV records at once; ``None`` for a blank line.

    ``line_number`` is the number of ``lines[0]``; errors name ``line_number + index``
    (or the 1-based index in ``lines`` when no number is given).
    """
    first = 1 if line_number is None else line_number
    flat = "".join(lines)  # single-character searches in it run at memchr() speed
    if "\r" in flat or "\n" in flat:  # a line holds a line break (rare): line by line
        return _csv_rows_quoted(lines, first, first)
    rows = _split_rows(lines)
    keep: set[int] = set()
    if '"' in flat:
        flags = list(map(contains, lines, repeat('"')))
        quoted_lines = list(compress(lines, flags))
        _check_quoted(quoted_lines, flags, first)
        quoted = _read_quoted(quoted_lines)
        if quoted is None:
            return _csv_rows_quoted(lines, first, first)
        for index, row, is_exact in zip(compress(range(len(lines)), flags), *quoted):  # noqa: B905
            rows[index] = row
            if is_exact:
                keep.add(index)
    return [
        [value or None for value in row] if row and "" in row and index not in keep else row
        for index, row in enumerate(rows)
    ]


def csv_dicts(
    lines: Sequence[str], line_number: int | None, mapper: RowMapper
) -> list[dict[str, Any] | None]:
    """``mapper.to_dict`` of every row of ``csv_rows`` (None for a blank line); the hot path
    of a batch job.

    Lines without quotes are split and made into dicts by one generated list comprehension;
    the lines holding quotes are checked by one regex and read by one ``csv.reader`` into
    dicts the same way; the two lists of dicts are then merged back into line order in C.
    """
    count = len(lines)
    first = 1 if line_number is None else line_number
    flat = "".join(lines)  # single-character searches in it run at memchr() speed
    if "\r" in flat or "\n" in flat:  # a line holds a line break (rare): line by line
        return mapper.to_dicts(_csv_rows_quoted(lines, first, first))
    if '"' not in flat:
        return _plain_dicts(lines, mapper)
    flags = list(map(contains, lines, repeat('"')))
    quoted_lines = list(compress(lines, flags))
    _check_quoted(quoted_lines, flags, first)  # valid records, if each is read as one row
    try:
        try:
            quoted_dicts = mapper.dicts_of_lazy_rows(csv.reader(quoted_lines, strict=True))
        except ValueError:  # a row of another width
            quoted_dicts = None
        if quoted_dicts is None:
            quoted_dicts = mapper.to_dicts(list(csv.reader(quoted_lines, strict=True)), True)
    except csv.Error:  # a field beyond csv.field_size_limit()
        return mapper.to_dicts(_csv_rows_quoted(lines, first, first))
    if len(quoted_dicts) != len(quoted_lines):  # an unclosed quote ran into the next line
        return mapper.to_dicts(_csv_rows_quoted(lines, first, first))
    # A quoted empty field is "" (not None): look closer at the rows holding a None.
    # (A line holding a quote is never blank, so none of its dicts is None.)
    dicts_of_quoted = cast("list[dict[str, Any]]", quoted_dicts)
    with_none = compress(
        range(len(quoted_dicts)), map(not_, map(all, map(dict.values, dicts_of_quoted)))
    )
    for position in _maybe_quoted_empty(quoted_lines, with_none):
        quoted_dicts[position] = mapper.to_dict(_tokenize(quoted_lines[position]))
    if len(quoted_lines) == count:
        return quoted_dicts
    plain_dicts = _plain_dicts(list(compress(lines, map(not_, flags))), mapper)
    # flags[i] picks the iterator that line i's dict comes from: plain (0) or quoted (1).
    sources = (iter(plain_dicts), iter(quoted_dicts))
    return list(map(next, map(getitem, repeat(sources), flags)))


def _is_blank_row(line: str) -> bool:
    return not line or (line[0] in ASCII_WHITESPACE and not line.strip(ASCII_WHITESPACE))


def _split_rows(lines: Sequence[str]) -> list[Any]:
    """Lines without line breaks split on ``,``; ``None`` for a blank line.

    Lazy: an empty field is ``""`` still (it stands for None).
    """
    rows: list[Any] = list(map(str.split, lines, repeat(",")))
    lengths = list(map(len, rows))
    if 1 in lengths:  # maybe a blank line (one without a comma)
        for index in compress(range(len(rows)), map((1).__eq__, lengths)):
            if _is_blank_row(lines[index]):
                rows[index] = None
    return rows


def _plain_dicts(lines: Sequence[str], mapper: RowMapper) -> list[dict[str, Any] | None]:
    """Dicts of lines without quotes or line breaks (empty fields are None)."""
    commas = mapper.width - 1
    # A blank line or a short row (often the last one) would stop the builder: look first.
    if lines and lines[0].count(",") == commas and lines[-1].count(",") == commas:
        try:
            dicts = mapper.dicts_of_plain_lines(lines)
        except ValueError:  # a row of another width, or a blank line
            dicts = None
        if dicts is not None:
            return dicts
    return mapper.to_dicts(_split_rows(lines), True)


def _check_quoted(lines: list[str], flags: list[bool], first: int) -> None:
    """Raise Ruby's error for the first of these lines (each holding a quote) that is not a
    CSV record; ``flags`` place them among all lines, ``first`` numbers those.

    A line with an unclosed quote may pass, joined to the next: the caller must then see
    csv.reader return fewer rows than lines, and go line by line (which raises)."""
    if _CSV_QUOTED_LINES.fullmatch("\n".join(lines)):
        return
    for position, line in enumerate(lines):
        if not _CSV_RECORD.fullmatch(line):
            index = list(compress(range(len(flags)), flags))[position]
            raise _csv_error(line, first + index)


def _read_quoted(lines: list[str]) -> tuple[list[list[str | None]], list[bool]] | None:
    """Read lines holding quotes, checked by ``_check_quoted``, with one ``csv.reader``.

    Returns ``(rows, exact)``: the rows are lazy (a ``""`` is an unquoted empty field, which
    stands for None) unless ``exact`` is True for that row, which then holds a quoted empty
    field and is final. None when the reader fails (a field beyond
    ``csv.field_size_limit()``) or reads fewer rows than lines (an unclosed quote): the
    caller then goes line by line.
    """
    try:
        rows: list[Any] = list(csv.reader(lines, strict=True))
    except csv.Error:
        return None
    if len(rows) != len(lines):
        return None
    exact = [False] * len(rows)
    for position in _maybe_quoted_empty(lines):
        rows[position] = _tokenize(lines[position])
        exact[position] = True
    return rows, exact


def _maybe_quoted_empty(lines: list[str], positions: Iterable[int] | None = None) -> list[int]:
    """Which of these lines (all of them, or those at ``positions``) may hold a quoted empty
    field: ``""`` between commas or at either end (an escaped quote may look the same,
    which only costs a closer look)."""
    if positions is not None:
        return [
            position
            for position in positions
            if ',"",' in (line := lines[position]) or line.startswith('""') or line.endswith('""')
        ]
    return list(
        compress(
            range(len(lines)),
            map(
                or_,
                map(contains, lines, repeat(',"",')),
                map(
                    or_,
                    map(str.startswith, lines, repeat('""')),
                    map(str.endswith, lines, repeat('""')),
                ),
            ),
        )
    )


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
            values = line.split(",")
            rows[index] = [value or None for value in values] if "" in values else values
        elif _CSV_RECORD.fullmatch(line):
            pending.append(index)
        else:
            raise _csv_error(line, None if line_number is None else first + index)
    if not pending:
        return rows
    # Every pending line is a valid record on its own, so the reader cannot run one record
    # into the next and yields exactly one row per line.
    parsed: Sequence[Sequence[str | None]]
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


#: Beyond this exponent a Decimal keeps its exponent form (plain would be this many digits).
_PLAIN_DECIMAL_EXPONENT = 100


def plain_decimal(value: Decimal) -> str:
    """A Decimal in plain notation with its scale: ``12.50``, never ``1.25E+1`` (``str()``
    writes ``Decimal("1E+2")`` as ``1E+2`` and ``0.0000001`` as ``1E-7``)."""
    if value.is_finite() and -_PLAIN_DECIMAL_EXPONENT <= value.adjusted() <= _PLAIN_DECIMAL_EXPONENT:
        return format(value, "f")
    return str(value)  # NaN, Infinity, or a huge exponent


def json_default(value: Any) -> Any:
    """``json.dumps(default=)`` for values JSON has no type for: their ``ruby_str`` text."""
    if isinstance(value, (set, frozenset)):
        return list(value)
    return ruby_str(value)


def ruby_str(value: Any) -> str:
    """Text of a non-None value: Ruby's ``to_s`` where it differs, else the module's spelling.

    See the module docstring: one spelling for csv, psv, fixed width and json strings.
    """
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return ruby_float(value)
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=json_default)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)  # int, date, time, datetime (space, offset), UUID, ...


def csv_field(value: Any) -> str:
    """One field as Ruby's ``CSV.generate_line`` writes it (docs/codecs.md, Formats)."""
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


#: For rows of strings and None: None is an empty field and "" is written ``""``.
_GAP_TEXT = {None: "", "": '""'}.get


def _text_of(value: Any) -> str:
    """``ruby_str`` of a value that is neither a str nor None."""
    convert = _TEXT_OF.get(value.__class__)
    return convert(value) if convert is not None else ruby_str(value)


_TEXT_OF: dict[type, Any] = {
    int: int.__repr__,
    float: ruby_float,
    bool: lambda value: "true" if value else "false",
    Decimal: plain_decimal,
    dt.date: dt.date.__str__,
    dt.datetime: dt.datetime.__str__,
    dt.time: dt.time.__str__,
    uuid.UUID: uuid.UUID.__str__,
}


def _quoted_line(values: Sequence[str | None]) -> str:
    """``csv_line`` of values that are all str or None, quoting only the fields that need it."""
    return ",".join(
        [
            (
                '"' + value.replace('"', '""') + '"'
                if '"' in value or "," in value or "\n" in value or "\r" in value
                else value
            )
            if value
            else ("" if value is None else '""')
            for value in values
        ]
    )


def _requoted(line: str, values: Sequence[str]) -> str:
    """``csv_line`` of non-empty strings without line breaks, given their joined ``line``."""
    if '"' not in line:  # then commas made it need quotes
        return ",".join(
            ['"' + value.replace('"', '""') + '"' if "," in value else value for value in values]
        )
    return ",".join(
        [
            '"' + value.replace('"', '""') + '"' if '"' in value or "," in value else value
            for value in values
        ]
    )


@overload
def csv_lines(rows: Sequence[Sequence[Any]], width: int) -> list[str]: ...
@overload
def csv_lines(rows: Sequence[Sequence[Any]], width: int, *, text_only: bool) -> list[str] | None: ...
def csv_lines(rows: Sequence[Sequence[Any]], width: int, *, text_only: bool = False) -> list[str] | None:
    """``csv_line`` of every row, each of exactly ``width`` values; the render hot path.

    ``text_only``: None instead when a value is neither a string nor None (CSV would turn
    it into text), found on the way at no extra cost: a batch job stores rows as CSV lines
    only when reading them back gives the very same values.

    Every row is joined with ``,`` in C. When that joined text holds no quote, no line
    break and only the ``,`` of the joins, and no value was ``""`` (written ``""``), the
    lines are final; otherwise only the rows whose line shows a quote or an extra comma are
    quoted field by field. Rows holding None are joined with None as empty and ``""`` as
    ``""``; rows holding other types (numbers, dates...) have them spelled as Ruby's
    ``to_s`` first.
    """
    if width < 1:
        return [csv_line(row) for row in rows]
    try:
        lines = list(map(",".join, rows))
        gaps = False
    except TypeError:  # a None, or a value that is not a string
        try:  # all(row): no None, no "" (and no 0...): a plain join, which checks the rest
            lines = [
                ",".join(row) if all(row) else ",".join(map(_GAP_TEXT, row, row)) for row in rows
            ]
        except TypeError:  # numbers, dates, lists...: spell them first
            if text_only:
                return None
            rows = [
                [
                    value if value is None or value.__class__ is str else _text_of(value)
                    for value in row
                ]
                for row in rows
            ]
            lines = [",".join(map(_GAP_TEXT, row, row)) for row in rows]
        gaps = True  # "" is already written '""', which shows as a quote below
    commas = width - 1
    flat = "".join(lines)  # single-character searches in it run at memchr() speed
    # all(row) is False when a row of strings holds "" (rows with None wrote it '""').
    if "\n" in flat or "\r" in flat or not (gaps or all(map(all, rows))):
        return [
            line
            if (
                '"' not in line
                and line.count(",") == commas
                and "\n" not in line
                and "\r" not in line
                and (gaps or all(row))
            )
            else _quoted_line(row)
            for line, row in zip(lines, rows)  # noqa: B905 - same length
        ]
    if '"' not in flat and flat.count(",") == len(lines) * commas:
        return lines  # no value holds a quote, a comma or a line break
    # The rows whose line holds a quote or more commas than the joins: all found in C.
    needs_quotes = map(
        or_,
        map(contains, lines, repeat('"')),
        map(ne, map(str.count, lines, repeat(",")), repeat(commas)),
    )
    for index in compress(range(len(lines)), needs_quotes):
        lines[index] = _quoted_line(rows[index]) if gaps else _requoted(lines[index], rows[index])
    return lines


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
