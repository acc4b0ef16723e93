from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from agentcron.policies.jitter import jitter_delay

FIRE = datetime(2026, 1, 1, tzinfo=UTC)


def test_jitter_is_bounded_by_the_configured_seconds() -> None:
    rng = random.Random(1)
    delays = [jitter_delay(10, FIRE, FIRE + timedelta(hours=1), rng) for _ in range(300)]
    assert all(0 <= d < 10 for d in delays)
    assert max(delays) > 9


def test_jitter_never_reaches_the_next_fire() -> None:
    rng = random.Random(2)
    delays = [jitter_delay(60, FIRE, FIRE + timedelta(seconds=5), rng) for _ in range(300)]
    assert all(0 <= d < 5 for d in delays)


def test_no_jitter_means_no_delay() -> None:
    assert jitter_delay(0, FIRE, None, random.Random()) == 0.0
