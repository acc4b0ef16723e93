"""A command no run could start (an empty program, a NUL in an argument) is refused by
every way of defining a job, because each one builds its handler with `Command`: Python,
agentcron.toml, `agentcron jobs add` and `agentcron jobs import` (the HTTP API is tested in
tests/dashboard/test_job_validation.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from agentcron import Command, Scheduler
from agentcron.cli.main import build_app
from agentcron.jobfile import JobFileError, parse_job_file

runner = CliRunner()


def cli(*args: str) -> Result:
    return runner.invoke(build_app(), list(args))


def assert_one_line_exit_2(result: Result, fragment: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert result.stderr.startswith("agentcron: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert fragment in result.stderr, result.stderr


@pytest.mark.parametrize("argv", [[""], ["  ", "-l"]])
def test_an_empty_program_is_refused_by_python_the_job_file_and_jobs_add(
    argv: list[str], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"the program \(first argument\) is empty"):
        Scheduler().add_job("emptycmd", trigger="*/10 * * * *", handler=Command(argv))
    table = {"id": "emptycmd", "trigger": "*/10 * * * *", "command": argv}
    with pytest.raises(JobFileError, match="the program"):
        parse_job_file({"jobs": [table]})
    data = str(tmp_path / "data")
    assert cli("db", "migrate", "--data-dir", data).exit_code == 0
    added = cli(
        "jobs", "add", "emptycmd", "--data-dir", data, "--cron", "*/10 * * * *", "--", *argv
    )
    assert_one_line_exit_2(added, "the program")
    assert "emptycmd" not in cli("jobs", "list", "--data-dir", data, "--json").stdout


def test_jobs_import_refuses_a_command_with_an_empty_program_or_a_nul(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert cli("db", "migrate", "--data-dir", data).exit_code == 0
    for name, argv, fragment in (
        ("empty", [""], "the program (first argument) is empty"),
        ("nul", ["ls", "a\0b"], "argv[1]: contains a NUL character"),
    ):
        export = {
            "format": "agentcron.jobs",
            "version": 1,
            "jobs": [{
                "id": name,
                "definition": {
                    "trigger": {"type": "cron", "expr": "*/10 * * * *", "tz": "UTC"},
                    "handler": {"kind": "command", "argv": argv},
                },
            }],
        }  # fmt: skip
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(export), encoding="utf-8")
        # Was "imported ...: 1 added", and every run failed.
        assert_one_line_exit_2(cli("jobs", "import", str(path), "--data-dir", data), fragment)
    assert json.loads(cli("jobs", "list", "--data-dir", data, "--json").stdout) == []
