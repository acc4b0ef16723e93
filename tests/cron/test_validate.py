"""validate(): valid/error, warnings, next runs, JSON form."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from agentcron.cron import CronExpression, ValidationResult

NOW = datetime(2026, 1, 10, tzinfo=UTC)


def check(text: str, tz: str = "UTC") -> ValidationResult:
    return CronExpression.validate(text, tz, now=NOW)


def test_a_valid_expression_gets_its_next_five_runs_and_a_description() -> None:
    result = check("0 9 * * MON-FRI", "Europe/Berlin")
    assert result.valid
    assert result.error is None
    assert result.warnings == ()
    assert [t.isoformat() for t in result.next_runs] == [
        "2026-01-12T09:00:00+01:00",
        "2026-01-13T09:00:00+01:00",
        "2026-01-14T09:00:00+01:00",
        "2026-01-15T09:00:00+01:00",
        "2026-01-16T09:00:00+01:00",
    ]
    assert result.description == "At 09:00, Monday through Friday"


def test_a_syntax_error_is_invalid_with_the_cron_error_message() -> None:
    result = check("61 * * * *")
    assert not result.valid
    assert result.error == "minute field: 61 is out of range 0-59"
    assert result.next_runs == ()


@pytest.mark.parametrize("text", ["0 0 30 2 *", "0 0 31 4 *", "0 0 0 1 1 * 2020"])
def test_an_expression_that_never_fires_is_invalid(text: str) -> None:
    result = check(text)
    assert not result.valid
    assert result.error == "never fires"


@pytest.mark.parametrize(
    ("text", "tz", "fragment"),
    [
        ("*/5 * * * * *", "UTC", "less than 10 seconds"),
        ("* * * * * *", "UTC", "1 second apart"),
        ("* * * * *", "UTC", "every minute"),
        ("0 */5 * * * *", "UTC", "first field is read as seconds"),
        ("0 0 15 * MON", "UTC", "OR-ed"),
        ("0 */30 * * *", "UTC", "hour field: */30 only matches 0"),
        ("0 0 31 * *", "UTC", "does not exist in every month"),
        ("30 2 * * *", "America/New_York", "do not exist in America/New_York"),
        ("30 1 * * *", "America/New_York", "happen twice in America/New_York"),
        ("*/10 * * * *", "Europe/Berlin", "runs there are skipped"),
        ("0 0 29 2 *", "UTC", "runs rarely"),
        ("0 0 * 2 1#5", "UTC", "runs rarely: 0 times"),
    ],
)
def test_warnings(text: str, tz: str, fragment: str) -> None:
    result = check(text, tz)
    assert result.valid
    assert any(fragment in w for w in result.warnings), result.warnings


@pytest.mark.parametrize("text", ["0 9 * * *", "@daily", "AGENT_LOOP_FAST", "0 0 1 * *"])
def test_ordinary_expressions_have_no_warnings(text: str) -> None:
    assert check(text).warnings == ()


def test_to_dict_is_json_ready() -> None:
    data = check("0 9 * * *").to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["valid"] is True
    assert data["next_runs"][0] == "2026-01-10T09:00:00+00:00"


def test_an_unknown_zone_is_an_invalid_result_not_an_exception() -> None:
    result = check("0 0 * * *", "Mars/Olympus")
    assert not result.valid
    assert result.error is not None and "time zone" in result.error


def test_validate_reads_the_clock_when_no_now_is_given() -> None:
    result = CronExpression.validate("* * * * *")
    assert result.valid
    assert result.next_runs[0] > datetime.now(UTC).replace(second=0, microsecond=0)
