from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

import pytest

from agentcron.policies import JobConfigError
from agentcron.triggers import (
    CronTrigger,
    Date,
    Interval,
    Reboot,
    coerce_trigger,
    require_fires,
    require_fires_after,
    resolve_tz,
    trigger_from_dict,
)

BERLIN = ZoneInfo("Europe/Berlin")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_cron_trigger_fires_strictly_after_the_given_time() -> None:
    trigger = CronTrigger("*/15 * * * *")
    assert trigger.next_fire(at(2026, 1, 1, 10, 0)) == at(2026, 1, 1, 10, 15)
    assert trigger.next_fire(at(2026, 1, 1, 10, 7)) == at(2026, 1, 1, 10, 15)


def test_a_cron_trigger_evaluates_in_its_time_zone_and_answers_in_utc() -> None:
    trigger = CronTrigger("0 9 * * *", "Europe/Berlin")
    fire = trigger.next_fire(at(2026, 7, 1, 0, 0))
    assert fire == at(2026, 7, 1, 7, 0)  # 09:00 CEST
    assert fire is not None and fire.tzinfo == UTC


def test_a_cron_expression_that_never_fires_gives_none() -> None:
    assert CronTrigger("0 0 30 2 *").next_fire(at(2026, 1, 1)) is None


def test_invalid_cron_text_is_a_job_config_error_naming_the_trigger() -> None:
    with pytest.raises(JobConfigError) as info:
        CronTrigger("61 * * * *")
    assert info.value.field == "trigger"
    assert "61" in str(info.value)


def test_reboot_is_not_a_cron_schedule_but_a_trigger_of_its_own() -> None:
    with pytest.raises(JobConfigError, match="Reboot"):
        CronTrigger("@reboot")
    assert isinstance(coerce_trigger("@reboot"), Reboot)
    assert Reboot().next_fire(at(2026, 1, 1)) is None


def test_an_interval_without_start_is_aligned_on_the_epoch() -> None:
    trigger = Interval(minutes=5)
    assert trigger.next_fire(at(2026, 1, 1, 10, 3, 20)) == at(2026, 1, 1, 10, 5)
    assert trigger.next_fire(at(2026, 1, 1, 10, 5)) == at(2026, 1, 1, 10, 10)


def test_an_interval_with_start_fires_at_start_then_every_period() -> None:
    start = at(2026, 1, 1, 10, 0, 7)
    trigger = Interval(seconds=30, start=start)
    assert trigger.next_fire(at(2026, 1, 1)) == start
    assert trigger.next_fire(start) == start + timedelta(seconds=30)
    assert trigger.next_fire(at(2026, 1, 1, 11, 0, 0)) == at(2026, 1, 1, 11, 0, 7)


@pytest.mark.parametrize(
    "kwargs", [{"seconds": 0}, {"seconds": -5}, {"minutes": -1, "seconds": 30}]
)
def test_zero_or_negative_intervals_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(JobConfigError) as info:
        Interval(**kwargs)
    assert info.value.field == "trigger"


def test_a_date_trigger_fires_once() -> None:
    trigger = Date(datetime(2026, 12, 1, 9, 0, tzinfo=BERLIN))
    assert trigger.next_fire(at(2026, 11, 1)) == at(2026, 12, 1, 8, 0)
    assert trigger.next_fire(at(2026, 12, 1, 8, 0)) is None


def test_a_naive_date_is_rejected() -> None:
    with pytest.raises(JobConfigError, match="aware"):
        Date(datetime(2026, 12, 1))


@pytest.mark.parametrize(
    "trigger",
    [
        CronTrigger("0 2 * * *", "Europe/Berlin"),
        Interval(hours=1, start=at(2026, 1, 1, 0, 30)),
        Interval(seconds=2.5),
        Date(at(2026, 3, 4, 5, 6)),
        Reboot(),
    ],
)
def test_every_trigger_round_trips_through_a_plain_dict(trigger: object) -> None:
    data = trigger.to_dict()  # type: ignore[attr-defined]
    again = trigger_from_dict(data)
    assert again == trigger
    after = at(2026, 2, 2, 2, 2)
    assert again.next_fire(after) == trigger.next_fire(after)  # type: ignore[attr-defined]


def test_cron_text_gets_the_given_time_zone_and_identical_schedules_share_one_trigger() -> None:
    a = coerce_trigger("0 9 * * 1-5", "America/New_York")
    b = coerce_trigger("0 9 * * 1-5", "America/New_York")
    assert a is b
    assert a.to_dict() == {"type": "cron", "expr": "0 9 * * 1-5", "tz": "America/New_York"}


def test_unknown_time_zones_and_trigger_types_are_rejected() -> None:
    with pytest.raises(JobConfigError, match="time zone"):
        coerce_trigger("* * * * *", "Mars/Olympus")
    with pytest.raises(JobConfigError, match="trigger"):
        trigger_from_dict({"type": "lunar"})
    with pytest.raises(JobConfigError, match="trigger"):
        coerce_trigger(42)


