"""The file pipeline: streams chosen from file names, lines, text and tabular rows.

Imports nothing from the job layer so it could ship on its own.

    from rjbatch.codecs import read_lines, write_lines
    for line in read_lines("in.csv.gz.enc"):   # decrypt, gunzip, split
        ...
    write_lines("out.csv.zip", lines)          # zip entry "out.csv", written atomically
"""

from .errors import (
    CodecError,
    CorruptInput,
    DecodingError,
    DecryptionError,
    DelimiterNotFound,
    EncryptionConfigError,
    InvalidOption,
    MalformedData,
    UnknownEncoding,
    UnknownStream,
    UnsupportedStream,
    ZipEntryNotFound,
)
from .lines import (
    LineReader,
    LineWriter,
    format_for,
    quote_for,
    read_line_blocks,
    read_lines,
    write_lines,
)
from .streams import (
    StreamReader,
    open_read,
    open_write,
    resolve_streams,
    streams_for,
    zip_entry_name,
)
from .symmetric import (
    Cipher,
    decrypt_bytes,
    encrypt_bytes,
    get_ciphers,
    load_encryption_config,
    set_ciphers,
)
from .text import TextDecoder, make_cleaner, printable_cleaner

__all__ = [
    "Cipher",
    "CodecError",
    "CorruptInput",
    "DecodingError",
    "DecryptionError",
    "DelimiterNotFound",
    "EncryptionConfigError",
    "InvalidOption",
    "LineReader",
    "LineWriter",
    "MalformedData",
    "StreamReader",
    "TextDecoder",
    "UnknownEncoding",
    "UnknownStream",
    "UnsupportedStream",
    "ZipEntryNotFound",
    "decrypt_bytes",
    "encrypt_bytes",
    "format_for",
    "get_ciphers",
    "load_encryption_config",
    "make_cleaner",
    "open_read",
    "open_write",
    "printable_cleaner",
    "quote_for",
    "read_line_blocks",
    "read_lines",
    "resolve_streams",
    "set_ciphers",
    "streams_for",
    "write_lines",
    "zip_entry_name",
]
