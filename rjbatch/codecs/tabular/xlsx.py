"""Excel ``.xlsx`` workbooks, read and written a row at a time with openpyxl.

Reading uses openpyxl's read-only mode; writing its write-only mode, which streams rows to a
temporary file, so neither holds a whole sheet in memory. openpyxl is an optional dependency
(``pip install rjbatch[excel]``); it is imported only when a workbook is touched.

Excel stores a date as a day number and only its number format says whether it is a date, a
date-time or a time. openpyxl turns every date-formatted number into a ``datetime``; we give
back a ``date`` when the format shows no time (no ``h`` or ``s``), so a date column stays
dates. On writing, a ``date`` gets a date-only format and a ``datetime`` a date-time format,
so a round trip keeps the types.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import IO, Any

from .delimited import ruby_str
from .errors import TabularError, check_one_file

# Parts of a number format that are not date/time tokens: quoted text, escaped characters,
# and bracketed parts ([Red], [$-409]; the elapsed [h] never gets here: openpyxl makes it
# a timedelta).
_FORMAT_LITERALS = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]')
_TIME_TOKENS = re.compile(r"[hHsS]")

PathOrFile = str | os.PathLike | IO[bytes]


def _openpyxl() -> Any:
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - depends on the installation
        raise TabularError(
            "Reading or writing .xlsx needs openpyxl: pip install 'rjbatch[excel]'"
        ) from None
    return openpyxl


def _seekable(source: PathOrFile) -> tuple[Any, Any]:
    """A source openpyxl can open (zip needs seek); the second item must be closed after."""
    if isinstance(source, (str, os.PathLike)):
        return source, None
    try:
        if source.seekable():
            return source, None
    except AttributeError:
        pass
    spool = tempfile.SpooledTemporaryFile(max_size=16 << 20)
    shutil.copyfileobj(source, spool)
    spool.seek(0)
    return spool, spool


def read_xlsx(source: PathOrFile, sheet: str | int | None = None) -> Iterator[list[Any]]:
    """Yield each row of a worksheet as a list of typed cell values.

    ``sheet`` is a sheet name, a 0-based index, or ``None`` for the first sheet. Values come
    back as openpyxl gives them (``str``, ``int``, ``float``, ``bool``, ``None``, naive
    ``datetime``, ``time``, ``timedelta``), except that a cell whose date format has no time
    part is a ``date``. Like Ruby's reader, a row stops at its last non-empty cell, so rows
    may differ in length, and an empty row is ``[]``. The sheet's stored dimensions are
    ignored, because files written by some tools understate them and read-only mode would
    then drop cells. A zip stream of several entries raises ``TabularError`` (pass
    ``zip_entry=`` to ``open_read``).
    """
    openpyxl = _openpyxl()
    check_one_file(source, "A workbook")
    opened, spool = _seekable(source)
    try:
        workbook = openpyxl.load_workbook(opened, read_only=True, data_only=True)
    except OSError:  # a missing file stays a FileNotFoundError
        if spool is not None:
            spool.close()
        raise
    except Exception as error:  # not a zip, not a workbook, ...
        if spool is not None:
            spool.close()
        raise TabularError(f"Cannot open the workbook: {error}") from error
    try:
        if sheet is None:
            worksheet = workbook.worksheets[0]
        elif isinstance(sheet, int):
            try:
                worksheet = workbook.worksheets[sheet]
            except IndexError:
                raise TabularError(
                    f"The workbook has {len(workbook.worksheets)} sheets, no sheet {sheet}"
                ) from None
        elif sheet in workbook.sheetnames:
            worksheet = workbook[sheet]
        else:
            raise TabularError(f"No sheet {sheet!r} in the workbook; it has {workbook.sheetnames}")
        worksheet.reset_dimensions()
        # values_only=True would lose the number formats: read cells, and look at the format
        # of datetime values only (once per format).
        date_only: dict[str, bool] = {}
        datetime = dt.datetime
        for cells in worksheet.iter_rows():
            row = [
                value
                if (value := cell.value).__class__ is not datetime
                else _date_or_datetime(value, cell.number_format, date_only)
                for cell in cells
            ]
            while row and row[-1] is None:
                row.pop()
            yield row
    finally:
        workbook.close()
        if spool is not None:
            spool.close()


def _date_or_datetime(value: dt.datetime, number_format: str, cache: dict[str, bool]) -> Any:
    """The cell's date when its number format shows no time part, else the datetime."""
    date_only = cache.get(number_format)
    if date_only is None:
        date_only = cache[number_format] = is_date_only_format(number_format)
    return value.date() if date_only else value


