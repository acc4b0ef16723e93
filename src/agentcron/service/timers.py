"""Cron expressions as systemd timers: `OnCalendar=` where the translation is exact.

`to_on_calendar` translates the cron text itself (it does not evaluate the schedule): each
field is expanded to its set of values and written back in systemd's calendar syntax. It
refuses, with the reason, whatever systemd would read differently:

- `L`, `W`, `#` and `?` (no systemd equivalent, or Quartz/Vixie subtleties);
- day-of-month and day-of-week both restricted: cron fires when *either* matches,
  systemd only when *both* do;
- `@reboot` (use `OnBootSec=`), unknown macros, bad numbers (presets are expanded first);
- misfire `run_all` (a persistent timer runs missed fires once, not each).

`export_timers` turns a list of jobs into a `Plan` that writes one `.timer`/`.service` pair
per convertible job, and reports the others.
"""

from __future__ import annotations

import dataclasses
import re
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath

from agentcron.cron._zones import not_iana_problem
from agentcron.cron.presets import PRESETS
from agentcron.service.base import Plan, WriteFile
from agentcron.service.systemd import escape_specifiers, exec_line

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_SYSTEMD_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_MISFIRE_POLICIES = ("run_once", "skip", "run_all")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


_SECOND = _Field("second", 0, 59)
_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DOM = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTHS, 1)
_DOW = _Field("day-of-week", 0, 7, _DAYS, 0)
_YEAR = _Field("year", 1970, 2099)


class NotConvertible(ValueError):
    """The expression has no exact `OnCalendar=` equivalent; the message says why."""


@dataclass(frozen=True)
class TimerJob:
    """One job to export: its id, cron text, IANA time zone and misfire policy."""

    job_id: str
    cron: str
    timezone: str = "UTC"
    misfire: str = "run_once"


@dataclass(frozen=True)
class Conversion:
    """The outcome for one job: an `OnCalendar=` value, or the reasons it has none."""

    job_id: str
    cron: str
    on_calendar: str | None
    persistent: bool
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "job_id": self.job_id,
            "cron": self.cron,
            "on_calendar": self.on_calendar,
            "persistent": self.persistent,
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
        }


def _number(token: str, spec: _Field) -> int:
    upper = token.upper()
    if spec.names and upper in spec.names:
        return spec.names.index(upper) + spec.name_base
    if not token.isdigit():
        raise NotConvertible(f"{spec.name} field: {token!r} is not a number or name")
    value = int(token)
    if not spec.low <= value <= spec.high:
        raise NotConvertible(f"{spec.name} field: {value} is out of range {spec.low}-{spec.high}")
    return value


def _expand(text: str, spec: _Field) -> set[int]:
    """The set of values a cron field matches (no specials)."""
    for special in ("L", "W", "#", "?"):
        if special in text.upper() and not (special in "LW" and _has_name_with(text, special)):
            raise NotConvertible(
                f"{spec.name} field: {text!r} uses {special!r}, which systemd calendars cannot express"
            )
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise NotConvertible(f"{spec.name} field: empty list element in {text!r}")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise NotConvertible(f"{spec.name} field: bad step {step_text!r} in {part!r}")
            step = int(step_text)
        if base == "*":
            low, high = spec.low, spec.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _number(first, spec), _number(last, spec)
            if low > high:
                raise NotConvertible(f"{spec.name} field: range {base!r} runs backwards")
        else:
            low = _number(base, spec)
            high = spec.high if slash else low
        values.update(range(low, high + 1, step))
    return values


def _has_name_with(text: str, letter: str) -> bool:
    """True when every `letter` in `text` belongs to a month/day name (JUL, WED, ...)."""
    stripped = re.sub(
        r"[A-Za-z]{3}", lambda m: "" if m.group(0).upper() in _MONTHS + _DAYS else m.group(0), text
    )
    return letter not in stripped.upper()


