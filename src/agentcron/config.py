"""Settings: the spec's environment variables (and `.env`), typed and validated.

Names are the spec's (`SCHEDULER_DATA_DIR`, `HEARTBEAT_INTERVAL`, ...); durations are in
milliseconds as in the spec. Precedence, highest first: CLI flags (`overrides`), the process
environment, `.env` in the working directory, defaults.

`load_settings` never raises a pydantic traceback at a user: a bad value becomes a
`ConfigError` whose one-line message names the key and the value, and an unknown variable
that looks like ours (`HEARTBEAT_INTERVALL=...`) becomes a warning with a "did you mean".
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = [
    "ConfigError",
    "Settings",
    "load_settings",
    "mask_url",
    "reference_markdown",
    "unknown_variables",
]

#: Variables starting with one of these are ours; unknown ones get a "did you mean" warning.
_OUR_PREFIXES = (
    "SCHEDULER_",
    "REDIS_",
    "HEARTBEAT_",
    "DASHBOARD_",
    "WINDOWS_TASK_",
    "AGENT_LOOP_",
    "OVERLAP_",
    "RETRY_",
    "BACKUP_",
    "AGENTCRON_",
)

OverlapName = Literal[
    "skip", "queue", "buffer_one", "delay", "timeout", "replace", "concurrent", "allow"
]
RetryStrategyName = Literal["fixed", "linear", "exponential"]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]


#: Upper bounds, so that a value too large for a timer or a SQLite integer is refused
#: naming its key instead of failing later (the job file's durations stop at 100 years too).
_MAX_MS = 100 * 365 * 86_400_000
#: The shortest heartbeat interval, ms (`agentcron.heartbeat.sender.MIN_INTERVAL_S`).
MIN_HEARTBEAT_MS = 100
_MAX_COUNT = 1_000_000_000


class ConfigError(ValueError):
    """A setting has a bad value; the message names the key and the value.

    `key` is the setting at fault and `problem` what is wrong with its value (both None
    for an env file that cannot be read), so that a command can name its own flag when
    the value came from one (`--port -5`, not `DASHBOARD_PORT=-5`)."""

    def __init__(self, message: str, *, key: str | None = None, problem: str | None = None):
        super().__init__(message)
        self.key = key
        self.problem = problem


def _not_below(value: int, info: Any, other: str) -> int:
    """`value`, unless it is below the setting `other` (validated before it)."""
    floor = info.data.get(other)
    if floor is not None and value < floor:
        raise ValueError(f"must be >= {other} ({floor})")
    return value


class Settings(BaseSettings):
    """Every setting of `agentcron run`, with the spec's variable names.

    Durations ending in `_ms` are milliseconds, as in the spec's `.env`.
    """

    model_config = SettingsConfigDict(
        # None: pydantic-settings would otherwise read ./.env itself on every `Settings()`,
        # whatever `load_settings` was told (a FIFO named .env hung it, a Latin-1 one raised
        # UnicodeDecodeError); `load_settings` reads the env file it is given, once.
        env_file=None,
        extra="ignore",
        case_sensitive=True,
        validate_default=True,
        frozen=True,
    )

    # Scheduler
    SCHEDULER_DATA_DIR: Path = Field(
        Path("./data"), description="Data directory (database, backups, logs, token)."
    )
    SCHEDULER_TIMEZONE: str = Field("UTC", description="Default IANA time zone of cron jobs.")
    SCHEDULER_LOG_LEVEL: LogLevel = Field("info", description="Log level.")
    SCHEDULER_STORE: str | None = Field(
        None, description="Store URL (sqlite:///..., redis://...); default: sqlite in the data dir."
    )
    SCHEDULER_DB_SYNCHRONOUS: Literal["NORMAL", "FULL"] = Field(
        "NORMAL",
        description="SQLite durability: NORMAL (survives a crash of agentcron) or FULL "
        "(also a power loss; slower).",
    )
    SCHEDULER_NODE_ID: str | None = Field(
        None, description="Node id (default: stable per host and data dir)."
    )
    SCHEDULER_LEASE: int = Field(
        60_000,
        ge=1_000,
        le=_MAX_MS,
        description="Run lease, ms: a dead node's runs are taken over after this.",
    )
    SCHEDULER_SHUTDOWN_GRACE: int = Field(
        30_000,
        ge=0,
        le=_MAX_MS,
        description="Grace for running jobs on stop, ms (a second SIGINT/SIGTERM ends it).",
    )

    # Redis
    REDIS_HOST: str = Field("localhost", description="Redis host (used when the store is redis).")
    REDIS_PORT: int = Field(6379, ge=1, le=65535, description="Redis port.")
    REDIS_PASSWORD: SecretStr | None = Field(None, description="Redis password.")
    REDIS_DB: int = Field(0, ge=0, le=15, description="Redis database index.")

    # Heartbeat
    # At 1 ms a node spun at ~580 % CPU writing heartbeats: 100 ms is already a lot.
    HEARTBEAT_INTERVAL: int = Field(
        30_000, ge=MIN_HEARTBEAT_MS, le=_MAX_MS, description="Heartbeat interval, ms."
    )
    HEARTBEAT_TIMEOUT: int = Field(
        60_000,
        gt=0,
        le=_MAX_MS,
        description=(
            "Kept for the spec's `.env`, ms; must be >= HEARTBEAT_INTERVAL and sets no"
            " threshold: every node is suspect after 1 missed beat and offline after 3 of"
            " its own interval, in the daemon and every tool alike (docs/health.md)."
        ),
    )

    # Dashboard
    DASHBOARD_ENABLED: bool = Field(True, description="Serve the dashboard inside `agentcron run`.")
    DASHBOARD_HOST: str = Field("127.0.0.1", description="Address the dashboard binds to.")
    DASHBOARD_PORT: int = Field(3000, ge=0, le=65535, description="Dashboard port.")
    DASHBOARD_AUTH_TOKEN: SecretStr | None = Field(
        None, description="Bearer token; generated into the data dir when unset."
    )

    # Windows Task Scheduler
    WINDOWS_TASK_ENABLED: bool = Field(
        True, description="Allow `agentcron service` to use Task Scheduler."
    )
    WINDOWS_TASK_NAME: str = Field(
        "agentcron", description="Task name (inside the \\agentcron\\ folder)."
    )

    # Agent loops
    AGENT_LOOP_CONCURRENCY: int = Field(
        5, ge=1, le=_MAX_COUNT, description="Max agent loops running at once."
    )
    AGENT_LOOP_TIMEOUT: int = Field(
        300_000, gt=0, le=_MAX_MS, description="Timeout of an agent loop run, ms."
    )
    AGENT_LOOP_RETRY_ATTEMPTS: int = Field(
        3, ge=1, le=_MAX_COUNT, description="Attempts per agent loop run."
    )

    # Overlap
    OVERLAP_STRATEGY: OverlapName = Field("skip", description="Default overlap policy.")
    OVERLAP_TIMEOUT: int = Field(
        300_000,
        gt=0,
        le=_MAX_MS,
        description="Delay of the `delay` overlap policy; with `timeout`, the run timeout of "
        "jobs that set none, ms.",
    )

    # Retry
    RETRY_STRATEGY: RetryStrategyName = Field("exponential", description="Default retry strategy.")
    RETRY_BASE_DELAY: int = Field(1_000, ge=0, le=_MAX_MS, description="First retry delay, ms.")
    RETRY_MAX_DELAY: int = Field(30_000, ge=0, le=_MAX_MS, description="Largest retry delay, ms.")
    RETRY_MAX_ATTEMPTS: int = Field(3, ge=1, le=_MAX_COUNT, description="Default attempts per run.")

    # Backups and retention
    BACKUP_INTERVAL: int = Field(
        3_600_000, ge=60_000, le=_MAX_MS, description="Backup interval, ms (hourly)."
    )
    BACKUP_RETENTION: int = Field(24, ge=1, le=_MAX_COUNT, description="Backups kept.")
    SCHEDULER_RUN_RETENTION_DAYS: int = Field(
        30, ge=1, le=36_500, description="Runs older than this are pruned."
    )
    SCHEDULER_RUNS_PER_JOB: int = Field(
        1_000, ge=1, le=_MAX_COUNT, description="Runs kept per job."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # `load_settings` reads the environment and `.env` itself (so tests can inject
        # them); `Settings(...)` takes values only from its arguments.
        return (init_settings,)

    @field_validator("SCHEDULER_TIMEZONE")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from agentcron.cron._zones import not_iana_problem

        if (problem := not_iana_problem(value)) is not None:
            raise ValueError(problem)
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            # OSError: a folder of the zone database ("America") or a name too long for a file
            # (The value itself is quoted by `_first_error`, shortened.)
            raise ValueError("unknown time zone (use an IANA name such as Europe/Berlin)") from exc
        return value

    @field_validator("SCHEDULER_DATA_DIR", mode="before")
    @classmethod
    def _usable_path(cls, value: object) -> object:
        # An empty value would be Path(".") (the database in the working directory); a NUL
        # made `agentcron run` fail with a traceback when it created the directory.
        if isinstance(value, str | Path):
            if not str(value).strip():
                raise ValueError("is empty; name a directory, or remove it for the default ./data")
            if _has_control(str(value)):
                raise ValueError("contains a control character (newline, tab, NUL ...)")
        return value

    @field_validator("DASHBOARD_HOST", "REDIS_HOST")
    @classmethod
    def _host_name(cls, value: str) -> str:
        # An empty DASHBOARD_HOST made the dashboard listen on every interface.
        if not value.strip():
            raise ValueError(
                "is empty; give a host name or address (127.0.0.1 for this machine only, "
                "0.0.0.0 for every interface)"
            )
        if any(c.isspace() for c in value) or _has_control(value):
            raise ValueError("may not contain spaces or control characters")
        return value

    @field_validator("SCHEDULER_STORE")
    @classmethod
    def _store_text(cls, value: str | None) -> str | None:
        if value is not None and _has_control(value):
            raise ValueError("contains a control character (newline, tab, NUL ...)")
        return value

    @field_validator("WINDOWS_TASK_NAME")
    @classmethod
    def _task_name(cls, value: str) -> str:
        # The task is \agentcron\<name>: a separator would put it in another folder.
        if not value.strip() or _has_control(value) or any(c in value for c in '\\/:*?"<>|'):
            raise ValueError(
                'must be a non-empty name without control characters or \\ / : * ? " < > |'
            )
        return value

    @field_validator("HEARTBEAT_TIMEOUT")
    @classmethod
    def _timeout_not_below_interval(cls, value: int, info: Any) -> int:
        # Shorter than the interval, every node would be suspect between any two beats.
        return _not_below(value, info, "HEARTBEAT_INTERVAL")

    @field_validator("SCHEDULER_NODE_ID")
    @classmethod
    def _printable_node_id(cls, value: str | None) -> str | None:
        # It is shown on one line (`agentcron nodes`, logs) and is part of store keys.
        if value is not None and not (0 < len(value) <= 200 and value.isprintable()):
            raise ValueError("must be 1-200 printable characters (no newlines or tabs)")
        return value

    @field_validator("RETRY_MAX_DELAY")
    @classmethod
    def _max_not_below_base(cls, value: int, info: Any) -> int:
        return _not_below(value, info, "RETRY_BASE_DELAY")

    # -- derived values (seconds, URLs) --------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.SCHEDULER_DATA_DIR

    @property
    def store_url(self) -> str:
        """The store URL: `SCHEDULER_STORE`, else `sqlite:///<data dir>/scheduler.db`.

        `SCHEDULER_STORE=redis` (the bare word) means Redis as the REDIS_* variables say
        (`redis_url`)."""
        if self.SCHEDULER_STORE == "redis":
            return self.redis_url
        if self.SCHEDULER_STORE:
            return self.SCHEDULER_STORE
        url = f"sqlite:///{(self.SCHEDULER_DATA_DIR / 'scheduler.db').as_posix()}"
        return url + "?synchronous=FULL" if self.SCHEDULER_DB_SYNCHRONOUS == "FULL" else url

    @property
    def redis_url(self) -> str:
        """`redis://[:password@]host:port/db` from the REDIS_* variables."""
        auth = ""
        if self.REDIS_PASSWORD is not None and self.REDIS_PASSWORD.get_secret_value():
            from urllib.parse import quote

            auth = f":{quote(self.REDIS_PASSWORD.get_secret_value(), safe='')}@"
        return f"redis://{auth}{self.REDIS_HOST}:{self.REDIS_PORT}/{self.REDIS_DB}"

    @property
    def heartbeat_interval_s(self) -> float:
        return self.HEARTBEAT_INTERVAL / 1000

    @property
    def agent_loop_timeout_s(self) -> float:
        return self.AGENT_LOOP_TIMEOUT / 1000

    def masked(self) -> dict[str, Any]:
        """Every setting as plain data, secrets shown as `********` (for `config show`)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                value = str(value)
            elif name == "SCHEDULER_STORE" and value:
                value = mask_url(value)
            out[name] = value
        out["store_url (derived)"] = mask_url(self.store_url)
        return out


