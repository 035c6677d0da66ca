"""Excel ``.xlsx`` workbooks, read and written a row at a time with openpyxl.

Reading uses openpyxl's read-only mode; writing its write-only mode, which streams rows to a
temporary file, so neither holds a whole sheet in memory. openpyxl is an optional dependency
(``pip install rjbatch[excel]``); it is imported only when a workbook is touched.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any

from .errors import TabularError

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
    back as openpyxl gives them (``str``, ``int``, ``float``, ``bool``, ``datetime``, ``None``).
    Like Ruby's reader, a row stops at its last non-empty cell, so rows may differ in length,
    and an empty row is ``[]``. The sheet's stored dimensions are ignored, because files
    written by some tools understate them and read-only mode would then drop cells.
    """
    openpyxl = _openpyxl()
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
        for values in worksheet.iter_rows(values_only=True):
            row = list(values)
            while row and row[-1] is None:
                row.pop()
            yield row
    finally:
        workbook.close()
        if spool is not None:
            spool.close()


def _naive_utc(value: dt.datetime) -> dt.datetime:
    """Excel has no time zones: an aware datetime is written as its UTC wall time."""
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def write_xlsx(
    target: PathOrFile,
    rows: Iterable[Sequence[Any] | Mapping[str, Any]],
    header: Sequence[str] | None = None,
    *,
    sheet_name: str = "Sheet1",
) -> int:
    """Write ``header`` (when given) and then every row to one sheet; return the row count.

    A row is a list of values, or a dict taken in ``header`` order (missing keys are empty).
    Excel has no time zones, so an aware datetime is written as its UTC time.
    """
    openpyxl = _openpyxl()
    from openpyxl.utils.exceptions import IllegalCharacterError

    workbook = openpyxl.Workbook(write_only=True)
    worksheet = workbook.create_sheet(title=sheet_name)
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
        values = [
            _naive_utc(value) if isinstance(value, dt.datetime) else value for value in values
        ]
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
