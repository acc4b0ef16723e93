from __future__ import annotations

from datetime import timedelta

import pytest

from agentcron.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (30, 30.0),
        (1.5, 1.5),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("1h30m", 5400.0),
        (" 2 h ", 7200.0),
        (timedelta(minutes=2), 120.0),
    ],
)
def test_durations_are_read_in_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "bad", ["", "10", "ten minutes", "5x", "-5s", -1, True, None, "1" * 100, "٣s"]
)
def test_bad_durations_name_the_field(bad: object) -> None:
    with pytest.raises(ValueError, match="^timeout: "):
        parse_duration(bad, "timeout")


def test_absurdly_long_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="100 years"):
        parse_duration("99999d", "timeout")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.5, "500ms"), (90, "1m30s"), (86400, "1d"), (0, "0ms"), (1.5, "1.5s")],  # 1.5 was "2s"
)
def test_durations_format_back_to_text(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
