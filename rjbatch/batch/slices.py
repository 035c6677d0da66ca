"""How a slice's records are stored: BSON ``{"r": [...]}``, compressed by default.

Serializers: ``compress`` (zlib, the default), ``none``, ``encrypt`` (Symmetric
Encryption with a random IV, key from configuration), and ``bzip2`` for output
categories whose records are lines of text (one bzip2 stream per slice, so a download
is a plain concatenation of the streams).
"""

from __future__ import annotations

import bz2
import zlib
from typing import Any

import bson

from rjbatch.errors import RjbatchError

SERIALIZERS = ("compress", "none", "encrypt", "bzip2")
_CODEC = bson.CodecOptions(tz_aware=True)


class SliceEncodingError(RjbatchError):
    """A record cannot be stored in a slice (not a BSON value)."""


def encode(records: list[Any], serializer: str = "compress") -> bytes:
    if serializer == "bzip2":
        text = "".join(f"{record}\n" for record in records)
        return bz2.compress(text.encode("utf-8"))
    try:
        data = bson.encode({"r": records})
    except (bson.errors.InvalidDocument, TypeError, OverflowError) as exc:
        raise SliceEncodingError(f"cannot store a record in a slice: {exc}") from None
    if serializer == "compress":
        return zlib.compress(data, 1)
    if serializer == "none":
        return data
    if serializer == "encrypt":
        from rjbatch.codecs import encrypt_bytes

        return encrypt_bytes(data, compress=True)
    raise SliceEncodingError(f"unknown slice serializer {serializer!r} (one of {', '.join(SERIALIZERS)})")


def decode(data: bytes, serializer: str = "compress") -> list[Any]:
    if serializer == "compress":
        data = zlib.decompress(data)
    elif serializer == "encrypt":
        from rjbatch.codecs import decrypt_bytes

        data = decrypt_bytes(data)
    elif serializer == "bzip2":
        return [{"binary": bz2.decompress(data)}]
    return bson.decode(data, _CODEC)["r"]


def make_slice(slice_id: int, first_record_number: int, records: list[Any], serializer: str) -> dict:
    return {"id": slice_id, "first_record_number": first_record_number,
            "record_count": len(records), "serializer": serializer, "data": encode(records, serializer)}
