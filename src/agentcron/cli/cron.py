"""`agentcron cron ...`: validate, explain and preview cron expressions.

agentcron cron validate "0 9 * * MON-FRI" --tz Europe/Berlin    # exit 0 valid, 2 invalid
agentcron cron next "*/15 * * * *" --tz America/New_York --after 2026-11-01T00:40:00-04:00
agentcron cron describe "0 0 L * *"
"""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from agentcron.cli.common import EXIT_BAD_INPUT, fail, print_json
from agentcron.clock import utc
from agentcron.cron import CronError, CronExpression

app = typer.Typer(
    name="cron",
    help="Validate, describe and preview cron expressions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

_TZ_HELP = "IANA time zone the expression runs in (default UTC)."


def _parse(expr: str, tz: str) -> CronExpression:
    try:
        expression = CronExpression(expr, tz=tz)
    except CronError as exc:
        fail(str(exc))
    return expression


def _after(text: str | None, expression: CronExpression) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--after: {text!r} is not an ISO-8601 date-time (e.g. 2026-03-08T01:30:00-05:00)")
    if value.tzinfo is None:
        # a wall time without offset is read in the expression's zone
        value = value.replace(tzinfo=expression.tz)
    try:
        utc(value)
    except ValueError as exc:
        fail(f"--after: {exc}; give a time within that range")
    return value


@app.command("validate")
def validate_command(
    expr: str = typer.Argument(..., help="Cron expression, macro (@daily) or preset name."),
    tz: str = typer.Option("UTC", "--tz", help=_TZ_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check an expression: the error, or its warnings and next 5 runs (exit 2 if invalid)."""
    result = CronExpression.validate(expr, tz)
    if as_json:
        print_json(result.to_dict())
        raise typer.Exit(0 if result.valid else EXIT_BAD_INPUT)
    if not result.valid:
        detail = f" ({'; '.join(result.warnings)})" if result.warnings else ""
        fail(f"{result.error}{detail}")
    typer.echo(f"valid: {result.expression}  [{result.timezone}]")
    typer.echo(f"means: {result.description}")
    for warning in result.warnings:
        typer.echo(f"warning: {warning}")
    typer.echo("next runs:")
    for run in result.next_runs:
        typer.echo(f"  {run.isoformat()}")


@app.command("next")
def next_command(
    expr: str = typer.Argument(..., help="Cron expression, macro (@daily) or preset name."),
    tz: str = typer.Option("UTC", "--tz", help=_TZ_HELP),
    after: str | None = typer.Option(
        None,
        "--after",
        help="Start (ISO-8601; without an offset it is read in --tz). Default: now.",
    ),
    count: int = typer.Option(5, "--count", "-n", help="How many fire times (1-1000)."),
    as_json: bool = typer.Option(False, "--json", help="Print the fire times as a JSON list."),
) -> None:
    """Print the next fire times (ISO-8601 with offsets), strictly after --after."""
    if not 1 <= count <= 1000:
        fail(f"--count: {count} is out of range 1-1000")
    expression = _parse(expr, tz)
    start = _after(after, expression)
    runs: list[str] = []
    for fire in expression.iter(start):
        runs.append(fire.isoformat())
        if len(runs) >= count:
            break
    if as_json:
        print_json(runs)
        return
    if not runs:
        typer.echo("never fires after " + start.isoformat())
        return
    for run in runs:
        typer.echo(run)


@app.command("describe")
def describe_command(
    expr: str = typer.Argument(..., help="Cron expression, macro (@daily) or preset name."),
    tz: str = typer.Option("UTC", "--tz", help=_TZ_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Say in plain English when an expression fires."""
    expression = _parse(expr, tz)
    text = expression.describe()
    if as_json:
        print_json(
            {
                "text": expression.text,
                "expression": expression.expression,
                "timezone": expression.timezone,
                "description": text,
            }
        )
        return
    typer.echo(text)
