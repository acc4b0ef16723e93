"""Argument checks shared by the handler constructors: clear `ValueError`s naming the field."""

from __future__ import annotations

import math

__all__ = ["checked_bool", "checked_duration_s", "checked_positive_int"]


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
