"""The readable every decoding layer builds on: blocks from ``_next()``, read in any size."""

from __future__ import annotations

import io
from typing import Any, Protocol


class Readable(Protocol):
    """What a decoding layer reads from: a file, a remote object or another layer.

    ``read(n)`` returns at most n bytes, ``b""`` at the end; nothing else is needed, so the
    layers can be stacked on each other (they are ``io.RawIOBase``, not ``BinaryIO``).
    """

    def read(self, size: int = -1, /) -> bytes: ...


class BlockReader(io.RawIOBase):
    """A readable that produces blocks from ``_next()``; ``read(n)`` returns at most n bytes."""

    def __init__(self) -> None:
        super().__init__()
        self._buf = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def _next(self) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if not self._buf:
            if self._eof:
                return b""
            self._buf = self._next()
            if not self._buf:
                self._eof = True
                return b""
        if len(self._buf) <= size:
            out, self._buf = self._buf, b""
            return out
        out, self._buf = self._buf[:size], self._buf[size:]
        return out

    def readall(self) -> bytes:
        parts = [self._buf]
        self._buf = b""
        while not self._eof:
            chunk = self._next()
            if not chunk:
                self._eof = True
                break
            parts.append(chunk)
        return b"".join(parts)

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        n = len(data)
        b[:n] = data
        return n
