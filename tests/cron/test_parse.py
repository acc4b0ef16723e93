"""Parsing: the grammar of each field, macros, presets, field counts and error messages."""

from __future__ import annotations

import pickle
from datetime import UTC, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from agentcron.cron import MACROS, PRESETS, CronError, CronExpression


@pytest.mark.parametrize(
    ("text", "field", "values"),
    [
        ("*/15 * * * *", "minute", (0, 15, 30, 45)),
        ("5-10 * * * *", "minute", (5, 6, 7, 8, 9, 10)),
        ("5-5 * * * *", "minute", (5,)),
        ("50/4 * * * *", "minute", (50, 54, 58)),
        ("10-30/10 * * * *", "minute", (10, 20, 30)),
        ("1,2,1,3 * * * *", "minute", (1, 2, 3)),
        ("007 * * * *", "minute", (7,)),
        ("0 */30 * * *", "hour", (0,)),
        ("0 0 * JAN-MAR *", "month", (1, 2, 3)),
        ("0 0 * jan,Jun,DEC *", "month", (1, 6, 12)),
        ("0 0 * */4 *", "month", (1, 5, 9)),
        ("0 0 * * MON-FRI", "day_of_week", (1, 2, 3, 4, 5)),
        ("0 0 * * 7", "day_of_week", (0,)),
        ("0 0 * * 0,7", "day_of_week", (0,)),
        ("0 0 * * 5-7", "day_of_week", (0, 5, 6)),
        ("0 0 * * 1/2", "day_of_week", (0, 1, 3, 5)),  # a/n = a-7/n: 7 is Sunday
        ("0 0 * * *", "day_of_week", (0, 1, 2, 3, 4, 5, 6)),
        ("30 0 0 * * *", "second", (30,)),
        ("0 0 0 * * * 2026-2028", "year", (2026, 2027, 2028)),
        ("0 0 0 * * * 2026/40", "year", (2026, 2066)),
    ],
)
def test_field_values_are_expanded_and_sorted(
    text: str, field: str, values: tuple[int, ...]
) -> None:
    assert getattr(CronExpression(text).fields, field).values == values


def test_a_five_field_expression_gets_second_zero_and_any_year() -> None:
    fields = CronExpression("5 4 * * *").fields
    assert fields.second.values == (0,)
    assert fields.year.text == "*"


def test_field_text_is_normalised_to_upper_case_without_blanks() -> None:
    e = CronExpression("  0\t9 ? jan-mar mon-fri\t")
    assert [spec.text for spec in e.fields.as_tuple()] == [
        "0",
        "0",
        "9",
        "?",
        "JAN-MAR",
        "MON-FRI",
        "*",
    ]
    assert e.expression == "0 9 ? jan-mar mon-fri"


@pytest.mark.parametrize(
    ("text", "attr", "value"),
    [
        ("0 0 L * *", "last", True),
        ("0 0 LW * *", "last_weekday", True),
        ("0 0 L-3 * *", "last_minus", (3,)),
        ("0 0 15W * *", "nearest_weekday", (15,)),
        ("0 0 1w * *", "nearest_weekday", (1,)),
    ],
)
def test_day_of_month_specials_are_parsed(text: str, attr: str, value: object) -> None:
    assert getattr(CronExpression(text).fields.day_of_month, attr) == value


@pytest.mark.parametrize(
    ("text", "attr", "value"),
    [
        ("0 0 * * 5L", "last_dow", (5,)),
        ("0 0 * * 7L", "last_dow", (0,)),
        ("0 0 * * 1#2", "nth", ((1, 2),)),
        ("0 0 * * THU#2,sat#5", "nth", ((4, 2), (6, 5))),
        ("0 0 * * 1#1,5", "nth", ((1, 1),)),
    ],
)
def test_day_of_week_specials_are_parsed(text: str, attr: str, value: object) -> None:
    assert getattr(CronExpression(text).fields.day_of_week, attr) == value


