"""Errors raised by the file pipeline.

Every error is a ``CodecError`` (a ``ValueError``: the input is bad, not the program), and its
one-line message names the file and, where it is known, the line number or byte offset, so a
person reading a failed job can go straight to the bad spot.
"""

from __future__ import annotations


class CodecError(ValueError):
    """Base class: the data (or how it was described) cannot be read or written."""

    def __init__(
        self,
        message: str,
        *,
        file_name: str | None = None,
        line_number: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.file_name = file_name
        self.line_number = line_number
        self.offset = offset
        self.reason = message
        super().__init__(_describe(message, file_name, line_number, offset))


def _describe(message: str, file_name: str | None, line: int | None, offset: int | None) -> str:
    where = []
    if file_name:
        where.append(str(file_name))
    if line is not None:
        where.append(f"line {line}")
    if offset is not None:
        where.append(f"byte {offset}")
    return f"{', '.join(where)}: {message}" if where else message


class UnknownStream(CodecError):
    """A stream name that is not registered (``streams=["gzz"]``)."""


class UnsupportedStream(CodecError):
    """A stream that is recognised but cannot be used here (pgp, or zstd without ``zstandard``)."""


class DelimiterNotFound(CodecError):
    """A line grew past the size guard without a delimiter (a binary file, or a wrong delimiter)."""


class MalformedData(CodecError):
    """The text cannot be split into records, e.g. a quoted CSV field that never closes."""


class DecodingError(CodecError):
    """The bytes are not valid in the declared encoding (strict mode)."""


class CorruptInput(CodecError):
    """A compressed or archived stream is damaged or cut short (truncated gzip, bad zip, ...)."""


class ZipEntryNotFound(CorruptInput):
    """The zip has no file entry, or not the one asked for."""


class DecryptionError(CodecError):
    """An ``.enc`` file cannot be decrypted: wrong key, unknown key version, tampered or cut short."""


class EncryptionConfigError(CodecError):
    """No ciphers are configured, or a Symmetric Encryption config file cannot be used."""


class InvalidOption(CodecError):
    """An option given to a reader cannot be used: an empty delimiter, a delimiter that is
    the CSV quote or separator, an unknown encoding, ... The message names the file."""


class UnknownEncoding(InvalidOption, LookupError):
    """``encoding=`` names no Python codec (a ``LookupError`` too, as ``codecs.lookup`` raises)."""
