from __future__ import annotations

from pathlib import Path

import pytest

from agentcron.config import ConfigError, Settings, load_settings, unknown_variables

SPEC_ENV = {
    "SCHEDULER_DATA_DIR": "./var/agent",
    "SCHEDULER_TIMEZONE": "America/New_York",
    "SCHEDULER_LOG_LEVEL": "debug",
    "REDIS_HOST": "127.0.0.1",
    "REDIS_PORT": "6380",
    "REDIS_PASSWORD": "s3cret/pw",
    "REDIS_DB": "2",
    "HEARTBEAT_INTERVAL": "30000",
    "HEARTBEAT_TIMEOUT": "60000",
    "DASHBOARD_ENABLED": "false",
    "DASHBOARD_PORT": "3100",
    "DASHBOARD_AUTH_TOKEN": "your-secure-token",
    "WINDOWS_TASK_ENABLED": "true",
    "WINDOWS_TASK_NAME": "OpenClawAgent",
    "AGENT_LOOP_CONCURRENCY": "5",
    "AGENT_LOOP_TIMEOUT": "300000",
    "AGENT_LOOP_RETRY_ATTEMPTS": "3",
    "OVERLAP_STRATEGY": "queue",
    "OVERLAP_TIMEOUT": "120000",
    "RETRY_STRATEGY": "linear",
    "RETRY_BASE_DELAY": "500",
    "RETRY_MAX_DELAY": "20000",
    "RETRY_MAX_ATTEMPTS": "4",
}


def test_every_variable_of_the_spec_env_is_read_with_its_type() -> None:
    s = load_settings(environ=SPEC_ENV, env_file=None)
    assert s.SCHEDULER_DATA_DIR == Path("./var/agent")
    assert s.SCHEDULER_TIMEZONE == "America/New_York"
    assert s.SCHEDULER_LOG_LEVEL == "debug"
    assert (s.REDIS_HOST, s.REDIS_PORT, s.REDIS_DB) == ("127.0.0.1", 6380, 2)
    assert s.REDIS_PASSWORD is not None and s.REDIS_PASSWORD.get_secret_value() == "s3cret/pw"
    assert (s.HEARTBEAT_INTERVAL, s.HEARTBEAT_TIMEOUT) == (30000, 60000)
    assert s.heartbeat_interval_s == 30.0
    assert (s.DASHBOARD_ENABLED, s.DASHBOARD_PORT) == (False, 3100)
    assert s.DASHBOARD_AUTH_TOKEN is not None
    assert s.DASHBOARD_AUTH_TOKEN.get_secret_value() == "your-secure-token"
    assert (s.WINDOWS_TASK_ENABLED, s.WINDOWS_TASK_NAME) == (True, "OpenClawAgent")
    assert (s.AGENT_LOOP_CONCURRENCY, s.AGENT_LOOP_TIMEOUT, s.AGENT_LOOP_RETRY_ATTEMPTS) == (
        5,
        300000,
        3,
    )
    assert s.agent_loop_timeout_s == 300.0
    assert (s.OVERLAP_STRATEGY, s.OVERLAP_TIMEOUT) == ("queue", 120000)
    assert (s.RETRY_STRATEGY, s.RETRY_BASE_DELAY, s.RETRY_MAX_DELAY, s.RETRY_MAX_ATTEMPTS) == (
        "linear",
        500,
        20000,
        4,
    )


def test_defaults_put_the_store_in_the_data_dir() -> None:
    s = load_settings(environ={}, env_file=None)
    assert s.store_url == "sqlite:///data/scheduler.db"
    assert s.DASHBOARD_HOST == "127.0.0.1"
    assert s.DASHBOARD_PORT == 3000


