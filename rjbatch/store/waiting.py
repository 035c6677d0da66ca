"""The "seen version" wait that the polling stores share (SQLite, and MongoDB without
change streams): a change made since a thread's last wait ended counts too."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for_new_version(
    local: Any, data_version: Callable[[], Any], timeout: float, stop: Callable[[], bool] | None,
    poll_seconds: float, *, clamp_sleep: bool = False,
) -> bool:
    """Poll ``data_version()`` until it moves, ``stop()`` is true or ``timeout`` passes.

    A change made since this thread's last wait ended counts too (``local.seen_version``
    keeps the version seen then): none is missed between waits. ``clamp_sleep`` sleeps no
    longer than the time left.
    """
    deadline = time.monotonic() + timeout
    version = data_version()
    seen = getattr(local, "seen_version", None)
    local.seen_version = version
    if seen is not None and seen != version:
        return True
    while time.monotonic() < deadline:
        if stop is not None and stop():
            return False
        if clamp_sleep:
            time.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))
        else:
            time.sleep(poll_seconds)
        current = data_version()
        if current != version:
            local.seen_version = current
            return True
    return False
