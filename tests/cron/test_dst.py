"""Daylight-saving transitions, one class per zone, on real 2026 transitions.

Rules under test (conformance README): a *fixed-time* expression (neither minute nor hour
starts with ``*``) fires once at the end of a spring-forward gap for wall times the gap
skips, and once, at the first occurrence, for wall times in a repeated period. An
*interval-like* expression skips non-existent wall times and fires at both occurrences.
Results are compared as ISO strings, so the UTC offset is checked too.
"""

from __future__ import annotations

from datetime import datetime
from itertools import islice

from agentcron.cron import CronExpression


def runs(text: str, tz: str, after: str, count: int) -> list[str]:
    e = CronExpression(text, tz)
    return [t.isoformat() for t in islice(e.iter(datetime.fromisoformat(after)), count)]


class TestAmericaNewYork:
    # 2026-03-08 02:00 EST (-05) -> 03:00 EDT (-04): 02:00-02:59 does not exist.
    # 2026-11-01 02:00 EDT (-04) -> 01:00 EST (-05): 01:00-01:59 happens twice.
    TZ = "America/New_York"

    def test_fixed_time_in_the_gap_fires_once_at_the_end_of_the_gap(self) -> None:
        assert runs("30 2 * * *", self.TZ, "2026-03-07T12:00:00-05:00", 3) == [
            "2026-03-08T03:00:00-04:00",
            "2026-03-09T02:30:00-04:00",
            "2026-03-10T02:30:00-04:00",
        ]

    def test_several_fixed_times_in_the_gap_fire_once(self) -> None:
        assert runs("15,45 2 * * *", self.TZ, "2026-03-08T00:00:00-05:00", 2) == [
            "2026-03-08T03:00:00-04:00",
            "2026-03-09T02:15:00-04:00",
        ]

    def test_a_fixed_time_with_seconds_keeps_its_second_at_the_end_of_the_gap(self) -> None:
        assert runs("20 30 2 * * *", self.TZ, "2026-03-08T00:00:00-05:00", 1) == [
            "2026-03-08T03:00:20-04:00"
        ]

    def test_interval_like_skips_the_gap(self) -> None:
        assert runs("*/30 * * * *", self.TZ, "2026-03-08T01:00:00-05:00", 3) == [
            "2026-03-08T01:30:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T03:30:00-04:00",
        ]
        assert runs("0 */2 * * *", self.TZ, "2026-03-08T00:30:00-05:00", 1) == [
            "2026-03-08T04:00:00-04:00"
        ]

    def test_fixed_time_in_the_repeated_hour_fires_at_the_first_occurrence_only(self) -> None:
        assert runs("30 1 * * *", self.TZ, "2026-10-31T12:00:00-04:00", 2) == [
            "2026-11-01T01:30:00-04:00",
            "2026-11-02T01:30:00-05:00",
        ]

    def test_interval_like_fires_at_both_copies_of_the_repeated_hour(self) -> None:
        assert runs("*/15 * * * *", self.TZ, "2026-11-01T01:40:00-04:00", 5) == [
            "2026-11-01T01:45:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T01:15:00-05:00",
            "2026-11-01T01:30:00-05:00",
            "2026-11-01T01:45:00-05:00",
        ]

    def test_prev_walks_back_through_both_transitions(self) -> None:
        e = CronExpression("*/30 1 * * *", self.TZ)
        t = datetime.fromisoformat("2026-11-01T02:00:00-05:00")
        back = []
        for _ in range(5):
            t = e.prev(t)  # type: ignore[assignment]
            back.append(t.isoformat())
        assert back == [
            "2026-11-01T01:30:00-05:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:00:00-04:00",
            "2026-10-31T01:30:00-04:00",
        ]
        fixed = CronExpression("30 2 * * *", self.TZ)
        assert fixed.prev(datetime.fromisoformat("2026-03-08T03:00:01-04:00")).isoformat() == (  # type: ignore[union-attr]
            "2026-03-08T03:00:00-04:00"
        )

    def test_an_interval_like_schedule_that_only_matches_inside_gaps_never_fires(self) -> None:
        # Since 2007 DST starts on the second Sunday of March at 02:00, so 02:xx never exists
        # on that day; in 2006 it started in April and the wall time was real.
        e = CronExpression("* 2 * 3 0#2", self.TZ)
        assert e.next(datetime.fromisoformat("2026-01-01T00:00:00-05:00")) is None
        last = e.prev(datetime.fromisoformat("2026-01-01T00:00:00-05:00"))
        assert last is not None and last.isoformat() == "2006-03-12T02:59:00-05:00"

    def test_matches_agrees_with_the_dst_rules(self) -> None:
        fixed = CronExpression("30 1 * * *", self.TZ)
        assert fixed.matches(datetime.fromisoformat("2026-11-01T01:30:00-04:00"))
        assert not fixed.matches(datetime.fromisoformat("2026-11-01T01:30:00-05:00"))
        gap = CronExpression("30 2 * * *", self.TZ)
        assert gap.matches(datetime.fromisoformat("2026-03-08T03:00:00-04:00"))
        assert not CronExpression("0 3 * * *", self.TZ).matches(
            datetime.fromisoformat("2026-03-08T03:00:01-04:00")
        )