def test_redis_url_quotes_the_password() -> None:
    s = load_settings(environ=SPEC_ENV, env_file=None)
    assert s.redis_url == "redis://:s3cret%2Fpw@127.0.0.1:6380/2"


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("HEARTBEAT_INTERVAL", "abc", "valid integer"),
        ("HEARTBEAT_INTERVAL", "0", "greater than or equal to 100"),
        # Accepted before: 1 ms heartbeats spun the node at ~580 % CPU.
        ("HEARTBEAT_INTERVAL", "1", "greater than or equal to 100"),
        ("BACKUP_INTERVAL", "1", "greater than or equal to 60000"),
        ("REDIS_PORT", "70000", "less than or equal to 65535"),
        ("SCHEDULER_TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("SCHEDULER_TIMEZONE", "America", "unknown time zone"),  # a folder of tzdata
        ("SCHEDULER_TIMEZONE", "x" * 10240, "unknown time zone"),  # too long for a file name
        # A file of Debian's zone database: whatever zone this machine is set to.
        ("SCHEDULER_TIMEZONE", "localtime", "'localtime' is not an IANA time zone name"),
        ("OVERLAP_STRATEGY", "sometimes", "'skip'"),
        ("RETRY_STRATEGY", "random", "'exponential'"),
        ("DASHBOARD_ENABLED", "maybe", "valid boolean"),
        ("SCHEDULER_LOG_LEVEL", "loud", "'info'"),
        ("AGENT_LOOP_CONCURRENCY", "0", "greater than or equal to 1"),
        # Accepted before: a node id over two lines in `agentcron nodes`.
        ("SCHEDULER_NODE_ID", "a/b\nc", "printable"),
        ("SCHEDULER_NODE_ID", "", "printable"),
    ],
)
def test_a_bad_value_names_the_key_and_the_value(key: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={key: value}, env_file=None)
    message = str(info.value)
    assert f"{key}={repr(value)[:40]}" in message  # a long value is shortened
    assert fragment in message
    assert "\n" not in message
    assert len(message) < 300


@pytest.mark.parametrize(
    "key",
    [
        "SCHEDULER_LEASE",
        "SCHEDULER_SHUTDOWN_GRACE",
        "BACKUP_INTERVAL",
        "HEARTBEAT_INTERVAL",
        "AGENT_LOOP_TIMEOUT",
        "RETRY_MAX_DELAY",
        "SCHEDULER_RUN_RETENTION_DAYS",
        "SCHEDULER_RUNS_PER_JOB",
        "BACKUP_RETENTION",
    ],
)
def test_a_value_too_large_to_use_is_refused_naming_the_key(key: str) -> None:
    # Accepted before: `agentcron run` then died with an OverflowError traceback (lease,
    # backups, retention) or failed to prune runs every hour (SQLite INTEGER).
    huge = "99999999999999999999"
    environ = {key: huge}
    if key == "HEARTBEAT_INTERVAL":
        environ["HEARTBEAT_TIMEOUT"] = huge
    with pytest.raises(ConfigError) as info:
        load_settings(environ=environ, env_file=None)
    assert f"{key}={huge!r}" in str(info.value)
    assert "less than or equal to" in str(info.value)


def test_retry_max_delay_below_base_delay_is_refused() -> None:
    with pytest.raises(ConfigError, match="RETRY_MAX_DELAY"):
        load_settings(environ={"RETRY_BASE_DELAY": "5000", "RETRY_MAX_DELAY": "100"}, env_file=None)


def test_a_heartbeat_timeout_shorter_than_the_interval_is_refused() -> None:
    # Accepted before: every node was suspect between two of its beats.
    environ = {"HEARTBEAT_INTERVAL": "30000", "HEARTBEAT_TIMEOUT": "10"}
    with pytest.raises(ConfigError, match="HEARTBEAT_TIMEOUT.*>= HEARTBEAT_INTERVAL"):
        load_settings(environ=environ, env_file=None)


