"""Helpers shared by the command groups: one-line errors with exit code 2, JSON output, and
the `--data-dir` / `--store` options with the store they open."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer.core import TyperGroup

from agentcron.store.base import Store, StoreError, open_store

EXIT_BAD_INPUT = 2


def fail(message: str, *, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print `agentcron: <message>` on stderr as one line and exit (2 = bad input)."""
    one_line = visible(" ".join(str(message).split()))
    typer.echo(f"agentcron: {one_line}", err=True)
    raise typer.Exit(code)


def visible(text: str, *, keep: str = "") -> str:
    """`text` with its control characters (ESC, newlines, bidi overrides ...) written as
    escapes (`\\x1b`), so that a name or an error read from the store cannot recolour, move
    the cursor in or clear the user's terminal. Characters in `keep` (e.g. "\\n") stay.
    For human output only: --json prints values exactly."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)


def print_json(value: Any) -> None:
    """Print `value` as indented JSON on stdout (datetimes and other objects via `str`).
    Infinity and NaN, which JSON cannot hold (a definition stored before they were
    refused), are printed as the strings "inf" and "nan" so the output stays JSON."""
    try:
        text = json.dumps(value, indent=2, default=str, ensure_ascii=False, allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(value), indent=2, default=str, ensure_ascii=False)
    sys.stdout.write(text + "\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


# -- the data directory and the store, shared by the command groups ----------------------
DATA_DIR_HELP = (
    "Data directory holding scheduler.db (default: $SCHEDULER_DATA_DIR, then .env, or ./data)."
)
STORE_HELP = (
    "Store URL (default: $SCHEDULER_STORE, then .env, or sqlite:///<data-dir>/scheduler.db)."
)
#: The settings file every command reads, as `agentcron run` does (when it exists).
DEFAULT_ENV_FILE = Path(".env")


def data_dir_option() -> Any:
    """`--data-dir DIR` for a command; unset, `cli_settings` resolves it as `agentcron run`
    does (`SCHEDULER_DATA_DIR` from the environment, then `.env`, then `./data`)."""
    return typer.Option(None, "--data-dir", help=DATA_DIR_HELP)


def store_option() -> Any:
    """`--store URL` for a command; unset, `cli_settings` resolves it (`SCHEDULER_STORE`
    from the environment, then `.env`, then SQLite in the data directory)."""
    return typer.Option(None, "--store", help=STORE_HELP)


if TYPE_CHECKING:
    from agentcron.config import Settings


#: The flag of each setting a command can take from its command line.
_FLAGS = {
    "SCHEDULER_DATA_DIR": "--data-dir",
    "SCHEDULER_STORE": "--store",
    "DASHBOARD_HOST": "--host",
    "DASHBOARD_PORT": "--port",
}


def cli_settings(
    *,
    data_dir: Path | None = None,
    store: str | None = None,
    host: str | None = None,
    port: int | None = None,
    env_file: Path = DEFAULT_ENV_FILE,
    warn: Callable[[str], None] | None = None,
) -> Settings:
    """The settings as `agentcron run` resolves them: the flags given here, then the
    environment, then the env file (`./.env` when it exists), then the defaults. So every
    command works on the database the daemon of this directory uses.

    A bad value ends the command with one line and exit 2, naming the flag when it came
    from one (`--port -5`) and else the setting (`SCHEDULER_TIMEZONE='Mars/X'`). A
    variable of the env file that looks like ours but is no setting goes to `warn`
    (default: a warning line on stderr)."""
    from agentcron.config import ConfigError, load_settings

    flags: dict[str, Any] = {
        "SCHEDULER_DATA_DIR": data_dir,
        "SCHEDULER_STORE": store,
        "DASHBOARD_HOST": host,
        "DASHBOARD_PORT": port,
    }
    try:
        return load_settings(env_file=env_file, overrides=flags, warn=warn or _warn)
    except ConfigError as exc:
        value = flags.get(exc.key or "")
        if value is not None:
            shown = str(value) if isinstance(value, Path) else value
            fail(f"{_FLAGS[str(exc.key)]} {shown!r} is invalid: {exc.problem}")
        fail(str(exc))


def _warn(warning: str) -> None:
    typer.echo(visible(f"agentcron: warning: {warning}"), err=True)


def resolve_store(data_dir: Path | None, store: str | None) -> tuple[Path, str]:
    """The data directory and the store URL of a command's `--data-dir` and `--store` (see
    `cli_settings`)."""
    settings = cli_settings(data_dir=data_dir, store=store)
    return settings.data_dir, settings.store_url


def store_url(data_dir: Path, store: str | None) -> str:
    """`store` if given, else `sqlite:///<data_dir>/scheduler.db`; `redis` (the bare word,
    as in `SCHEDULER_STORE=redis`) is the Redis that the REDIS_* variables describe."""
    if store == "redis":
        return cli_settings().redis_url
    if store:
        return store
    return f"sqlite:///{(data_dir / 'scheduler.db').as_posix()}"


def sqlite_path(url: str) -> Path | None:
    """The database file of a `sqlite:///` URL (None for other stores)."""
    scheme, sep, rest = url.partition("://")
    rest = rest.partition("?")[0]
    if scheme != "sqlite" or not sep or not rest.startswith("/"):
        return None
    return Path(rest[1:])


@asynccontextmanager
async def opened_store(
    url: str, *, create: bool = True, read_only: bool = False
) -> AsyncIterator[Store]:
    """Open the store at `url` for one command and close it afterwards.

    Any problem (bad URL, unwritable or corrupt database, unreachable server) ends the command
    with one line and exit 2. With `create=False` a missing SQLite file is such a problem
    too (commands that only change or read jobs must not create an empty database where
    none was meant). `read_only=True` (implies `create=False`) is for commands that only
    read: they answer while another process holds SQLite's write lock (see `open_store`).
    """
    path = sqlite_path(url)
    if (not create or read_only) and path is not None and not path.is_file():
        fail(f"no database at {path}; pass --data-dir or --store where agentcron keeps its data")
    try:
        store = open_store(url, read_only=read_only)
    except ValueError as exc:
        fail(str(exc))
    try:
        await store.open()
    except (StoreError, OSError) as exc:
        await _close_quietly(store)
        fail(str(exc))
    try:
        yield store
    finally:
        await _close_quietly(store)


async def _close_quietly(store: Store) -> None:
    with contextlib.suppress(StoreError, OSError):
        await store.close()


class OneLineUsageErrors(TyperGroup):
    """A command group whose usage errors (a missing argument, a value that is not a number,
    an unknown option) end like every other bad input: `agentcron: <message>` on one line,
    exit 2 — instead of click's multi-line usage box. Use as `typer.Typer(cls=...)`."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _USAGE_ERROR as exc:
            where = getattr(getattr(exc, "ctx", None) or ctx, "command_path", "agentcron")
            fail(f"{exc.format_message()} (see `{where} --help`)")  # type: ignore[attr-defined]


#: click's UsageError (typer vendors click in recent versions: found from its public subclass).
_USAGE_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)


def checked_env_file(env_file: Path | None) -> None:
    """End the command (one line, exit 2) when `--env-file` names no regular file, as
    `checked_config` does for `--config`: a FIFO was reported as "does not exist". (What is
    wrong with the default ./.env, or inside a file, `load_settings` reports.)"""
    if env_file is None:
        return
    if env_file.is_dir():
        fail(f"--env-file {env_file} is a directory; name a settings file or leave out --env-file")
    if not env_file.is_file():
        if env_file.is_symlink() and not env_file.exists():
            fail(
                f"--env-file {env_file} is a broken symbolic link (its target does not "
                "exist); fix the link or name another settings file"
            )
        if os.path.lexists(env_file):  # a FIFO, a socket, a device, a looping symlink
            fail(
                f"--env-file {env_file} is not a regular file (a FIFO, socket or device); "
                "name a settings file or leave out --env-file"
            )
        fail(f"--env-file {env_file} does not exist; name a settings file or leave out --env-file")
