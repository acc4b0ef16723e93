"""The agent-loops preset's built-in loops record their reports in the run history, and the
API rate-limit loop is an integration loop (DESIGN 2.12)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentcron.config import Settings, load_settings
from agentcron.engine import Scheduler
from agentcron.handlers.base import HandlerError, RunContext
from agentcron.handlers.references import resolve
from agentcron.models import NodeHeartbeat, RunRecord, RunStatus
from agentcron.presets import AGENT_LOOPS, builtin
from agentcron.presets.agent_loops import NO_HANDLER_REASON
from agentcron.store.sqlite import SqliteStore
from agentcron.system import preset_entries
from agentcron.testing import VirtualClock

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

#: The integration loops DESIGN 2.12 lists: they run only a handler the user configures.
INTEGRATION_LOOPS = {
    "loop-gmail-sync",
    "loop-twilio-status",
    "loop-browser-health",
    "loop-voice-queue",
    "loop-identity-sync",
    "loop-soul-update",
    "loop-presence-check",
    "loop-notification-digest",
    "loop-rate-limit",
}


def settings_for(data_dir: Path) -> Settings:
    # One attempt: a loop that fails here must not wait for retries on the virtual clock.
    return load_settings(
        environ={"SCHEDULER_DATA_DIR": str(data_dir), "AGENT_LOOP_RETRY_ATTEMPTS": "1"},
        env_file=None,
    )


@pytest.fixture
async def sched(tmp_path: Path) -> AsyncIterator[Scheduler]:
    """A scheduler on a real SQLite file with the preset's built-in loops, services bound
    as `agentcron run` binds them."""
    settings = settings_for(tmp_path)
    store = SqliteStore(tmp_path / "scheduler.db")
    await store.open()
    builtin.bind(builtin.Services(store=store, settings=settings))
    scheduler = Scheduler(store=store, clock=VirtualClock(T0), node_id="n1")
    for job_id, trigger, handler, options in preset_entries(settings, {}):
        if options.get("enabled", True):
            scheduler.add_job(job_id, trigger=trigger, handler=handler, **options)
    try:
        async with scheduler:
            yield scheduler
            await scheduler.stop(grace_s=0)
    finally:
        builtin.unbind()
        await store.close()


async def last_run(sched: Scheduler, job_id: str) -> RunRecord:
    await sched.run_now(job_id)
    runs = await sched.runs(job_id, limit=1)
    assert runs, f"{job_id} left no run"
    return runs[0]


def report_of(run: RunRecord) -> dict[str, object]:
    assert run.output_tail is not None, f"{run.job_id}: no report in the run history"
    report = json.loads(run.output_tail)
    assert isinstance(report, dict)
    return report


# -- the built-in loops' reports -------------------------------------------------------
async def test_the_heartbeat_loop_records_every_nodes_status(sched: Scheduler) -> None:
    await sched.store.write_heartbeat(
        NodeHeartbeat(
            node_id="a",
            sequence=1,
            sent_at=T0 - timedelta(seconds=5),
            status="healthy",
            interval_s=30.0,
        )
    )
    run = await last_run(sched, "loop-heartbeat")
    assert run.status == RunStatus.succeeded
    assert report_of(run)["a"] == {"status": "online", "score": 100}


async def test_the_resource_monitor_records_cpu_memory_and_disk_use(
    sched: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Above 100 %: the run succeeds however busy this machine is (a failure's report was
    # recorded already; a success's was not).
    for limit in ("CPU_LIMIT_PCT", "MEMORY_LIMIT_PCT", "DISK_LIMIT_PCT"):
        monkeypatch.setattr(builtin, limit, 101.0)
    run = await last_run(sched, "loop-resource-monitor")
    assert run.status == RunStatus.succeeded
    assert set(report_of(run)) == {"cpu_pct", "memory_pct", "disk_pct", "rss_mb"}


async def test_the_maintenance_loops_record_what_they_did(sched: Scheduler, tmp_path: Path) -> None:
    from agentcron.store.backup import backup_database

    store = sched.store
    assert isinstance(store, SqliteStore)
    await asyncio.to_thread(backup_database, store.path, tmp_path / "backups", now=T0)

    backup = await last_run(sched, "loop-backup-check")
    assert backup.status == RunStatus.succeeded
    assert str(report_of(backup)["backup"]).startswith("scheduler-")

    cleanup = await last_run(sched, "loop-context-cleanup")
    assert cleanup.status == RunStatus.succeeded
    assert "runs_pruned" in report_of(cleanup)

    rotation = await last_run(sched, "loop-log-rotation")
    assert rotation.status == RunStatus.succeeded
    assert report_of(rotation) == {"rotated": [], "deleted": []}

    daily = await last_run(sched, "loop-daily-maintenance")
    assert daily.status == RunStatus.succeeded
    assert {"backup", "check", "runs_pruned", "vacuum"} <= set(report_of(daily))


async def test_a_long_report_is_recorded_bounded(sched: Scheduler, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for n in range(300):
        old = logs / f"agentcron-with-a-long-name-{n:04d}.log.1"
        old.write_text("x")
        os.utime(old, (0, 0))
    run = await last_run(sched, "loop-log-rotation")
    assert run.status == RunStatus.succeeded
    assert run.output_tail is not None
    assert run.output_tail.startswith('{"deleted": ["agentcron-with-a-long-name-0000.log.1"')
    assert len(run.output_tail) <= builtin.REPORT_CHARS + 40
    assert run.output_tail.endswith("more characters]")


async def test_a_loop_handler_bounds_the_report_of_a_failure(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = SqliteStore(tmp_path / "scheduler.db")
    await store.open()
    builtin.bind(builtin.Services(store=store, settings=settings))
    try:
        for n in range(200):
            await store.write_heartbeat(
                NodeHeartbeat(
                    node_id=f"node-{n:03d}",
                    sequence=1,
                    sent_at=T0 - timedelta(hours=1),
                    status="healthy",
                    interval_s=30.0,
                )
            )
        ctx = RunContext(
            job_id="loop-heartbeat",
            run_id="r1",
            scheduled_for=T0,
            attempt=1,
            lateness_s=0.0,
            node_id="n1",
            logger=logging.getLogger("test"),
        )
        handler = resolve(builtin.BUILTIN_HANDLERS["heartbeat"])
        with pytest.raises(HandlerError, match="offline or unhealthy") as info:
            await handler(ctx)
        tail = info.value.output_tail
        assert tail is not None and len(tail) <= builtin.REPORT_CHARS + 40
    finally:
        builtin.unbind()
        await store.close()


# -- the API rate-limit loop -------------------------------------------------------------
def test_only_the_integration_loops_lack_a_built_in_handler() -> None:
    assert {loop.id for loop in AGENT_LOOPS if loop.builtin is None} == INTEGRATION_LOOPS
    assert not hasattr(builtin, "rate_limit")
    assert all(ref.endswith("_loop") for ref in builtin.BUILTIN_HANDLERS.values())


def test_the_rate_limit_loop_is_disabled_until_a_handler_is_configured(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    entries = {e[0]: e for e in preset_entries(settings, {})}
    _, trigger, handler, options = entries["loop-rate-limit"]
    assert trigger == "* * * * *"
    assert handler == "agentcron.presets.builtin:not_configured"
    assert options["enabled"] is False
    assert options["disabled_reason"] == NO_HANDLER_REASON

    configured = {e[0]: e for e in preset_entries(settings, {"loop-rate-limit": "os:getcwd"})}
    _, _, handler, options = configured["loop-rate-limit"]
    assert handler == "os:getcwd"
    assert "enabled" not in options
