"""Waiting for a real process (a daemon, a child) to reach a state, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_for"]


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll `condition` every 0.1 s until it holds; AssertionError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)  # polling a real process, bounded by timeout_s (noqa: sleep-ok)
    raise AssertionError("condition not met in time")