def _has_control(text: str) -> bool:
    """True when `text` holds a control character (newline, tab, NUL, ESC ...)."""
    return any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)


#: Query parameters that carry a credential (`redis://host/0?password=...` is honoured by
#: redis-py, so it must be hidden like the password before the `@`).
_SECRET_QUERY = re.compile(
    r"([?&](?:password|passwd|pwd|pass|secret|token|auth|api_?key)=)[^&#]*", re.IGNORECASE
)


def mask_url(url: str) -> str:
    """Hide the password of `scheme://user:password@host` URLs and of `?password=` (and
    `token=`, `secret=` ...) query parameters."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    rest = _SECRET_QUERY.sub(r"\1********", rest)
    if "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        rest = f"{user}:********@{host}"
    return f"{scheme}://{rest}"


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Warnings for variables that look like ours but are not settings ("did you mean")."""
    known = set(Settings.model_fields)
    warnings = []
    for name in sorted(environ):
        if not name.startswith(_OUR_PREFIXES) or name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"unknown setting {name}{hint}")
    return warnings


def load_settings(
    *,
    environ: Mapping[str, str] | None = None,
    env_file: Path | str | None = ".env",
    overrides: Mapping[str, Any] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Settings:
    """Read settings from `environ` (default `os.environ`), `env_file` and `overrides`.

    Raises `ConfigError` naming the key and the value of the first bad setting (and the
    file and line when the value came from the env file), or the file and line of an env
    file line that cannot be parsed or names a setting without a value (`HEARTBEAT_INTERVAL`
    with no `=`). Variables of the env file that look like ours but are not settings
    (`SCHEDULER_TIMEZNE`) are passed to `warn` (default: logged as warnings of
    `agentcron.config`), so a typo there is never silently ignored.

    An `env_file` that does not exist is not read. One that exists but is not a regular file
    (a directory, a FIFO, a broken symlink) is refused, as `agentcron.toml` is: a settings
    file that was meant must not be silently skipped. A virtualenv named `.env` (a directory
    holding `pyvenv.cfg`) is no settings file and is not read.
    """
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    #: Where each value taken from the env file is: its line number.
    file_lines: dict[str, int] = {}
    path = None if env_file is None else Path(env_file)
    if path is not None and os.path.lexists(path) and not _is_virtualenv(path):
        from_file, lines = _parse_env_file(path)
        for warning in unknown_variables(dict.fromkeys(from_file, "")):
            (warn or _log_warning)(f"{warning} (in {env_file})")
        for key, value in from_file.items():
            if key not in Settings.model_fields:
                continue
            if value is None:  # `NAME` alone: python-dotenv drops it without a word
                raise ConfigError(
                    f"env file {path}, line {lines[key]}: {key} has no value; write "
                    f"{key}=value, or remove the line for the default",
                    key=key,
                    problem="has no value",
                )
            values[key] = value
            file_lines[key] = lines[key]
    for key, value in env.items():
        if key in Settings.model_fields:
            values[key] = value
            file_lines.pop(key, None)
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
            file_lines.pop(key, None)
    try:
        return Settings(**values)
    except ValidationError as exc:
        key, problem = _error_key(exc)
        message = _first_error(exc, values)
        if key in file_lines:
            message = f"env file {path}, line {file_lines[key]}: {message}"
        raise ConfigError(message, key=key, problem=problem) from None


def _is_virtualenv(path: Path) -> bool:
    """True for a directory that is a Python virtualenv (`python -m venv .env` is common)."""
    return path.is_dir() and (path / "pyvenv.cfg").is_file()


def _log_warning(message: str) -> None:
    logging.getLogger("agentcron.config").warning("%s", message)


def read_env_file(path: Path) -> dict[str, str | None]:
    """Every variable of the env file `path` (a line `NAME` without `=` gives None).

    Raises `ConfigError` when the file cannot be read, is not a regular file (a directory,
    a FIFO, a broken symlink: refused as `agentcron.toml` is, by the same reader), is not
    UTF-8 text (a UTF-8 BOM is fine) or has a line that is not `NAME=value` (python-dotenv
    would only log "could not parse statement" without naming the file, and drop the line:
    a setting that was meant would be silently left at its default).
    """
    return _parse_env_file(path)[0]


def _parse_env_file(path: Path) -> tuple[dict[str, str | None], dict[str, int]]:
    """`read_env_file`, and the line of each variable (the last one, which counts)."""
    import io

    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    text = _env_file_text(path)
    lines: dict[str, int] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            line = binding.original.string.strip()
            shown = line if len(line) <= 60 else line[:57] + "..."
            raise ConfigError(
                f"env file {path}, line {binding.original.line}: cannot parse {shown!r}; "
                "write NAME=value (quote values with spaces, close every quote)"
            )
        if binding.key is not None:
            lines[binding.key] = binding.original.line
    return dict(dotenv_values(stream=io.StringIO(text))), lines


def _env_file_text(path: Path) -> str:
    """The text of the env file `path`, read as `agentcron.toml` is (`read_regular_file`:
    never blocking on a FIFO); `ConfigError` saying what is wrong and what to do."""
    from agentcron.jobfile import read_regular_file

    try:
        raw = read_regular_file(path, what="settings file", inside="the settings file")
    except IsADirectoryError:
        raise ConfigError(
            f"env file {path} is a directory, not a settings file (NAME=value lines); "
            "move or rename it"
        ) from None
    except OSError as exc:
        if path.is_symlink() and not path.exists():
            raise ConfigError(
                f"env file {path} is a broken symbolic link (its target does not exist); "
                "fix or remove the link"
            ) from None
        if isinstance(exc, FileNotFoundError):  # removed meanwhile
            raise ConfigError(f"env file {path} does not exist") from None
        reason = exc.strerror or str(exc)
        if exc.errno == 0 and reason.startswith("not a regular file"):
            raise ConfigError(
                f"env file {path} is {reason}; make it a file of NAME=value lines, or move it away"
            ) from None
        raise ConfigError(f"cannot read env file {path}: {reason}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"env file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    if "\x00" in text:
        raise ConfigError(f"env file {path} contains NUL bytes (UTF-16?); save it as UTF-8")
    return text


#: Settings whose value an error message never shows.
_SECRETS = ("DASHBOARD_AUTH_TOKEN", "REDIS_PASSWORD")
#: The longest value an error message quotes (a 10**400-digit value stays one short line).
_MAX_SHOWN = 60


def _shown_value(key: str, value: object) -> str:
    if key in _SECRETS:
        return "'********'"
    text = mask_url(value) if isinstance(value, str) else value
    shown = repr(text)
    if len(shown) > _MAX_SHOWN:
        shown = f"{shown[: _MAX_SHOWN - 5]}...{shown[0]} ({len(str(value))} characters)"
    return shown


def _error_key(exc: ValidationError) -> tuple[str, str]:
    """The setting of the first error and what is wrong with its value."""
    err = exc.errors()[0]
    key = str(err["loc"][0]) if err["loc"] else "settings"
    return key, str(err["msg"]).removeprefix("Value error, ")


def _first_error(exc: ValidationError, values: Mapping[str, Any]) -> str:
    key, msg = _error_key(exc)
    if key not in values and key in Settings.model_fields:
        # A default that another setting made invalid: say so, and what to set.
        default = Settings.model_fields[key].default
        return f"setting {key} (unset, default {default!r}) is invalid: {msg}; set {key} too"
    return f"setting {key}={_shown_value(key, values.get(key, '<unset>'))} is invalid: {msg}"


def _type_text(annotation: Any) -> str:
    import types
    import typing

    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in typing.get_args(annotation))
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return _type_text(args[0]) + " (optional)" if len(args) == 1 else "value"
    if annotation is SecretStr:
        return "secret"
    if annotation is Path:
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def reference_markdown() -> str:
    """The configuration reference (`docs/configuration.md`), generated from `Settings`."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `agentcron.config.Settings` (`python -m agentcron.config > "
        "docs/configuration.md`); a test keeps it current.",
        "",
        "Settings come from, highest first: command-line flags, the environment, `.env` in "
        "the working directory, defaults; every command (`run`, `jobs`, `db`, `queue`, "
        "`worker`, `nodes`, `health`, `dashboard`) resolves them this way, so it "
        "works on the database of the daemon started in the same directory, and refuses a "
        "bad value (one line naming it, exit 2). Durations named like the spec's are "
        "milliseconds. `agentcron config show` prints the effective values with secrets "
        "masked.",
        "",
        "`.env` (or the file of `--env-file`) holds `NAME=value` lines, read as "
        "`agentcron.toml` is: when it exists but is not a regular file (a directory, a FIFO, "
        "a broken symlink) it is refused, not skipped; a virtualenv named `.env` (a "
        "directory with `pyvenv.cfg`) is no settings file and is not read. A line that "
        "cannot be parsed, or names a setting without `=value`, is refused naming the file "
        "and the line, and so is a bad value read from the file.",
        "",
        "| variable | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, info in Settings.model_fields.items():
        annotation = _type_text(info.annotation)
        default = info.default
        shown = "" if default is None else str(default)
        if isinstance(default, Path):
            shown = default.as_posix()
        cell = f"`{shown}`" if shown else "unset"
        lines.append(f"| `{name}` | {annotation} | {cell} | {info.description or ''} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(reference_markdown())
