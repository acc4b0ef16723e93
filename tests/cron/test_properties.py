"""Property tests (hypothesis) against the brute-force reference in `reference.py`.

Expressions are drawn from the full syntax; start instants are drawn near real DST
transitions (2018-2030) of the zones the conformance cases use. The properties that hold
in every zone (ordering, matches, prev/next duality, nothing missed in a scanned window) are
checked in all of them; the property "the wall clock of a fire satisfies every field" is
false by design inside DST gaps (a fixed-time job skipped by spring-forward fires at the end
of the gap, e.g. 03:00 for ``30 2 * * *``), so it is checked only in zones without DST.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from agentcron.cron import CronExpression

from .reference import fires_between, wall_matches

DST_ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Santiago",
    "America/Sao_Paulo",
    "Europe/London",
]
NO_DST_ZONES = ["UTC", "Asia/Kolkata"]
SETTINGS = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def items(draw: st.DrawFn, lo: int, hi: int) -> str:
    kind = draw(st.sampled_from(["*", "*/n", "a", "a-b", "a-b/n", "a/n"]))
    a = draw(st.integers(lo, hi))
    b = draw(st.integers(a, hi))
    n = draw(st.integers(1, 12))
    return {
        "*": "*",
        "*/n": f"*/{n}",
        "a": str(a),
        "a-b": f"{a}-{b}",
        "a-b/n": f"{a}-{b}/{n}",
        "a/n": f"{a}/{n}",
    }[kind]


def field(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.lists(items(lo, hi), min_size=1, max_size=3).map(",".join)


day_of_month = st.one_of(
    st.just("*"),
    st.just("?"),
    field(1, 31),
    st.sampled_from(["L", "LW", "L-1", "L-3", "1W", "15W", "31W", "L,15"]),
)
day_of_week = st.one_of(
    st.just("*"),
    field(0, 7),
    st.sampled_from(["MON-FRI", "SUN", "5L", "0L", "1#1", "5#5", "2#2,4", "sat#5"]),
)


@st.composite
def expressions(draw: st.DrawFn, seconds: bool) -> str:
    hour = draw(st.one_of(st.just("*"), field(0, 23)))
    month = draw(st.one_of(st.just("*"), field(1, 12)))
    parts = [draw(field(0, 59)), hour, draw(day_of_month), month, draw(day_of_week)]
    if seconds:
        parts.insert(0, draw(st.one_of(st.just("0"), field(0, 59))))
    return " ".join(parts)


@st.composite
def near_transition(draw: st.DrawFn, zone: str, spread: int) -> datetime:
    """An instant within `spread` seconds of a DST transition of `zone` (2018-2030)."""
    year = draw(st.integers(2018, 2030))
    tz = ZoneInfo(zone)
    base = datetime(year, 1, 1, tzinfo=UTC)
    changes = []
    prev = base.astimezone(tz).utcoffset()
    for day in range(0, 366, 1):
        t = base + timedelta(days=day)
        off = t.astimezone(tz).utcoffset()
        if off != prev:
            changes.append(t)
            prev = off
    anchor = draw(st.sampled_from(changes)) if changes else base
    return anchor + timedelta(seconds=draw(st.integers(-spread, spread)))


@st.composite
def cases(draw: st.DrawFn, zones: list[str]) -> tuple[CronExpression, datetime, timedelta]:
    zone = draw(st.sampled_from(zones))
    seconds = draw(st.booleans())
    text = draw(expressions(seconds))
    expr = CronExpression(text, zone)
    spread = 2 * 86400
    start = draw(near_transition(zone, spread))
    start += timedelta(microseconds=draw(st.sampled_from([0, 0, 1, 500_000])))
    window = timedelta(hours=1) if seconds else timedelta(days=2)
    return expr, start, window


@SETTINGS
@given(cases(DST_ZONES + NO_DST_ZONES))
def test_next_is_later_matches_and_is_the_first_fire(
    case: tuple[CronExpression, datetime, timedelta],
) -> None:
    expr, start, window = case
    nxt = expr.next(start)
    expected = fires_between(expr, start + timedelta(microseconds=1), start + window)
    if nxt is None:
        assert expected == []
        return
    assert nxt > start
    assert expr.matches(nxt)
    assert nxt.utcoffset() == nxt.astimezone(expr.tz).utcoffset()
    if expected:
        assert nxt == expected[0]
    else:
        assert nxt >= start + window  # no fire in the scanned window


@SETTINGS
@given(cases(DST_ZONES + NO_DST_ZONES))
def test_prev_and_next_are_dual(case: tuple[CronExpression, datetime, timedelta]) -> None:
    expr, start, _window = case
    nxt = expr.next(start)
    if nxt is not None:
        back = expr.prev(nxt)
        assert back is None or back <= start
    prv = expr.prev(start)
    if prv is not None:
        assert prv < start
        assert expr.matches(prv)
        forward = expr.next(prv)
        assert forward is not None and forward >= start


@SETTINGS
@given(cases(DST_ZONES + NO_DST_ZONES))
def test_a_chain_of_next_calls_lists_every_fire_of_a_window(
    case: tuple[CronExpression, datetime, timedelta],
) -> None:
    expr, start, window = case
    end = start + window
    expected = fires_between(expr, start, end)
    assume(len(expected) < 400)
    got = []
    t = start - timedelta(microseconds=1)
    while True:
        t = expr.next(t)  # type: ignore[assignment]
        if t is None or t >= end:
            break
        got.append(t)
    assert got == expected


@SETTINGS
@given(cases(NO_DST_ZONES))
def test_without_dst_the_wall_clock_of_a_fire_satisfies_every_field(
    case: tuple[CronExpression, datetime, timedelta],
) -> None:
    expr, start, _window = case
    nxt = expr.next(start)
    assume(nxt is not None)
    assert nxt is not None
    assert wall_matches(expr, nxt.astimezone(expr.tz).replace(tzinfo=None))
