"""Remote files (s3, gs, azure, http(s), sftp, ...) through smart_open, raw bytes only.

smart_open would decompress by the *last* suffix on its own; our chain handles every suffix, so
it is always opened with compression disabled and our streams are applied on top.
"""

from __future__ import annotations

import os
import posixpath
import re
from typing import IO, Any
from urllib.parse import unquote, urlsplit

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_uri(value: object) -> bool:
    """True for ``scheme://...`` strings (a Windows ``C:\\`` path is not a URI)."""
    return isinstance(value, str) and bool(_SCHEME.match(value))


def uri_file_name(uri: str) -> str:
    """The last path segment of a URI, without query or fragment: what the chain looks at."""
    return posixpath.basename(unquote(urlsplit(uri).path))


def local_path(uri: str) -> str | None:
    """The local path of a ``file://`` URI (written atomically like any local path)."""
    parts = urlsplit(uri)
    if parts.scheme.lower() != "file":
        return None
    if parts.netloc not in ("", "localhost"):
        return None
    return unquote(parts.path) or None


def open_uri(uri: str, mode: str, transport_params: dict[str, Any] | None = None) -> IO[bytes]:
    """Open a remote object in binary mode with smart_open, without its own decompression."""
    try:
        import smart_open
    except ImportError:  # pragma: no cover - smart_open is a dependency
        raise RuntimeError(f"{uri}: remote paths need the smart_open package") from None
    kwargs: dict[str, Any] = {"compression": "disable"}
    if transport_params:
        kwargs["transport_params"] = transport_params
    return smart_open.open(uri, mode, **kwargs)


def display_name(source: str | os.PathLike[str]) -> str:
    """How a path or URI is named in messages (URIs lose their query: it may hold credentials)."""
    if is_uri(source):
        parts = urlsplit(str(source))
        netloc = parts.netloc.rsplit("@", 1)[-1]  # drop user:password@
        return f"{parts.scheme}://{netloc}{parts.path}"
    return os.fspath(source)
