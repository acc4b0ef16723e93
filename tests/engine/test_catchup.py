"""`missed_fires`: the walk over a job's schedule after a misfire, exact up to
`ENUMERATION_CAP` fires and bounded beyond it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from agentcron.cron import CronExpression
from agentcron.engine.catchup import ENUMERATION_CAP, MissedFires, missed_fires

#: Sunday 1 March 2026, midnight UTC: the last fire before the machine went to sleep.
T0 = datetime(2026, 3, 1, tzinfo=UTC)


class Walk:
    """`next_after` of a cron expression, counting its calls."""

    def __init__(self, expr: str) -> None:
        self.cron = CronExpression(expr)
        self.calls = 0

    def __call__(self, after: datetime) -> datetime | None:
        self.calls += 1
        return self.cron.next(after)


def walk(expr: str, asleep: timedelta, keep: int = 3) -> tuple[Walk, Callable[[], MissedFires]]:
    nxt = Walk(expr)
    first = nxt(T0)
    nxt.calls = 0
    assert first is not None
    return nxt, lambda: missed_fires(nxt, first, T0 + asleep, grace_s=1.0, window_s=None, keep=keep)


def test_a_sleep_shorter_than_the_cap_counts_every_missed_fire_exactly() -> None:
    nxt, run = walk("* * * * *", timedelta(hours=8))  # 480 fires, under the cap
    found = run()
    # The fire at the wake-up instant itself is within grace: on time, not missed.
    assert found.count == 479
    assert found.late == tuple(T0 + timedelta(minutes=m) for m in (477, 478, 479))
    assert found.on_time == (T0 + timedelta(hours=8),)


def test_an_every_second_job_asleep_eight_hours_is_counted_without_walking_every_fire() -> None:
    nxt, run = walk("* * * * * *", timedelta(hours=8))
    found = run()
    # 28,800 fires: estimated from the spacing of the first ones, the newest walked.
    assert found.count == pytest.approx(8 * 3600, rel=0.001)
    assert found.late == tuple(T0 + timedelta(seconds=8 * 3600 - k) for k in (4, 3, 2))
    # Within the 1 s grace: the last second's fire and the one at the wake-up instant.
    assert found.on_time == tuple(T0 + timedelta(seconds=8 * 3600 - k) for k in (1, 0))
    assert nxt.calls <= ENUMERATION_CAP + 3 + 4


def test_fires_older_than_the_catch_up_window_are_neither_walked_nor_counted() -> None:
    nxt = Walk("* * * * *")
    now = T0 + timedelta(days=30)
    found = missed_fires(nxt, T0 + timedelta(minutes=1), now, grace_s=1.0, window_s=600.0, keep=2)
    assert found.count == 10
    assert found.late == (now - timedelta(minutes=2), now - timedelta(minutes=1))
    assert nxt.calls <= 12
