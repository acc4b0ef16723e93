"""Hostile and edge input found by probing: the ends of the `datetime` range, invisible
characters in expressions, and steps that do not repeat evenly in `describe`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from itertools import islice

import pytest

from agentcron.cron import CronError, CronExpression

EAST_5 = timezone(timedelta(hours=5))
WEST_5 = timezone(timedelta(hours=-5))


class TestTheEndsOfTheDatetimeRange:
    # Python's datetime holds 0001-01-01 00:00:00 to 9999-12-31 23:59:59. An instant near
    # either end can have a local time (or a UTC time) outside that range.

    def test_next_from_an_instant_before_year_one_in_utc_is_the_first_minute_of_year_one(
        self,
    ) -> None:
        # 0001-01-01T00:00+05:00 is 0000-12-31T19:00 UTC, which no datetime can hold
        e = CronExpression("* * * * *")
        assert e.next(datetime(1, 1, 1, tzinfo=EAST_5)) == datetime(1, 1, 1, tzinfo=UTC)

    def test_prev_from_an_instant_after_year_9999_is_the_last_representable_fire(self) -> None:
        # 9999-12-31T23:00-05:00 is 10000-01-01T04:00 UTC
        before = datetime(9999, 12, 31, 23, 0, tzinfo=WEST_5)
        assert CronExpression("* * * * *").prev(before) == datetime(
            9999, 12, 31, 23, 59, tzinfo=UTC
        )
        tokyo = CronExpression("* * * * *", "Asia/Tokyo").prev(before)
        assert tokyo is not None
        assert tokyo.isoformat() == "9999-12-31T23:59:00+09:00"

    def test_a_fire_whose_local_time_is_before_year_one_is_none_not_an_error(self) -> None:
        # Tokyo is 9:18:59 ahead (local mean time) in year 1, so its 0001-01-01 00:00 local
        # is an instant in year 0
        assert CronExpression("0 0 1 1 *", "Asia/Tokyo").prev(datetime(1, 1, 2, tzinfo=UTC)) is None
        assert (
            CronExpression("* * * * *", "Europe/Berlin").prev(datetime(1, 1, 1, tzinfo=UTC)) is None
        )

    def test_a_fire_whose_local_time_is_after_year_9999_is_none_not_an_error(self) -> None:
        after = datetime(9999, 12, 31, tzinfo=UTC)  # 09:00 on the last day in Tokyo
        assert CronExpression("0 0 * * *", "Asia/Tokyo").next(after) is None

    def test_year_one_uses_the_zones_first_offset_whatever_was_asked_before(self) -> None:
        # Europe/Berlin keeps local mean time (+00:53:28) until 1893
        e = CronExpression("* * * * *", "Europe/Berlin")
        start = datetime(1, 1, 1, tzinfo=UTC)
        assert e.prev(start) is None  # looks at year 0 first
        fire = e.next(start)
        assert fire is not None
        assert fire.isoformat() == "0001-01-01T00:54:00+00:53:28"

    def test_year_9999_keeps_its_daylight_saving_time_whatever_was_asked_before(self) -> None:
        # America/New_York's rule still holds in 9999: EDT from 9999-03-14 02:00 EST
        # (07:00 UTC) to 9999-11-07 02:00 EDT (06:00 UTC)
        e = CronExpression("0 12 * * *", "America/New_York")
        winter = datetime(9999, 1, 10, tzinfo=UTC)
        summer = datetime(9999, 7, 1, tzinfo=UTC)
        for first, second in ((winter, summer), (summer, winter)):
            runs = {when: e.next(when) for when in (first, second)}
            assert [runs[winter].isoformat(), runs[summer].isoformat()] == [  # type: ignore[union-attr]
                "9999-01-10T12:00:00-05:00",
                "9999-07-01T12:00:00-04:00",
            ]

    @pytest.mark.parametrize(
        "tz",
        [
            "UTC",
            "America/New_York",
            "Europe/Berlin",
            "Asia/Kolkata",
            "Pacific/Kiritimati",
            "Pacific/Niue",
            timezone(timedelta(hours=23, minutes=59)),
            timezone(timedelta(hours=-23, minutes=-59)),
        ],
    )
    @pytest.mark.parametrize("text", ["* * * * *", "*/7 * * * * *", "0 0 * * *", "0 0 1W * *"])
    def test_next_and_prev_near_either_end_answer_without_raising(
        self, text: str, tz: str | timezone
    ) -> None:
        e = CronExpression(text, tz)
        starts = [
            edge + timedelta(seconds=step)
            for edge in (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 29, tzinfo=UTC))
            for step in range(0, 3 * 86400, 4 * 3607)
        ]
        starts += [datetime(1, 1, 1, tzinfo=EAST_5), datetime(9999, 12, 31, 23, 59, tzinfo=WEST_5)]
        for start in starts:
            later = e.next(start)
            if later is not None:
                assert later > start
                assert e.matches(later)
            earlier = e.prev(start)
            if earlier is not None:
                assert earlier < start
                assert e.matches(earlier)

    def test_iter_near_year_9999_ends_instead_of_raising(self) -> None:
        e = CronExpression("0 0 * * *", "Asia/Kolkata")
        runs = [t.isoformat() for t in islice(e.iter(datetime(9999, 12, 29, tzinfo=UTC)), 5)]
        assert runs == ["9999-12-30T00:00:00+05:30", "9999-12-31T00:00:00+05:30"]


class TestInvisibleCharactersInAnExpression:
    @pytest.mark.parametrize(
        ("text", "message"),
        [
            (
                "0 0 * * *\n",
                "expression: contains the character '\\n' at position 10, which is not "
                "allowed (only spaces and tabs separate fields)",
            ),
            (
                "@daily\n",
                "expression: contains the character '\\n' at position 7, which is not "
                "allowed (only spaces and tabs separate fields)",
            ),
            (
                "0\u00a00 * * *",
                "expression: contains the character '\\xa0' at position 2, which is not "
                "allowed (only spaces and tabs separate fields)",
            ),
            (
                "0 0 * * *\x1b[31m",
                "expression: contains the character '\\x1b' at position 10, which is not allowed",
            ),
            (
                "0 0 * * \x00",
                "expression: contains the character '\\x00' at position 9, which is not allowed",
            ),
        ],
    )
    def test_a_line_break_or_control_character_is_named_in_a_one_line_message(
        self, text: str, message: str
    ) -> None:
        with pytest.raises(CronError) as caught:
            CronExpression(text)
        assert str(caught.value) == message
        assert str(caught.value).isprintable()

    def test_tabs_still_separate_fields(self) -> None:
        assert CronExpression("0\t0\t*\t*\t*").expression == "0 0 * * *"


class TestStepsInDescriptions:
    @pytest.mark.parametrize(
        ("text", "english"),
        [
            ("*/45 * * * *", "At minutes 0 and 45 past the hour"),
            ("*/59 * * * *", "At minutes 0 and 59 past the hour"),
            ("*/40 * * * * *", "At seconds 0 and 40"),
            ("0 0 */31 * *", "At 00:00 on day 1 of the month"),
            ("0 0 * */12 *", "At 00:00, in January"),
            ("0 0 * */5 *", "At 00:00, in January, June and November"),
            ("0 0 * * */8", "At 00:00 on Sunday"),
            ("0 0 * * */2", "At 00:00 on Sunday, Tuesday, Thursday and Saturday"),
        ],
    )
    def test_a_step_that_does_not_repeat_evenly_is_described_by_its_values(
        self, text: str, english: str
    ) -> None:
        assert CronExpression(text).describe() == english

    @pytest.mark.parametrize(
        ("text", "english"),
        [
            ("*/15 * * * *", "Every 15 minutes"),
            ("0 */6 * * *", "Every 6 hours on the hour"),
            ("0 0 * */3 *", "At 00:00, every 3rd month"),
            ("0 0 */2 * *", "At 00:00 on every 2nd day of the month"),
        ],
    )
    def test_a_step_that_repeats_evenly_is_still_described_as_every_n(
        self, text: str, english: str
    ) -> None:
        assert CronExpression(text).describe() == english

    def test_l_minus_zero_listed_with_l_is_described_once(self) -> None:
        assert CronExpression("0 0 L-0,L * *").describe() == "At 00:00 on the last day of the month"
