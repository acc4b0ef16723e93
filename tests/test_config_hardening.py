"""Hostile settings input: values, `.env` files and secrets in messages."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from agentcron.config import ConfigError, load_settings, mask_url


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_stray_env_file_in_the_working_directory_is_not_read_when_another_is_named(
    in_tmp: Path,
) -> None:
    (in_tmp / ".env").write_bytes(b"SCHEDULER_TIMEZONE=caf\xe9\n")  # Latin-1, not UTF-8
    (in_tmp / "other.env").write_text("SCHEDULER_TIMEZONE=Europe/Berlin\n")
    assert load_settings(environ={}, env_file=None).SCHEDULER_TIMEZONE == "UTC"
    s = load_settings(environ={}, env_file=in_tmp / "other.env")
    assert s.SCHEDULER_TIMEZONE == "Europe/Berlin"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_env_in_the_working_directory_is_refused_without_blocking(
    in_tmp: Path,
) -> None:
    os.mkfifo(in_tmp / ".env")
    with pytest.raises(ConfigError, match="is not a regular file"):
        load_settings(environ={})


def test_a_virtualenv_named_env_is_not_a_settings_file(in_tmp: Path) -> None:
    (in_tmp / ".env").mkdir()  # a virtualenv called .env is common
    (in_tmp / ".env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert load_settings(environ={}).DASHBOARD_PORT == 3000


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('SCHEDULER_TIMEZONE="Europe/Berlin\nHEARTBEAT_INTERVAL=5000\n', 1),
        ("HEARTBEAT_INTERVAL=5000\nthis line is junk\n", 2),
    ],
)
def test_an_env_file_line_that_cannot_be_parsed_is_an_error_naming_file_and_line(
    in_tmp: Path, text: str, line: int
) -> None:
    (in_tmp / ".env").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(environ={})
    message = str(info.value)
    assert f".env, line {line}: cannot parse" in message
    assert "\n" not in message


def test_an_env_file_with_a_bom_and_crlf_line_ends_is_read(in_tmp: Path) -> None:
    (in_tmp / ".env").write_bytes(
        b"\xef\xbb\xbfSCHEDULER_TIMEZONE=Europe/Berlin\r\nHEARTBEAT_INTERVAL=5000\r\n"
    )
    s = load_settings(environ={})
    assert (s.SCHEDULER_TIMEZONE, s.HEARTBEAT_INTERVAL) == ("Europe/Berlin", 5000)


def test_an_env_file_in_utf16_or_latin1_is_refused_with_what_to_do(in_tmp: Path) -> None:
    for data in ("HEARTBEAT_INTERVAL=5000\n".encode("utf-16"), b"REDIS_HOST=caf\xe9\n"):
        (in_tmp / ".env").write_bytes(data)
        with pytest.raises(ConfigError, match="not UTF-8 text .*save it as UTF-8"):
            load_settings(environ={})
    (in_tmp / ".env").write_bytes("HEARTBEAT_INTERVAL=5000\n".encode("utf-16-le"))  # no BOM
    with pytest.raises(ConfigError, match="NUL bytes"):
        load_settings(environ={})


def test_a_misspelt_variable_in_the_env_file_is_reported_not_silently_ignored(
    in_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (in_tmp / ".env").write_text("SCHEDULER_TIMEZNE=Europe/Berlin\nOTHER_APP_KEY=x\n")
    with caplog.at_level(logging.WARNING, logger="agentcron.config"):
        load_settings(environ={})
    assert [r.getMessage() for r in caplog.records] == [
        "unknown setting SCHEDULER_TIMEZNE; did you mean SCHEDULER_TIMEZONE? (in .env)"
    ]
    told: list[str] = []
    load_settings(environ={}, warn=told.append)
    assert told == ["unknown setting SCHEDULER_TIMEZNE; did you mean SCHEDULER_TIMEZONE? (in .env)"]


@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_dashboard_host_is_refused_instead_of_listening_on_every_interface(
    value: str,
) -> None:
    with pytest.raises(ConfigError, match="DASHBOARD_HOST=.* is empty"):
        load_settings(environ={"DASHBOARD_HOST": value}, env_file=None)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DASHBOARD_HOST", "127.0.0.1\x00x"),
        ("DASHBOARD_HOST", "127.0.0.1\nx"),
        ("REDIS_HOST", ""),
        ("REDIS_HOST", "local host"),
        ("SCHEDULER_DATA_DIR", ""),
        ("SCHEDULER_DATA_DIR", "   "),
        ("SCHEDULER_DATA_DIR", "data\x00dir"),
        ("SCHEDULER_DATA_DIR", "data\ndir"),
        ("SCHEDULER_STORE", "sqlite:///x.db\nfoo"),
        ("WINDOWS_TASK_NAME", ""),
        ("WINDOWS_TASK_NAME", "..\\..\\Microsoft\\evil"),
        ("WINDOWS_TASK_NAME", "agent\ncron"),
    ],
)
def test_text_settings_with_empty_or_control_characters_are_refused_naming_the_key(
    key: str, value: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={key: value}, env_file=None)
    message = str(info.value)
    assert message.startswith(f"setting {key}=")
    assert "\n" not in message and "\x00" not in message


def test_a_nul_in_the_data_dir_flag_is_refused_too() -> None:
    with pytest.raises(ConfigError, match="SCHEDULER_DATA_DIR"):
        load_settings(environ={}, env_file=None, overrides={"SCHEDULER_DATA_DIR": Path("a\x00")})


@pytest.mark.parametrize("value", [str(10**400), "9" * 100_000])
def test_a_huge_value_gives_a_short_message(value: str) -> None:
    for key in ("HEARTBEAT_INTERVAL", "SCHEDULER_TIMEZONE", "OVERLAP_STRATEGY"):
        with pytest.raises(ConfigError) as info:
            load_settings(environ={key: value}, env_file=None)
        assert key in str(info.value)
        assert len(str(info.value)) < 300


def test_a_store_url_with_a_bad_character_is_refused_without_showing_its_password() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"SCHEDULER_STORE": "redis://:hunter2@host:6379/0\n"}, env_file=None)
    assert "SCHEDULER_STORE" in str(info.value)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://host:6379/0?password=hunter2",
        "redis://host:6379/0?db=1&Password=hunter2&x=1",
        "rediss://user:hunter2@host/0?token=hunter2",
    ],
)
def test_mask_url_hides_passwords_in_the_query_string_too(url: str) -> None:
    masked = mask_url(url)
    assert "hunter2" not in masked
    assert masked.startswith(url.partition("://")[0] + "://")


def test_mask_url_leaves_urls_without_credentials_alone() -> None:
    assert mask_url("redis://host:6379/0?db=1") == "redis://host:6379/0?db=1"
    assert mask_url("sqlite:///data/scheduler.db") == "sqlite:///data/scheduler.db"