def test_spring_forward_in_berlin_skips_nothing_and_runs_the_2_30_job_once() -> None:
    # 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does not exist; Debian cron runs it at 03:00.
    trigger = CronTrigger("30 2 * * *", "Europe/Berlin")
    fires = []
    cursor = at(2026, 3, 27, 12, 0)
    for _ in range(4):
        nxt = trigger.next_fire(cursor)
        assert nxt is not None
        fires.append(nxt)
        cursor = nxt
    assert fires[1].astimezone(BERLIN).date().isoformat() == "2026-03-29"
    assert len({f.astimezone(BERLIN).date() for f in fires}) == 4


def test_a_cron_trigger_answers_the_same_within_one_second() -> None:
    trigger = CronTrigger("* * * * * *")
    base = at(2026, 1, 1, 10, 0, 0)
    assert trigger.next_fire(base) == base + timedelta(seconds=1)
    assert trigger.next_fire(base + timedelta(microseconds=999_999)) == base + timedelta(seconds=1)
    assert trigger.next_fire(base + timedelta(seconds=1)) == base + timedelta(seconds=2)


@pytest.mark.parametrize(
    "name", ["America", "Europe/", "x" * 10240, "é" * 300, "../../etc/passwd", "a\x00b"]
)
def test_a_zone_name_that_is_a_folder_too_long_or_malformed_is_an_unknown_time_zone(
    name: str,
) -> None:
    with pytest.raises(JobConfigError, match="unknown time zone") as info:
        CronTrigger("0 2 * * *", name)
    assert len(str(info.value)) < 200


def test_a_new_job_must_fire_after_now_unless_it_repeats_or_waits_for_a_start() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    require_fires_after(CronTrigger("0 0 0 1 1 * 2027"), now)
    require_fires_after(Date(now + timedelta(seconds=1)), now)
    require_fires_after(Interval(seconds=5, start=now - timedelta(days=1)), now)
    require_fires_after(Reboot(), now)
    for past in (CronTrigger("0 0 0 1 1 * 2020"), Date(now), Date(now - timedelta(days=1))):
        with pytest.raises(JobConfigError, match="never fires after 2026-11-27T12:00:00"):
            require_fires_after(past, now)
    with pytest.raises(JobConfigError, match="no date matches"):
        require_fires_after(CronTrigger("0 0 30 2 *"), now)


def test_a_schedule_no_date_matches_never_fires_but_one_in_a_past_year_is_not_refused() -> None:
    require_fires(CronTrigger("0 0 29 2 *"))  # leap days only: rare, not impossible
    require_fires(CronTrigger("0 0 0 1 1 * 2020"))  # ran once, in 2020
    require_fires(Interval(seconds=5))
    with pytest.raises(JobConfigError, match="never fires") as info:
        require_fires(CronTrigger("0 0 30 2 *"))
    assert info.value.field == "trigger"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seconds": float("nan")},
        {"seconds": float("inf")},
        {"days": 1e300},
        {"seconds": "5"},
    ],
)
def test_an_interval_that_is_not_a_finite_number_is_a_job_config_error(
    kwargs: dict[str, object],
) -> None:
    with pytest.raises(JobConfigError, match="interval") as info:
        Interval(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == "trigger"


@pytest.mark.parametrize("zone", [5, ["Europe/Berlin"], b"UTC"])
def test_a_time_zone_that_is_neither_a_name_nor_a_tzinfo_is_a_job_config_error(
    zone: object,
) -> None:
    with pytest.raises(JobConfigError, match="time zone") as info:
        CronTrigger("0 2 * * *", zone)  # type: ignore[arg-type]
    assert info.value.field == "timezone"


@pytest.mark.parametrize(
    "zone", ["localtime", "posixrules", "Factory", "posix/Europe/Paris", "right/Europe/Paris"]
)
def test_a_zone_file_that_is_not_an_iana_name_is_refused_naming_it(zone: str) -> None:
    with pytest.raises(JobConfigError) as info:
        resolve_tz(zone)
    message = str(info.value)
    assert info.value.field == "timezone"
    assert repr(zone) in message and "IANA name such as 'Europe/Paris'" in message


def test_a_zoneinfo_object_for_the_machine_zone_is_refused_too() -> None:
    # As `ZoneInfo("localtime")` loads it on Debian, on any machine: a zone keyed 'localtime'.
    with resources.files("tzdata.zoneinfo").joinpath("UTC").open("rb") as data:
        machine_zone = ZoneInfo.from_file(data, key="localtime")
    with pytest.raises(JobConfigError, match="'localtime'"):
        CronTrigger("0 2 * * *", machine_zone)


def test_a_job_with_the_machine_zone_is_refused_wherever_it_is_defined() -> None:
    with pytest.raises(JobConfigError, match="'localtime'"):
        coerce_trigger("0 2 * * *", "localtime")
    with pytest.raises(JobConfigError, match="'localtime'"):
        trigger_from_dict({"type": "cron", "expr": "0 2 * * *", "tz": "localtime"})


@pytest.mark.parametrize("zone", ["Europe/Paris", "US/Eastern", "Etc/GMT+5", "GMT", "utc"])
def test_iana_names_including_links_and_etc_zones_are_still_accepted(zone: str) -> None:
    assert resolve_tz(zone) is not None
