"""Jitter: a random delay added to a fire so that many jobs do not all start at once."""

from __future__ import annotations

import random
from datetime import datetime

__all__ = ["jitter_delay"]


def jitter_delay(
    jitter_s: float, fire: datetime, next_fire: datetime | None, rng: random.Random
) -> float:
    """Seconds to delay `fire`: uniform in [0, jitter_s), and always short of `next_fire`
    (a jittered fire never lands on or after the following one)."""
    if jitter_s <= 0:
        return 0.0
    bound = jitter_s
    if next_fire is not None:
        # Half the gap: the delayed run still starts well before the next fire.
        bound = min(bound, (next_fire - fire).total_seconds() / 2)
    return rng.random() * max(0.0, bound)
