"""describe(): plain English."""

from __future__ import annotations

import pytest

from agentcron.cron import CronExpression


@pytest.mark.parametrize(
    ("text", "english"),
    [
        ("0 0 L * *", "At 00:00 on the last day of the month"),
        ("*/30 * * * * *", "Every 30 seconds"),
        ("0 9,17 * * MON-FRI", "At 09:00 and 17:00, Monday through Friday"),
        ("* * * * *", "Every minute"),
        ("* * * * * *", "Every second"),
        ("*/5 * * * *", "Every 5 minutes"),
        ("@hourly", "Every hour on the hour"),
        ("@daily", "At 00:00"),
        ("@weekly", "At 00:00 on Sunday"),
        ("@monthly", "At 00:00 on day 1 of the month"),
        ("@yearly", "At 00:00 on day 1 of the month, in January"),
        ("30 45 8 * * *", "At 08:45:30"),
        ("0 */2 * * *", "Every 2 hours on the hour"),
        ("5 */2 * * *", "Every 2 hours at minute 5"),
        ("*/10 9-17 * * 1-5", "Every 10 minutes, between 09:00 and 17:59, Monday through Friday"),
        ("15 10 * * 1#2", "At 10:15 on the second Monday of the month"),
        ("0 0 * * 5L", "At 00:00 on the last Friday of the month"),
        ("0 0 LW * *", "At 00:00 on the last weekday of the month"),
        ("0 0 L-3 * *", "At 00:00, 3 days before the last day of the month"),
        ("0 0 15W * *", "At 00:00 on the weekday nearest day 15 of the month"),
        ("0 0 15 * MON", "At 00:00 on day 15 of the month or on Monday"),
        ("0 0 */2 * MON", "At 00:00 on every 2nd day of the month, if it is a Monday"),
        ("0 12 * JAN-MAR *", "At 12:00, in January through March"),
        ("0 0 0 * * * 2026-2028", "At 00:00, in 2026 through 2028"),
    ],
)
def test_describe(text: str, english: str) -> None:
    assert CronExpression(text).describe() == english


def test_every_conformance_style_expression_gets_a_sentence() -> None:
    for text in ["1-5,*/7 */3 L-2,15W * 2#3,5L", "0 0-59/30 23 ? * *", "59 59 23 31 12 * 2099"]:
        sentence = CronExpression(text).describe()
        assert sentence and sentence[0].isupper()
