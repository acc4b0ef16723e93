"""Time-zone resolution and a per-zone cache of UTC-offset transitions.

Any `tzinfo` works: the transitions of a year are found by sampling the UTC offset once a day
and bisecting each change to the second (so two transitions less than a day apart would be
missed; no zone in the tz database has those after 1970). Years are computed on first use and
cached per zone. UTC and fixed-offset zones skip all of this.

`datetime` cannot hold a local time before year 1 or after year 9999, so the offset of an
instant within two days of either end is read at that distance from the end (`_EDGE_LO`,
`_EDGE_HI`): offsets there are those of the zone's first and last days (no zone changes its
offset on the first two or the last two days of the range), not a 0 that depends on which
instant happened to be asked about first.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from agentcron.cron._calendar import (
    MAX_SECOND,
    MAX_YEAR,
    MIN_SECOND,
    MIN_YEAR,
    civil_from_days,
    days_from_civil,
)
from agentcron.cron.errors import CronError

__all__ = ["Segment", "Zone", "not_iana_problem", "resolve_zone", "zone_for"]

_UTC_NAMES = frozenset(
    {"UTC", "ETC/UTC", "Z", "GMT", "ETC/GMT", "UNIVERSAL", "ZULU", "ETC/UNIVERSAL", "ETC/ZULU"}
)
_FAR = 1 << 50

# (start, end, offset, offset before start, offset after end): the UTC instants [start, end)
# share `offset`; start/end are real transitions or cache boundaries (then the neighbouring
# offset equals `offset`).
Segment = tuple[int, int, int, int, int]


#: Names that load from a Linux zone database but are not IANA zones: missing from the
#: tzdata package and from Windows, or meaning whatever zone the machine is set to
#: (`localtime`), so a schedule using one changes meaning on another machine.
_NOT_IANA = frozenset({"localtime", "posixrules", "factory"})
#: Copies of the database with POSIX rules or leap seconds (`right/` is off by ~27 s).
_NOT_IANA_FOLDERS = ("posix/", "right/")


def not_iana_problem(name: str) -> str | None:
    """Why `name`, a file of this machine's zone database, is not an IANA time zone name
    (`localtime`, `posixrules`, `right/...`); None for any other name. The one rule for
    every place a zone is named: schedules, settings, exported timers."""
    lowered = name.strip().lower()
    if lowered in _NOT_IANA or lowered.startswith(_NOT_IANA_FOLDERS):
        shown = name if len(name) <= 64 else f"{name[:60]}..."
        return (
            f"{shown!r} is not an IANA time zone name (it is a file of this machine's zone"
            " database, absent or different elsewhere); use an IANA name such as 'Europe/Paris'"
        )
    return None


def resolve_zone(tz: object) -> tuple[tzinfo, str]:
    """Return (tzinfo, name) for an IANA name or a tzinfo; CronError otherwise (also for
    the zone files that are not IANA names, see `not_iana_problem`)."""
    if isinstance(tz, tzinfo):
        key = getattr(tz, "key", None)
        if isinstance(key, str):
            if (problem := not_iana_problem(key)) is not None:
                raise CronError(f"time zone: {problem}")
            return tz, key
        if tz is UTC:
            return tz, "UTC"
        return tz, str(tz)
    if not isinstance(tz, str):
        raise CronError(f"time zone: {tz!r} is not a zone name or a tzinfo")
    name = tz.strip()
    if name.upper() in ("UTC", "Z"):
        return UTC, "UTC"
    if not name or len(name) > 64 or not name.isascii():
        raise CronError(f"time zone: {tz[:40]!r} is not a known IANA time zone")
    if (problem := not_iana_problem(name)) is not None:
        raise CronError(f"time zone: {problem}")
    try:
        return ZoneInfo(name), name
    except Exception:  # ZoneInfoNotFoundError, ValueError for malformed keys, OSError
        raise CronError(f"time zone: {name!r} is not a known IANA time zone") from None


# No UTC offset reaches two days, so local times of instants inside these bounds exist.
_EDGE_LO = MIN_SECOND + 2 * 86400
_EDGE_HI = MAX_SECOND - 2 * 86400


def _offset_seconds(tz: tzinfo, t: int) -> int:
    t = _EDGE_LO if t < _EDGE_LO else _EDGE_HI if t > _EDGE_HI else t
    try:
        off = datetime.fromtimestamp(t, tz).utcoffset()
    except (OverflowError, OSError, ValueError):
        off = None
    return int(off.total_seconds()) if off is not None else 0


class Zone:
    """UTC-offset segments of one time zone."""

    __slots__ = ("_last", "_lock", "_offsets", "_t", "_years", "fixed", "tz")

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self.fixed: int | None = None
        if isinstance(tz, timezone):
            off = tz.utcoffset(None)
            self.fixed = int(off.total_seconds())
        else:
            key = getattr(tz, "key", None)
            if isinstance(key, str) and (
                key.upper() in _UTC_NAMES or key.upper().startswith("ETC/GMT")
            ):
                self.fixed = _offset_seconds(tz, 0)
        # year -> sorted list of (instant, offset before, offset after)
        self._years: dict[int, list[tuple[int, int, int]]] = {}
        self._t: list[tuple[int, int, int]] = []
        self._lock = threading.Lock()
        self._last: Segment = (0, 0, 0, 0, 0)
        self._offsets: dict[int, timezone] = {}

    def fixed_tz(self, offset: int, t: int) -> timezone:
        """A fixed-offset tzinfo for results at `offset`, named like the zone names it there
        (``EDT``); UTC results get `datetime.timezone.utc`."""
        found = self._offsets.get(offset)
        if found is None:
            if offset == 0 and self.fixed == 0:
                found = UTC
            else:
                t = min(max(t, _EDGE_LO), _EDGE_HI)
                try:
                    name = datetime.fromtimestamp(t, self.tz).tzname()
                except (OverflowError, OSError, ValueError):
                    name = None
                delta = timedelta(seconds=offset)
                found = timezone(delta, name) if name else timezone(delta)
            self._offsets[offset] = found
        return found

    def offset_at(self, t: int) -> int:
        if self.fixed is not None:
            return self.fixed
        return self.segment(t)[2]

    def _year(self, y: int) -> list[tuple[int, int, int]]:
        found = self._years.get(y)
        if found is not None:
            return found
        out: list[tuple[int, int, int]] = []
        if MIN_YEAR <= y <= MAX_YEAR:
            tz = self.tz
            t0 = days_from_civil(y, 1, 1) * 86400 - 1
            t1 = days_from_civil(y + 1, 1, 1) * 86400 - 1
            prev_t, prev_o = t0, _offset_seconds(tz, t0)
            t = t0
            while t < t1:
                t = min(t + 86400, t1)
                o = _offset_seconds(tz, t)
                if o != prev_o:
                    lo, hi = prev_t, t  # offset(lo) == prev_o, offset(hi) != prev_o
                    while hi - lo > 1:
                        mid = (lo + hi) // 2
                        if _offset_seconds(tz, mid) == prev_o:
                            lo = mid
                        else:
                            hi = mid
                    out.append((hi, prev_o, _offset_seconds(tz, hi)))
                prev_t, prev_o = t, o
        with self._lock:
            self._years[y] = out
            merged = sorted({tr for trs in self._years.values() for tr in trs})
            self._t = merged
        return out

    def segment(self, t: int) -> Segment:
        """The segment that contains UTC instant `t`."""
        last = self._last
        if last[0] <= t < last[1]:
            return last
        if self.fixed is not None:
            return (-_FAR, _FAR, self.fixed, self.fixed, self.fixed)
        y = civil_from_days(t // 86400)[0]
        for yy in (y - 1, y, y + 1):
            if yy not in self._years:
                self._year(yy)
        trans = self._t
        lo_bound = days_from_civil(y - 1, 1, 1) * 86400
        hi_bound = days_from_civil(y + 2, 1, 1) * 86400
        i = bisect_right(trans, (t, _FAR, _FAR))  # first transition > t
        prev = trans[i - 1] if i > 0 else None
        nxt = trans[i] if i < len(trans) else None
        if prev is not None and prev[0] >= lo_bound:
            start, o_before, o = prev
        else:
            start = lo_bound
            o = nxt[1] if nxt is not None and nxt[0] < hi_bound else _offset_seconds(self.tz, t)
            o_before = o
        if nxt is not None and nxt[0] < hi_bound:
            end, o_after = nxt[0], nxt[2]
        else:
            end, o_after = hi_bound, o
        segment = (start, end, o, o_before, o_after)
        self._last = segment
        return segment

    def transitions(self, start: int, end: int) -> list[tuple[int, int, int]]:
        """Real transitions (instant, offset before, offset after) with start <= instant < end."""
        if self.fixed is not None:
            return []
        y0 = civil_from_days(start // 86400)[0]
        y1 = civil_from_days(end // 86400)[0]
        for y in range(y0, y1 + 1):
            self._year(y)
        trans = self._t
        i = bisect_left(trans, (start, -_FAR, -_FAR))
        j = bisect_left(trans, (end, -_FAR, -_FAR))
        return trans[i:j]


_ZONES: dict[object, Zone] = {}


def zone_for(tz: tzinfo) -> Zone:
    """The shared `Zone` of `tz` (cached; ZoneInfo objects are themselves cached by key)."""
    key: object = getattr(tz, "key", None) or tz
    zone = _ZONES.get(key)
    if zone is None or zone.tz is not tz:
        if len(_ZONES) > 512:
            _ZONES.clear()
        zone = _ZONES[key] = Zone(tz)
    return zone
