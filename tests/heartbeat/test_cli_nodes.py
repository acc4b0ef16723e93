from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from agentcron.cli.main import build_app
from agentcron.heartbeat.sender import resolve_node_id
from agentcron.models import NodeHeartbeat
from agentcron.store.base import open_store

runner = CliRunner()


def write(data_dir: Path, *beats: NodeHeartbeat) -> None:
    async def go() -> None:
        store = open_store(f"sqlite:///{data_dir / 'scheduler.db'}")
        await store.open()
        for beat in beats:
            await store.write_heartbeat(beat)
        await store.close()

    asyncio.run(go())


def beat(node_id: str, age_s: float = 1.0, status: str = "healthy") -> NodeHeartbeat:
    return NodeHeartbeat(
        node_id=node_id,
        sequence=7,
        sent_at=datetime.now(UTC) - timedelta(seconds=age_s),
        status=status,
        host="box",
        pid=4242,
        version="0.1.0",
        interval_s=30.0,
        details={"reasons": ["rss_mb 5000 >= 4096"]} if status == "unhealthy" else {},
    )


def test_nodes_json_lists_each_node_with_status_and_score(tmp_path: Path) -> None:
    write(tmp_path, beat("alive"), beat("late", age_s=40), beat("dead", age_s=1000))
    result = runner.invoke(build_app(), ["nodes", "--json", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    nodes = {n["node_id"]: n for n in json.loads(result.stdout)}
    assert {k: (n["status"], n["health_score"]) for k, n in nodes.items()} == {
        "alive": ("online", 100),
        "late": ("suspect", 80),
        "dead": ("offline", 0),
    }
    assert (nodes["alive"]["host"], nodes["alive"]["pid"], nodes["alive"]["version"]) == (
        "box",
        4242,
        "0.1.0",
    )
    assert datetime.fromisoformat(nodes["alive"]["last_seen"]).tzinfo is not None


def test_nodes_prints_a_table_for_people(tmp_path: Path) -> None:
    write(tmp_path, beat("alive"))
    result = runner.invoke(build_app(), ["nodes", "--store", f"sqlite:///{tmp_path}/scheduler.db"])
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split()[:4] == ["NODE", "HOST", "PID", "STATUS"]
    assert row.split()[:5] == ["alive", "box", "4242", "online", "100"]


def test_nodes_without_a_database_is_bad_input(tmp_path: Path) -> None:
    result = runner.invoke(build_app(), ["nodes", "--data-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "no database at" in result.stderr


def test_health_exits_zero_for_this_healthy_node(tmp_path: Path) -> None:
    node = resolve_node_id(tmp_path)
    write(tmp_path, beat(node), beat("other", age_s=1000))
    result = runner.invoke(build_app(), ["health", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"healthy: node {node} online")


def test_health_exits_one_when_this_node_reports_itself_unhealthy(tmp_path: Path) -> None:
    node = resolve_node_id(tmp_path)
    write(tmp_path, beat(node, status="unhealthy"))
    result = runner.invoke(build_app(), ["health", "--json", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    verdict = json.loads(result.stdout)
    assert verdict["healthy"] is False
    assert verdict["reason"] == "online, reports unhealthy: rss_mb 5000 >= 4096"


def test_health_exits_one_when_this_node_went_silent(tmp_path: Path) -> None:
    write(tmp_path, beat("n1", age_s=300))
    result = runner.invoke(build_app(), ["health", "--node-id", "n1", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "offline: last heartbeat 5m ago" in result.stdout


def test_health_exits_one_at_once_when_this_node_stopped_cleanly(tmp_path: Path) -> None:
    # Its last beat was 3 s old, so it passed for online (healthy) for another 90 s.
    node = resolve_node_id(tmp_path)
    write(tmp_path, beat(node, age_s=3, status="stopped"))
    result = runner.invoke(build_app(), ["health", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"unhealthy: node {node} stopped 3s ago (score 0)")


def test_health_exits_one_when_this_node_never_started(tmp_path: Path) -> None:
    result = runner.invoke(build_app(), ["health", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "has `agentcron run` started here?" in result.stdout


def test_nodes_and_health_answer_while_another_process_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    # As during `agentcron run`'s VACUUM: a probe that waited for the lock would time out
    # and report a locked database (unhealthy, restarted) instead of the node's health.
    node = resolve_node_id(tmp_path)
    write(tmp_path, beat(node))
    writer = sqlite3.connect(tmp_path / "scheduler.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        health = runner.invoke(build_app(), ["health", "--data-dir", str(tmp_path)])
        listed = runner.invoke(build_app(), ["nodes", "--json", "--data-dir", str(tmp_path)])
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert health.exit_code == 0, health.output
    assert listed.exit_code == 0, listed.output
    assert [n["node_id"] for n in json.loads(listed.stdout)] == [node]
