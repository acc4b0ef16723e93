"""Argument checks shared by the handler constructors: clear `ValueError`s naming the field."""

from __future__ import annotations

import math

from agentcron.policies.errors import within_max_duration

__all__ = [
    "MAX_OUTPUT_TAIL_BYTES",
    "checked_bool",
    "checked_duration_s",
    "checked_kill_grace_s",
    "checked_positive_int",
    "checked_tail_bytes",
]

#: The largest `output_tail_bytes` (1 MiB; the default keeps 4 KiB): the tail is held in
#: memory while the run lasts and stored with its record.
MAX_OUTPUT_TAIL_BYTES = 1024 * 1024


def checked_bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{field} must be true or false, got {value!r}")
    return value


def checked_positive_int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{field} must be a positive integer, got {value!r}")
    return value


def checked_duration_s(value: object, field: str, *, allow_zero: bool = True) -> float:
    """A finite number of seconds, >= 0 (or > 0 when `allow_zero` is false)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{field} must be a finite number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{field} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


def checked_tail_bytes(value: object, field: str) -> int:
    """An `output_tail_bytes`: a positive integer, at most `MAX_OUTPUT_TAIL_BYTES`."""
    count = checked_positive_int(value, field)
    if count > MAX_OUTPUT_TAIL_BYTES:
        raise ValueError(f"{field}: at most {MAX_OUTPUT_TAIL_BYTES} (1 MiB), got {count}")
    return count


def checked_kill_grace_s(value: object, field: str) -> float:
    """A `kill_grace_s`: a finite number of seconds >= 0, at most 100 years."""
    grace = checked_duration_s(value, field)
    within_max_duration(grace, field)
    return grace
