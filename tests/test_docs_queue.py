"""docs/queue.md: its Python example runs as written, its commands take the options shown."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentcron.cli.main import build_app

DOC = (Path(__file__).resolve().parents[1] / "docs" / "queue.md").read_text(encoding="utf-8")


def test_the_python_example_runs_the_job_through_a_sqlite_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    [code] = re.findall(r"```python\n(.*?)```", DOC, re.S)
    exec(compile(code, "docs/queue.md", "exec"), {"__name__": "docs_queue"})
    out = capsys.readouterr().out
    assert "'waiting': 1" in out
    assert "sending welcome {'to': 'a@example.org'} attempt 1" in out


def commands() -> list[list[str]]:
    blocks = re.findall(r"```sh\n(.*?)```", DOC, re.S)
    lines = [line.split("  #", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("agentcron ")]


@pytest.mark.parametrize("args", commands(), ids=" ".join)
def test_every_command_shown_takes_the_options_shown(args: list[str]) -> None:
    head = args[:2] if args[0] == "queue" else args[:1]
    options = args[len(head) :]
    kept = []  # the options and their values, without the positional arguments
    for i, arg in enumerate(options):
        if arg.startswith("--"):
            kept.append(arg)
            if i + 1 < len(options) and not options[i + 1].startswith("--"):
                kept.append(options[i + 1])
    result = CliRunner().invoke(build_app(), [*head, *kept, "--help"])
    assert result.exit_code == 0, (args, result.stderr)
