"""Helpers shared by the command groups: one-line errors with exit code 2, JSON output."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer

EXIT_BAD_INPUT = 2


def fail(message: str, *, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print `agentcron: <message>` on stderr as one line and exit (2 = bad input)."""
    one_line = " ".join(str(message).split())
    typer.echo(f"agentcron: {one_line}", err=True)
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    """Print `value` as indented JSON on stdout (datetimes and other objects via `str`)."""
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")
