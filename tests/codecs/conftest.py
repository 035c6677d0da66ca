"""Shared fixtures for the codec tests: the fixture folder and a known set of keys."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from rjbatch.codecs import Cipher, set_ciphers

FIXTURES = Path(__file__).parent / "fixtures"

#: the keys of the Symmetric Encryption test vector written by Ruby (fixtures/ruby_vector.txt.enc)
VECTOR_CIPHER = Cipher(key=bytes(range(32)), iv=bytes(range(100, 116)), version=7)


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def ciphers(monkeypatch):
    """The test vector's keys as the process-wide ciphers, cleared again after the test."""
    monkeypatch.delenv("RJBATCH_ENCRYPTION_CONFIG", raising=False)
    set_ciphers([VECTOR_CIPHER])
    yield [VECTOR_CIPHER]
    set_ciphers(None)


@pytest.fixture
def small_reads(monkeypatch):
    """Make the line reader read a few bytes at a time, to put block boundaries everywhere."""
    from rjbatch.codecs import lines

    monkeypatch.setattr(lines, "MIN_READ_SIZE", 1)


class OneWay(io.RawIOBase):
    """A stream that only reads forward (no seek, no tell): an HTTP body, a pipe."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self._f.read(len(b))
        b[: len(data)] = data
        return len(data)
