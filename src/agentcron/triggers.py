"""Triggers: when a job fires. Each is pure: `next_fire(after)` returns the first fire time
strictly after `after` (aware UTC in, aware out) or None when it never fires again, and
round-trips through plain dicts (`to_dict` / `trigger_from_dict`).

* `CronTrigger(expr, tz)`: a cron expression evaluated in a time zone (`agentcron.cron`).
* `Interval(seconds=5, start=anchor)`: every period, aligned on `start` (default: the Unix
  epoch, so `Interval(minutes=5)` fires at :00, :05, ... and survives restarts unchanged).
* `Date(at)`: once.
* `Reboot()`: once each time the scheduler starts (the engine fires it; `next_fire` is None).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agentcron.clock import utc
from agentcron.policies.errors import MAX_DURATION_S, JobConfigError, require, shown

if TYPE_CHECKING:
    from agentcron.cron import CronExpression

__all__ = [
    "CronTrigger",
    "Date",
    "Interval",
    "Reboot",
    "Trigger",
    "coerce_trigger",
    "cron_trigger",
    "require_fires",
    "resolve_tz",
    "trigger_from_dict",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The shortest `Interval`: faster fires would starve the event loop (each fire is a run
#: with its own record), and 100 per second is far beyond what a schedule needs.
MIN_INTERVAL_S = 0.01


@runtime_checkable
class Trigger(Protocol):
    def next_fire(self, after: datetime) -> datetime | None:
        """First fire strictly after `after`; None when there is none."""
        ...

    def to_dict(self) -> dict[str, Any]: ...

    def describe(self) -> str: ...


def resolve_tz(tz: str | tzinfo | None, field: str = "timezone") -> tzinfo:
    """An IANA name (or tzinfo) to a tzinfo; unknown names, and files of the machine's zone
    database that are not IANA names (`localtime`, `posixrules`, `right/...`), raise
    `JobConfigError`."""
    if tz is None:
        return UTC
    if isinstance(tz, tzinfo):
        if tz is UTC:
            return tz
        key = getattr(tz, "key", None)
        if not isinstance(key, str):
            # A fixed offset (`timezone(timedelta(hours=2))`) or another library's zone:
            # its name ("UTC+02:00") is stored with the job and does not load back, so the
            # job could not be updated or restored. (Nor does a fixed offset follow DST.)
            raise JobConfigError(
                field,
                f"{shown(tz)} is not an IANA time zone; use a name such as 'Europe/Berlin'"
                " (or ZoneInfo('Europe/Berlin'), or 'UTC')",
            )
        _require_iana(key, field)
        return tz
    if not isinstance(tz, str):
        raise JobConfigError(field, f"expected an IANA time zone name or a tzinfo, got {tz!r}")
    known = _ZONES.get(tz)
    if known is not None:
        return known
    zone = _load_tz(tz, field)
    if len(_ZONES) < 1024:
        _ZONES[tz] = zone
    return zone


_ZONES: dict[str, tzinfo] = {}


def _require_iana(name: str, field: str) -> None:
    from agentcron.cron._zones import not_iana_problem  # (the cron package loads on use)

    problem = not_iana_problem(name)
    if problem is not None:
        raise JobConfigError(field, problem)


def _load_tz(tz: str, field: str) -> tzinfo:
    if tz.upper() == "UTC":
        return UTC
    _require_iana(tz, field)
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        # OSError: a name that is a folder of the zone database ("America") or too long
        # for a file name; ValueError: a malformed key ("Europe/", "../x").
        raise JobConfigError(
            field, f"unknown time zone {_shown(tz)!r} (use an IANA name such as 'Europe/Berlin')"
        ) from exc


def _shown(tz: str) -> str:
    return tz if len(tz) <= 64 else f"{tz[:60]}..."


def tz_name(tz: tzinfo) -> str:
    if tz is UTC:
        return "UTC"
    return str(getattr(tz, "key", None) or tz)


@lru_cache(maxsize=4096)
def _compiled(expr: str, tz: tzinfo) -> CronExpression:
    from agentcron.cron import CronError, CronExpression

    try:
        return CronExpression(expr, tz=tz)
    except CronError as exc:
        raise JobConfigError("trigger", str(exc)) from exc


@lru_cache(maxsize=4096)
def _never_fires(expr: CronExpression) -> bool:
    # Cached: every job is checked at registration, and most share a few expressions.
    return expr.next(_EPOCH) is None


class CronTrigger:
    """A cron expression in a time zone. Parsed once per (expr, tz) and shared."""

    __slots__ = ("_cache_after", "_cache_next", "_expr", "expr", "tz")

    def __init__(self, expr: str, tz: str | tzinfo | None = "UTC") -> None:
        require(isinstance(expr, str) and expr.strip() != "", "trigger", "empty cron expression")
        require(
            expr.strip().lower() != "@reboot",
            "trigger",
            "'@reboot' is not a cron schedule; use Reboot() or trigger='@reboot'",
        )
        self.expr = expr.strip()
        self.tz = resolve_tz(tz)
        self._expr = _compiled(self.expr, self.tz)
        # Many jobs share one trigger and ask for the same `after`: remember the last answer.
        self._cache_after: datetime | None = None
        self._cache_next: datetime | None = None

    def next_fire(self, after: datetime) -> datetime | None:
        # The last answer holds for any `after` from the last question up to that answer
        # (no fire lies between them): jobs on this schedule share it.
        cached = self._cache_after
        if cached is not None and cached <= after:
            nxt_cached = self._cache_next
            if nxt_cached is None or after < nxt_cached:
                return nxt_cached
        # Cron fires on whole seconds, so "strictly after" `after` and after its whole
        # second are the same.
        if after.microsecond:
            after = after.replace(microsecond=0)
        nxt = self._expr.next(after)
        result = utc(nxt) if nxt is not None else None
        self._cache_after, self._cache_next = after, result
        return result

    def never_fires(self) -> bool:
        """True when no date ever matches (``0 0 30 2 *``): a schedule that cannot start,
        not one that has ended (a past year is a schedule that ran)."""
        return _never_fires(self._expr)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "cron", "expr": self.expr, "tz": tz_name(self.tz)}

    def describe(self) -> str:
        return f"cron {self.expr} ({tz_name(self.tz)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CronTrigger) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.expr, tz_name(self.tz)))

    def __repr__(self) -> str:
        return f"CronTrigger({self.expr!r}, tz={tz_name(self.tz)!r})"


class Interval:
    """Every `period`, aligned on `start` (fires at start + k * period, k >= 0 when `start`
    is given; at epoch + k * period otherwise)."""

    __slots__ = ("period_s", "start")

    def __init__(
        self,
        *,
        weeks: float = 0,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
        start: datetime | None = None,
    ) -> None:
        parts = {"weeks": weeks, "days": days, "hours": hours, "minutes": minutes}
        parts["seconds"] = seconds
        for unit, amount in parts.items():
            number = isinstance(amount, int | float) and not isinstance(amount, bool)
            require(
                number and (isinstance(amount, int) or math.isfinite(amount)),
                "trigger",
                f"an interval's {unit} must be a finite number, got {shown(amount)}",
            )
        try:
            period = timedelta(
                weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds
            ).total_seconds()
        except OverflowError:  # over timedelta's 999,999,999 days
            period = math.inf
        require(period > 0, "trigger", f"an interval must be > 0 seconds, got {period}")
        require(
            period <= MAX_DURATION_S,
            "trigger",
            f"an interval of {period:g} s is longer than 100 years ({MAX_DURATION_S:.0f} s)"
            if math.isfinite(period)
            else "an interval is longer than 100 years",
        )
        require(
            period >= MIN_INTERVAL_S,
            "trigger",
            f"an interval of {period} s is shorter than the {MIN_INTERVAL_S} s minimum "
            "(a tighter loop belongs inside one long-running job)",
        )
        if start is not None:
            require(
                isinstance(start, datetime),
                "trigger.start",
                f"expected an aware datetime, got {shown(start)}",
            )
            try:
                start = utc(start)
            except ValueError as exc:
                raise JobConfigError("trigger.start", str(exc)) from exc
        self.period_s = period
        self.start = start

    def next_fire(self, after: datetime) -> datetime | None:
        anchor = self.start or _EPOCH
        if self.start is not None and after < anchor:
            return anchor
        elapsed = (after - anchor).total_seconds()
        k = math.floor(elapsed / self.period_s) + 1
        try:
            candidate = anchor + timedelta(seconds=k * self.period_s)
            while candidate <= after:  # float rounding on very long spans
                k += 1
                candidate = anchor + timedelta(seconds=k * self.period_s)
        except OverflowError:  # past the year 9999: there is no next fire
            return None
        return candidate

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "interval", "seconds": self.period_s}
        if self.start is not None:
            out["start"] = self.start.isoformat()
        return out

    def describe(self) -> str:
        return f"every {self.period_s:g}s"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Interval) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.period_s, self.start))

    def __repr__(self) -> str:
        return f"Interval(seconds={self.period_s:g}, start={self.start!r})"


class Date:
    """Once, at `at` (aware)."""

    __slots__ = ("at",)

    def __init__(self, at: datetime) -> None:
        require(
            isinstance(at, datetime), "trigger", f"Date needs an aware datetime, got {shown(at)}"
        )
        try:
            self.at = utc(at)
        except (ValueError, AttributeError) as exc:
            raise JobConfigError("trigger", f"Date needs an aware datetime: {exc}") from exc

    def next_fire(self, after: datetime) -> datetime | None:
        return self.at if self.at > after else None

    def to_dict(self) -> dict[str, Any]:
        return {"type": "date", "at": self.at.isoformat()}

    def describe(self) -> str:
        return f"once at {self.at.isoformat()}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Date) and self.at == other.at

    def __hash__(self) -> int:
        return hash(self.at)

    def __repr__(self) -> str:
        return f"Date({self.at!r})"


class Reboot:
    """Once each time the scheduler starts; never from `next_fire`."""

    __slots__ = ()

    def next_fire(self, after: datetime) -> datetime | None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"type": "reboot"}

    def describe(self) -> str:
        return "at start-up (@reboot)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reboot)

    def __hash__(self) -> int:
        return hash("reboot")

    def __repr__(self) -> str:
        return "Reboot()"


@lru_cache(maxsize=4096)
def cron_trigger(expr: str, tz: tzinfo) -> CronTrigger:
    """A shared `CronTrigger` per (expr, tz): jobs on one schedule share its parse and its
    last `next_fire` answer."""
    return CronTrigger(expr, tz)


def require_fires(trigger: object) -> None:
    """Raise `JobConfigError` naming the trigger when it is cron text that can never fire
    (``0 0 30 2 *``): the job file, `agentcron jobs add` and the HTTP API refuse it."""
    if isinstance(trigger, CronTrigger) and trigger.never_fires():
        raise JobConfigError(
            "trigger",
            f"{trigger.expr!r} never fires: no date matches its day-of-month, month"
            " and day-of-week (and year) fields",
        )


def require_fires_after(trigger: object, now: datetime) -> None:
    """`require_fires`, and for cron text or a date a fire after `now` (`JobConfigError`):
    what a job created through the HTTP API or `agentcron jobs add` must have. (Not the
    job file's jobs: a one-off job that ran stays in the file after its date.)"""
    require_fires(trigger)
    if isinstance(trigger, CronTrigger | Date) and trigger.next_fire(now) is None:
        raise JobConfigError(
            "trigger",
            f"{trigger.describe()} never fires after {now.isoformat(timespec='seconds')}:"
            " its time is past",
        )


def coerce_trigger(value: object, tz: str | tzinfo | None = "UTC") -> Trigger:
    """A trigger object, cron text, `"@reboot"` or a trigger dict to a `Trigger`."""
    if isinstance(value, (CronTrigger, Interval, Date, Reboot)):
        return value
    if isinstance(value, str):
        value = value.strip()  # (so that " 0 9 * * *" shares the trigger of "0 9 * * *")
        if value.lower() == "@reboot":
            return Reboot()
        return cron_trigger(value, resolve_tz(tz))
    if isinstance(value, dict):
        return trigger_from_dict(value)
    if isinstance(value, Trigger):
        return value
    raise JobConfigError(
        "trigger",
        f"expected cron text, '@reboot', Interval(...), Date(...) or CronTrigger(...), got {value!r}",
    )


def trigger_from_dict(data: dict[str, Any]) -> Trigger:
    """Rebuild a trigger from `to_dict()` output; a malformed dict raises `JobConfigError`
    naming the trigger (a missing key, a value of the wrong type)."""
    try:
        return _trigger_from_dict(data)
    except JobConfigError:
        raise
    except KeyError as exc:
        raise JobConfigError("trigger", f"{shown(data)} lacks the key {exc}") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise JobConfigError("trigger", f"invalid trigger {shown(data)}: {exc}") from None


def _trigger_from_dict(data: dict[str, Any]) -> Trigger:
    kind = data.get("type")
    if kind == "cron":
        return cron_trigger(str(data["expr"]), resolve_tz(data.get("tz", "UTC")))
    if kind == "interval":
        start = data.get("start")
        return Interval(
            seconds=float(data["seconds"]),
            start=datetime.fromisoformat(start) if start else None,
        )
    if kind == "date":
        return Date(datetime.fromisoformat(str(data["at"])))
    if kind == "reboot":
        return Reboot()
    raise JobConfigError("trigger", f"unknown trigger type {kind!r}")
