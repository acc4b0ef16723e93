from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentcron.config import load_settings
from agentcron.handlers.base import HandlerError, RunContext
from agentcron.models import NodeHeartbeat, RunQuery, RunRecord, RunStatus, new_run_id
from agentcron.presets import builtin
from agentcron.store.sqlite import SqliteStore

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def ctx(at: datetime = NOW) -> RunContext:
    return RunContext(
        job_id="loop",
        run_id="r1",
        scheduled_for=at,
        attempt=1,
        lateness_s=0.0,
        node_id="n1",
        logger=logging.getLogger("test"),
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    settings = load_settings(environ={"SCHEDULER_DATA_DIR": str(tmp_path)}, env_file=None)
    db = SqliteStore(tmp_path / "scheduler.db")
    await db.open()
    builtin.bind(builtin.Services(store=db, settings=settings))
    yield db
    builtin.unbind()
    await db.close()


def heartbeat_at(node_id: str, sent_at: datetime, status: str = "healthy") -> NodeHeartbeat:
    return NodeHeartbeat(
        node_id=node_id, sequence=1, sent_at=sent_at, status=status, interval_s=30.0
    )


async def test_the_heartbeat_loop_reports_every_node(store: SqliteStore) -> None:
    await store.write_heartbeat(heartbeat_at("a", NOW - timedelta(seconds=5)))
    out = json.loads(await builtin.heartbeat(ctx()))
    assert out["a"]["status"] == "online"


async def test_the_heartbeat_loop_fails_when_a_node_went_silent(store: SqliteStore) -> None:
    await store.write_heartbeat(heartbeat_at("a", NOW - timedelta(seconds=5)))
    await store.write_heartbeat(heartbeat_at("b", NOW - timedelta(minutes=10)))
    with pytest.raises(HandlerError, match="offline or unhealthy: b"):
        await builtin.heartbeat(ctx())


async def test_the_heartbeat_loop_fails_when_no_node_ever_reported(store: SqliteStore) -> None:
    with pytest.raises(HandlerError, match="no node"):
        await builtin.heartbeat(ctx())


async def test_the_resource_monitor_records_real_readings(store: SqliteStore) -> None:
    try:
        out = json.loads(await builtin.resource_monitor(ctx()))
    except HandlerError as exc:  # this machine may really be over a threshold
        out = json.loads(exc.output_tail or "{}")
    assert set(out) == {"cpu_pct", "memory_pct", "disk_pct", "rss_mb"}
    assert out["rss_mb"] > 0


async def test_backup_check_fails_without_a_backup_then_passes_after_one(
    store: SqliteStore, tmp_path: Path
) -> None:
    from agentcron.store.backup import backup_database

    with pytest.raises(HandlerError, match="no backup"):
        await builtin.backup_check(ctx())
    await asyncio.to_thread(backup_database, store.path, tmp_path / "backups", now=NOW)
    out = json.loads(await builtin.backup_check(ctx(NOW + timedelta(minutes=5))))
    assert out["backup"].startswith("scheduler-")
    with pytest.raises(HandlerError, match="h old"):
        await builtin.backup_check(ctx(NOW + timedelta(hours=3)))


async def record(
    store: SqliteStore, job_id: str, at: datetime, status: RunStatus, error: str | None = None
) -> None:
    await store.record_run(
        RunRecord(
            run_id=new_run_id(),
            job_id=job_id,
            scheduled_for=at,
            status=status,
            started_at=at,
            finished_at=at + timedelta(seconds=1),
            error=error,
        )
    )


async def test_context_cleanup_prunes_runs_past_the_retention(store: SqliteStore) -> None:
    await record(store, "j", NOW - timedelta(days=40), RunStatus.succeeded)
    await record(store, "j", NOW - timedelta(days=1), RunStatus.succeeded)
    out = json.loads(await builtin.context_cleanup(ctx()))
    assert out["runs_pruned"] == 1
    assert await store.count_runs(RunQuery(job_id="j")) == 1


async def test_daily_maintenance_backs_up_checks_prunes_and_vacuums(
    store: SqliteStore, tmp_path: Path
) -> None:
    await record(store, "j", NOW - timedelta(days=40), RunStatus.succeeded)
    out = json.loads(await builtin.daily_maintenance(ctx()))
    assert out["runs_pruned"] == 1
    assert out["check"]["runs"] == 1  # checked before the prune
    assert (tmp_path / "backups" / out["backup"]).is_file()
    assert "size_after" in out["vacuum"]


async def test_log_rotation_rolls_agentcron_logs_over(store: SqliteStore, tmp_path: Path) -> None:
    from agentcron.logs import configure_logging

    root = logging.getLogger()
    before = list(root.handlers)
    log_file = tmp_path / "logs" / "agentcron.log"
    import io

    configure_logging(fmt="json", stream=io.StringIO(), log_file=log_file)
    try:
        logging.getLogger("agentcron").warning("something")
        out = json.loads(await builtin.log_rotation(ctx()))
        assert out["rotated"] == [str(log_file)]
        assert (tmp_path / "logs" / "agentcron.log.1").exists()
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
                handler.close()