def is_date_only_format(number_format: str | None) -> bool:
    """True for an Excel date format without a time part (``yyyy-mm-dd``, ``d-mmm-yy``).

    ``m`` alone is ambiguous (month or minute), but minutes come with ``h`` or ``s``.
    """
    if not number_format:
        return False
    # no types-openpyxl in the test extras:
    from openpyxl.styles.numbers import is_date_format

    if not is_date_format(number_format):
        return False
    return not _TIME_TOKENS.search(_FORMAT_LITERALS.sub("", number_format))


def _naive_utc(value: dt.datetime) -> dt.datetime:
    """Excel has no time zones: an aware datetime is written as its UTC wall time."""
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _naive_utc_time(value: dt.time) -> dt.time:
    """An aware time as its UTC wall time (a zone with DST: its offset on 2000-01-01)."""
    if value.tzinfo is None:
        return value
    moment = dt.datetime.combine(dt.date(2000, 1, 1), value)
    return _naive_utc(moment).time()


#: Values openpyxl writes as they are. openpyxl gives a date the number format
#: ``yyyy-mm-dd``, a datetime ``yyyy-mm-dd h:mm:ss`` and a time ``h:mm:ss`` (a fresh cell
#: for each, so formats never leak to the next value), which is what ``read_xlsx`` needs to
#: give the same types back; the tests check it. Passing the values themselves is 20 %
#: faster than cells of our own.
_AS_IS = frozenset({str, int, float, bool, type(None), dt.date, dt.timedelta, Decimal})


def _excel_value(value: Any) -> Any:
    """What to append for a value that is not in ``_AS_IS``."""
    if isinstance(value, dt.datetime):
        return _naive_utc(value)
    if isinstance(value, dt.time):
        return _naive_utc_time(value)
    if isinstance(value, (int, float, str, dt.date, Decimal)):  # subclasses: bool, IntEnum...
        return value
    # UUID, bytes, lists, dicts...: their csv text (lists and dicts as JSON)
    return ruby_str(value)


def write_xlsx(
    target: PathOrFile,
    rows: Iterable[Sequence[Any] | Mapping[str, Any]],
    header: Sequence[str] | None = None,
    *,
    sheet_name: str = "Sheet1",
) -> int:
    """Write ``header`` (when given) and then every row to one sheet; return the row count.

    A row is a list of values, or a dict taken in ``header`` order (missing keys are empty).
    A ``date`` is written with a date-only number format (``yyyy-mm-dd``), a ``datetime``
    with a date-time one (``yyyy-mm-dd h:mm:ss``) and a ``time`` with a time one
    (``h:mm:ss``), so ``read_xlsx`` gives the same types back. Excel has no time zones, so
    an aware datetime (or time) is written as its UTC time. A ``Decimal`` is a number
    (openpyxl writes 16 significant digits, Excel keeps 15); a UUID, bytes (UTF-8), a list
    or a dict (JSON) are written as their csv text.
    """
    openpyxl = _openpyxl()
    # no types-openpyxl in the test extras:
    from openpyxl.utils.exceptions import IllegalCharacterError

    workbook = openpyxl.Workbook(write_only=True)
    worksheet = workbook.create_sheet(title=sheet_name)
    as_is = _AS_IS
    if header is not None:
        worksheet.append(list(header))
    count = 0
    for row in rows:
        if isinstance(row, Mapping):
            if header is None:
                raise TabularError("write_xlsx needs a header to write dict rows")
            values = [row.get(name) for name in header]
        else:
            values = list(row)
        values = [value if value.__class__ in as_is else _excel_value(value) for value in values]
        try:
            worksheet.append(values)
        except IllegalCharacterError:
            raise TabularError(
                f"Row {count + 1} holds a control character that .xlsx cannot store: {values!r:.80}"
            ) from None
        except (TypeError, ValueError) as error:
            raise TabularError(f"Row {count + 1} cannot be written to .xlsx: {error}") from None
        count += 1
    workbook.save(target)
    return count
