"""`agentcron cron ...` with times at the edges of what a datetime can hold."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from agentcron.cli.main import build_app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(build_app(), ["cron", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("after", "tz"),
    [
        ("0001-01-01T00:00:00+05:00", "UTC"),
        ("0001-01-01T00:00:00", "Asia/Tokyo"),
        ("9999-12-31T23:59:00-05:00", "UTC"),
        ("9999-12-31T23:59:00", "America/New_York"),
    ],
)
def test_next_after_a_time_outside_years_1_to_9999_in_utc_is_one_line_with_exit_two(
    after: str, tz: str
) -> None:
    code, out, err = invoke("next", "* * * * *", "--tz", tz, "--after", after)
    assert code == 2, (out, err)
    assert err.startswith("agentcron: --after: ")
    assert err.count("\n") == 1, err
    assert "out of range" in err and "years 1-9999" in err
    assert out == ""


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("0001-01-01T00:00:00+00:00", ["0001-01-01T00:01:00+00:00", "0001-01-01T00:02:00+00:00"]),
        ("9999-12-31T23:58:00", ["9999-12-31T23:59:00+00:00"]),
    ],
)
def test_next_after_a_time_at_either_end_of_the_calendar_just_works(
    after: str, expected: list[str]
) -> None:
    code, out, err = invoke("next", "* * * * *", "--after", after, "--count", "2")
    assert (code, err) == (0, "")
    assert out.split() == expected


def test_next_after_the_last_minute_of_the_calendar_says_it_never_fires() -> None:
    code, out, err = invoke("next", "* * * * *", "--after", "9999-12-31T23:59:00")
    assert (code, err) == (0, "")
    assert "never fires after 9999-12-31T23:59:00+00:00" in out


@pytest.mark.parametrize("command", ["next", "validate", "describe"])
def test_the_machine_zone_localtime_is_refused_in_one_line_naming_it(command: str) -> None:
    code, out, err = invoke(command, "0 2 * * *", "--tz", "localtime")
    assert code == 2, (out, err)
    assert err.count("\n") == 1, err
    assert "'localtime' is not an IANA time zone name" in err
    assert "Europe/Paris" in err


@pytest.mark.parametrize("zone", ["Z", " Europe/Paris", "utc"])
def test_zone_spellings_cron_has_always_read_are_still_accepted(zone: str) -> None:
    for command in ("next", "validate", "describe"):
        code, out, err = invoke(command, "0 2 * * *", "--tz", zone)
        assert (code, err) == (0, ""), (command, out)
