"""Field grammar: turn one field of a cron expression into a frozen `FieldSpec`.

Each field is a comma-separated list of items. An item is one of

* ``*`` (every value), optionally with a step: ``*/n``
* ``?`` (= ``*``, day-of-month and day-of-week only, no step)
* a value ``a``, a range ``a-b`` (``a <= b``; ``a-a`` is just ``a``), a stepped range ``a-b/n``
  or ``a/n`` (= ``a-max/n``); values are ASCII digits, or names (``JAN``-``DEC`` in the month
  field, ``SUN``-``SAT`` in the day-of-week field, any letter case)
* day-of-month only: ``L`` (last day), ``L-n`` (last day minus n, n 0-30), ``LW`` (last
  weekday), ``nW`` (weekday nearest to day n, n 1-31)
* day-of-week only: ``nL`` (last weekday n of the month), ``n#k`` (k-th weekday n, k 1-5)

Day-of-week values run 0-7, where both 0 and 7 mean Sunday; `FieldSpec.values` folds 7 to 0.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from agentcron.cron.errors import CronError, shown

__all__ = ["FIELD_NAMES", "CronFields", "FieldSpec", "parse_field"]

SECOND, MINUTE, HOUR, DOM, MONTH, DOW, YEAR = range(7)

FIELD_NAMES = ("second", "minute", "hour", "day-of-month", "month", "day-of-week", "year")
#: Inclusive value range of each field, in the order of `FIELD_NAMES`.
FIELD_RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7), (1970, 2099))

MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_NAMES = {
    MONTH: {name: i + 1 for i, name in enumerate(MONTH_NAMES)},
    DOW: {name: i for i, name in enumerate(DAY_NAMES)},
}
_ALLOWED = re.compile(r"[0-9A-Z*?,/#-]+")
_DIGITS = frozenset("0123456789")
_MAX_TOKEN = 24  # how much of a bad token an error message repeats


class FieldSpec(NamedTuple):
    """One parsed field.

    `text` is the normalised token text (upper case, no blanks), `values` the expanded,
    sorted plain values (for the day-of-week field 0-6, Sunday = 0). Day fields may also
    carry special items: `last` (``L``), `last_weekday` (``LW``), `last_minus` (the n of each
    ``L-n``), `nearest_weekday` (the n of each ``nW``), `last_dow` (the n of each ``nL``) and
    `nth` (``(weekday, k)`` for each ``n#k``).
    """

    name: str
    text: str
    values: tuple[int, ...]
    last: bool = False
    last_weekday: bool = False
    last_minus: tuple[int, ...] = ()
    nearest_weekday: tuple[int, ...] = ()
    last_dow: tuple[int, ...] = ()
    nth: tuple[tuple[int, int], ...] = ()

    @property
    def is_star(self) -> bool:
        """True when the field starts with ``*`` or ``?`` (the Vixie "unrestricted" test)."""
        return self.text[:1] in ("*", "?")

    @property
    def is_any(self) -> bool:
        """True when the field is exactly ``*`` or ``?`` (every value)."""
        return self.text in ("*", "?")

    @property
    def has_specials(self) -> bool:
        """True when the field uses ``L``, ``LW``, ``L-n``, ``nW``, ``nL`` or ``n#k``."""
        return bool(
            self.last
            or self.last_weekday
            or self.last_minus
            or self.nearest_weekday
            or self.last_dow
            or self.nth
        )


class CronFields(NamedTuple):
    """The seven parsed fields of an expression (5-field expressions get second ``0`` and
    year ``*``; 6-field expressions get year ``*``). A year of ``*`` places no limit."""

    second: FieldSpec
    minute: FieldSpec
    hour: FieldSpec
    day_of_month: FieldSpec
    month: FieldSpec
    day_of_week: FieldSpec
    year: FieldSpec

    def as_tuple(self) -> tuple[FieldSpec, ...]:
        """The fields in expression order: second, minute, hour, dom, month, dow, year."""
        return tuple(self)


def _show(token: str) -> str:
    return shown(token, _MAX_TOKEN)


def _fail(field: int, token: str, problem: str) -> CronError:
    return CronError(f"{FIELD_NAMES[field]} field: {_show(token)} {problem}")


def _range_text(field: int) -> str:
    lo, hi = FIELD_RANGES[field]
    return f"{lo}-{hi}"


def _number(field: int, item: str, text: str) -> int:
    """Parse one value (digits or a name) and check its range."""
    if not text:
        raise _fail(field, item, "is missing a number")
    if text[0] in _DIGITS:
        if not all(c in _DIGITS for c in text):
            raise _fail(field, item, "is not a number")
        stripped = text.lstrip("0") or "0"
        lo, hi = FIELD_RANGES[field]
        if len(stripped) > 4 or not lo <= int(stripped) <= hi:
            raise _fail(field, _show(text), f"is out of range {_range_text(field)}")
        return int(stripped)
    names = _NAMES.get(field)
    if names is not None and text in names:
        return names[text]
    if names is None:
        raise _fail(field, item, "is not a number")
    known = "JAN-DEC" if field == MONTH else "SUN-SAT"
    raise _fail(field, item, f"is not a number or a name ({known})")


def _step(field: int, item: str, text: str) -> int:
    if not text or not all(c in _DIGITS for c in text):
        raise _fail(field, item, "needs a number after /")
    stripped = text.lstrip("0") or "0"
    lo, hi = FIELD_RANGES[field]
    limit = max(60, hi - lo + 1)
    if stripped == "0":
        raise _fail(field, item, "has a step of 0")
    if len(stripped) > 4 or int(stripped) > limit:
        raise _fail(field, item, f"has a step larger than {limit}")
    return int(stripped)


class _Acc:
    """Accumulates the items of one field."""

    __slots__ = ("last", "last_dow", "last_minus", "last_weekday", "nearest", "nth", "values")

    def __init__(self) -> None:
        self.values: set[int] = set()
        self.last = False
        self.last_weekday = False
        self.last_minus: set[int] = set()
        self.nearest: set[int] = set()
        self.last_dow: set[int] = set()
        self.nth: set[tuple[int, int]] = set()


def _item(field: int, item: str, acc: _Acc) -> None:
    lo, hi = FIELD_RANGES[field]
    if not item:
        raise _fail(field, item or ",", "has an empty list item")
    if "?" in item:
        if field not in (DOM, DOW):
            raise _fail(
                field,
                item,
                "is not allowed here (? only goes in the day-of-month and day-of-week fields)",
            )
        raise _fail(field, item, "uses ?, which must be the whole field")
    if "#" in item:
        if field != DOW:
            raise _fail(field, item, "# is only allowed in the day-of-week field")
        day_text, _, k_text = item.partition("#")
        if "#" in k_text or "-" in day_text or "/" in day_text or "/" in k_text:
            raise _fail(field, item, "must be day#k, e.g. MON#1")
        day = _number(field, item, day_text)
        if not k_text or not all(c in _DIGITS for c in k_text):
            raise _fail(field, item, "needs a number 1-5 after #")
        k_stripped = k_text.lstrip("0") or "0"
        if len(k_stripped) > 1 or not 1 <= int(k_stripped) <= 5:
            raise _fail(field, item, "is out of range: k in day#k must be 1-5")
        acc.nth.add((day % 7, int(k_stripped)))
        return
    if field == DOM and item[0] == "L":
        if item == "L":
            acc.last = True
        elif item == "LW":
            acc.last_weekday = True
        elif item.startswith("L-"):
            n_text = item[2:]
            if not n_text or not all(c in _DIGITS for c in n_text):
                raise _fail(field, item, "must be L-n with n 0-30")
            n_stripped = n_text.lstrip("0") or "0"
            if len(n_stripped) > 2 or int(n_stripped) > 30:
                raise _fail(field, item, "is out of range: n in L-n must be 0-30")
            acc.last_minus.add(int(n_stripped))
        else:
            raise _fail(field, item, "is not valid (use L, LW or L-n)")
        return
    if field == DOM and item.endswith("W"):
        day_text = item[:-1]
        if not day_text:
            raise _fail(field, item, "needs a day before W, e.g. 15W")
        if not all(c in _DIGITS for c in day_text):
            raise _fail(field, item, "must be nW with a day 1-31, e.g. 15W")
        acc.nearest.add(_number(field, item, day_text))
        return
    if field == DOW and item.endswith("L") and item not in _NAMES[DOW]:
        day_text = item[:-1]
        if not day_text:
            raise _fail(field, item, "needs a day before L, e.g. 5L (the last Friday)")
        if "-" in day_text or "/" in day_text:
            raise _fail(field, item, "must be nL with a single day, e.g. 5L")
        acc.last_dow.add(_number(field, item, day_text) % 7)
        return
    if "L" in item and field in (DOM, DOW):
        raise _fail(field, item, "uses L in a way that is not allowed here")
    if "W" in item and field == DOM:
        raise _fail(field, item, "uses W in a way that is not allowed here")
    base, slash, step_text = item.partition("/")
    step = _step(field, item, step_text) if slash else 1
    if "/" in step_text:
        raise _fail(field, item, "has more than one /")
    if base == "*":
        start, end = lo, hi
    elif not base:
        raise _fail(field, item, "needs a value before /")
    elif "-" in base:
        a_text, _, b_text = base.partition("-")
        if "-" in b_text:
            raise _fail(field, item, "has more than one -")
        if not a_text:
            raise _fail(field, item, "is negative or has a dangling -")
        if not b_text:
            raise _fail(field, item, "has a dangling -")
        start, end = _number(field, item, a_text), _number(field, item, b_text)
        if start > end:
            raise _fail(field, item, f"is a descending range ({start} > {end})")
    else:
        start = _number(field, item, base)
        end = hi if slash else start
    if "*" in base and base != "*":
        raise _fail(field, item, "uses * in a way that is not allowed")
    acc.values.update(range(start, end + 1, step))


_CACHE: dict[tuple[int, str], FieldSpec] = {}


def parse_field(field: int, token: str) -> FieldSpec:
    """Parse one field (0 = second ... 6 = year) of upper-cased, blank-free `token`.

    Results are cached per (field, token): a `FieldSpec` is immutable.
    """
    key = (field, token)
    spec = _CACHE.get(key)
    if spec is None:
        spec = _parse_field(field, token)
        if len(_CACHE) > 8192:
            _CACHE.clear()
        _CACHE[key] = spec
    return spec


def _star(field: int, token: str) -> FieldSpec:
    lo, hi = FIELD_RANGES[field]
    top = 6 if field == DOW else hi
    return FieldSpec(FIELD_NAMES[field], token, tuple(range(lo, top + 1)))


_STARS = {(field, "*"): _star(field, "*") for field in range(7)}
_STARS[(DOM, "?")] = _star(DOM, "?")
_STARS[(DOW, "?")] = _star(DOW, "?")


def _parse_field(field: int, token: str) -> FieldSpec:
    star = _STARS.get((field, token))
    if star is not None:
        return star
    if token.isdigit() and token.isascii():
        value = _number(field, token, token)
        return FieldSpec(FIELD_NAMES[field], token, (value % 7 if field == DOW else value,))
    if _ALLOWED.fullmatch(token) is None:
        ch = next((c for c in token if _ALLOWED.fullmatch(c) is None), token[:1])
        raise _fail(field, token, f"contains the character {ch!r}, which is not allowed")
    acc = _Acc()
    for item in token.split(","):
        _item(field, item, acc)
    values = acc.values
    if field == DOW:
        values = {v % 7 for v in values}
    if not (
        acc.last or acc.last_weekday or acc.last_minus or acc.nearest or acc.last_dow or acc.nth
    ):
        return FieldSpec(FIELD_NAMES[field], token, tuple(sorted(values)))
    return FieldSpec(
        name=FIELD_NAMES[field],
        text=token,
        values=tuple(sorted(values)),
        last=acc.last,
        last_weekday=acc.last_weekday,
        last_minus=tuple(sorted(acc.last_minus)),
        nearest_weekday=tuple(sorted(acc.nearest)),
        last_dow=tuple(sorted(acc.last_dow)),
        nth=tuple(sorted(acc.nth)),
    )


STAR_YEAR = FieldSpec(name="year", text="*", values=tuple(range(1970, 2100)))
ZERO_SECOND = FieldSpec(name="second", text="0", values=(0,))
