"""Plain-English descriptions of cron expressions.

>>> from agentcron.cron import CronExpression
>>> CronExpression("0 0 L * *").describe()
'At 00:00 on the last day of the month'
>>> CronExpression("*/30 * * * * *").describe()
'Every 30 seconds'
>>> CronExpression("0 9,17 * * MON-FRI").describe()
'At 09:00 and 17:00, Monday through Friday'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentcron.cron.fields import FieldSpec

if TYPE_CHECKING:
    from agentcron.cron.expression import CronExpression

__all__ = ["describe"]

_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTHS = (
    "",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_NTH = ("", "first", "second", "third", "fourth", "fifth")
_MAX_TIMES = 6


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _join(items: list[str], word: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {word} " + items[-1]


def _runs(values: tuple[int, ...]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for v in values:
        if runs and runs[-1][1] == v - 1:
            runs[-1] = (runs[-1][0], v)
        else:
            runs.append((v, v))
    return runs


def _values(values: tuple[int, ...], name: object = str, through: str = "through") -> str:
    namer = name if callable(name) else str
    parts = []
    for a, b in _runs(values):
        if a == b:
            parts.append(str(namer(a)))
        elif b == a + 1:
            parts.extend([str(namer(a)), str(namer(b))])
        else:
            parts.append(f"{namer(a)} {through} {namer(b)}")
    return _join(parts)


#: Values in one turn of each field that wraps around (the day of the month does not: its
#: months have different lengths).
_CYCLE = {"second": 60, "minute": 60, "hour": 24, "month": 12, "day-of-week": 7}


def _step(spec: FieldSpec) -> int | None:
    """n for a field written exactly ``*/n`` that really repeats every n: n must divide the
    field's cycle (``*/7`` minutes fires at minute 56 and then 0, 4 minutes later;
    ``*/45`` at 0 and 45) and select more than one value (``*/31`` days is just the 1st).
    Other steps are described by the values they select."""
    text = spec.text
    if text.startswith("*/") and text[2:].isdigit():
        n = int(text[2:])
        cycle = _CYCLE.get(spec.name)
        if len(spec.values) > 1 and (cycle is None or cycle % n == 0):
            return n
    return None


def _single(spec: FieldSpec) -> bool:
    return len(spec.values) == 1 and not spec.is_star


def _clock(h: int, m: int, s: int | None) -> str:
    return f"{h:02d}:{m:02d}" if s is None else f"{h:02d}:{m:02d}:{s:02d}"


def _every(n: int, unit: str) -> str:
    return f"every {unit}" if n == 1 else f"every {n} {unit}s"


def _time(sec: FieldSpec, minute: FieldSpec, hour: FieldSpec) -> str:
    s_val = sec.values[0] if _single(sec) else None
    show_s = s_val if s_val not in (None, 0) else None
    # explicit clock times: a handful of (hour, minute) pairs at one second
    if s_val is not None and not minute.is_star and not hour.is_star:
        count = len(minute.values) * len(hour.values)
        if count <= _MAX_TIMES:
            times = [_clock(h, m, show_s) for h in hour.values for m in minute.values]
            return "At " + _join(times)
    sec_phrase = ""
    if sec.is_any:
        lead = "Every second"
    elif (n := _step(sec)) is not None:
        lead = _every(n, "second")
    elif s_val is not None:
        lead = ""
        if s_val:
            sec_phrase = f" at second {s_val}"
    else:
        lead = "At seconds " + _values(sec.values)
    if lead:
        # second-level schedule; qualify minute and hour only when they restrict
        out = lead[0].upper() + lead[1:]
        if not minute.is_any:
            out += ", " + _minutes_phrase(minute)
        if not hour.is_any:
            out += ", " + _hours_phrase(hour)
        return out
    if minute.is_any:
        out = "Every minute"
    elif (n := _step(minute)) is not None:
        out = "Every " + (f"{n} minutes" if n > 1 else "minute")
    elif _single(minute) and (hour.is_star or len(_runs(hour.values)) == 1):
        m = minute.values[0]
        out = "Every hour on the hour" if m == 0 else f"Every hour at minute {m}"
        if not hour.is_star:
            return out + " " + _hours_phrase(hour) + sec_phrase
        if hour.is_any:
            return out + sec_phrase
        hn = _step(hour)
        if hn is not None:
            return (
                (f"Every {hn} hours" if hn > 1 else "Every hour")
                + (" on the hour" if m == 0 else f" at minute {m}")
                + sec_phrase
            )
        return out + ", " + _hours_phrase(hour) + sec_phrase
    else:
        out = "At " + _minutes_phrase(minute)
    out += sec_phrase
    if not hour.is_any:
        out += ", " + _hours_phrase(hour)
    return out


def _minutes_phrase(minute: FieldSpec) -> str:
    n = _step(minute)
    if n is not None:
        return f"every {n} minutes" if n > 1 else "every minute"
    word = "minute" if len(minute.values) == 1 else "minutes"
    return f"{word} {_values(minute.values)} past the hour"


def _hours_phrase(hour: FieldSpec) -> str:
    n = _step(hour)
    if n is not None:
        return f"every {n} hours" if n > 1 else "every hour"
    runs = _runs(hour.values)
    if len(runs) == 1 and runs[0][0] != runs[0][1]:
        a, b = runs[0]
        return f"between {a:02d}:00 and {b:02d}:59"
    word = "hour" if len(hour.values) == 1 else "hours"
    return f"during {word} " + _values(hour.values, lambda h: f"{h:02d}")


def _dom_phrase(dom: FieldSpec) -> str:
    items = []
    n = _step(dom)
    if n is not None:
        items.append(f"every {_ordinal(n)} day of the month" if n > 1 else "every day")
    elif dom.values and not dom.is_any:
        word = "day" if len(dom.values) == 1 else "days"
        items.append(f"{word} {_values(dom.values)} of the month")
    if dom.last:
        items.append("the last day of the month")
    if dom.last_weekday:
        items.append("the last weekday of the month")
    for k in dom.last_minus:
        if k == 0:
            if not dom.last:  # L-0 is L: say it once
                items.append("the last day of the month")
        else:
            word = "day" if k == 1 else "days"
            items.append(f"{k} {word} before the last day of the month")
    items.extend(f"the weekday nearest day {d} of the month" for d in dom.nearest_weekday)
    return _join(items)


def _dow_phrase(dow: FieldSpec) -> tuple[str, bool]:
    """(phrase, is_plain_weekdays)."""
    items = []
    plain = False
    n = _step(dow)
    if n is not None and n > 1:
        items.append("every " + _ordinal(n) + " day of the week from Sunday")
    elif dow.values and not dow.is_any:
        plain = True
        items.append(_values(dow.values, lambda d: _DAYS[d]))
    items.extend(f"the last {_DAYS[d]} of the month" for d in dow.last_dow)
    items.extend(f"the {_NTH[k]} {_DAYS[d]} of the month" for d, k in dow.nth)
    if len(items) > 1:
        plain = False
    return _join(items), plain


def _days(dom: FieldSpec, dow: FieldSpec) -> str:
    dom_free = dom.is_any
    dow_free = dow.is_any
    if dom_free and dow_free:
        return ""
    dow_text, dow_plain = _dow_phrase(dow)
    dow_clause = (", " + dow_text) if dow_plain and " through " in dow_text else (" on " + dow_text)
    if dom_free:
        return dow_clause
    dom_text = _dom_phrase(dom)
    if dow_free:
        return (", " if dom_text[0].isdigit() else " on ") + dom_text
    if dom.is_star or dow.is_star:  # AND rule
        return f" on {dom_text}, if it is {'a ' if dow_plain else ''}{dow_text}"
    return f" on {dom_text} or on {dow_text}"


def _months(month: FieldSpec) -> str:
    if month.is_any:
        return ""
    n = _step(month)
    if n is not None:
        return f", every {_ordinal(n)} month" if n > 1 else ""
    return ", in " + _values(month.values, lambda m: _MONTHS[m])


def _years(year: FieldSpec) -> str:
    if year.is_star and _step(year) is None:
        return ""
    return ", in " + _values(year.values)


def describe(expr: CronExpression) -> str:
    """Describe `expr` in one English sentence (no trailing period)."""
    f = expr.fields
    text = _time(f.second, f.minute, f.hour)
    text += _days(f.day_of_month, f.day_of_week)
    text += _months(f.month)
    text += _years(f.year)
    return text
