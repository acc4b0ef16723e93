from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agentcron.policies import JobConfigError, Misfire, decide_misfire

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
HOURLY = [NOW - timedelta(hours=h) for h in range(8, 0, -1)]  # 00:00 .. 07:00


def test_run_once_coalesces_every_missed_fire_into_the_latest() -> None:
    decision = decide_misfire(HOURLY, NOW, Misfire("run_once"))
    assert decision.run == (HOURLY[-1],)
    assert decision.missed == 8


def test_skip_runs_nothing_but_reports_the_missed_fires() -> None:
    decision = decide_misfire(HOURLY, NOW, Misfire("skip"))
    assert decision.run == ()
    assert decision.missed == 8
    assert decision.latest == HOURLY[-1]


def test_run_all_runs_each_missed_fire_oldest_first_bounded_by_max_catchup() -> None:
    assert decide_misfire(HOURLY, NOW, Misfire("run_all")).run == tuple(HOURLY)
    assert decide_misfire(HOURLY, NOW, Misfire("run_all", max_catchup=3)).run == tuple(HOURLY[-3:])


def test_the_catchup_window_forgets_older_fires() -> None:
    decision = decide_misfire(HOURLY, NOW, Misfire("run_all", catchup_window_s=3 * 3600))
    assert decision.run == tuple(HOURLY[-3:])
    assert decision.missed == 3


def test_nothing_missed_decides_nothing() -> None:
    decision = decide_misfire([], NOW, Misfire())
    assert decision.run == () and decision.missed == 0 and decision.latest is None


def test_max_catchup_defaults_to_100_like_kubernetes() -> None:
    assert Misfire().max_catchup == 100
    assert Misfire().policy == "run_once"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"policy": "later"}, "misfire"),
        ({"grace_s": -1}, "misfire.grace"),
        ({"catchup_window_s": 0}, "misfire.catchup_window"),
        ({"max_catchup": 0}, "misfire.max_catchup"),
    ],
)
def test_bad_misfire_options_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(JobConfigError) as info:
        Misfire(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_misfire_round_trips_through_a_dict() -> None:
    misfire = Misfire("run_all", grace_s=5, catchup_window_s=86400, max_catchup=10)
    assert Misfire.from_value(misfire.to_dict()) == misfire
