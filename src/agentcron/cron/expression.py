"""`CronExpression`: parse once, then answer next / prev / matches.

The rules (the same as ``conformance/README.md``, "The rules in one screen"):

Fields
    5 fields ``minute hour day-of-month month day-of-week``; 6 fields put ``second`` first;
    7 fields put ``second`` first and ``year`` (1970-2099) last. Only ASCII space and tab
    separate fields. Macros ``@yearly``/``@annually`` (``0 0 1 1 *``), ``@monthly``
    (``0 0 1 * *``), ``@weekly`` (``0 0 * * 0``), ``@daily``/``@midnight`` (``0 0 * * *``),
    ``@hourly`` (``0 * * * *``) and the preset names of `agentcron.cron.presets.PRESETS` stand
    for their expansion. ``@reboot`` is an engine trigger and is rejected here.

Day fields (Vixie cron)
    When both day-of-month and day-of-week are restricted, a day matches if *either* matches.
    When either field starts with ``*`` (``*``, ``*/2``, ``?``) both must match. ``L``, ``LW``,
    ``L-n``, ``nW``, ``nL`` and ``n#k`` take part in the same rule. ``?`` means ``*``.

Quartz specials
    ``L`` last day of the month; ``L-n`` the last day minus n (no fire if that is before the
    1st); ``LW`` the last weekday (Mon-Fri); ``nW`` the weekday nearest day n, inside the month
    (a Saturday 1st moves to Monday the 3rd, a Sunday last day to the Friday before; no fire
    in months without day n); ``nL`` the last weekday n of the month; ``n#k`` the k-th weekday
    n of the month (no fire in months without one).

Daylight-saving time (Debian cron, applied to every field count)
    A *fixed-time* expression is one whose minute and hour fields both do not start with
    ``*``. Its wall times that a spring-forward transition skips fire once, at the end of the
    gap (keeping their second: ``30 2 * * *`` in New York on 2026-03-08 fires at 03:00-04:00);
    its wall times in a repeated (fall-back) period fire once, at their first occurrence.
    An *interval-like* expression (minute or hour starts with ``*``) does not fire at skipped
    wall times and fires at both occurrences of repeated ones (``*/15 * * * *`` fires at
    01:45-04:00 and again at 01:45-05:00 on 2026-11-01 in New York).

Results
    `next` / `prev` return aware datetimes in the expression's zone, with the offset (and
    ``fold``) of the instant they denote, or None when there is no such fire (an expression
    can be valid but never fire, e.g. ``0 0 30 2 *``, or have only past years). Search is
    bounded: a calendar is checked for ever matching at all before searching, and a search
    never looks more than 401 years ahead (the Gregorian calendar repeats every 400 years).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from agentcron.cron import fields as f
from agentcron.cron._calendar import MAX_SECOND, MIN_SECOND, Matcher, civil_from_days
from agentcron.cron._zones import Zone, resolve_zone, zone_for
from agentcron.cron.errors import CronError, shown
from agentcron.cron.presets import MACROS, PRESETS, REBOOT

if TYPE_CHECKING:
    from agentcron.cron.validate import ValidationResult

__all__ = ["MAX_EXPRESSION_LENGTH", "CronExpression"]

#: Longer texts are rejected before parsing (the longest sensible expression is far shorter).
MAX_EXPRESSION_LENGTH = 1024
_SPLIT = re.compile(r"[ \t]+")
_DAY = 86400
_MAX_SEGMENTS = 2000
#: An interval-like expression whose matching wall times keep falling into DST gaps (e.g.
#: ``* 2 * 3 0#2`` in New York, where 02:00-02:59 on the second Sunday of March never exists)
#: never fires; the search gives up after this many gaps in a row.
_MAX_GAP_SKIPS = 64
_FIELD_ORDER_5 = (f.MINUTE, f.HOUR, f.DOM, f.MONTH, f.DOW)
_FIELD_ORDER_6 = (f.SECOND, f.MINUTE, f.HOUR, f.DOM, f.MONTH, f.DOW)
_FIELD_ORDER_7 = (f.SECOND, f.MINUTE, f.HOUR, f.DOM, f.MONTH, f.DOW, f.YEAR)
_ORDERS = {5: _FIELD_ORDER_5, 6: _FIELD_ORDER_6, 7: _FIELD_ORDER_7}

_WallHit = tuple[int, int, int, int, int, int, int]


def _expand(text: str) -> str:
    """Resolve macros and preset names; return the expression text (not yet validated)."""
    if not isinstance(text, str):
        raise CronError(f"expression: expected a string, got {type(text).__name__}")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise CronError(
            f"expression: {len(text)} characters is too long (the limit is {MAX_EXPRESSION_LENGTH})"
        )
    s = text.strip(" \t")
    if not s:
        raise CronError("expression: is empty (expected 5, 6 or 7 fields)")
    if not s.isprintable():
        bad = next((c for c in s if c != "\t" and not c.isprintable()), None)
        if bad is not None:
            # a line break, NUL, no-break space ...: reported as such, not as a wrong number
            # of fields or a bad token (and never repeated raw in the message)
            hint = " (only spaces and tabs separate fields)" if bad.isspace() else ""
            raise CronError(
                f"expression: contains the character {bad!r} at position "
                f"{text.index(bad) + 1}, which is not allowed{hint}"
            )
    if s.startswith("@"):
        if _SPLIT.search(s):
            raise CronError(f"expression: {shown(s.split()[0])} takes no fields after it")
        name = s.lower()
        if name == REBOOT:
            raise CronError(
                "expression: @reboot is an engine trigger (run once when the scheduler "
                "starts), not a time schedule; use a reboot trigger"
            )
        macro = MACROS.get(name)
        if macro is None:
            raise CronError(
                f"expression: {shown(s)} is not a known macro (known: {', '.join(MACROS)}, @reboot)"
            )
        return macro
    preset = PRESETS.get(s.upper()) if s[0].isalpha() and "_" in s else None
    return preset if preset is not None else s


def _parse(expression: str) -> tuple[f.CronFields, int]:
    parts = _SPLIT.split(expression)
    order = _ORDERS.get(len(parts))
    if order is None:
        raise CronError(
            f"expression: expected 5 fields (minute hour day-of-month month day-of-week), "
            f"6 (second first) or 7 (second first, year last), got {len(parts)}"
        )
    specs: dict[int, f.FieldSpec] = {}
    for field, token in zip(order, parts, strict=True):
        specs[field] = f.parse_field(field, token.upper())
    fields = f.CronFields(
        second=specs.get(f.SECOND, f.ZERO_SECOND),
        minute=specs[f.MINUTE],
        hour=specs[f.HOUR],
        day_of_month=specs[f.DOM],
        month=specs[f.MONTH],
        day_of_week=specs[f.DOW],
        year=specs.get(f.YEAR, f.STAR_YEAR),
    )
    return fields, len(parts)


_Parsed = tuple[str, f.CronFields, int, Matcher]
#: Parsed expressions by text (a `Matcher` is a pure function of the fields, so expressions
#: with the same text share one, with its lazily filled day tables).
_PARSED: dict[str, _Parsed] = {}


def _parse_text(text: str) -> _Parsed:
    expression = _expand(text)
    fields, count = _parse(expression)
    parsed = (" ".join(_SPLIT.split(expression)), fields, count, Matcher(fields))
    if len(_PARSED) > 2048:
        _PARSED.clear()
    _PARSED[text] = parsed
    return parsed


def _timestamp(dt: datetime, what: str) -> float:
    if not isinstance(dt, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime (got a naive one: {dt})")
    return dt.timestamp()


class CronExpression:
    """An immutable, hashable, parsed cron expression bound to a time zone.

    >>> e = CronExpression("0 9 * * MON-FRI", tz="Europe/Berlin")
    >>> e.next(datetime.fromisoformat("2026-03-27T12:00:00+00:00")).isoformat()
    '2026-03-30T09:00:00+02:00'

    Public attributes: `text` (as written), `expression` (macros/presets expanded, blanks
    normalised), `fields` (`CronFields`), `field_count` (5, 6 or 7), `tz` (tzinfo),
    `timezone` (its name), `has_seconds`, `is_fixed_time`.
    """

    __slots__ = (
        "_expression",
        "_field_count",
        "_fields",
        "_fixed_time",
        "_gaps",
        "_hash",
        "_m",
        "_text",
        "_tz",
        "_tzname",
        "_zone",
    )

    _text: str
    _expression: str
    _fields: f.CronFields
    _field_count: int
    _tz: tzinfo
    _tzname: str
    _zone: Zone
    _fixed_time: bool
    _m: Matcher
    _gaps: dict[int, tuple[int, ...]]
    _hash: int | None

    def __init__(self, text: str, tz: str | tzinfo = "UTC") -> None:
        parsed = _PARSED.get(text) if isinstance(text, str) else None
        if parsed is None:
            parsed = _parse_text(text)
        expression, fields, count, matcher = parsed
        tzinfo_, tzname = resolve_zone(tz)
        put = object.__setattr__
        put(self, "_text", text)
        put(self, "_expression", expression)
        put(self, "_fields", fields)
        put(self, "_field_count", count)
        put(self, "_tz", tzinfo_)
        put(self, "_tzname", tzname)
        put(self, "_zone", zone_for(tzinfo_))
        put(self, "_fixed_time", fields.minute.text[0] != "*" and fields.hour.text[0] != "*")
        put(self, "_m", matcher)
        put(self, "_gaps", {})
        put(self, "_hash", None)

    # -- attributes -----------------------------------------------------------------

    @property
    def text(self) -> str:
        """The text as given (macro, preset name or expression)."""
        return self._text

    @property
    def expression(self) -> str:
        """The expression after expanding macros and presets, fields separated by one blank."""
        return self._expression

    @property
    def fields(self) -> f.CronFields:
        """The parsed fields (normalised token text and expanded values of each)."""
        return self._fields

    @property
    def field_count(self) -> int:
        """5, 6 (second first) or 7 (second first, year last)."""
        return self._field_count

    @property
    def tz(self) -> tzinfo:
        """The time zone fire times are computed (and returned) in."""
        return self._tz

    @property
    def timezone(self) -> str:
        """The time zone's name (IANA key, or ``UTC``)."""
        return self._tzname

    @property
    def has_seconds(self) -> bool:
        """True for 6- and 7-field expressions (the first field is the second)."""
        return self._field_count >= 6

    @property
    def is_fixed_time(self) -> bool:
        """True when neither the minute nor the hour field starts with ``*`` (DST rule)."""
        return self._fixed_time

    def _normalised(self) -> str:
        return " ".join(spec.text for spec in self._fields.as_tuple())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CronExpression):
            return NotImplemented
        return (self._normalised(), self._tzname) == (other._normalised(), other._tzname)

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = hash((self._normalised(), self._tzname))
            object.__setattr__(self, "_hash", h)
        return h

    def __repr__(self) -> str:
        return f"CronExpression({self._text!r}, tz={self._tzname!r})"

    def __str__(self) -> str:
        return self._expression

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("CronExpression is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("CronExpression is immutable")

    def __reduce__(self) -> tuple[type[CronExpression], tuple[str, str | tzinfo]]:
        return (CronExpression, (self._text, self._tz))

    # -- queries ----------------------------------------------------------------------

    def next(self, after: datetime) -> datetime | None:
        """The first fire time strictly after `after` (aware), or None if there is none."""
        u = _timestamp(after, "after")
        lo = math.floor(u) + 1
        if lo < MIN_SECOND:  # `after` is an instant before 0001-01-01 UTC
            lo = MIN_SECOND
        return self._build(self._next_ts(lo))

    def prev(self, before: datetime) -> datetime | None:
        """The last fire time strictly before `before` (aware), or None if there is none."""
        u = _timestamp(before, "before")
        hi = math.ceil(u) - 1
        if hi > MAX_SECOND:  # `before` is an instant after 9999-12-31 UTC
            hi = MAX_SECOND
        return self._build(self._prev_ts(hi))

    def matches(self, dt: datetime) -> bool:
        """True if `dt` (aware) is a fire time of this expression."""
        u = _timestamp(dt, "dt")
        if u != math.floor(u):
            return False
        t = int(u)
        zone = self._zone
        if zone.fixed is not None:
            return self._m.matches_wall(t + zone.fixed)
        start, _end, o, o_before, _o_after = zone.segment(t)
        local = t + o
        if self._m.matches_wall(local) and not (
            self._fixed_time and o_before > o and local < start + o_before
        ):
            return True
        if self._fixed_time and o_before < o:
            return t in self._gap_fires(start, o_before, o)
        return False

    def iter(self, after: datetime) -> Iterator[datetime]:
        """Successive fire times strictly after `after` (ends when there are no more)."""
        t: datetime | None = after
        while t is not None:
            t = self.next(t)
            if t is not None:
                yield t

    def describe(self) -> str:
        """Plain English, e.g. ``At 00:00 on the last day of the month``."""
        from agentcron.cron.describe import describe

        return describe(self)

    @classmethod
    def validate(
        cls, text: str, tz: str | tzinfo = "UTC", *, now: datetime | None = None, count: int = 5
    ) -> ValidationResult:
        """Check `text` without raising: valid/error, warnings and the next `count` runs."""
        from agentcron.cron.validate import validate

        return validate(text, tz, now=now, count=count)

    # -- search ---------------------------------------------------------------------

    def _build(self, hit: tuple[int, int] | None) -> datetime | None:
        if hit is None:
            return None
        ts, o = hit
        try:
            return datetime.fromtimestamp(ts, self._zone.fixed_tz(o, ts))
        except (OverflowError, ValueError):
            # in UTC before year 1 or after 9999: no `datetime` holds it, and every other
            # fire in the direction searched is further out
            return None

    def _gap_fires(self, start: int, o_before: int, o_after: int) -> tuple[int, ...]:
        """Instants at which a fixed-time expression fires for wall times skipped by the
        spring-forward transition at `start` (end of the gap + the second of each)."""
        fires = self._gaps.get(start)
        if fires is not None:
            return fires
        lo, hi = start + o_before, start + o_after
        seconds: set[int] = set()
        hit = self._m.next_wall(lo)
        if hit is not None and hit[0] < hi:
            if lo % 60 == 0 and hi % 60 == 0:
                seconds.update(self._fields.second.values)
            else:
                guard = 0
                while hit is not None and hit[0] < hi and guard < 4000:
                    seconds.add(hit[6])
                    hit = self._m.next_wall(hit[0] + 1)
                    guard += 1
        fires = tuple(sorted(start + s for s in seconds))
        if len(self._gaps) > 256:
            self._gaps.clear()
        self._gaps[start] = fires
        return fires

    def _next_ts(self, lo: int) -> tuple[int, int] | None:
        """Smallest fire instant >= lo, as (instant, UTC offset there)."""
        zone = self._zone
        m = self._m
        if zone.fixed is not None:
            o = zone.fixed
            local = lo + o
            if local < MIN_SECOND:  # a wall time before year 1 (a negative offset near it)
                local = MIN_SECOND
            hit = m.next_wall(local)
            return None if hit is None else (hit[0] - o, o)
        fixed_time = self._fixed_time
        skipped = 0
        for _ in range(_MAX_SEGMENTS):
            start, end, o, o_before, o_after = zone.segment(lo)
            best: int | None = None
            if fixed_time and o_before < o and lo < start + 60:
                for t in self._gap_fires(start, o_before, o):
                    if t >= lo:
                        best = t
                        break
            local = lo + o
            if fixed_time and o_before > o:
                local = max(local, start + o_before)
            if local < MIN_SECOND:
                local = MIN_SECOND
            hit = m.next_wall(local)
            if hit is not None and hit[0] < end + o:
                t = hit[0] - o
                if best is None or t < best:
                    best = t
            if best is not None:
                return (best, o)
            if hit is None:
                return None
            if not fixed_time and o_after > o and hit[0] < end + o_after:
                skipped += 1  # the first match is in the gap at `end`
                if skipped > _MAX_GAP_SKIPS:
                    return None
            far = hit[0] - o
            if far > end + 3 * _DAY and (fixed_time or o_after >= o):
                lo = far - 2 * _DAY
            else:
                lo = end
            if lo > MAX_SECOND:
                return None
        return None

    def _prev_ts(self, hi: int) -> tuple[int, int] | None:
        """Largest fire instant <= hi, as (instant, UTC offset there)."""
        zone = self._zone
        m = self._m
        if zone.fixed is not None:
            o = zone.fixed
            local = hi + o
            if local > MAX_SECOND:  # a wall time after year 9999 (a positive offset near it)
                local = MAX_SECOND
            hit = m.prev_wall(local)
            return None if hit is None else (hit[0] - o, o)
        fixed_time = self._fixed_time
        skipped = 0
        for _ in range(_MAX_SEGMENTS):
            start, _end, o, o_before, _o_after = zone.segment(hi)
            best: int | None = None
            if fixed_time and o_before < o:
                for t in reversed(self._gap_fires(start, o_before, o)):
                    if t <= hi:
                        best = t
                        break
            low_local = start + o
            if fixed_time and o_before > o:
                low_local = start + o_before
            local = hi + o
            if local > MAX_SECOND:
                local = MAX_SECOND
            hit = m.prev_wall(local)
            if hit is not None and hit[0] >= low_local:
                t = hit[0] - o
                if best is None or t > best:
                    best = t
            if best is not None:
                return (best, o)
            if hit is None:
                return None
            if not fixed_time and o_before < o and hit[0] >= start + o_before:
                skipped += 1  # the last match is in the gap at `start`
                if skipped > _MAX_GAP_SKIPS:
                    return None
            far = hit[0] - o
            if far < start - 3 * _DAY and o_before <= o:
                hi = far + 2 * _DAY
            else:
                hi = start - 1
            if hi < MIN_SECOND:
                return None
        return None


def civil_year(t: int) -> int:
    """The (UTC) year of instant `t`."""
    return civil_from_days(t // _DAY)[0]
