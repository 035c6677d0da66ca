"""Errors raised by tabular parsing and rendering.

Every message is one line that names the line number, column or field at fault, so that a
failed batch record can be explained without a traceback.
"""

from __future__ import annotations

from rjbatch.codecs.errors import CodecError, MalformedData


class TabularError(CodecError):
    """Base class of every tabular error; a ``CodecError``, hence a ``ValueError``.

    ``line_number`` is the line (or record) number the caller gave, when there is one; the
    message then starts with ``line N:``.
    """

    def __init__(
        self, message: str, *, line_number: int | None = None, file_name: str | None = None
    ) -> None:
        super().__init__(message, line_number=line_number, file_name=file_name)


class UnknownFormat(TabularError):
    """A format name that no parser is registered for."""


class InvalidHeader(TabularError):
    """The header has unknown or missing columns, or is needed but was never given."""


class MissingHeader(InvalidHeader):
    """A row needs the header's columns to be read or written, but none are known yet."""


class MalformedLine(TabularError, MalformedData):
    """A line that cannot be parsed in its format: bad CSV quoting, invalid JSON, ..."""


class InvalidLineLength(MalformedLine):
    """A fixed-width line whose length differs from the layout's."""


class InvalidLayout(TabularError):
    """A fixed-width layout that cannot be used."""


class ValueTooLong(TabularError):
    """A value that does not fit its fixed-width column."""


def excerpt(line: object, limit: int = 60) -> str:
    """Return a short ``repr`` of a line, for error messages."""
    text = repr(line)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_one_file(source: object, kind: str) -> None:
    """Refuse a stream of several zip members for a whole-file format.

    The members' bytes one after another are no workbook (nor Parquet file); zipfile would
    even open the last one and quietly skip the others. ``zip_entry=`` picks one.
    """
    members = getattr(source, "members", None)
    if members is not None and len(members) > 1:
        shown = ", ".join(members[:5]) + (", ..." if len(members) > 5 else "")
        raise TabularError(
            f"{kind} is read from one file, but the zip holds {len(members)} entries ({shown}); "
            "pass zip_entry= to choose one"
        )