@pytest.mark.parametrize(("macro", "expansion"), sorted(MACROS.items()))
def test_macros_expand_in_any_letter_case(macro: str, expansion: str) -> None:
    assert CronExpression(macro).expression == expansion
    assert CronExpression(macro.upper()) == CronExpression(expansion)


@pytest.mark.parametrize(("name", "expansion"), sorted(PRESETS.items()))
def test_preset_names_are_accepted_as_text(name: str, expansion: str) -> None:
    e = CronExpression(name)
    assert e.text == name
    assert e.expression == expansion


def test_the_spec_presets_are_all_there() -> None:
    assert PRESETS["AGENT_LOOP_FAST"] == "*/30 * * * * *"
    assert PRESETS["HEARTBEAT_CRITICAL"] == "*/5 * * * * *"
    assert PRESETS["NOTIFICATION_DIGEST"] == "0 9,17 * * *"
    assert len(PRESETS) == 12


def test_reboot_is_rejected_as_an_engine_trigger() -> None:
    with pytest.raises(CronError, match="engine trigger"):
        CronExpression("@reboot")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("61 0 * * *", "minute field: 61 is out of range 0-59"),
        ("0 24 * * *", "hour field: 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month field: 0 is out of range 1-31"),
        ("0 0 * 13 *", "month field: 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week field: 8 is out of range 0-7"),
        ("75 0 0 * * *", "second field: 75 is out of range 0-59"),
        ("0 0 0 * * * 1969", "year field: 1969 is out of range 1970-2099"),
        ("*/0 * * * *", "minute field: */0 has a step of 0"),
        ("0 16-5 * * *", "hour field: 16-5 is a descending range"),
        ("0 0 * DEC-FEB *", "month field: DEC-FEB is a descending range"),
        ("0 0 * * SAT-SUN", "day-of-week field: SAT-SUN is a descending range"),
        ("0 0 * * 1#6", "day-of-week field: 1#6"),
        ("0 0 * * #2", "day-of-week field: #2"),
        ("0 0 * * LW", "day-of-week field: LW"),
        ("0 0 * * L", "day-of-week field: L"),
        ("0 0 5L * *", "day-of-month field: 5L"),
        ("0 0 W * *", "day-of-month field: W"),
        ("0 0 32W * *", "day-of-month field: 32"),
        ("0 0 L- * *", "day-of-month field: L-"),
        ("0 0 L-31 * *", "day-of-month field: L-31"),
        ("0 L * * *", "hour field: L"),
        ("0 ? * * *", "hour field: ?"),
        ("0 0 ?/2 * *", "day-of-month field: ?/2"),
        ("0 0 * * JAN", "day-of-week field: JAN"),
        ("0 0 * * MONDAY", "day-of-week field: MONDAY"),
        ("0 0 * JANX *", "month field: JANX"),
        ("5, * * * *", "minute field"),
        ("1--2 * * * *", "minute field: 1--2"),
        ("1-5-7 * * * *", "minute field: 1-5-7"),
        ("*/5/2 * * * *", "minute field: */5/2"),
        ("/5 * * * *", "minute field: /5"),
        ("-1 * * * *", "minute field: -1"),
        ("0x1F * * * *", "minute field: 0X1F"),
        ("** * * * *", "minute field: **"),
        ("0 0 * * 1;rm -rf /", "contains the character ';'"),
        ("0 12é 1 * *", "hour field"),
        ("*/100 * * * *", "minute field: */100 has a step larger than 60"),
    ],
)
def test_errors_name_the_field_and_the_token(text: str, message: str) -> None:
    with pytest.raises(CronError) as info:
        CronExpression(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text",
    ["", " ", "\t", "5 0 *", "5 * * *", "* * * * * * * *", "@daily 0", "@every 5m", "@"],
)
def test_wrong_shapes_are_rejected(text: str) -> None:
    with pytest.raises(CronError, match="expression"):
        CronExpression(text)


