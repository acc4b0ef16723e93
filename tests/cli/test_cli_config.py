"""`agentcron config show` through typer's CliRunner and as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from agentcron.cli.main import build_app
from agentcron.config import Settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory (no stray .env) without agentcron variables around."""
    for name in list(os.environ):
        if name in Settings.model_fields or name.startswith(("SCHEDULER_", "HEARTBEAT_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def show(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(build_app(), ["config", "show", *args], env=env)


def shown(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = show("--json", *args, env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def assert_bad_input(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("agentcron: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def test_show_json_prints_every_setting_with_its_default() -> None:
    data = shown()
    assert set(Settings.model_fields) <= set(data)
    assert data["SCHEDULER_DATA_DIR"] == "data"
    assert data["HEARTBEAT_INTERVAL"] == 30_000
    assert data["DASHBOARD_PORT"] == 3000
    assert data["store_url (derived)"] == "sqlite:///data/scheduler.db"


def test_show_reads_the_environment_and_masks_secrets() -> None:
    env = {
        "HEARTBEAT_INTERVAL": "5000",
        "DASHBOARD_AUTH_TOKEN": "s3cret-token",
        "REDIS_PASSWORD": "hunter2",
        "SCHEDULER_STORE": "redis://:hunter2@localhost:6379/0",
    }
    result = show("--json", env=env)
    assert result.exit_code == 0
    assert "s3cret-token" not in result.stdout and "hunter2" not in result.stdout
    data = json.loads(result.stdout)
    assert data["HEARTBEAT_INTERVAL"] == 5000
    assert data["DASHBOARD_AUTH_TOKEN"] == "********"
    assert data["REDIS_PASSWORD"] == "********"
    assert data["SCHEDULER_STORE"] == "redis://:********@localhost:6379/0"
    table = show(env=env)
    assert table.exit_code == 0
    assert "s3cret-token" not in table.stdout and "hunter2" not in table.stdout


def test_show_reads_the_env_file_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / "custom.env"
    env_file.write_text("HEARTBEAT_INTERVAL=7000\nDASHBOARD_PORT=4000\n")
    data = shown("--env-file", str(env_file), env={"DASHBOARD_PORT": "5000"})
    assert data["HEARTBEAT_INTERVAL"] == 7000
    assert data["DASHBOARD_PORT"] == 5000


def test_show_reads_dot_env_of_the_working_directory_by_default(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SCHEDULER_TIMEZONE=Europe/Berlin\n")
    assert shown()["SCHEDULER_TIMEZONE"] == "Europe/Berlin"


def test_show_table_says_where_each_value_comes_from(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DASHBOARD_PORT=4000\n")
    result = show(env={"HEARTBEAT_INTERVAL": "5000"})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert any("HEARTBEAT_INTERVAL" in line and "environment" in line for line in lines)
    assert any("DASHBOARD_PORT" in line and ".env" in line for line in lines)
    assert any("RETRY_STRATEGY" in line and "default" in line for line in lines)


def test_data_dir_and_store_flags_override_the_environment() -> None:
    data = shown("--data-dir", "elsewhere", env={"SCHEDULER_DATA_DIR": "ignored"})
    assert data["SCHEDULER_DATA_DIR"] == "elsewhere"
    assert data["store_url (derived)"] == "sqlite:///elsewhere/scheduler.db"
    assert shown("--store", "redis://localhost:6379/1")["SCHEDULER_STORE"] == (
        "redis://localhost:6379/1"
    )


def test_unknown_variables_are_warned_about_with_a_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DASHBOARD_PROT=3001\n")
    result = show("--json", env={"HEARTBEAT_INTERVALL": "5000"})
    assert result.exit_code == 0
    json.loads(result.stdout)  # the warnings stay off stdout
    assert (
        "agentcron: warning: unknown setting HEARTBEAT_INTERVALL; did you mean HEARTBEAT_INTERVAL?"
        in result.stderr
    )
    assert "unknown setting DASHBOARD_PROT; did you mean DASHBOARD_PORT? (in .env)" in (
        result.stderr
    )


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        ({"DASHBOARD_PORT": "abc"}, ("DASHBOARD_PORT='abc'",)),
        ({"HEARTBEAT_INTERVAL": "-5"}, ("HEARTBEAT_INTERVAL",)),
        ({"SCHEDULER_TIMEZONE": "Mars/Base"}, ("SCHEDULER_TIMEZONE", "unknown time zone")),
        ({"OVERLAP_STRATEGY": "sometimes"}, ("OVERLAP_STRATEGY",)),
        ({"DASHBOARD_AUTH_TOKEN": "", "REDIS_PORT": "99999"}, ("REDIS_PORT",)),
    ],
)
def test_a_bad_value_exits_two_with_one_line_naming_the_key(
    env: dict[str, str], fragments: tuple[str, ...]
) -> None:
    assert_bad_input(show(env=env), *fragments)


def test_a_bad_value_in_the_env_file_exits_two(tmp_path: Path) -> None:
    (tmp_path / "bad.env").write_text("RETRY_MAX_ATTEMPTS=zero\n")
    assert_bad_input(show("--env-file", str(tmp_path / "bad.env")), "RETRY_MAX_ATTEMPTS")


def test_a_missing_env_file_exits_two() -> None:
    assert_bad_input(show("--env-file", "missing.env"), "--env-file missing.env")


def test_an_unknown_config_command_exits_two_with_one_line() -> None:
    assert_bad_input(runner.invoke(build_app(), ["config", "shwo"]), "No such command")


def test_config_show_works_as_a_real_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "DASHBOARD_AUTH_TOKEN": "very-secret", "DASHBOARD_PORT": "3100"}
    done = subprocess.run(
        [sys.executable, "-m", "agentcron", "config", "show", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["DASHBOARD_PORT"] == 3100 and data["DASHBOARD_AUTH_TOKEN"] == "********"
    assert "very-secret" not in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "agentcron", "config", "show"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "DASHBOARD_PORT": "port"},
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "DASHBOARD_PORT='port'" in bad.stderr


def test_show_names_the_env_file_line_it_cannot_parse(clean_environment: Path) -> None:
    (clean_environment / ".env").write_text('SCHEDULER_TIMEZONE="Europe/Berlin\n')
    assert_bad_input(show("--json"), ".env, line 1: cannot parse")


def test_show_on_a_non_utf8_env_file_it_was_not_given_does_not_blame_a_flag(
    clean_environment: Path,
) -> None:
    (clean_environment / ".env").write_bytes(b"REDIS_HOST=caf\xe9\n")
    result = show("--json")
    assert_bad_input(result, "env file .env is not UTF-8 text", "save it as UTF-8")
    assert "--env-file" not in result.stderr


def test_show_warns_once_about_a_misspelt_variable_of_the_env_file(
    clean_environment: Path,
) -> None:
    (clean_environment / ".env").write_text("SCHEDULER_TIMEZNE=Europe/Berlin\n")
    result = show("--json")
    assert result.exit_code == 0
    assert result.stderr.count("unknown setting SCHEDULER_TIMEZNE") == 1


def test_show_says_an_env_file_flag_naming_a_directory_is_a_directory(
    clean_environment: Path,
) -> None:
    assert_bad_input(show("--env-file", str(clean_environment)), "is a directory")


def test_show_masks_a_password_given_as_a_query_parameter_of_the_store_url() -> None:
    result = show("--store", "redis://127.0.0.1:6379/0?password=hunter2")
    assert result.exit_code == 0, result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    data = shown("--store", "redis://127.0.0.1:6379/0?password=hunter2")
    assert "hunter2" not in json.dumps(data)


def test_show_refuses_an_empty_dashboard_host_naming_it() -> None:
    assert_bad_input(show("--json", env={"DASHBOARD_HOST": ""}), "DASHBOARD_HOST", "is empty")
