"""`agentcron run`: start the whole system on the embedded default and run until stopped."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from agentcron import __version__
from agentcron.cli.common import checked_env_file, cli_settings, fail

__all__ = ["run_command"]

DEFAULT_CONFIG = Path("agentcron.toml")
DEFAULT_ENV_FILE = Path(".env")


def run_command(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Jobs file (default: ./agentcron.toml when it exists)."
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Data directory (default: $SCHEDULER_DATA_DIR or ./data)."),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option("--store", help="Store URL (default: sqlite:///<data-dir>/scheduler.db)."),
    ] = None,
    preset: Annotated[
        list[str] | None,
        typer.Option("--preset", help="Register a preset of jobs (agent-loops). Repeatable."),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Run what is due (missed fires included) and exit.")
    ] = False,
    host: Annotated[
        str | None, typer.Option("--host", help="Dashboard address (default 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Dashboard port (default 3000).")
    ] = None,
    no_dashboard: Annotated[
        bool, typer.Option("--no-dashboard", help="Do not serve the dashboard.")
    ] = False,
    log_format: Annotated[
        str, typer.Option("--log-format", help="text, json, or auto (text on a terminal).")
    ] = "auto",
    log_file: Annotated[
        bool,
        typer.Option(
            "--log-file/--no-log-file", help="Keep a size-rotated log in <data-dir>/logs."
        ),
    ] = True,
    env_file: Annotated[
        Path | None,
        typer.Option("--env-file", help="Settings file to read (default: ./.env when it exists)."),
    ] = None,
) -> None:
    """Start the scheduler, heartbeats, backups and dashboard; stop on SIGINT/SIGTERM."""
    from agentcron.config import unknown_variables
    from agentcron.presets import PRESETS

    preset = preset or []
    for name in preset:
        if name not in PRESETS:
            fail(f"unknown preset {name!r}; available: {', '.join(PRESETS)}")
    if log_format not in ("auto", "text", "json"):
        fail(f"--log-format must be auto, text or json, not {log_format!r}")
    checked_env_file(env_file)
    # Warnings about the env file wait for the log (configured below), as those about the
    # environment do: printed now they would lack its prefix and format.
    env_warnings: list[str] = []
    settings = cli_settings(
        data_dir=data_dir,
        store=store,
        host=host,
        port=port,
        env_file=env_file or DEFAULT_ENV_FILE,
        warn=env_warnings.append,
    )
    config = checked_config(config)

    from agentcron.logs import configure_logging
    from agentcron.system import AgentcronSystem, StartupError, ensure_data_dir

    try:
        ensure_data_dir(settings.data_dir)
    except StartupError as exc:
        fail(str(exc))

    configure_logging(
        level=settings.SCHEDULER_LOG_LEVEL,
        fmt=log_format,  # type: ignore[arg-type]
        log_file=settings.data_dir / "logs" / "agentcron.log" if log_file else None,
    )
    import logging

    for warning in [*unknown_variables(os.environ), *env_warnings]:
        logging.getLogger("agentcron.config").warning("%s", warning)

    system = AgentcronSystem(
        settings=settings,
        config_path=config,
        presets=tuple(preset),
        dashboard=not no_dashboard,
        once=once,
        on_ready=_announce,
    )
    try:
        asyncio.run(system.serve())
    except StartupError as exc:
        fail(str(exc))
    except KeyboardInterrupt:  # Ctrl+C before the signal handlers are installed
        pass
    typer.echo("agentcron stopped", err=True)


def checked_config(config: Path | None) -> Path | None:
    """The jobs file to read: `config`, else ./agentcron.toml when anything has that name.

    A path that is not a regular file ends the command (one line, exit 2), the default one
    too: a directory, a FIFO or a broken symlink named agentcron.toml was silently skipped,
    and the daemon ran without the jobs that were meant."""
    if config is None:
        if not os.path.lexists(DEFAULT_CONFIG):
            return None
        if DEFAULT_CONFIG.is_file():
            return DEFAULT_CONFIG
        what = "is a directory" if DEFAULT_CONFIG.is_dir() else "is not a regular file"
        fail(
            f"./{DEFAULT_CONFIG} (the jobs file read by default) {what}; make it the jobs "
            "file, or move it away, or name the jobs file with --config"
        )
    if config.is_dir():
        fail(f"config file {config} is a directory; name the agentcron.toml file in it")
    if not config.is_file():
        if os.path.lexists(config):  # a FIFO, a device, a broken or looping symlink
            fail(f"config file {config} is not a regular file; name the agentcron.toml file")
        fail(f"config file {config} does not exist; create it or leave out --config")
    return config


def _announce(system: Any) -> None:
    """Say where the dashboard is and how to log in (the token only when just generated)."""
    from agentcron.system import AgentcronSystem

    assert isinstance(system, AgentcronSystem)
    sched = system.scheduler
    jobs = len(sched.jobs()) if sched is not None else 0
    typer.echo(f"agentcron {__version__} running: {jobs} job(s), store {system.store_url_masked}")
    if system.dashboard_url:
        typer.echo(f"dashboard: {system.dashboard_url}")
        from agentcron.dashboard.auth import TOKEN_FILE

        token_file = system.settings.data_dir / TOKEN_FILE
        if system.token_generated:
            typer.echo(f"log in with this token (shown once; also in {token_file}):")
            typer.echo(f"  {system.dashboard_token}")
        else:
            typer.echo("log in with DASHBOARD_AUTH_TOKEN (or the token in the data dir)")
    typer.echo("press Ctrl+C to stop")
