"""Wall-clock search: the matching calendar of an expression, without time zones.

Wall times are "local seconds": seconds since 1970-01-01 00:00 on the wall clock, as if the
zone were UTC. `Matcher.next_wall(l)` returns the first matching wall time ``>= l`` and
`Matcher.prev_wall(l)` the last one ``<= l``. Both jump field by field (year, month, day,
hour, minute, second) through lookup tables computed once at parse time; the day tables
depend only on the month's length and the weekday of its first day, so there are at most 28
of them per expression, computed on first use.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from agentcron.cron.fields import CronFields, FieldSpec

__all__ = ["Matcher", "civil_from_days", "days_from_civil", "month_length"]

_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
#: How far (in years) a search goes before it concludes that nothing matches. The Gregorian
#: calendar repeats every 400 years, so a calendar that matches at all matches within that.
SEARCH_YEARS = 401
MIN_YEAR, MAX_YEAR = 1, 9999
#: The first and last second that `datetime` can hold (0001-01-01 00:00:00 and
#: 9999-12-31 23:59:59), as instants (UTC) or as wall times ("local seconds").
MIN_SECOND, MAX_SECOND = -62135596800, 253402300799


def is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def month_length(y: int, m: int) -> int:
    if m == 2:
        return 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    return _MONTH_DAYS[m]


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of the proleptic Gregorian date (y, m, d)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z: int) -> tuple[int, int, int]:
    """Inverse of `days_from_civil`."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


def _next_table(values: tuple[int, ...], size: int) -> list[int]:
    """t[i] = smallest value >= i, or -1; indexes 0..size. `values` sorted, < size."""
    table = [-1] * (size + 1)
    start = 0
    for v in values:
        table[start : v + 1] = [v] * (v + 1 - start)
        start = v + 1
    return table


def _prev_table(values: tuple[int, ...], size: int) -> list[int]:
    """t[i] = largest value <= i, or -1; indexes 0..size-1. `values` sorted, < size."""
    table = [-1] * size
    ends = (*values[1:], size)
    for v, end in zip(values, ends, strict=False):  # empty values: no iterations
        table[v:end] = [v] * (end - v)
    return table


_TABLES: dict[tuple[tuple[int, ...], int, bool], list[int]] = {}


def _table(values: tuple[int, ...], size: int, prev: bool) -> list[int]:
    """Shared (never mutated) lookup table; see `_next_table` / `_prev_table`."""
    key = (values, size, prev)
    table = _FULL.get(key) or _TABLES.get(key)
    if table is None:
        table = _prev_table(values, size) if prev else _next_table(values, size)
        if len(_TABLES) > 4096:
            _TABLES.clear()
        _TABLES[key] = table
    return table


# tables of the full ranges (``*``), built once at import
_FULL: dict[tuple[tuple[int, ...], int, bool], list[int]] = {}
for _values, _size in (
    (tuple(range(60)), 60),
    (tuple(range(24)), 24),
    (tuple(range(1, 13)), 13),
):
    _FULL[(_values, _size, False)] = _next_table(_values, _size)
    _FULL[(_values, _size, True)] = _prev_table(_values, _size)


_DayTables = dict[int, tuple[list[int], list[int]]]
_DAY_CACHES: dict[tuple[FieldSpec, FieldSpec], tuple[_DayTables, _DayTables]] = {}


def _day_caches(dom: FieldSpec, dow: FieldSpec) -> tuple[_DayTables, _DayTables]:
    """The (by month shape, by month) day-table caches of the expressions with these day
    fields (most expressions have ``* *``: 1,440 daily schedules share one pair)."""
    key = (dom, dow)
    caches = _DAY_CACHES.get(key)
    if caches is None:
        if len(_DAY_CACHES) >= 1024:
            _DAY_CACHES.clear()
        caches = _DAY_CACHES[key] = ({}, {})
    return caches


