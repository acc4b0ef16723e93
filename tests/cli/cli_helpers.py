"""Driving `agentcron jobs ...` in-process, and reading the store it wrote (shared by the
CLI tests of jobs)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from agentcron.cli.main import build_app
from agentcron.store.sqlite import SqliteStore

runner = CliRunner()


def jobs(data_dir: Path, command: str, *args: str) -> Result:
    """`agentcron jobs COMMAND --data-dir DATA_DIR ARGS...`"""
    return runner.invoke(build_app(), ["jobs", command, "--data-dir", str(data_dir), *args])


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


def as_json(result: Result) -> Any:
    return json.loads(ok(result))


def assert_bad_input(result: Result, *fragments: str) -> None:
    """Exit 2, exactly one line on stderr, no traceback, and it says what is wrong."""
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert result.stderr.startswith("agentcron: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def store_call(data_dir: Path, action: Any) -> Any:
    """`await action(store)` on the data directory's SQLite store."""

    async def main() -> Any:
        async with SqliteStore(data_dir / "scheduler.db") as store:
            return await action(store)

    return asyncio.run(main())


def migrated_data_dir(tmp_path: Path) -> Path:
    """A data directory with an (empty) agentcron database."""
    result = runner.invoke(build_app(), ["db", "migrate", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.stderr
    return tmp_path / "data"
