"""Usage errors (a missing argument, an unknown option or command, a value out of range) end
like every other bad input, in every command group: one line on stderr, exit code 2 (DESIGN 2.9)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from agentcron.cli.main import build_app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["no-such-command"], "No such command"),
        (["cron", "next"], "Missing argument"),
        (["cron", "validate", "* * * * *", "--no-such-option"], "No such option"),
        (["db", "restore"], "Missing argument"),
        (["queue", "status"], "Missing argument"),
        (["queue", "pause"], "Missing argument"),
        (["service", "install", "--no-such-option"], "No such option"),
        (["worker", "--queue", "emails", "--concurrency", "0"], "--concurrency"),
        (["worker", "--queue", "emails", "--concurrency", "many"], "--concurrency"),
        (["nodes", "--no-such-option"], "No such option"),
        (["health", "--no-such-option"], "No such option"),
        (["dashboard", "--port", "not-a-port"], "--port"),
        (["run", "--no-such-option"], "No such option"),
        (["jobs", "show"], "Missing argument"),
        (["config", "show", "--no-such-option"], "No such option"),
    ],
)
def test_a_usage_error_in_any_command_is_one_line_on_stderr_with_exit_two(
    args: list[str], fragment: str
) -> None:
    result = runner.invoke(build_app(), args)
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert result.stderr.startswith("agentcron: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
