"""Engine integration: a scheduled job with ``queue=`` is enqueued at its fire time under its
occurrence key, and its run record follows the queue job to completion."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import queue_handlers
from queue_testlib import T0, Env

from agentcron.engine import Scheduler
from agentcron.models import RunQuery, RunRecord, RunStatus
from agentcron.queue import open_queue
from agentcron.queue.scheduled import ScheduledJobRunner, queue_dispatch
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock
from agentcron.triggers import Interval

HERE = Path(__file__).resolve().parent


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Scheduler, Env, MemoryStore]]:
    from agentcron.events import EventBus

    clock = VirtualClock(T0)
    bus = EventBus()
    queue = open_queue(f"sqlite:///{tmp_path}/scheduler.db", "agent", clock=clock, events=bus)
    store = MemoryStore()
    sched = Scheduler(store, clock=clock, dispatch=queue_dispatch({"agent": queue}))
    queue_handlers.FIRES.clear()
    yield sched, Env("sqlite", queue, queue.url, clock, bus), store
    await queue.close()


async def runs_of(store: MemoryStore, job_id: str) -> list[RunRecord]:
    return await store.list_runs(RunQuery(job_id=job_id))


async def test_a_fire_is_enqueued_at_its_time_and_its_run_follows_the_queue_job(
    setup: tuple[Scheduler, Env, MemoryStore],
) -> None:
    sched, env, store = setup
    sched.add_job(
        "digest", trigger=Interval(seconds=10), handler="queue_handlers:count_fire", queue="agent"
    )
    async with sched:
        assert env.clock is not None
        await env.clock.advance(10)
        (run,) = await runs_of(store, "digest")
        key = f"digest@{(T0 + timedelta(seconds=10)).isoformat()}"
        assert run.status == RunStatus.scheduled and run.queue_job_id == key
        assert queue_handlers.FIRES == []  # not run inline
        info = await env.queue.get(key)
        assert info is not None and info.state == "waiting"

        runner = ScheduledJobRunner(store, clock=env.clock)  # the definition comes from the store
        await env.drain(env.queue.worker(runner, backoff_strategy=runner.backoff_strategy))
    assert queue_handlers.FIRES == [(key, 1)]
    (run,) = await runs_of(store, "digest")
    assert run.status == RunStatus.succeeded and run.queue_job_id == key
    assert run.finished_at is not None and run.attempt == 1


async def test_a_failed_attempt_is_retried_by_the_queue_as_the_jobs_retry_policy_says(
    setup: tuple[Scheduler, Env, MemoryStore],
) -> None:
    sched, env, store = setup
    sched.add_job(
        "flaky",
        trigger=Interval(seconds=10),
        handler="queue_handlers:fail_first_fire",
        queue="agent",
        retry={"max_attempts": 3, "strategy": "fixed", "base_delay": 2.0},
    )
    async with sched:
        assert env.clock is not None
        await env.clock.advance(10)
        runner = ScheduledJobRunner(
            store, clock=env.clock, jobs=lambda job_id: sched.job(job_id).job
        )
        started = env.clock.monotonic()
        await env.drain(env.queue.worker(runner, backoff_strategy=runner.backoff_strategy))
        elapsed = env.clock.monotonic() - started
    assert [attempt for _, attempt in queue_handlers.FIRES] == [1, 2]
    assert elapsed >= 2.0  # the policy's delay, applied once (by the queue)
    (run,) = await runs_of(store, "flaky")
    assert run.status == RunStatus.succeeded and run.attempt == 2


async def test_a_fire_whose_attempts_run_out_is_recorded_failed(
    setup: tuple[Scheduler, Env, MemoryStore],
) -> None:
    sched, env, store = setup
    sched.add_job(
        "doomed",
        trigger=Interval(seconds=10),
        handler="queue_handlers:fail_first_fire",
        queue="agent",
    )
    async with sched:
        assert env.clock is not None
        await env.clock.advance(10)
        runner = ScheduledJobRunner(store, clock=env.clock)
        await env.drain(env.queue.worker(runner, backoff_strategy=runner.backoff_strategy))
    (run,) = await runs_of(store, "doomed")
    assert (
        run.status == RunStatus.failed
        and run.error is not None
        and "first attempt fails" in run.error
    )
    assert (await env.queue.counts())["failed"] == 1


@pytest.mark.parametrize("job_store", [True, False], ids=["job-store", "store-alone"])
async def test_the_worker_command_runs_dispatched_fires_with_scheduled(
    tmp_path: Path, job_store: bool
) -> None:
    # Without --job-store the worker looked for the jobs in the data directory's database
    # (not where `--store` says the daemon keeps its queues and jobs) and dead-lettered
    # every occurrence as "no longer exists", leaving its run `scheduled` for ever.
    import os
    import subprocess
    import sys

    db = f"sqlite:///{tmp_path}/scheduler.db"
    clock = VirtualClock(T0)
    queue = open_queue(db, "agent", clock=clock)
    sched = Scheduler(db, clock=clock, dispatch=queue_dispatch({"agent": queue}))
    sched.add_job(
        "digest", trigger=Interval(seconds=10), handler="queue_handlers:count_fire", queue="agent"
    )
    async with sched:
        await clock.advance(10)
    await queue.close()
    (tmp_path / "elsewhere").mkdir()  # (its ./data is not the daemon's)
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "agentcron",
            "worker",
            "--queue",
            "agent",
            "--scheduled",
            "--burst",
            "--store",
            db,
            *(["--job-store", db] if job_store else []),
        ],
        cwd=tmp_path / "elsewhere",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    from agentcron.store.base import open_store

    store = open_store(db)
    await store.open()
    try:
        (run,) = await store.list_runs(RunQuery(job_id="digest"))
    finally:
        await store.close()
    assert run.status == RunStatus.succeeded
    assert run.queue_job_id == f"digest@{(T0 + timedelta(seconds=10)).isoformat()}"
