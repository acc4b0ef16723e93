"""Every command resolves its settings as `agentcron run` does: flags, then the environment,
then `.env` in the working directory, then the defaults (docs/configuration.md). Real SQLite
files in tmp_path, through typer's CliRunner in a working directory of the test's own."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_helpers import as_json, assert_bad_input, ok, runner
from typer.testing import Result

from agentcron.cli.main import build_app
from agentcron.config import Settings


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, without agentcron variables in the environment."""
    for name in list(os.environ):
        if name in Settings.model_fields or name.startswith(("SCHEDULER_", "HEARTBEAT_")):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def agentcron(*args: str) -> Result:
    return runner.invoke(build_app(), list(args))


def write_env(workdir: Path, text: str) -> None:
    (workdir / ".env").write_text(text, encoding="utf-8")


def test_every_command_works_on_the_data_dir_and_time_zone_of_dot_env(
    workdir: Path, tmp_path: Path
) -> None:
    # QA: `jobs add` created ./data/scheduler.db with UTC while `agentcron run` (and
    # `config show`) used .env's SCHEDULER_DATA_DIR and SCHEDULER_TIMEZONE: the CLI
    # silently worked on another database than the daemon.
    mydata = tmp_path / "mydata"
    write_env(workdir, f"SCHEDULER_DATA_DIR={mydata}\nSCHEDULER_TIMEZONE=Europe/Berlin\n")
    added = as_json(
        agentcron("jobs", "add", "nightly", "--cron", "0 2 * * *", "--json", "--", "true")
    )
    assert added["timezone"] == "Europe/Berlin"
    assert (mydata / "scheduler.db").is_file()
    assert [job["id"] for job in as_json(agentcron("jobs", "list", "--json"))] == ["nightly"]
    assert as_json(agentcron("jobs", "show", "nightly", "--json"))["timezone"] == "Europe/Berlin"
    ok(agentcron("jobs", "pause", "nightly"))
    assert as_json(agentcron("db", "check", "--json"))["path"] == str(mydata / "scheduler.db")
    assert as_json(agentcron("db", "backup", "--json"))["path"].startswith(str(mydata / "backups"))
    assert as_json(agentcron("nodes", "--json")) == []
    assert str(mydata / "node-id") in agentcron("health").stdout
    ok(agentcron("queue", "add", "emails", "send"))
    assert as_json(agentcron("queue", "status", "emails", "--json"))["counts"]["waiting"] == 1
    assert not (workdir / "data").exists()


def test_a_naive_at_time_is_read_in_the_time_zone_of_dot_env(workdir: Path) -> None:
    write_env(workdir, "SCHEDULER_TIMEZONE=Europe/Berlin\n")
    added = as_json(
        agentcron("jobs", "add", "once", "--at", "2030-01-15T09:00:00", "--json", "--", "true")
    )
    assert added["trigger"] == {"at": "2030-01-15T08:00:00+00:00"}  # 09:00 in Berlin


def test_the_environment_beats_dot_env_and_a_flag_beats_both(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_env(workdir, f"SCHEDULER_DATA_DIR={tmp_path / 'from-env-file'}\n")
    monkeypatch.setenv("SCHEDULER_DATA_DIR", str(tmp_path / "from-environment"))
    ok(agentcron("jobs", "add", "a", "--every", "1h", "--", "true"))
    ok(
        agentcron(
            "jobs", "add", "b", "--every", "1h", "--data-dir", str(tmp_path / "flag"), "--", "true"
        )
    )
    assert (tmp_path / "from-environment" / "scheduler.db").is_file()
    assert (tmp_path / "flag" / "scheduler.db").is_file()
    assert not (tmp_path / "from-env-file").exists()


def test_the_store_of_dot_env_is_used_by_the_jobs_and_queue_commands(
    workdir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "elsewhere" / "agent.db"
    db.parent.mkdir()
    write_env(workdir, f"SCHEDULER_STORE=sqlite:///{db}\n")
    ok(agentcron("jobs", "add", "a", "--every", "1h", "--", "true"))
    ok(agentcron("queue", "add", "emails", "send"))
    assert db.is_file() and not (workdir / "data").exists()
    assert as_json(agentcron("db", "check", "--json"))["jobs"] == 1


@pytest.mark.parametrize(
    "command",
    [
        ["jobs", "list"],
        ["jobs", "add", "a", "--every", "1h", "--", "true"],
        ["jobs", "run", "a"],
        ["db", "check"],
        ["db", "migrate"],
        ["nodes"],
        ["health"],
        ["queue", "status", "emails"],
        ["queue", "add", "emails", "send"],
        ["worker", "--queue", "emails", "--burst"],
        ["dashboard"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_a_bad_value_in_dot_env_is_one_line_naming_it_for_every_command(
    workdir: Path, command: list[str]
) -> None:
    write_env(workdir, "SCHEDULER_TIMEZONE=Mars/X\n")
    assert_bad_input(agentcron(*command), "SCHEDULER_TIMEZONE='Mars/X'", "unknown time zone")
    assert not (workdir / "data").exists()


def test_a_bad_time_zone_in_the_environment_is_named_by_jobs_add(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # QA: "timezone: unknown time zone", without a word of SCHEDULER_TIMEZONE.
    monkeypatch.setenv("SCHEDULER_TIMEZONE", "Mars/X")
    assert_bad_input(
        agentcron("jobs", "add", "a", "--cron", "0 2 * * *", "--", "true"),
        "setting SCHEDULER_TIMEZONE='Mars/X' is invalid: unknown time zone",
    )


def test_a_misspelt_variable_of_dot_env_is_warned_about_by_the_jobs_commands(
    workdir: Path,
) -> None:
    write_env(workdir, "SCHEDULER_TIMEZNE=Europe/Berlin\n")
    result = agentcron("jobs", "add", "a", "--every", "1h", "--json", "--", "true")
    assert result.exit_code == 0, result.stderr
    assert "unknown setting SCHEDULER_TIMEZNE; did you mean SCHEDULER_TIMEZONE?" in result.stderr
    assert json.loads(result.stdout)["id"] == "a"


def test_a_bad_port_flag_of_run_is_named_as_the_flag() -> None:
    # QA: `run --port -5` blamed DASHBOARD_PORT, which the user had not set.
    result = agentcron("run", "--port", "-5", "--once")
    assert_bad_input(result, "--port -5 is invalid")
    assert "DASHBOARD_PORT" not in result.stderr
