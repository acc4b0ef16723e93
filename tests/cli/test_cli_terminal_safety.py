"""Text that other machines wrote into the store (heartbeats) is shown with its control
characters escaped, so it cannot recolour, retitle or clear the terminal of whoever reads it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from agentcron.cli.main import build_app
from agentcron.models import NodeHeartbeat
from agentcron.store.base import open_store

runner = CliRunner()


def write_beat(data_dir: Path, beat: NodeHeartbeat) -> None:
    async def go() -> None:
        store = open_store(f"sqlite:///{data_dir / 'scheduler.db'}")
        await store.open()
        await store.write_heartbeat(beat)
        await store.close()

    asyncio.run(go())


def test_nodes_and_health_show_control_characters_of_a_heartbeat_escaped(tmp_path: Path) -> None:
    beat = NodeHeartbeat(
        node_id="n\x1b[2J",
        sequence=1,
        sent_at=datetime.now(UTC),
        status="unhealthy",
        host="box\x1b]0;owned\x07",
        pid=1,
        version="1\x9b31m",
        interval_s=30.0,
        details={"reasons": ["disk\x1b[31m full"]},
    )
    write_beat(tmp_path, beat)
    listed = runner.invoke(build_app(), ["nodes", "--data-dir", str(tmp_path)])
    args = ["health", "--data-dir", str(tmp_path), "--node-id", beat.node_id]
    health = runner.invoke(build_app(), args)
    assert listed.exit_code == 0 and health.exit_code == 1, (listed.output, health.output)
    for out in (listed.stdout, health.stdout):
        assert not any(c in out for c in "\x1b\x07\x9b"), out
    assert "n\\x1b[2J" in listed.stdout and "box\\x1b]0;owned\\x07" in listed.stdout
    assert "1\\x9b31m" in listed.stdout
    assert "disk\\x1b[31m full" in health.stdout
