"""docs/store.md: the commands it shows exist, and its numbers are the settings' defaults."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentcron.cli.main import build_app
from agentcron.config import load_settings

DOC = (Path(__file__).resolve().parents[1] / "docs" / "store.md").read_text(encoding="utf-8")


def commands() -> list[list[str]]:
    blocks = re.findall(r"```sh\n(.*?)```", DOC, re.S)
    lines = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("agentcron ")]


@pytest.mark.parametrize("args", commands(), ids=" ".join)
def test_every_command_shown_takes_the_options_shown(args: list[str]) -> None:
    # --help after the shown options: click parses them first, so an unknown option fails.
    options = [a for a in args if a.startswith("--")]
    command = [a for a in args if not a.startswith("-") and "/" not in a and "." not in a]
    result = CliRunner().invoke(
        build_app(), [*command[:2], *options_without_values(args, options), "--help"]
    )
    assert result.exit_code == 0, result.stderr


def options_without_values(args: list[str], options: list[str]) -> list[str]:
    out = []
    for i, arg in enumerate(args):
        if arg in options:
            out.append(arg)
            if i + 1 < len(args) and not args[i + 1].startswith("-"):
                out.append(args[i + 1])
    return out


def test_the_defaults_it_states_are_the_settings_defaults() -> None:
    s = load_settings(environ={}, env_file=None)
    assert s.BACKUP_INTERVAL == 3_600_000 and "(default hourly)" in DOC
    assert f"`BACKUP_RETENTION` ({s.BACKUP_RETENTION})" in DOC
    assert f"`SCHEDULER_RUN_RETENTION_DAYS` ({s.SCHEDULER_RUN_RETENTION_DAYS})" in DOC
    assert f"`SCHEDULER_RUNS_PER_JOB` ({s.SCHEDULER_RUNS_PER_JOB:,})".replace(",", " ") in DOC
    assert f"`SCHEDULER_LEASE`, default {s.SCHEDULER_LEASE // 1000} s" in DOC
