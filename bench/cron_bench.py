"""Cron expression speed: agentcron vs croniter, cronsim and APScheduler 3's CronTrigger.

Run from the repository root:

    .venv/bin/python -m bench.cron_bench            # full run (about a minute)
    .venv/bin/python -m bench.cron_bench --quick    # fewer repetitions

For every expression of a fixed 25-expression mix (time zones and DST transitions included),
each library parses the expression and then walks a chain of `next()` calls from the same
start instant (the result of one call is the start of the next, as a scheduler does). Chains
restart from the start instant when a result passes 2200 or a library stops. A library that
cannot express an expression is left out of that row and of the "common" totals.

Printed: a markdown table per expression (next() calls per second), then a summary with parse
time (median µs) and next() throughput (median of per-expression rates and total calls/s over
the expressions every library supports), with ratios to agentcron.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# the peers come with the dev extra (pip install -e .[dev])
from apscheduler.triggers.cron import CronTrigger
from croniter import croniter
from cronsim import CronSim

from agentcron.cron import CronExpression, _calendar
from agentcron.cron import expression as _expression
from agentcron.cron import fields as _fields

# (expression, zone, start (ISO, wall time in the zone), APScheduler 3 CronTrigger kwargs or None)
MIX: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("*/5 * * * *", "UTC", "2026-01-01T00:00:00", {"minute": "*/5"}),
    (
        "0 9 * * MON-FRI",
        "UTC",
        "2026-01-01T00:00:00",
        {"minute": 0, "hour": 9, "day_of_week": "mon-fri"},
    ),
    ("0 0 L * *", "UTC", "2026-01-01T00:00:00", {"minute": 0, "hour": 0, "day": "last"}),
    ("*/30 * * * * *", "UTC", "2026-01-01T00:00:00", {"second": "*/30"}),
    ("0 0 1 * *", "UTC", "2026-01-01T00:00:00", {"minute": 0, "hour": 0, "day": 1}),
    ("15 10 * * 1#2", "UTC", "2026-01-01T00:00:00", {"minute": 15, "hour": 10, "day": "2nd mon"}),
    ("0 0 * * 5L", "UTC", "2026-01-01T00:00:00", {"minute": 0, "hour": 0, "day": "last fri"}),
    ("23 0-20/2 * * *", "UTC", "2026-01-01T00:00:00", {"minute": 23, "hour": "0-20/2"}),
    ("5 4 * * SUN", "UTC", "2026-01-01T00:00:00", {"minute": 5, "hour": 4, "day_of_week": "sun"}),
    ("0 0 29 2 *", "UTC", "2026-01-01T00:00:00", {"minute": 0, "hour": 0, "day": 29, "month": 2}),
    (
        "0 12 * JAN-MAR *",
        "Asia/Kolkata",
        "2026-01-01T00:00:00",
        {"minute": 0, "hour": 12, "month": "1-3"},
    ),
    (
        "*/10 9-17 * * 1-5",
        "Asia/Kolkata",
        "2026-01-01T00:00:00",
        {"minute": "*/10", "hour": "9-17", "day_of_week": "mon-fri"},
    ),
    ("30 2 * * *", "America/New_York", "2026-03-01T00:00:00", {"minute": 30, "hour": 2}),
    ("*/15 * * * *", "America/New_York", "2026-10-31T00:00:00", {"minute": "*/15"}),
    ("0 */2 * * *", "America/New_York", "2026-03-07T00:00:00", {"minute": 0, "hour": "*/2"}),
    ("0 9,17 * * *", "Europe/Berlin", "2026-03-20T00:00:00", {"minute": 0, "hour": "9,17"}),
    ("0 0 * * *", "Europe/Berlin", "2026-10-20T00:00:00", {"minute": 0, "hour": 0}),
    ("0 */5 * * * *", "Europe/Berlin", "2026-10-25T00:00:00", {"second": 0, "minute": "*/5"}),
    ("45 2 * * *", "Pacific/Chatham", "2026-09-20T00:00:00", {"minute": 45, "hour": 2}),
    ("*/20 * * * *", "Australia/Lord_Howe", "2026-04-04T00:00:00", {"minute": "*/20"}),
    ("30 1 * * *", "Australia/Lord_Howe", "2026-10-01T00:00:00", {"minute": 30, "hour": 1}),
    ("0 0 * * *", "America/Santiago", "2026-09-01T00:00:00", {"minute": 0, "hour": 0}),
    ("0 12 1 * *", "America/Sao_Paulo", "2026-01-01T00:00:00", {"minute": 0, "hour": 12, "day": 1}),
    ("15,45 1 * * *", "Europe/London", "2026-10-20T00:00:00", {"minute": "15,45", "hour": 1}),
    ("0 0 1,15 * 3", "Europe/London", "2026-01-01T00:00:00", None),  # OR rule: not in APS 3
]

LIMIT_YEAR = 2200
Stepper = Callable[[datetime], datetime | None]


def _agentcron(expr: str, tz: str, cache: str = "text") -> Callable[[], Stepper]:
    """cache: "warm" (all caches kept), "text" (forget parsed texts: a text never seen
    before, field tokens and lookup tables shared with earlier expressions) or "cold"
    (forget everything)."""

    def make() -> Stepper:
        if cache != "warm":
            _expression._PARSED.clear()
        if cache == "cold":
            _fields._CACHE.clear()
            _calendar._TABLES.clear()
        e = CronExpression(expr, tz)
        return e.next

    return make


def _croniter(expr: str, tz: str) -> Callable[[], Stepper] | None:
    six = len(expr.split()) == 6

    def make() -> Stepper:
        state: dict[str, Any] = {}

        def step(after: datetime) -> datetime | None:
            it = state.get("it")
            if it is None or state.get("at") != after:
                it = croniter(expr, after, second_at_beginning=six)
                state["it"] = it
            value: datetime = it.get_next(datetime)
            state["at"] = value
            return value

        croniter(expr, datetime(2026, 1, 1, tzinfo=ZoneInfo(tz)), second_at_beginning=six)
        return step

    try:
        make()(datetime(2026, 1, 1, tzinfo=ZoneInfo(tz)))
    except Exception:
        return None
    return make


def _cronsim(expr: str, tz: str) -> Callable[[], Stepper] | None:
    def make() -> Stepper:
        state: dict[str, Any] = {}

        def step(after: datetime) -> datetime | None:
            it = state.get("it")
            if it is None or state.get("at") != after:
                it = CronSim(expr, after)
                state["it"] = it
            try:
                value: datetime = next(it)
            except StopIteration:
                return None
            state["at"] = value
            return value

        CronSim(expr, datetime(2026, 1, 1, tzinfo=ZoneInfo(tz)))
        return step

    try:
        make()(datetime(2026, 1, 1, tzinfo=ZoneInfo(tz)))
    except Exception:
        return None
    return make


def _apscheduler(kwargs: dict[str, Any] | None, tz: str) -> Callable[[], Stepper] | None:
    if kwargs is None:
        return None
    one_us = timedelta(microseconds=1)

    def make() -> Stepper:
        trigger = CronTrigger(timezone=ZoneInfo(tz), **kwargs)

        def step(after: datetime) -> datetime | None:
            value: datetime | None = trigger.get_next_fire_time(None, after + one_us)
            return value

        return step

    return make


def _parse_us(make: Callable[[], Stepper], repeat: int) -> float:
    """Median µs to construct (parse) one expression."""
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeat):
            make()
        samples.append((time.perf_counter() - t0) / repeat * 1e6)
    return statistics.median(samples)


def _chain_rate(make: Callable[[], Stepper], start: datetime, calls: int, rounds: int) -> float:
    """Best of `rounds`: next() calls per second along a chain of `calls` calls."""
    best = 0.0
    for _ in range(rounds):
        step = make()
        t: datetime | None = start
        gc.disable()
        t0 = time.perf_counter()
        for _ in range(calls):
            assert t is not None
            t = step(t)
            if t is None or t.year > LIMIT_YEAR:
                t = start
        elapsed = time.perf_counter() - t0
        gc.enable()
        best = max(best, calls / elapsed)
    return best


LIBS = ("agentcron", "croniter", "cronsim", "APScheduler 3")


def run(quick: bool) -> str:
    calls = 300 if quick else 2000
    rounds = 2 if quick else 5
    parse_repeat = 200 if quick else 1000
    rates: dict[str, dict[int, float]] = {lib: {} for lib in LIBS}
    parses: dict[str, dict[int, float]] = {lib: {} for lib in LIBS}
    agentcron_parse: dict[str, list[float]] = {"warm": [], "cold": []}
    for i, (expr, tz, start_text, aps) in enumerate(MIX):
        start = datetime.fromisoformat(start_text).replace(tzinfo=ZoneInfo(tz))
        makers = {
            "agentcron": _agentcron(expr, tz),
            "croniter": _croniter(expr, tz),
            "cronsim": _cronsim(expr, tz),
            "APScheduler 3": _apscheduler(aps, tz),
        }
        for lib, make in makers.items():
            if make is None:
                continue
            parses[lib][i] = _parse_us(make, parse_repeat)
            rates[lib][i] = _chain_rate(make, start, calls, rounds)
        for mode, values in agentcron_parse.items():
            values.append(_parse_us(_agentcron(expr, tz, mode), parse_repeat))

    out = []
    out.append(
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{calls} chained next() calls per expression, best of {rounds} rounds.\n"
    )
    out.append("| # | expression | zone | " + " | ".join(LIBS) + " |")
    out.append("|---|---|---|" + "---:|" * len(LIBS))
    for i, (expr, tz, _s, _a) in enumerate(MIX):
        cells = [f"{rates[lib][i]:,.0f}" if i in rates[lib] else "n/a" for lib in LIBS]
        out.append(f"| {i + 1} | `{expr}` | {tz} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("(cells: next() calls per second; n/a = the library cannot express it)\n")

    common = [i for i in range(len(MIX)) if all(i in rates[lib] for lib in LIBS)]
    ours = rates["agentcron"]
    out.append(
        "| library | expressions | parse, median µs | next()/s, median | next()/s, total on "
        f"the {len(common)} common | agentcron is x faster (median) |"
    )
    out.append("|---|---:|---:|---:|---:|---:|")
    for lib in LIBS:
        mine = rates[lib]
        if not mine:
            continue
        median_rate = statistics.median(mine.values())
        total = len(common) / sum(1 / mine[i] for i in common) if common else 0.0
        ratio = statistics.median(ours[i] / mine[i] for i in mine)
        out.append(
            f"| {lib} | {len(mine)} | {statistics.median(parses[lib].values()):.1f} | "
            f"{median_rate:,.0f} | {total:,.0f} | {ratio:.1f}x |"
        )
    out.append("")
    out.append(
        "agentcron parse, median µs: "
        f"{statistics.median(parses['agentcron'].values()):.1f} for a text not seen before "
        "(the table's figure: field tokens and lookup tables are shared with earlier "
        f"expressions), {statistics.median(agentcron_parse['cold']):.1f} fully cold (every "
        f"cache cleared), {statistics.median(agentcron_parse['warm']):.1f} for a text parsed "
        "before (parsed texts are cached)."
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds")
    args = parser.parse_args(argv)
    print(run(args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