class Matcher:
    """The matching wall-clock calendar of one expression."""

    __slots__ = (
        "_day_tables",
        "_dom",
        "_fields",
        "_dow",
        "_and",
        "_month_cache",
        "nhour",
        "nmin",
        "nmon",
        "nsec",
        "phour",
        "pmin",
        "pmon",
        "psec",
        "years",
        "_never",
    )

    def __init__(self, fields: CronFields) -> None:
        self.nsec = _table(fields.second.values, 60, False)
        self.nmin = _table(fields.minute.values, 60, False)
        self.nhour = _table(fields.hour.values, 24, False)
        self.nmon = _table(fields.month.values, 13, False)
        self._fields = fields
        self.psec: list[int] = []
        self.pmin: list[int] = []
        self.phour: list[int] = []
        self.pmon: list[int] = []
        self.years: tuple[int, ...] | None = None if fields.year.is_star else fields.year.values
        self._dom = fields.day_of_month
        self._dow = fields.day_of_week
        self._and = fields.day_of_month.is_star or fields.day_of_week.is_star
        # Day tables depend only on the day fields: expressions that share them share these.
        self._day_tables, self._month_cache = _day_caches(self._dom, self._dow)
        self._never: bool | None = None

    # -- days -------------------------------------------------------------------------

    def _build_day_table(self, length: int, wd1: int) -> tuple[list[int], list[int]]:
        dom, dow = self._dom, self._dow
        dvals = set(dom.values)
        if dom.last:
            dvals.add(length)
        if dom.last_weekday:
            wl = (wd1 + length - 1) % 7
            dvals.add(length - 1 if wl == 6 else length - 2 if wl == 0 else length)
        for n in dom.last_minus:
            if length - n >= 1:
                dvals.add(length - n)
        for n in dom.nearest_weekday:
            if n > length:
                continue
            w = (wd1 + n - 1) % 7
            if w == 6:
                dvals.add(n - 1 if n > 1 else n + 2)
            elif w == 0:
                dvals.add(n + 1 if n < length else n - 2)
            else:
                dvals.add(n)
        wvals = set(dow.values)
        last_dow = set(dow.last_dow)
        nth = set(dow.nth)
        matching = []
        for d in range(1, length + 1):
            w = (wd1 + d - 1) % 7
            dm = d in dvals
            wm = w in wvals or (w in last_dow and d + 7 > length) or (w, (d + 6) // 7) in nth
            if (dm and wm) if self._and else (dm or wm):
                matching.append(d)
        nxt = _next_table(tuple(matching), 32)
        nxt.append(-1)  # index 33: d may run to 32 after "d += 1" on the 31st
        prv = _prev_table(tuple(matching), 33)
        return nxt, prv

    def day_tables(self, y: int, m: int) -> tuple[list[int], list[int]]:
        """(next, prev) day tables of month (y, m); index 0..32."""
        key = y * 16 + m
        tables = self._month_cache.get(key)
        if tables is None:
            length = month_length(y, m)
            wd1 = (days_from_civil(y, m, 1) + 4) % 7
            shape = length * 8 + wd1
            tables = self._day_tables.get(shape)
            if tables is None:
                tables = self._day_tables[shape] = self._build_day_table(length, wd1)
            if len(self._month_cache) > 4096:
                self._month_cache.clear()
            self._month_cache[key] = tables
        return tables

    def calendar_never_matches(self) -> bool:
        """True if no day of any allowed month can ever match (e.g. ``0 0 30 2 *``)."""
        if self._never is None:
            months = [m for m in range(1, 13) if self.nmon[m] == m]
            found = False
            for m in months:
                lengths = (28, 29) if m == 2 else (_MONTH_DAYS[m],)
                for length in lengths:
                    for wd1 in range(7):
                        shape = length * 8 + wd1
                        tables = self._day_tables.get(shape)
                        if tables is None:
                            tables = self._day_tables[shape] = self._build_day_table(length, wd1)
                        if tables[0][1] != -1:
                            found = True
                            break
                    if found:
                        break
                if found:
                    break
            self._never = not found
        return self._never

    # -- wall-time search ---------------------------------------------------------------

    def matches_wall(self, local: int) -> bool:
        days, rem = divmod(local, 86400)
        h, rem = divmod(rem, 3600)
        mi, s = divmod(rem, 60)
        if self.nsec[s] != s or self.nmin[mi] != mi or self.nhour[h] != h:
            return False
        y, m, d = civil_from_days(days)
        if self.nmon[m] != m:
            return False
        if self.years is not None:
            i = bisect_left(self.years, y)
            if i == len(self.years) or self.years[i] != y:
                return False
        return self.day_tables(y, m)[0][d] == d

    def next_wall(self, local: int) -> tuple[int, int, int, int, int, int, int] | None:
        """First matching wall time >= `local`: (local, y, m, d, h, mi, s), or None."""
        if self._never is not False and self.calendar_never_matches():
            return None
        days, rem = divmod(local, 86400)
        h, rem = divmod(rem, 3600)
        mi, s = divmod(rem, 60)
        y, mo, d = civil_from_days(days)
        limit = min(y + SEARCH_YEARS, MAX_YEAR)
        years = self.years
        nmon, nhour, nmin, nsec = self.nmon, self.nhour, self.nmin, self.nsec
        while True:
            if y > limit:
                return None
            if years is not None:
                i = bisect_left(years, y)
                if i == len(years):
                    return None
                if years[i] != y:
                    y, mo, d, h, mi, s = years[i], 1, 1, 0, 0, 0
            nm = nmon[mo]
            if nm < 0:
                y, mo, d, h, mi, s = y + 1, 1, 1, 0, 0, 0
                continue
            if nm != mo:
                mo, d, h, mi, s = nm, 1, 0, 0, 0
            nxt = self.day_tables(y, mo)[0]
            nd = nxt[d]
            if nd == d:
                # the rest of day d: first (h, mi, s) >= the current one
                nh = nhour[h]
                if nh == h:
                    nmi = nmin[mi]
                    if nmi == mi:
                        ns = nsec[s]
                        if ns >= 0:
                            s = ns
                            break
                        nmi = nmin[mi + 1]
                    if nmi >= 0:
                        mi, s = nmi, nsec[0]
                        break
                    nh = nhour[h + 1]
                if nh >= 0:
                    h, mi, s = nh, nmin[0], nsec[0]
                    break
                nd = nxt[d + 1]
            if nd >= 0:
                d, h, mi, s = nd, nhour[0], nmin[0], nsec[0]
                break
            if mo == 12:
                y, mo = y + 1, 1
            else:
                mo += 1
            d, h, mi, s = 1, 0, 0, 0
        return (
            days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s,
            y,
            mo,
            d,
            h,
            mi,
            s,
        )

    def _build_prev_tables(self) -> None:
        fields = self._fields
        self.psec = _table(fields.second.values, 60, True)
        self.pmin = _table(fields.minute.values, 60, True)
        self.phour = _table(fields.hour.values, 24, True)
        self.pmon = _table(fields.month.values, 13, True)

    def prev_wall(self, local: int) -> tuple[int, int, int, int, int, int, int] | None:
        """Last matching wall time <= `local`: (local, y, m, d, h, mi, s), or None."""
        if self._never is not False and self.calendar_never_matches():
            return None
        if not self.pmon:
            self._build_prev_tables()
        days, rem = divmod(local, 86400)
        h, rem = divmod(rem, 3600)
        mi, s = divmod(rem, 60)
        y, mo, d = civil_from_days(days)
        limit = max(y - SEARCH_YEARS, MIN_YEAR)
        years = self.years
        pmon, phour, pmin, psec = self.pmon, self.phour, self.pmin, self.psec
        while True:
            if y < limit:
                return None
            if years is not None:
                i = bisect_right(years, y) - 1
                if i < 0:
                    return None
                if years[i] != y:
                    y, mo, d, h, mi, s = years[i], 12, 31, 23, 59, 59
            pm = pmon[mo]
            if pm < 0:
                y, mo, d, h, mi, s = y - 1, 12, 31, 23, 59, 59
                continue
            if pm != mo:
                mo, d, h, mi, s = pm, 31, 23, 59, 59
            prv = self.day_tables(y, mo)[1]
            pd = prv[d]
            if pd == d:
                # the earlier part of day d: last (h, mi, s) <= the current one
                ph = phour[h]
                if ph == h:
                    pmi = pmin[mi]
                    if pmi == mi:
                        ps = psec[s]
                        if ps >= 0:
                            s = ps
                            break
                        pmi = pmin[mi - 1] if mi > 0 else -1
                    if pmi >= 0:
                        mi, s = pmi, psec[59]
                        break
                    ph = phour[h - 1] if h > 0 else -1
                if ph >= 0:
                    h, mi, s = ph, pmin[59], psec[59]
                    break
                pd = prv[d - 1]
            if pd >= 0:
                d, h, mi, s = pd, phour[23], pmin[59], psec[59]
                break
            if mo == 1:
                y, mo = y - 1, 12
            else:
                mo -= 1
            d, h, mi, s = 31, 23, 59, 59
        return (
            days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s,
            y,
            mo,
            d,
            h,
            mi,
            s,
        )