def _runs(values: Sequence[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _render(values: set[int], spec: _Field, *, width: int = 2, open_steps: bool = True) -> str:
    """Write a value set in systemd syntax: `*`, `a/n`, `a..b`, or a comma list of those."""
    full = set(range(spec.low, spec.high + 1))
    if values == full:
        return "*"
    ordered = sorted(values)
    if open_steps and len(ordered) >= 3:
        step = ordered[1] - ordered[0]
        progression = list(range(ordered[0], spec.high + 1, step))
        if step > 1 and ordered == progression:
            return f"{ordered[0]:0{width}d}/{step}"
    parts = []
    for first, last in _runs(ordered):
        if first == last:
            parts.append(f"{first:0{width}d}")
        elif last == first + 1:
            parts.append(f"{first:0{width}d},{last:0{width}d}")
        else:
            parts.append(f"{first:0{width}d}..{last:0{width}d}")
    return ",".join(parts)


def _render_weekdays(values: set[int]) -> str:
    days = {v % 7 for v in values}
    if days == set(range(7)):
        return ""
    # systemd's week starts on Monday; ranges must not wrap around
    order = [1, 2, 3, 4, 5, 6, 0]
    positions = sorted(order.index(d) for d in days)
    parts = []
    for first, last in _runs(positions):
        a, b = _SYSTEMD_DAYS[order[first]], _SYSTEMD_DAYS[order[last]]
        parts.append(a if first == last else f"{a},{b}" if last == first + 1 else f"{a}..{b}")
    return ",".join(parts)


def _check_timezone(tz: str) -> str:
    if not tz or not re.fullmatch(r"[A-Za-z0-9_+\-/]+", tz):
        raise NotConvertible(f"time zone {tz!r} is not an IANA name")
    if (problem := not_iana_problem(tz)) is not None:
        raise NotConvertible(problem)
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise NotConvertible(f"time zone {tz!r} is unknown") from exc
    return tz


def _never_fires(cron: str, tz: str) -> bool:
    from datetime import UTC

    from agentcron.cron import CronError, CronExpression

    try:
        return CronExpression(cron, tz=tz).next(datetime(1970, 1, 1, tzinfo=UTC)) is None
    except CronError:
        return False  # to_on_calendar has said what is wrong with it


def _observes_dst(tz: str) -> bool:
    zone = zoneinfo.ZoneInfo(tz)
    offsets = {datetime(2025, month, 15, tzinfo=zone).utcoffset() for month in (1, 4, 7, 10)}
    return len(offsets) > 1


def to_on_calendar(cron: str, timezone: str = "UTC") -> str:
    """The exact `OnCalendar=` value for `cron` in `timezone`, or raise `NotConvertible`."""
    text = " ".join(cron.split())
    text = PRESETS.get(text) or PRESETS.get(text.upper()) or text
    if text.startswith("@"):
        if text.lower() == "@reboot":
            raise NotConvertible("@reboot is not a calendar time; use OnBootSec= instead")
        if text.lower() not in MACROS:
            raise NotConvertible(f"unknown macro {text!r}")
        text = MACROS[text.lower()]
    fields = text.split(" ")
    if len(fields) == 5:
        fields = ["0", *fields, "*"]
    elif len(fields) == 6:
        fields = [*fields, "*"]
    elif len(fields) != 7:
        raise NotConvertible(f"{len(fields)} fields: expected 5, 6 or 7, a macro or a preset name")
    sec, minute, hour, dom, month, dow, year = fields
    zone = _check_timezone(timezone)
    dom_values = _expand(dom, _DOM)
    dow_values = _expand(dow, _DOW)
    if not dom.startswith("*") and not dow.startswith("*"):
        raise NotConvertible(
            "day-of-month and day-of-week are both restricted: cron fires when either "
            "matches, systemd only when both do"
        )
    weekdays = _render_weekdays(dow_values)
    date = "-".join(
        (
            "*" if year == "*" else _render(_expand(year, _YEAR), _YEAR, width=4, open_steps=False),
            _render(_expand(month, _MONTH), _MONTH),
            _render(dom_values, _DOM),
        )
    )
    time = ":".join(
        (
            _render(_expand(hour, _HOUR), _HOUR),
            _render(_expand(minute, _MINUTE), _MINUTE),
            _render(_expand(sec, _SECOND), _SECOND),
        )
    )
    return " ".join(p for p in (weekdays, date, time, zone) if p)


def convert(job: TimerJob) -> Conversion:
    """Convert one job, collecting the reasons it cannot be and warnings where it may differ."""
    reasons: list[str] = []
    warnings: list[str] = []
    on_calendar: str | None = None
    if any(ord(c) < 32 or ord(c) == 127 for c in job.job_id) or not job.job_id:
        reasons.append("job id is empty or contains control characters")
    if job.misfire not in _MISFIRE_POLICIES:
        reasons.append(f"unknown misfire policy {job.misfire!r}")
    elif job.misfire == "run_all":
        reasons.append(
            "misfire policy run_all: a persistent systemd timer runs missed fires once, not each"
        )
    try:
        on_calendar = to_on_calendar(job.cron, job.timezone)
    except NotConvertible as exc:
        reasons.append(str(exc))
    if on_calendar is not None and _never_fires(job.cron, job.timezone):
        reasons.append("it never fires (no date matches its day and month fields)")
    if on_calendar is not None and _observes_dst(job.timezone):
        warnings.append(
            f"{job.timezone} observes daylight saving time: on the change days, fires in the "
            "skipped or repeated hour follow systemd's rules, not cron's"
        )
    if reasons:
        return Conversion(job.job_id, job.cron, None, False, tuple(reasons), tuple(warnings))
    return Conversion(
        job.job_id, job.cron, on_calendar, job.misfire == "run_once", (), tuple(warnings)
    )


def escape_unit_name(text: str) -> str:
    """`systemd-escape` for one unit-name component: `/` becomes `-`, and `-` and unsafe
    bytes become `\\xNN`."""
    out = []
    for index, char in enumerate(text):
        if (char.isascii() and (char.isalnum() or char in ":_.")) and not (
            index == 0 and char == "."
        ):
            out.append(char)
        elif char == "/":
            out.append("-")
        else:
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8"))
    return "".join(out)


@dataclass(frozen=True)
class TimerExport:
    """The plan that writes the timer units and the conversion of every job."""

    plan: Plan
    conversions: tuple[Conversion, ...] = field(default_factory=tuple)

    @property
    def refused(self) -> tuple[Conversion, ...]:
        return tuple(c for c in self.conversions if c.on_calendar is None)


#: The longest unit file name systemd takes (`UNIT_NAME_MAX` is 256 with the final NUL).
MAX_UNIT_NAME = 255


def export_timers(
    jobs: Iterable[TimerJob],
    out_dir: PurePath,
    *,
    python: PurePath,
    data_dir: PurePath,
    prefix: str = "agentcron-job-",
) -> TimerExport:
    """One `.timer` + oneshot `.service` per convertible job, written under `out_dir`.

    Each service runs `<python> -m agentcron jobs run --data-dir <data_dir> -- <id>`.
    """
    steps: list[WriteFile] = []
    conversions: list[Conversion] = []
    for job in jobs:
        conversion = convert(job)
        unit = prefix + escape_unit_name(job.job_id)
        if conversion.on_calendar is not None and len(unit + ".service") > MAX_UNIT_NAME:
            # One such job used to fail the whole export ("File name too long").
            conversion = dataclasses.replace(
                conversion,
                on_calendar=None,
                reasons=(
                    f"its unit name would be {len(unit + '.service')} characters once escaped"
                    f" (systemd allows {MAX_UNIT_NAME}): give the job a shorter id",
                ),
            )
        conversions.append(conversion)
        if conversion.on_calendar is None:
            continue
        # the id after `--`: a job id such as `-x` is an id, not an option
        argv = [
            str(python),
            "-m",
            "agentcron",
            "jobs",
            "run",
            "--data-dir",
            str(data_dir),
            "--",
            job.job_id,
        ]
        description = escape_specifiers(f"agentcron job {job.job_id}".replace("\\", "/"))
        service = "\n".join(
            (
                "[Unit]",
                f"Description={description}",
                "",
                "[Service]",
                "Type=oneshot",
                f"ExecStart={exec_line(argv)}",
                "",
            )
        )
        timer = "\n".join(
            (
                "[Unit]",
                f"Description={description} (timer for: {escape_specifiers(' '.join(job.cron.split()))})",
                "",
                "[Timer]",
                f"OnCalendar={conversion.on_calendar}",
                f"Persistent={'true' if conversion.persistent else 'false'}",
                "AccuracySec=1s",
                f"Unit={unit}.service",
                "",
                "[Install]",
                "WantedBy=timers.target",
                "",
            )
        )
        steps.append(WriteFile(out_dir / f"{unit}.service", service))
        steps.append(WriteFile(out_dir / f"{unit}.timer", timer))
    return TimerExport(Plan(steps=tuple(steps)), tuple(conversions))
