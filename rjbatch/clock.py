"""The one place rjbatch reads the time, so tests can move it instead of sleeping."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta


def _system_now() -> datetime:
    return datetime.now(UTC)


_source: Callable[[], datetime] = _system_now


def now() -> datetime:
    """The current time, timezone-aware UTC, truncated to milliseconds (what the store keeps)."""
    value = _source()
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def set_clock(source: Callable[[], datetime] | None) -> None:
    """Replace the time source (``None`` restores the system clock)."""
    global _source
    _source = source or _system_now


class FrozenClock:
    """A clock that only moves when told to: ``clock.advance(seconds=5)``."""

    def __init__(self, start: datetime) -> None:
        self.current = start if start.tzinfo else start.replace(tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self.current += delta or timedelta(**kwargs)
        return self.current

    def set(self, value: datetime) -> None:
        self.current = value if value.tzinfo else value.replace(tzinfo=UTC)


@contextlib.contextmanager
def frozen(at: datetime) -> Iterator[FrozenClock]:
    """Freeze rjbatch's clock at ``at`` for the duration of the block."""
    clock = FrozenClock(at)
    previous = _source
    set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)
