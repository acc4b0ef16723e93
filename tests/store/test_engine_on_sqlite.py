"""The engine on a real SQLite file: jobs and history come back after a restart, and fires
missed while the process was down or the machine slept go through the misfire policy."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agentcron import Scheduler
from agentcron.events import Event
from agentcron.models import RunQuery, RunRecord, RunStatus
from agentcron.store.sqlite import SqliteStore
from agentcron.testing import VirtualClock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = 3600


async def work(ctx: Any) -> str:
    return "ok"


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Store writes finish on the writer thread in real time: wait for them (bounded)."""

    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)  # waits for the store's writer thread (noqa: sleep-ok)

    await asyncio.wait_for(poll(), timeout=20)


@asynccontextmanager
async def scheduler(
    db: Path,
    clock: VirtualClock,
    seen: list[Event],
    *,
    node_id: str = "n1",
    define: bool = True,
    **job: Any,
) -> AsyncIterator[Scheduler]:
    """A running scheduler on `db` with the job "hourly" (with `job`'s options; none if not
    `define`), stopped and its store closed after: a scheduler leaves a store it was given
    open (its owner's), and a connection left to the garbage collector is a
    `ResourceWarning` (an error here) on Python 3.13."""
    async with SqliteStore(db, clock=clock) as store:
        sched = Scheduler(store=store, clock=clock, node_id=node_id)
        sched.events.subscribe(seen.append, types=["run.succeeded"])
        if define:
            sched.add_job("hourly", trigger="0 * * * *", handler=f"{__name__}:work", **job)
        async with sched:
            yield sched


async def history(db: Path) -> list[RunRecord]:
    store = SqliteStore(db)
    try:
        return list(reversed(await store.list_runs(RunQuery(job_id="hourly", limit=100))))
    finally:
        await store.close()


def hours(runs: list[RunRecord]) -> list[tuple[float, str]]:
    return [((r.scheduled_for - T0).total_seconds() / HOUR, str(r.status)) for r in runs]


async def down_for_three_hours(tmp_path: Path, **job: Any) -> list[RunRecord]:
    db, clock, seen = tmp_path / "scheduler.db", VirtualClock(T0), []
    async with scheduler(db, clock, seen, **job) as first:
        await first.events.drain()
        await clock.advance(HOUR)
        await wait_until(lambda: len(seen) == 1)
    await clock.advance(3 * HOUR + 60)  # the process is down: 14:00, 15:00, 16:00 missed
    async with scheduler(db, clock, seen, **job) as second:
        await clock.advance(1)
        await wait_until(lambda: len(seen) >= 2)
        await clock.advance(30)
        await second.events.drain()
    return await history(db)


async def test_missed_fires_are_coalesced_into_one_run_after_a_restart(tmp_path: Path) -> None:
    runs = await down_for_three_hours(tmp_path, misfire="run_once")
    succeeded = [r for r in runs if r.status == RunStatus.succeeded]
    assert len(succeeded) == 2, hours(runs)
    assert succeeded[0].scheduled_for == T0 + timedelta(hours=1)
    assert succeeded[1].scheduled_for > T0 + timedelta(hours=1)


async def test_run_all_catches_up_every_missed_fire_after_a_restart(tmp_path: Path) -> None:
    db, clock, seen = tmp_path / "scheduler.db", VirtualClock(T0), []
    async with scheduler(db, clock, seen, misfire="run_all"):
        await clock.advance(HOUR)
        await wait_until(lambda: len(seen) == 1)
    await clock.advance(3 * HOUR + 60)
    async with scheduler(db, clock, seen, misfire="run_all"):
        await clock.advance(1)
        await wait_until(lambda: len(seen) == 4)
    runs = await history(db)
    assert hours(runs) == [
        (1.0, "succeeded"),
        (2.0, "succeeded"),
        (3.0, "succeeded"),
        (4.0, "succeeded"),
    ]


async def test_a_machine_sleep_is_a_misfire_not_a_burst(tmp_path: Path) -> None:
    db, clock, seen = tmp_path / "scheduler.db", VirtualClock(T0), []
    async with scheduler(db, clock, seen, misfire="run_once"):
        await clock.advance(HOUR)
        await wait_until(lambda: len(seen) == 1)
        await clock.suspend(5 * HOUR)  # wall clock jumps, monotonic clock does not
        await clock.advance(1)
        await wait_until(lambda: len(seen) == 2)
        await clock.advance(30)
    runs = [r for r in await history(db) if r.status == RunStatus.succeeded]
    assert len(runs) == 2, hours(runs)


async def test_jobs_and_their_history_come_back_after_a_restart(tmp_path: Path) -> None:
    db, clock, seen = tmp_path / "scheduler.db", VirtualClock(T0), []
    async with scheduler(db, clock, seen) as first:
        await clock.advance(HOUR)
        await wait_until(lambda: len(seen) == 1)
        first.pause("hourly", note="travelling")
    # No job defined in code: it comes back from the store.
    async with scheduler(db, clock, seen, node_id="n2", define=False) as restarted:
        view = restarted.job("hourly")
        assert view.paused
        assert [r.status for r in await restarted.runs("hourly")] == [RunStatus.succeeded]


#: A Latin-1 file name as Python reads it from a UTF-8 file system: with lone surrogates.
NOT_UTF8_NAME = os.fsdecode(b"/data/r\xe9sum\xe9.txt")


async def fails_quoting_a_file_name_that_is_not_utf8(ctx: Any) -> None:
    raise FileNotFoundError(f"no such file: {NOT_UTF8_NAME}")


async def test_a_run_failing_with_a_message_that_is_not_utf8_is_recorded_failed(
    tmp_path: Path,
) -> None:
    # SQLite refused the final record (a lone surrogate): the run stayed running, and its
    # lease would have made it interrupted and retried.
    db, clock = tmp_path / "scheduler.db", VirtualClock(T0)
    async with SqliteStore(db, clock=clock) as store:
        sched = Scheduler(store=store, clock=clock, node_id="n1")
        sched.add_job(
            "hourly", trigger="0 * * * *", handler=fails_quoting_a_file_name_that_is_not_utf8
        )
        async with sched:
            final = await sched.run_now("hourly")
    assert final.status == RunStatus.failed
    [stored] = await history(db)
    assert stored.status == RunStatus.failed
    assert stored.error == "FileNotFoundError: no such file: /data/r\\udce9sum\\udce9.txt"
