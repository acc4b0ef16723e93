"""Entry point of the `agentcron` command.

Each command group lives in its own module of this package and exposes a `typer.Typer`
named `app`; `build_app()` registers them. Bad input exits with code 2 and a one-line
message (see `agentcron.cli.common.fail`).
"""

from __future__ import annotations

import typer

from agentcron import __version__
from agentcron.cli import config as config_cli
from agentcron.cli import cron as cron_cli
from agentcron.cli import dashboard as dashboard_cli
from agentcron.cli import db as db_cli
from agentcron.cli import jobs as jobs_cli
from agentcron.cli import nodes as nodes_cli
from agentcron.cli import queue as queue_cli
from agentcron.cli import run as run_cli
from agentcron.cli import service as service_cli
from agentcron.cli import worker as worker_cli
from agentcron.cli.common import OneLineUsageErrors


def _version(value: bool) -> None:
    if value:
        typer.echo(f"agentcron {__version__}")
        raise typer.Exit(0)


def build_app() -> typer.Typer:
    """Return the root command with every command group attached."""
    app = typer.Typer(
        name="agentcron",
        help="agentcron: the scheduler that keeps an AI agent working 24/7.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=True,
        # Usage errors of every command and group (a missing argument, a value out of range,
        # an unknown command) end as one line with exit 2, like all other bad input.
        cls=OneLineUsageErrors,
    )

    @app.callback()
    def root(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ) -> None:
        """agentcron: the scheduler that keeps an AI agent working 24/7."""

    # Command groups register here (one module each, each exposing `app`).
    app.command("run")(run_cli.run_command)
    app.add_typer(service_cli.app, name="service")
    app.add_typer(cron_cli.app, name="cron")
    app.add_typer(db_cli.app, name="db")
    app.command("nodes")(nodes_cli.nodes_command)
    app.command("health")(nodes_cli.health_command)
    app.add_typer(queue_cli.app, name="queue")
    app.command("worker")(worker_cli.worker)
    app.add_typer(jobs_cli.app, name="jobs")
    app.add_typer(config_cli.app, name="config")
    app.command("dashboard")(dashboard_cli.dashboard)
    return app


def main() -> None:
    """Run the `agentcron` command."""
    build_app()()
