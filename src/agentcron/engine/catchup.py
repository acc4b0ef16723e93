"""Which fire times were missed: a pure walk over a job's schedule between two instants.

Used when a job's fire is found late beyond its misfire grace (the process was down, the
machine slept, the wall clock jumped). The misfire policy then decides over the result.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["ENUMERATION_CAP", "MissedFires", "missed_fires"]

#: Fire times walked one by one at most; beyond that the count is estimated from the
#: spacing of the fires walked so far (a job firing every second, asleep for a week).
#:
#: The walk runs inside the tick that finds the misfire, for every late job at once: at
#: 10,000 fires walked per job (about 5 µs each), a hundred every-second jobs waking from
#: an 8-hour sleep held the event loop for 5.4 s. A thousand keeps the count exact for any
#: sleep shorter than a thousand of the job's fires (16 hours of an every-minute job).
ENUMERATION_CAP = 1_000


@dataclass(frozen=True, slots=True)
class MissedFires:
    """`late`: the newest `keep` fires later than grace, ascending; `count`: how many fires
    were late in all (estimated beyond `ENUMERATION_CAP`); `on_time`: fires within grace."""

    late: tuple[datetime, ...]
    count: int
    on_time: tuple[datetime, ...]


def missed_fires(
    next_after: Callable[[datetime], datetime | None],
    first: datetime,
    now: datetime,
    *,
    grace_s: float,
    window_s: float | None,
    keep: int,
) -> MissedFires:
    """Walk the fires in [`first`, `now`] (`next_after(t)` gives the fire after `t`),
    ignoring those older than `window_s` before `now`."""
    grace = timedelta(seconds=grace_s)
    cursor: datetime | None = first
    if window_s is not None and first < now - timedelta(seconds=window_s):
        cursor = next_after(now - timedelta(seconds=window_s, microseconds=1))
    late: collections.deque[datetime] = collections.deque(maxlen=keep)
    on_time: list[datetime] = []
    count = 0
    jumped = False
    while cursor is not None and cursor <= now:
        if now - cursor > grace:
            count += 1
            late.append(cursor)
        else:
            on_time.append(cursor)
        if count >= ENUMERATION_CAP and not jumped:
            # Too many to walk: estimate how many lie ahead, then walk only the newest.
            jumped = True
            spacing = (cursor - first) / max(1, count - 1)
            restart = now - spacing * (keep + 2)
            if spacing > timedelta(0) and restart > cursor:
                count += int((restart - cursor) / spacing)
                cursor = next_after(restart)
                continue
        cursor = next_after(cursor)
    return MissedFires(late=tuple(late), count=count, on_time=tuple(on_time))