class TestEuropeBerlin:
    # 2026-03-29 02:00 CET (+01) -> 03:00 CEST (+02); 2026-10-25 03:00 CEST -> 02:00 CET.
    TZ = "Europe/Berlin"

    def test_fixed_time_in_the_gap_fires_at_three(self) -> None:
        assert runs("0 2 * * *", self.TZ, "2026-03-28T12:00:00+01:00", 2) == [
            "2026-03-29T03:00:00+02:00",
            "2026-03-30T02:00:00+02:00",
        ]

    def test_a_fixed_time_that_is_also_the_end_of_the_gap_fires_once(self) -> None:
        assert runs("0 2,3 * * *", self.TZ, "2026-03-29T00:00:00+01:00", 2) == [
            "2026-03-29T03:00:00+02:00",
            "2026-03-30T02:00:00+02:00",
        ]

    def test_repeated_hour(self) -> None:
        assert runs("30 2 * * *", self.TZ, "2026-10-24T12:00:00+02:00", 2) == [
            "2026-10-25T02:30:00+02:00",
            "2026-10-26T02:30:00+01:00",
        ]
        assert runs("0 * * * *", self.TZ, "2026-10-25T00:30:00+02:00", 4) == [
            "2026-10-25T01:00:00+02:00",
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T03:00:00+01:00",
        ]

    def test_six_field_expressions_follow_the_same_rule(self) -> None:
        assert runs("0 30 2 * * *", self.TZ, "2026-03-29T00:00:00+01:00", 1) == [
            "2026-03-29T03:00:00+02:00"
        ]


class TestAustraliaLordHowe:
    # 30-minute shifts. 2026-04-05 02:00 (+11) -> 01:30 (+10:30): 01:30-01:59 twice.
    # 2026-10-04 02:00 (+10:30) -> 02:30 (+11): 02:00-02:29 does not exist.
    TZ = "Australia/Lord_Howe"

    def test_gap_of_thirty_minutes(self) -> None:
        assert runs("15 2 * * *", self.TZ, "2026-10-03T12:00:00+10:30", 2) == [
            "2026-10-04T02:30:00+11:00",
            "2026-10-05T02:15:00+11:00",
        ]
        assert runs("*/20 2 * * *", self.TZ, "2026-10-04T00:00:00+10:30", 2) == [
            "2026-10-04T02:40:00+11:00",
            "2026-10-05T02:00:00+11:00",
        ]

    def test_repeated_half_hour(self) -> None:
        assert runs("*/20 * * * *", self.TZ, "2026-04-05T01:10:00+11:00", 4) == [
            "2026-04-05T01:20:00+11:00",
            "2026-04-05T01:40:00+11:00",
            "2026-04-05T01:40:00+10:30",
            "2026-04-05T02:00:00+10:30",
        ]
        assert runs("45 1 * * *", self.TZ, "2026-04-04T12:00:00+11:00", 2) == [
            "2026-04-05T01:45:00+11:00",
            "2026-04-06T01:45:00+10:30",
        ]


class TestPacificChatham:
    # +12:45 / +13:45. 2026-09-27 02:45 -> 03:45: 02:45-03:44 does not exist.
    # 2026-04-05 03:45 (+13:45) -> 02:45 (+12:45): 02:45-03:44 twice.
    TZ = "Pacific/Chatham"

    def test_gap_at_two_forty_five(self) -> None:
        assert runs("0 3 * * *", self.TZ, "2026-09-26T12:00:00+12:45", 2) == [
            "2026-09-27T03:45:00+13:45",
            "2026-09-28T03:00:00+13:45",
        ]
        assert runs("* 3 * * *", self.TZ, "2026-09-27T00:00:00+12:45", 2) == [
            "2026-09-27T03:45:00+13:45",
            "2026-09-27T03:46:00+13:45",
        ]

    def test_repeat_at_two_forty_five(self) -> None:
        assert runs("0 3 * * *", self.TZ, "2026-04-04T12:00:00+13:45", 2) == [
            "2026-04-05T03:00:00+13:45",
            "2026-04-06T03:00:00+12:45",
        ]
        assert runs("0 * * * *", self.TZ, "2026-04-05T02:30:00+13:45", 3) == [
            "2026-04-05T03:00:00+13:45",
            "2026-04-05T03:00:00+12:45",
            "2026-04-05T04:00:00+12:45",
        ]


class TestAmericaSantiago:
    # Transitions at midnight. 2026-09-06 00:00 (-04) -> 01:00 (-03): 00:00-00:59 is skipped.
    # 2026-04-05 00:00 (-03) -> 2026-04-04 23:00 (-04): 23:00-23:59 on the 4th happens twice.
    TZ = "America/Santiago"

    def test_midnight_does_not_exist_on_the_first_day_of_dst(self) -> None:
        assert runs("0 0 * * *", self.TZ, "2026-09-05T12:00:00-04:00", 2) == [
            "2026-09-06T01:00:00-03:00",
            "2026-09-07T00:00:00-03:00",
        ]
        assert runs("*/30 0 * * *", self.TZ, "2026-09-05T12:00:00-04:00", 1) == [
            "2026-09-07T00:00:00-03:00"
        ]

    def test_the_last_hour_of_the_day_repeats_when_dst_ends(self) -> None:
        assert runs("30 23 * * *", self.TZ, "2026-04-04T12:00:00-03:00", 2) == [
            "2026-04-04T23:30:00-03:00",
            "2026-04-05T23:30:00-04:00",
        ]
        assert runs("*/30 23 * * *", self.TZ, "2026-04-04T23:10:00-03:00", 4) == [
            "2026-04-04T23:30:00-03:00",
            "2026-04-04T23:00:00-04:00",
            "2026-04-04T23:30:00-04:00",
            "2026-04-05T23:00:00-04:00",
        ]