def test_a_default_made_invalid_by_another_setting_is_named_as_unset_with_what_to_set() -> None:
    # Said before: "HEARTBEAT_TIMEOUT='<unset>' is invalid", about a key the user never set.
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"HEARTBEAT_INTERVAL": "120000"}, env_file=None)
    assert str(info.value) == (
        "setting HEARTBEAT_TIMEOUT (unset, default 60000) is invalid: must be >="
        " HEARTBEAT_INTERVAL (120000); set HEARTBEAT_TIMEOUT too"
    )


def test_secrets_are_masked_in_errors_and_in_the_shown_configuration() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"REDIS_PASSWORD": "hunter2", "REDIS_PORT": "x"}, env_file=None)
    assert "hunter2" not in str(info.value)
    shown = load_settings(environ=SPEC_ENV, env_file=None).masked()
    assert shown["DASHBOARD_AUTH_TOKEN"] == "********"
    assert shown["REDIS_PASSWORD"] == "********"
    assert "your-secure-token" not in repr(shown)


def test_dot_env_is_read_and_the_environment_wins_over_it(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DASHBOARD_PORT=4000\nHEARTBEAT_INTERVAL=1000\n# comment\n")
    s = load_settings(environ={"DASHBOARD_PORT": "5000"}, env_file=env_file)
    assert s.DASHBOARD_PORT == 5000
    assert s.HEARTBEAT_INTERVAL == 1000


def test_an_env_file_that_is_not_utf8_is_a_config_error_naming_it(tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_bytes(b"\xff\xfe\x00x")
    with pytest.raises(ConfigError, match=f"^env file {env_file} is not UTF-8 text"):
        load_settings(environ={}, env_file=env_file)


def test_cli_overrides_win_over_the_environment() -> None:
    s = load_settings(
        environ={"DASHBOARD_PORT": "5000"}, env_file=None, overrides={"DASHBOARD_PORT": 6000}
    )
    assert s.DASHBOARD_PORT == 6000


def test_the_process_environment_does_not_leak_into_injected_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEARTBEAT_INTERVAL", "777")
    assert load_settings(environ={}, env_file=None).HEARTBEAT_INTERVAL == 30000
    assert load_settings(env_file=None).HEARTBEAT_INTERVAL == 777


def test_unknown_variables_that_look_like_ours_get_a_did_you_mean() -> None:
    warnings = unknown_variables({"HEARTBEAT_INTERVALL": "1", "PATH": "/bin", "REDIS_HOST": "x"})
    assert warnings == ["unknown setting HEARTBEAT_INTERVALL; did you mean HEARTBEAT_INTERVAL?"]


def test_settings_is_immutable() -> None:
    s = Settings()
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on frozen models
        s.DASHBOARD_PORT = 1  # type: ignore[misc]


def test_a_password_in_the_store_url_is_masked_when_shown() -> None:
    shown = load_settings(
        environ={"SCHEDULER_STORE": "redis://:hunter2@127.0.0.1:6379/0"}, env_file=None
    ).masked()
    assert "hunter2" not in repr(shown)
    assert shown["SCHEDULER_STORE"] == "redis://:********@127.0.0.1:6379/0"


def test_the_configuration_reference_in_docs_is_current() -> None:
    from agentcron.config import reference_markdown

    doc = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    assert doc.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/configuration.md is stale: run `python -m agentcron.config > docs/configuration.md`"
    )


def test_full_durability_is_selectable_for_the_default_sqlite_store() -> None:
    from agentcron.store.sqlite import SqliteStore

    s = load_settings(environ={"SCHEDULER_DB_SYNCHRONOUS": "FULL"}, env_file=None)
    assert s.store_url == "sqlite:///data/scheduler.db?synchronous=FULL"
    store = SqliteStore.from_url(s.store_url)
    assert store.synchronous == "FULL"
    assert store.path == Path("data/scheduler.db")
    with pytest.raises(ValueError, match="unknown option"):
        SqliteStore.from_url("sqlite:///x.db?sync=full")
