"""`agentcron cron validate|next|describe` through typer's CliRunner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from agentcron.cli.main import build_app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(build_app(), ["cron", *args])
    return result.exit_code, result.stdout, result.stderr


def test_validate_prints_the_next_five_runs_and_exits_zero() -> None:
    code, out, _ = invoke("validate", "0 9 * * MON-FRI", "--tz", "Europe/Berlin")
    assert code == 0
    assert "At 09:00, Monday through Friday" in out
    assert out.count("+01:00") + out.count("+02:00") == 5


def test_validate_prints_warnings() -> None:
    code, out, _ = invoke("validate", "*/5 * * * * *")
    assert code == 0
    assert "warning: 6 fields" in out
    assert "less than 10 seconds" in out


def test_validate_of_a_bad_expression_exits_two_with_one_line() -> None:
    code, out, err = invoke("validate", "61 * * * *")
    assert code == 2
    assert err == "agentcron: minute field: 61 is out of range 0-59\n"
    assert out == ""


def test_validate_never_fires_exits_two() -> None:
    code, _, err = invoke("validate", "0 0 30 2 *")
    assert code == 2
    assert "never fires" in err


def test_validate_json() -> None:
    code, out, _ = invoke("validate", "0 0 30 2 *", "--json")
    assert code == 2
    data = json.loads(out)
    assert data["valid"] is False and data["error"] == "never fires"
    code, out, _ = invoke("validate", "@daily", "--json")
    assert code == 0
    assert len(json.loads(out)["next_runs"]) == 5


def test_next_prints_iso_times_with_offsets_across_a_dst_repeat() -> None:
    code, out, _ = invoke(
        "next",
        "*/15 * * * *",
        "--tz",
        "America/New_York",
        "--after",
        "2026-11-01T01:40:00-04:00",
        "--count",
        "3",
    )
    assert code == 0
    assert out.split() == [
        "2026-11-01T01:45:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T01:15:00-05:00",
    ]


def test_next_json_and_a_naive_after_read_in_the_zone() -> None:
    code, out, _ = invoke(
        "next",
        "0 0 L * *",
        "--tz",
        "Asia/Kolkata",
        "--after",
        "2026-02-01T00:00",
        "--json",
        "-n",
        "2",
    )
    assert code == 0
    assert json.loads(out) == ["2026-02-28T00:00:00+05:30", "2026-03-31T00:00:00+05:30"]


def test_next_of_an_expression_that_never_fires_says_so() -> None:
    code, out, _ = invoke("next", "0 0 0 1 1 * 2020", "--after", "2026-01-01T00:00:00+00:00")
    assert code == 0
    assert "never fires" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("next", "0 0 * *"), "expected 5 fields"),
        (("next", "@daily", "--after", "yesterday"), "--after"),
        (("next", "@daily", "--count", "0"), "--count"),
        (("next", "@daily", "--tz", "Nowhere/Land"), "time zone"),
        (("describe", "0 0 * * 1#6"), "day-of-week field"),
        (("describe", "@reboot"), "engine trigger"),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_exit_code_two(
    args: tuple[str, ...], fragment: str
) -> None:
    code, _, err = invoke(*args)
    assert code == 2
    assert err.startswith("agentcron: ")
    assert err.count("\n") == 1
    assert fragment in err
    assert "Traceback" not in err


def test_describe() -> None:
    assert invoke("describe", "0 0 L * *") == (0, "At 00:00 on the last day of the month\n", "")
    code, out, _ = invoke("describe", "AGENT_LOOP_FAST", "--json")
    assert code == 0
    assert json.loads(out)["description"] == "Every 30 seconds"
