"""`agentcron run`: OVERLAP_TIMEOUT under the `timeout` overlap policy, and the preset's jobs
reconciled like agentcron.toml's (a start without the preset removes them)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agentcron.config import Settings, load_settings
from agentcron.jobs import build_job, job_to_definition
from agentcron.models import RunStatus, StoredJob
from agentcron.presets import AGENT_LOOPS
from agentcron.store.sqlite import SqliteStore
from agentcron.system import (
    PRESET_JOBS_KEY,
    AgentcronSystem,
    StartupError,
    preset_entries,
)
from agentcron.testing import VirtualClock

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LOOP_IDS = {loop.id for loop in AGENT_LOOPS}


def settings_for(data_dir: Path, **env: str) -> Settings:
    return load_settings(
        environ={"SCHEDULER_DATA_DIR": str(data_dir), "AGENT_LOOP_RETRY_ATTEMPTS": "1", **env},
        env_file=None,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    db = SqliteStore(tmp_path / "scheduler.db")
    await db.open()
    yield db
    await db.close()


async def start(
    store: SqliteStore, tmp_path: Path, toml: str | None, *presets: str, **env: str
) -> AgentcronSystem:
    """What `agentcron run [--preset ...]` writes to the store at start."""
    config = None
    if toml is not None:
        config = tmp_path / "agentcron.toml"
        config.write_text(toml)
    system = AgentcronSystem(
        settings=settings_for(tmp_path, **env), config_path=config, presets=presets
    )
    await system._write_jobs(store, system._load_job_file())
    return system


async def stored_ids(store: SqliteStore) -> set[str]:
    return {job.id for job in await store.list_jobs()}


BOOT = '[[jobs]]\nid = "boot"\ntrigger = "0 0 1 1 *"\ncallable = "os:getcwd"\n'


# -- OVERLAP_TIMEOUT ---------------------------------------------------------------------
async def test_overlap_timeout_is_the_run_timeout_under_the_timeout_policy(
    store: SqliteStore, tmp_path: Path
) -> None:
    toml = BOOT + '\n[[jobs]]\nid = "own"\ntrigger = "0 0 1 1 *"\ncallable = "os:getcwd"\n'
    toml += 'timeout = "1m"\n'
    await start(store, tmp_path, toml, OVERLAP_STRATEGY="timeout", OVERLAP_TIMEOUT="5000")
    boot = await store.get_job("boot")
    own = await store.get_job("own")
    assert boot is not None and own is not None
    assert boot.definition["overlap"] == {"policy": "timeout", "max_skips": 3}
    assert boot.definition["timeout_s"] == 5.0
    assert own.definition["timeout_s"] == 60.0  # a job's own timeout wins


async def test_overlap_timeout_sets_no_timeout_under_other_policies(
    store: SqliteStore, tmp_path: Path
) -> None:
    await start(store, tmp_path, BOOT, OVERLAP_STRATEGY="skip", OVERLAP_TIMEOUT="5000")
    boot = await store.get_job("boot")
    assert boot is not None and "timeout_s" not in boot.definition


async def test_a_job_added_to_the_daemon_times_out_after_overlap_timeout(
    store: SqliteStore, tmp_path: Path
) -> None:
    # Jobs added through the dashboard's API get the same defaults as the file's.
    clock = VirtualClock(T0)
    system = AgentcronSystem(
        settings=settings_for(
            tmp_path, OVERLAP_STRATEGY="timeout", OVERLAP_TIMEOUT="5000", RETRY_MAX_ATTEMPTS="1"
        ),
        clock=clock,
    )
    sched = system._build_scheduler(store, tmp_path)
    started = asyncio.Event()

    async def hangs() -> None:
        started.set()
        await asyncio.Event().wait()

    job = sched.add_job("hangs", trigger="0 0 1 1 *", handler=hangs)
    assert (job.overlap.policy, job.timeout_s) == ("timeout", 5.0)
    async with sched:
        running = asyncio.ensure_future(sched.run_now("hangs"))
        await started.wait()
        await clock.advance(4)
        assert not running.done()
        await clock.advance(2)
        run = await running
        await sched.stop(grace_s=0)
    assert run.status == RunStatus.timed_out


# -- the preset's jobs, reconciled ---------------------------------------------------------
async def test_a_start_without_the_preset_removes_the_loops_an_earlier_start_registered(
    store: SqliteStore, tmp_path: Path
) -> None:
    await start(store, tmp_path, BOOT, "agent-loops")
    assert await stored_ids(store) == LOOP_IDS | {"boot"}
    assert json.loads(await store.get_state(PRESET_JOBS_KEY) or "") == sorted(LOOP_IDS)
    await start(store, tmp_path, BOOT)
    assert await stored_ids(store) == {"boot"}
    assert await store.get_state(PRESET_JOBS_KEY) == "[]"
    await start(store, tmp_path, BOOT, "agent-loops")  # and enabled again, they are back
    assert await stored_ids(store) == LOOP_IDS | {"boot"}


async def test_the_preset_is_removed_also_when_no_agentcron_toml_is_read(
    store: SqliteStore, tmp_path: Path
) -> None:
    await start(store, tmp_path, None, "agent-loops")
    await start(store, tmp_path, None)
    assert await stored_ids(store) == set()


async def test_a_loop_id_agentcron_toml_now_defines_is_kept_as_the_files_job(
    store: SqliteStore, tmp_path: Path
) -> None:
    await start(store, tmp_path, BOOT, "agent-loops")
    own = '[[jobs]]\nid = "loop-heartbeat"\ntrigger = "0 0 1 1 *"\ncallable = "os:getcwd"\n'
    await start(store, tmp_path, own)
    assert await stored_ids(store) == {"loop-heartbeat"}
    job = await store.get_job("loop-heartbeat")
    assert job is not None and job.definition["handler"]["ref"] == "os:getcwd"


async def test_loops_a_store_holds_from_before_the_record_are_removed_and_nothing_else(
    store: SqliteStore, tmp_path: Path
) -> None:
    # Written as `agentcron run --preset agent-loops` wrote them before `PRESET_JOBS_KEY`.
    settings = settings_for(tmp_path)
    for job_id, trigger, handler, options in preset_entries(settings, {}):
        job = build_job(job_id, trigger=trigger, handler=handler, **options)
        await store.save_job(StoredJob(id=job_id, definition=job_to_definition(job)), actor="p")
    # A job of the user's own that happens to have a loop's id.
    mine = build_job("loop-gmail-sync", trigger="0 0 1 1 *", handler="os:getcwd")
    await store.save_job(
        StoredJob(id="loop-gmail-sync", definition=job_to_definition(mine)), actor="cli"
    )
    await start(store, tmp_path, None)
    assert await stored_ids(store) == {"loop-gmail-sync"}


async def test_handlers_for_a_preset_that_is_not_enabled_stop_the_start_naming_the_fix(
    store: SqliteStore, tmp_path: Path
) -> None:
    toml = BOOT + '\n[presets.agent-loops.handlers]\nloop-gmail-sync = "os:getcwd"\n'
    await start(store, tmp_path, toml, "agent-loops")
    with pytest.raises(StartupError, match=r"--preset agent-loops") as info:
        await start(store, tmp_path, toml)
    assert "[presets.agent-loops.handlers]" in str(info.value)
    assert await stored_ids(store) == LOOP_IDS | {"boot"}  # nothing was written


async def test_an_empty_handlers_table_needs_no_preset(store: SqliteStore, tmp_path: Path) -> None:
    await start(store, tmp_path, BOOT + "\n[presets.agent-loops.handlers]\n")
    assert await stored_ids(store) == {"boot"}


async def test_agentcron_run_once_without_the_preset_leaves_no_loop_behind(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    config = tmp_path / "agentcron.toml"
    config.write_text(BOOT)

    async def run_once(*presets: str) -> set[str]:
        system = AgentcronSystem(
            settings=settings_for(data),
            config_path=config,
            presets=presets,
            dashboard=False,
            once=True,
            install_signals=False,
        )
        await system.serve()
        db = SqliteStore(data / "scheduler.db")
        await db.open()
        try:
            return await stored_ids(db)
        finally:
            await db.close()

    assert await run_once("agent-loops") == LOOP_IDS | {"boot"}
    assert await run_once() == {"boot"}
