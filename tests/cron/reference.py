"""A slow brute-force reference of the cron rules, written independently of the library.

It walks a small window second by second (or minute by minute) in UTC, converts each
instant to the wall clock of the zone, and applies the rules of
``conformance/README.md`` literally. Only the parsed values (`CronExpression.fields`) are
shared with the code under test; the calendar, day-field, L/W/# and DST logic are not.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

from agentcron.cron import CronExpression


def _last_weekday(y: int, m: int) -> int:
    last = calendar.monthrange(y, m)[1]
    wd = date(y, m, last).weekday()  # Mon=0 .. Sun=6
    return last - (wd - 4) if wd >= 5 else last


def _nearest_weekday(y: int, m: int, n: int) -> int | None:
    last = calendar.monthrange(y, m)[1]
    if n > last:
        return None
    wd = date(y, m, n).weekday()
    if wd == 5:  # Saturday
        return n - 1 if n > 1 else n + 2
    if wd == 6:  # Sunday
        return n + 1 if n < last else n - 2
    return n


def day_matches(expr: CronExpression, d: date) -> bool:
    f = expr.fields
    dom, dow = f.day_of_month, f.day_of_week
    last = calendar.monthrange(d.year, d.month)[1]
    dom_hit = (
        d.day in dom.values
        or (dom.last and d.day == last)
        or (dom.last_weekday and d.day == _last_weekday(d.year, d.month))
        or any(last - n == d.day for n in dom.last_minus)
        or any(_nearest_weekday(d.year, d.month, n) == d.day for n in dom.nearest_weekday)
    )
    cron_dow = (d.weekday() + 1) % 7  # Sunday = 0
    dow_hit = (
        cron_dow in dow.values
        or (cron_dow in dow.last_dow and d.day + 7 > last)
        or (cron_dow, (d.day - 1) // 7 + 1) in dow.nth
    )
    if dom.text[0] in "*?" or dow.text[0] in "*?":
        return dom_hit and dow_hit
    return dom_hit or dow_hit


def wall_matches(expr: CronExpression, wall: datetime) -> bool:
    f = expr.fields
    if f.year.text != "*" and wall.year not in f.year.values:
        return False
    return (
        wall.second in f.second.values
        and wall.minute in f.minute.values
        and wall.hour in f.hour.values
        and wall.month in f.month.values
        and day_matches(expr, wall.date())
    )


def fires_between(expr: CronExpression, start: datetime, end: datetime) -> list[datetime]:
    """Every fire instant t with start <= t < end (both aware), ascending, as UTC datetimes."""
    tz = expr.tz
    step = 1 if expr.has_seconds else 60
    t = start.astimezone(UTC).replace(microsecond=0)
    if t < start:
        t += timedelta(seconds=1)
    if step == 60 and t.second:
        t += timedelta(seconds=60 - t.second)
    end_utc = end.astimezone(UTC)
    out: set[datetime] = set()
    prev_offset = None
    while t < end_utc:
        wall = t.astimezone(tz)
        offset = wall.utcoffset()
        naive = wall.replace(tzinfo=None)
        if wall_matches(expr, naive):
            if not expr.is_fixed_time:
                out.add(t)
            else:
                # fixed-time: only the first occurrence of a repeated wall time
                earlier = (t - timedelta(hours=3)).astimezone(tz).utcoffset()
                first = True
                if earlier is not None and offset is not None and earlier > offset:
                    # a fall-back happened within 3 h; is this wall time's earlier copy real?
                    copy = t - (earlier - offset)
                    if copy.astimezone(tz).replace(tzinfo=None) == naive:
                        first = False
                if first:
                    out.add(t)
        if prev_offset is not None and offset is not None and offset > prev_offset:
            # spring-forward right before t: wall times [t + prev, t + offset) were skipped
            if expr.is_fixed_time:
                gap_start = (t + prev_offset).replace(tzinfo=None)
                gap_end = (t + offset).replace(tzinfo=None)
                w = gap_start
                while w < gap_end:
                    if wall_matches(expr, w):
                        out.add(t + timedelta(seconds=w.second))
                    w += timedelta(seconds=step)
        prev_offset = offset
        t += timedelta(seconds=step)
    return sorted(x for x in out if start <= x < end)
