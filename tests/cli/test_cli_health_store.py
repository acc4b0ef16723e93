"""`agentcron health` on a store it cannot read: an unhealthy verdict (exit 1, one line),
not bad usage (exit 2, which Docker reserves)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from agentcron.cli.main import build_app
from helpers.redis_server import free_port

runner = CliRunner()


def health(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(build_app(), ["health", "--node-id", "n1", *args])
    return result.exit_code, result.stdout, result.stderr


def test_an_unreachable_redis_store_is_unhealthy_exit_1_with_one_line(tmp_path: Path) -> None:
    store = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    code, out, err = health("--store", store, "--data-dir", str(tmp_path))
    assert code == 1, (out, err)
    assert out.startswith("unhealthy: cannot read heartbeats") and out.count("\n") == 1
    code, out, _ = health("--store", store, "--data-dir", str(tmp_path), "--json")
    assert code == 1 and json.loads(out)["healthy"] is False


def test_a_missing_database_is_unhealthy_exit_1(tmp_path: Path) -> None:
    code, out, _ = health("--data-dir", str(tmp_path))
    assert code == 1 and "no database at" in out


def test_a_malformed_store_url_is_bad_usage_exit_2(tmp_path: Path) -> None:
    code, _, err = health("--store", "redis://127.0.0.1:notaport/0", "--data-dir", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "bad port" in err
