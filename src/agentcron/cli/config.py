"""`agentcron config show`: the effective configuration, secrets masked.

    agentcron config show [--json] [--env-file .env] [--data-dir DIR] [--store URL]

Values come from, highest first: `--data-dir`/`--store`, the environment, the `.env` file
(`--env-file`, default `./.env` when it exists), the defaults; the same precedence as
`agentcron run`. Variables that look like ours but are not settings (`HEARTBEAT_INTERVALL`)
are warned about on stderr with a "did you mean". A bad value prints one line naming the
key and the value and exits with code 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agentcron.cli.common import OneLineUsageErrors, checked_env_file, fail, print_json

__all__ = ["app", "show"]

app = typer.Typer(
    name="config",
    help="Inspect the configuration (environment variables, .env, flags).",
    no_args_is_help=True,
    cls=OneLineUsageErrors,
)

_DEFAULT_ENV_FILE = Path(".env")


def _env_file_keys(path: Path) -> dict[str, str | None]:
    from agentcron.config import ConfigError, read_env_file

    try:
        return read_env_file(path)
    except ConfigError as exc:  # it names the file (and the line)
        fail(str(exc))


def _sources(env_keys: dict[str, str | None], env_file: Path | None) -> dict[str, str]:
    """Where each setting's value comes from: flag, environment, the .env file or default."""
    from agentcron.config import Settings

    out = {}
    for name in Settings.model_fields:
        if name in os.environ:
            out[name] = "environment"
        elif env_file is not None and env_keys.get(name) is not None:
            out[name] = str(env_file)
        else:
            out[name] = "default"
    return out


def _mask_urls(values: dict[str, Any]) -> dict[str, Any]:
    """Hide passwords in URL values (`SCHEDULER_STORE=redis://:secret@host/0`, and
    `?password=...`) too."""
    from agentcron.config import mask_url

    return {
        name: mask_url(value) if isinstance(value, str) and "://" in value else value
        for name, value in values.items()
    }


def _shown(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@app.command()
def show(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON object for scripts.")
    ] = False,
    env_file: Annotated[
        Path | None,
        typer.Option("--env-file", help="The .env file to read (default: ./.env when it exists)."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Override SCHEDULER_DATA_DIR (as `agentcron run --data-dir`)."
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option("--store", help="Override SCHEDULER_STORE (as `agentcron run --store`)."),
    ] = None,
) -> None:
    """Print the effective configuration with secrets masked."""
    # pydantic-settings is imported only by this command, not by every `agentcron` start.
    from agentcron.config import ConfigError, load_settings, unknown_variables

    checked_env_file(env_file)
    used_env_file = env_file if env_file is not None else _DEFAULT_ENV_FILE
    env_keys = _env_file_keys(used_env_file) if used_env_file.is_file() else {}
    overrides: dict[str, Any] = {"SCHEDULER_DATA_DIR": data_dir, "SCHEDULER_STORE": store}
    warnings = unknown_variables(os.environ)
    try:
        # The env file's unknown variables come back through `warn` (printed below).
        settings = load_settings(env_file=used_env_file, overrides=overrides, warn=warnings.append)
    except ConfigError as exc:
        fail(str(exc))
    for warning in warnings:
        typer.echo(f"agentcron: warning: {warning}", err=True)
    values = _mask_urls(settings.masked())
    if as_json:
        print_json(values)
        return
    sources = _sources(env_keys, used_env_file if env_keys else None)
    for name, value in overrides.items():
        if value is not None:
            sources[name] = "flag"
    table = Table("setting", "value", "from", title="agentcron configuration")
    for name, value in values.items():
        table.add_row(name, _shown(value), sources.get(name, "derived"))
    Console().print(table)
