"""`.env` handled as `agentcron.toml` is (QA, sprint 26): a `.env` that is not a regular
file is refused, not silently skipped; `--env-file` names what is wrong with a FIFO; a
setting named without a value is an error; a bad value read from `.env` names the file and
the line. Each through `agentcron run --once` (one line, exit 2, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from agentcron.cli.main import build_app
from agentcron.config import ConfigError, load_settings

_OUR_PREFIXES = ("SCHEDULER_", "DASHBOARD_", "HEARTBEAT_", "REDIS_", "RETRY_", "OVERLAP_")

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, without agentcron variables in the environment."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(_OUR_PREFIXES):
            monkeypatch.delenv(name)
    return tmp_path


def run_once(*args: str) -> Result:
    return CliRunner().invoke(build_app(), ["run", "--once", "--no-dashboard", *args])


def assert_refused(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert result.stderr.startswith("agentcron: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# -- a .env that is not a regular file ------------------------------------------------------
def test_a_directory_named_env_is_refused_as_a_directory_named_agentcron_toml_is(
    workdir: Path,
) -> None:
    # Was rc 0: the directory was silently skipped (the daemon ran on the defaults).
    (workdir / ".env").mkdir()
    assert_refused(run_once(), "env file .env is a directory", "move or rename it")
    assert not (workdir / "data" / "scheduler.db").exists()


def test_a_broken_env_symlink_is_refused(workdir: Path) -> None:
    (workdir / ".env").symlink_to(workdir / "settings.env")  # not there
    assert_refused(run_once(), "env file .env is a broken symbolic link", "fix or remove")


@needs_fifo
def test_a_fifo_named_env_is_refused_without_blocking(workdir: Path) -> None:
    os.mkfifo(workdir / ".env")
    with pytest.raises(ConfigError, match="env file .env is not a regular file"):
        load_settings(environ={})
    assert_refused(run_once(), "env file .env is not a regular file (a FIFO")


def test_a_virtualenv_named_env_is_no_settings_file_and_is_not_read(workdir: Path) -> None:
    # `python -m venv .env` is common: its directory holds pyvenv.cfg.
    (workdir / ".env").mkdir()
    (workdir / ".env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert load_settings(environ={}).DASHBOARD_PORT == 3000


def test_agentcron_run_once_starts_beside_a_virtualenv_named_env(tmp_path: Path) -> None:
    (tmp_path / ".env").mkdir()
    (tmp_path / ".env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(_OUR_PREFIXES)}
    result = subprocess.run(
        [sys.executable, "-m", "agentcron", "run", "--once", "--no-dashboard"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


@needs_fifo
def test_env_file_naming_a_fifo_says_it_is_not_a_regular_file(workdir: Path) -> None:
    # Was: "--env-file settings.fifo does not exist".
    os.mkfifo(workdir / "settings.fifo")
    result = run_once("--env-file", "settings.fifo")
    assert_refused(result, "--env-file settings.fifo is not a regular file")
    assert "does not exist" not in result.stderr


def test_env_file_naming_a_broken_symlink_says_so(workdir: Path) -> None:
    (workdir / "link.env").symlink_to(workdir / "gone.env")
    assert_refused(run_once("--env-file", "link.env"), "--env-file link.env is a broken symbolic")


# -- lines of the file ----------------------------------------------------------------------
def test_a_setting_without_a_value_in_env_is_refused_naming_file_and_line(workdir: Path) -> None:
    # Was rc 0: python-dotenv gives None for `NAME` alone, and the line was dropped.
    (workdir / ".env").write_text("# heartbeat\nHEARTBEAT_INTERVAL\n")
    assert_refused(
        run_once(), "env file .env, line 2: HEARTBEAT_INTERVAL has no value", "HEARTBEAT_INTERVAL="
    )


def test_a_variable_that_is_not_ours_may_stand_without_a_value(workdir: Path) -> None:
    (workdir / ".env").write_text("COMPOSE_PROFILES\nDASHBOARD_PORT=4000\n")
    assert load_settings(environ={}).DASHBOARD_PORT == 4000


def test_a_bad_value_read_from_env_names_the_file_and_the_line(workdir: Path) -> None:
    # Was: "setting HEARTBEAT_INTERVAL='abc' is invalid: ..." with no word of where it was.
    (workdir / ".env").write_text("# settings\nSCHEDULER_TIMEZONE=UTC\nHEARTBEAT_INTERVAL=abc\n")
    assert_refused(run_once(), "env file .env, line 3: setting HEARTBEAT_INTERVAL='abc' is invalid")


def test_the_line_named_is_the_last_one_which_counts(workdir: Path) -> None:
    (workdir / ".env").write_text("DASHBOARD_PORT=1\nDASHBOARD_PORT=-5\n")
    with pytest.raises(ConfigError, match=r"^env file \.env, line 2: setting DASHBOARD_PORT="):
        load_settings(environ={})


def test_a_bad_value_from_the_environment_names_no_file(workdir: Path) -> None:
    # The environment wins over .env: the value at fault is not the file's.
    (workdir / ".env").write_text("HEARTBEAT_INTERVAL=5000\n")
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"HEARTBEAT_INTERVAL": "abc"})
    assert str(info.value).startswith("setting HEARTBEAT_INTERVAL='abc' is invalid")
    assert info.value.key == "HEARTBEAT_INTERVAL"
