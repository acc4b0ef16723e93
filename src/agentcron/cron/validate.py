"""`validate`: check an expression without raising, and say what might surprise a person.

The result is valid unless the text does not parse (`error` is the `CronError` message) or
the expression can never fire from `now` on (`error` is ``"never fires"``). Warnings:

* runs less than 10 seconds apart; runs every minute
* a 6-field expression (the first field is read as seconds)
* day-of-month and day-of-week both restricted (they are OR-ed)
* a step larger than its range (``*/30`` in the hour field only matches 0)
* a day of month that some allowed months do not have (``31``)
* a fire time inside a DST gap or repeat of the chosen zone within the next year
* a rare expression (fewer than 4 runs in the next 4 years, e.g. only on leap days)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from itertools import islice
from typing import Any

from agentcron.cron.errors import CronError
from agentcron.cron.expression import CronExpression
from agentcron.cron.fields import FIELD_RANGES, FieldSpec
from agentcron.cron.presets import PRESETS

__all__ = ["ValidationResult", "validate"]

_YEAR_S = 366 * 86400
_RARE_YEARS = 4


@dataclass(frozen=True)
class ValidationResult:
    """What `CronExpression.validate` found. `to_dict()` gives a JSON-ready mapping."""

    text: str
    timezone: str
    valid: bool
    error: str | None = None
    warnings: tuple[str, ...] = ()
    next_runs: tuple[datetime, ...] = ()
    expression: str | None = None
    description: str | None = None
    field_count: int | None = None
    is_fixed_time: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "timezone": self.timezone,
            "valid": self.valid,
            "error": self.error,
            "warnings": list(self.warnings),
            "next_runs": [t.isoformat() for t in self.next_runs],
            "expression": self.expression,
            "description": self.description,
            "field_count": self.field_count,
            "is_fixed_time": self.is_fixed_time,
        }


def _min_gap_seconds(expr: CronExpression) -> int:
    """Smallest distance between two consecutive fire times within an hour."""
    f = expr.fields
    secs, mins = f.second.values, f.minute.values
    gaps = [b - a for a, b in zip(secs, secs[1:], strict=False)]
    minute_set = set(mins)
    if any((m + 1) % 60 in minute_set for m in mins):
        gaps.append(secs[0] + 60 - secs[-1])
    if len(secs) == 1 and not gaps:
        mgaps = [b - a for a, b in zip(mins, mins[1:], strict=False)]
        return 60 * min(mgaps) if mgaps else 3600
    return min(gaps) if gaps else 3600


def _step_warnings(spec: FieldSpec, index: int) -> list[str]:
    out = []
    lo, hi = FIELD_RANGES[index]
    for item in spec.text.split(","):
        base, slash, step_text = item.partition("/")
        if not slash or not step_text.isdigit():
            continue
        step = int(step_text)
        if base in ("*", "?"):
            start, end = lo, hi
        elif "-" in base:
            a, _, b = base.partition("-")
            start = int(a) if a.isdigit() else lo
            end = int(b) if b.isdigit() else hi
        else:
            start = int(base) if base.isdigit() else lo
            end = hi
        if step > end - start:
            out.append(
                f"{spec.name} field: {item} only matches {start} (the step {step} is larger "
                f"than the range {start}-{end})"
            )
    return out


def _fmt_wall(local: int) -> str:
    return datetime.fromtimestamp(local, UTC).strftime("%Y-%m-%d %H:%M")


def _dst_warnings(expr: CronExpression, now: datetime) -> list[str]:
    zone = expr._zone
    m = expr._m
    start = int(now.timestamp())
    out = []
    for t, before, after in zone.transitions(start, start + _YEAR_S):
        lo, hi = (t + before, t + after) if after > before else (t + after, t + before)
        hit = m.next_wall(lo)
        if hit is None or hit[0] >= hi:
            continue
        span = f"{_fmt_wall(lo)} to {_fmt_wall(hi)[11:]}"
        if after > before:
            what = (
                "runs there move to the end of the gap"
                if expr.is_fixed_time
                else "runs there are skipped"
            )
            out.append(
                f"DST: wall times {span} do not exist in {expr.timezone} (clocks go forward); "
                f"{what}"
            )
        else:
            what = (
                "runs there happen once, at the first occurrence"
                if expr.is_fixed_time
                else "runs there happen twice"
            )
            out.append(
                f"DST: wall times {span} happen twice in {expr.timezone} (clocks go back); {what}"
            )
    return out


def _warnings(expr: CronExpression, now: datetime, runs: list[datetime]) -> list[str]:
    f = expr.fields
    out: list[str] = []
    text = expr.text.strip(" \t")
    if expr.field_count == 6 and text.upper() not in PRESETS:
        out.append(
            "6 fields: the first field is read as seconds (so '0 */5 * * * *' means second 0 "
            "of every 5th minute); write 5 fields for a minute-level schedule"
        )
    gap = _min_gap_seconds(expr)
    if gap < 10:
        out.append(
            f"runs only {gap} second{'s' if gap > 1 else ''} apart (less than 10 seconds): "
            "a run may still be going when the next is due"
        )
    elif gap == 60 and len(f.second.values) == 1 and f.minute.is_star:
        out.append("runs every minute (1,440 times a day); make sure that is intended")
    elif gap == 60:
        out.append("runs every minute while its hours match; make sure that is intended")
    dom, dow = f.day_of_month, f.day_of_week
    if not dom.is_star and not dow.is_star:
        out.append(
            f"day-of-month ({dom.text}) and day-of-week ({dow.text}) are both restricted, so "
            "they are OR-ed (Vixie cron): it runs on days matching either; start one of them "
            "with * to require both"
        )
    for index, spec in enumerate(f.as_tuple()):
        out.extend(_step_warnings(spec, index))
    short = [d for d in dom.values if d >= 29] if not dom.is_star else []
    if short and max(short) > min(
        (29 if m == 2 else 30 if m in (4, 6, 9, 11) else 31) for m in f.month.values
    ):
        out.append(
            f"day-of-month {max(short)} does not exist in every month it allows; those months "
            "are skipped (use L for the last day of the month)"
        )
    out.extend(_dst_warnings(expr, now))
    horizon = now.timestamp() + _RARE_YEARS * 365.25 * 86400
    in_window = [t for t in islice(expr.iter(now), _RARE_YEARS) if t.timestamp() <= horizon]
    if runs and len(in_window) < _RARE_YEARS:
        out.append(
            f"runs rarely: {len(in_window)} time{'s' if len(in_window) != 1 else ''} in the "
            f"next {_RARE_YEARS} years (next: {runs[0].isoformat()})"
        )
    return out


def validate(
    text: str, tz: str | tzinfo = "UTC", *, now: datetime | None = None, count: int = 5
) -> ValidationResult:
    """Validate `text` in zone `tz`; next runs and warnings are computed from `now`
    (default: the current time, read once here)."""
    tzname = tz if isinstance(tz, str) else getattr(tz, "key", None) or str(tz)
    try:
        expr = CronExpression(text, tz)
    except CronError as exc:
        return ValidationResult(text=str(text), timezone=str(tzname), valid=False, error=str(exc))
    if now is None:
        now = datetime.now(UTC)
    runs = list(islice(expr.iter(now), max(0, count)))
    never = not runs and expr.next(now) is None
    common: dict[str, Any] = {
        "text": text,
        "timezone": expr.timezone,
        "expression": expr.expression,
        "description": expr.describe(),
        "field_count": expr.field_count,
        "is_fixed_time": expr.is_fixed_time,
    }
    if never:
        reason = (
            "no date ever matches its day and month fields"
            if expr._m.calendar_never_matches()
            else f"no fire time after {now.isoformat()}"
        )
        return ValidationResult(valid=False, error="never fires", warnings=(reason,), **common)
    return ValidationResult(
        valid=True, warnings=tuple(_warnings(expr, now, runs)), next_runs=tuple(runs), **common
    )
