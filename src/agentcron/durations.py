"""Durations as people write them: `30` (seconds), `"500ms"`, `"30s"`, `"10m"`, `"2h"`, `"1d"`,
and sums such as `"1h30m"`."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.ASCII)
_WHOLE = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d|w)\s*)+$", re.ASCII)
_MAX_S = 100 * 365 * 86400.0


def parse_duration(value: object, what: str = "duration") -> float:
    """Seconds from a number of seconds, a `timedelta` or a string with units.

    Raises `ValueError` naming `what` for anything else, for negative values and for
    durations over 100 years.
    """
    if isinstance(value, bool):
        raise ValueError(f"{what}: {value!r} is not a duration")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and len(value) <= 64 and _WHOLE.match(value):
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(value))
    else:
        raise ValueError(
            f"{what}: {value!r} is not a duration (seconds, or a string like '500ms', '30s', "
            "'10m', '2h', '1d')"
        )
    if seconds != seconds or seconds < 0:  # NaN or negative
        raise ValueError(f"{what}: must be a non-negative duration, got {value!r}")
    if seconds > _MAX_S:
        raise ValueError(f"{what}: {value!r} is longer than 100 years")
    return seconds


def format_duration(seconds: float) -> str:
    """`90` -> `"1m30s"`, `0.5` -> `"500ms"` (the inverse of `parse_duration`, roughly)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60 and seconds != int(seconds):  # 1.5 s is not "2s"
        return f"{round(seconds, 3):g}s"
    out = []
    rest = int(round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(out) or "0s"
