"""next / prev / matches / iter, one table per feature (UTC unless a zone is named)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from itertools import islice

import pytest

from agentcron.cron import CronExpression

NOW = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday


def _runs(text: str, after: str | datetime = NOW, count: int = 3, tz: str = "UTC") -> list[str]:
    start = datetime.fromisoformat(after) if isinstance(after, str) else after
    return [t.isoformat() for t in islice(CronExpression(text, tz).iter(start), count)]


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        # basics
        ("*/20 * * * *", "2026-01-01T00:00:00+00:00", ["00:20", "00:40", "01:00"]),
        ("5 4 * * *", "2026-01-01T04:05:00+00:00", ["2026-01-02T04:05"]),
        ("0 9,17 * * *", "2026-01-01T10:00:00+00:00", ["17:00", "2026-01-02T09:00"]),
        ("*/30 * * * * *", "2026-01-01T00:00:00+00:00", ["00:00:30", "00:01:00"]),
        ("15 30 9 * * *", "2026-01-01T00:00:00+00:00", ["09:30:15", "2026-01-02T09:30:15"]),
        # microseconds count: strictly after
        ("* * * * * *", "2026-01-01T00:00:00.500000+00:00", ["00:00:01", "00:00:02"]),
        # names and 0/7 Sunday
        ("0 0 * * SUN", "2026-01-01T00:00:00+00:00", ["2026-01-04T00:00", "2026-01-11T00:00"]),
        ("0 0 * * 7", "2026-01-01T00:00:00+00:00", ["2026-01-04T00:00", "2026-01-11T00:00"]),
        ("0 0 1 feb *", "2026-01-01T00:00:00+00:00", ["2026-02-01T00:00", "2027-02-01T00:00"]),
        # L, L-n, LW
        ("0 0 L * *", "2026-01-01T00:00:00+00:00", ["2026-01-31", "2026-02-28", "2026-03-31"]),
        ("0 0 L 2 *", "2027-03-01T00:00:00+00:00", ["2028-02-29", "2029-02-28"]),
        ("0 0 L-2 * *", "2026-01-01T00:00:00+00:00", ["2026-01-29", "2026-02-26"]),
        ("0 0 L-30 * *", "2026-01-01T00:00:00+00:00", ["2026-03-01", "2026-05-01"]),
        ("0 0 LW * *", "2026-01-01T00:00:00+00:00", ["2026-01-30", "2026-02-27", "2026-03-31"]),
        # nW: Saturday 1st -> Monday 3rd; Sunday last day -> Friday before; no day 31 -> no fire
        ("0 0 1W * *", "2026-07-31T00:00:00+00:00", ["2026-08-03", "2026-09-01"]),
        ("0 0 31W * *", "2026-05-01T00:00:00+00:00", ["2026-05-29", "2026-07-31", "2026-08-31"]),
        ("0 0 15W * *", "2026-02-01T00:00:00+00:00", ["2026-02-16", "2026-03-16", "2026-04-15"]),
        # nL and n#k
        ("0 0 * * 5L", "2026-01-01T00:00:00+00:00", ["2026-01-30", "2026-02-27"]),
        ("0 0 * * 1#1", "2026-01-01T00:00:00+00:00", ["2026-01-05", "2026-02-02"]),
        ("0 0 * * MON#5", "2026-01-01T00:00:00+00:00", ["2026-03-30", "2026-06-29"]),
        ("0 0 * 2 1#5", "2026-01-01T00:00:00+00:00", ["2044-02-29", "2072-02-29", "2112-02-29"]),
        # ? is *
        ("0 0 ? * MON", "2026-01-01T00:00:00+00:00", ["2026-01-05", "2026-01-12"]),
        ("0 0 1 * ?", "2026-01-01T00:00:00+00:00", ["2026-02-01", "2026-03-01"]),
        # leap days
        ("0 0 29 2 *", "2026-01-01T00:00:00+00:00", ["2028-02-29", "2032-02-29"]),
        ("0 0 29 2 *", "2096-03-01T00:00:00+00:00", ["2104-02-29"]),
        # years
        ("0 0 0 1 1 * 2027,2029", "2026-01-01T00:00:00+00:00", ["2027-01-01", "2029-01-01"]),
    ],
)
def test_next_fire_times(text: str, after: str, expected: list[str]) -> None:
    got = _runs(text, after, count=len(expected))
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        if "T" in e:
            assert g.startswith(e)
        elif len(e) == 10:
            assert g.startswith(e + "T")
        else:
            assert g[11:].startswith(e)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # both restricted: OR
        ("0 0 13 * FRI", ["2026-01-02", "2026-01-09", "2026-01-13", "2026-01-16"]),
        ("0 0 1 * 1#2", ["2026-01-12", "2026-02-01", "2026-02-09"]),
        ("0 0 15W * 0", ["2026-01-04", "2026-01-11", "2026-01-15", "2026-01-18"]),
        # either starts with *: AND
        ("0 0 */2 * FRI", ["2026-01-09", "2026-01-23", "2026-02-13"]),
        ("0 0 13 * *", ["2026-01-13", "2026-02-13"]),
        ("0 0 13 * */1", ["2026-01-13", "2026-02-13"]),
        ("0 0 ? * 1#2", ["2026-01-12", "2026-02-09"]),
    ],
)
def test_the_vixie_day_field_rule(text: str, expected: list[str]) -> None:
    got = _runs(text, count=len(expected))
    assert [g[:10] for g in got] == expected


@pytest.mark.parametrize(
    "text",
    ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31W 2 *", "0 0 0 1 1 * 2020", "0 0 0 30 2 * *"],
)
def test_expressions_that_never_fire_return_none(text: str) -> None:
    e = CronExpression(text)
    assert e.next(NOW) is None
    assert e.prev(NOW) is None if "2020" not in text else e.prev(NOW) is not None
    assert list(e.iter(NOW)) == []


@pytest.mark.parametrize(
    ("text", "before", "expected"),
    [
        ("*/20 * * * *", "2026-01-01T00:30:00+00:00", ["2026-01-01T00:20", "2026-01-01T00:00"]),
        ("0 0 L * *", "2026-03-15T00:00:00+00:00", ["2026-02-28", "2026-01-31"]),
        ("0 0 * * 1#1", "2026-03-01T00:00:00+00:00", ["2026-02-02", "2026-01-05"]),
        ("30 15 10 * * *", "2026-01-01T10:15:30+00:00", ["2025-12-31T10:15:30"]),
        ("0 0 29 2 *", "2029-01-01T00:00:00+00:00", ["2028-02-29", "2024-02-29"]),
        ("0 0 0 1 1 * 2020", "2026-01-01T00:00:00+00:00", ["2020-01-01"]),
    ],
)
def test_prev_fire_times(text: str, before: str, expected: list[str]) -> None:
    e = CronExpression(text)
    t: datetime | None = datetime.fromisoformat(before)
    for want in expected:
        assert t is not None
        t = e.prev(t)
        assert t is not None
        assert t.isoformat().startswith(want)


def test_prev_is_strictly_before_and_next_strictly_after() -> None:
    e = CronExpression("0 * * * *")
    on = datetime(2026, 1, 1, 5, tzinfo=UTC)
    assert e.next(on) == on + timedelta(hours=1)
    assert e.prev(on) == on - timedelta(hours=1)
    assert e.prev(on + timedelta(microseconds=1)) == on


@pytest.mark.parametrize(
    ("text", "dt", "expected"),
    [
        ("0 0 L * *", "2026-02-28T00:00:00+00:00", True),
        ("0 0 L * *", "2026-02-27T00:00:00+00:00", False),
        ("0 0 L * *", "2026-02-28T00:00:00.000001+00:00", False),
        ("0 9 * * MON-FRI", "2026-01-05T10:00:00+01:00", True),
        ("0 9 * * MON-FRI", "2026-01-04T09:00:00+00:00", False),
        ("*/15 * * * * *", "2026-01-01T00:00:45+00:00", True),
    ],
)
def test_matches(text: str, dt: str, expected: bool) -> None:
    assert CronExpression(text).matches(datetime.fromisoformat(dt)) is expected


def test_results_are_in_the_expression_zone_whatever_the_input_zone() -> None:
    e = CronExpression("0 9 * * *", tz="Asia/Kolkata")
    after = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-8)))
    t = e.next(after)
    assert t is not None
    assert t.isoformat() == "2026-01-02T09:00:00+05:30"
    assert t.tzname() == "IST"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        CronExpression("* * * * *").next(datetime(2026, 1, 1))


def test_iter_yields_successive_fires() -> None:
    got = list(islice(CronExpression("0 0 1 * *").iter(NOW), 3))
    assert [t.month for t in got] == [2, 3, 4]


def test_next_near_the_end_of_time_returns_none() -> None:
    assert CronExpression("0 0 1 1 *").next(datetime(9999, 6, 1, tzinfo=UTC)) is None
    assert CronExpression("* * * * *").prev(datetime(1, 1, 1, 0, 0, 0, tzinfo=UTC)) is None