@pytest.mark.parametrize("digit", ["٣", "５", "๑", "१", "၀", "١٢", "0٣"])
def test_only_ascii_digits_are_numbers(digit: str) -> None:
    with pytest.raises(CronError):
        CronExpression(f"{digit} * * * *")


@pytest.mark.parametrize("separator", ["\xa0", "\n", "\u2003", "\r"])
def test_only_ascii_space_and_tab_separate_fields(separator: str) -> None:
    with pytest.raises(CronError):
        CronExpression(f"0{separator}0 * * *")


def test_huge_numbers_are_out_of_range_not_crashes() -> None:
    with pytest.raises(CronError, match="out of range"):
        CronExpression("9" * 1000 + " * * * *")


def test_a_ten_kilobyte_string_is_rejected_as_too_long() -> None:
    with pytest.raises(CronError, match="too long"):
        CronExpression("1," * 5000 + "2 * * * *")


def test_a_non_string_is_a_cron_error() -> None:
    with pytest.raises(CronError):
        CronExpression(None)  # type: ignore[arg-type]


def test_time_zone_can_be_a_name_or_a_tzinfo() -> None:
    assert CronExpression("0 0 * * *", tz="Europe/Berlin").timezone == "Europe/Berlin"
    assert CronExpression("0 0 * * *", tz=ZoneInfo("Asia/Kolkata")).tz == ZoneInfo("Asia/Kolkata")
    assert CronExpression("0 0 * * *").timezone == "UTC"
    assert CronExpression("0 0 * * *", tz=UTC).timezone == "UTC"
    fixed = timezone(timedelta(hours=5, minutes=30))
    assert CronExpression("0 0 * * *", tz=fixed).tz is fixed


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "../../etc/passwd", "Europe/Berlin\x00", 5])
def test_unknown_time_zones_are_cron_errors(tz: object) -> None:
    with pytest.raises(CronError, match="time zone"):
        CronExpression("0 0 * * *", tz=tz)  # type: ignore[arg-type]


@pytest.mark.parametrize("tz", ["localtime", "posixrules", "right/Europe/Paris", "posix/UTC"])
def test_zone_files_that_are_not_iana_names_are_cron_errors_naming_them(tz: str) -> None:
    # Debian's zone database has them; tzdata and Windows do not, and `localtime` means
    # whatever zone the machine is set to.
    with pytest.raises(CronError, match=f"{tz!r} is not an IANA time zone name"):
        CronExpression("0 0 * * *", tz=tz)


@pytest.mark.parametrize(
    ("text", "fixed"),
    [
        ("30 2 * * *", True),
        ("0-59/30 23 * * *", True),
        ("* 6 16 * * *", True),
        ("@daily", True),
        ("*/15 * * * *", False),
        ("0 */2 * * *", False),
        ("@hourly", False),
        ("0 * 3 * * *", False),
    ],
)
def test_fixed_time_means_neither_minute_nor_hour_starts_with_a_star(
    text: str, fixed: bool
) -> None:
    assert CronExpression(text).is_fixed_time is fixed


def test_has_seconds_and_field_count() -> None:
    assert not CronExpression("* * * * *").has_seconds
    assert CronExpression("* * * * * *").has_seconds
    assert CronExpression("* * * * * * 2030").field_count == 7
    assert CronExpression("AGENT_LOOP_FAST").has_seconds


def test_expressions_are_equal_by_meaning_and_zone_and_hashable() -> None:
    a = CronExpression("0 9 * * mon-fri", tz="Europe/Berlin")
    b = CronExpression("0\t9 * *  MON-FRI", tz="Europe/Berlin")
    c = CronExpression("0 9 * * MON-FRI", tz="UTC")
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2


def test_expressions_are_immutable_and_picklable() -> None:
    e = CronExpression("0 9 * * 1", tz="Europe/Berlin")
    with pytest.raises(AttributeError):
        e._text = "x"
    assert pickle.loads(pickle.dumps(e)) == e
    assert repr(e) == "CronExpression('0 9 * * 1', tz='Europe/Berlin')"
