"""The file under an open SQLite store deleted or replaced while in use (`sqlite_file`):
written back, or moved to with the old database kept beside it; real files throughout."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentcron import Scheduler
from agentcron.models import RunQuery, RunRecord, RunStatus, StoredJob
from agentcron.store.sqlite import SqliteStore
from agentcron.testing import VirtualClock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def a_job(job_id: str) -> StoredJob:
    return StoredJob(id=job_id, definition={"trigger": {"cron": "0 * * * *"}})


def a_run(run_id: str, job_id: str, minute: int) -> RunRecord:
    at = T0 + timedelta(minutes=minute)
    return RunRecord(
        run_id=run_id,
        job_id=job_id,
        scheduled_for=at,
        status=RunStatus.succeeded,
        started_at=at,
        finished_at=at,
    )


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def delete_database(db: Path) -> None:
    """What `rm -r data/` does to the database of a running daemon."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


async def run_ids(db: Path) -> set[str]:
    """The run ids another process (a fresh store on the path) sees."""
    async with SqliteStore(db) as other:
        return {r.run_id for r in await other.list_runs(RunQuery(limit=1000))}


async def test_a_database_deleted_while_open_is_written_back_with_nothing_lost(
    tmp_path: Path,
) -> None:
    # The daemon went on writing to the deleted file, which nobody else could see, and all
    # of it was gone when the daemon stopped; the CLI meanwhile made a new, empty database.
    db = tmp_path / "scheduler.db"
    async with SqliteStore(db) as store:
        await store.save_job(a_job("digest"), actor="test")
        await store.record_run(a_run("before", "digest", 0))
        delete_database(db)
        await store.record_run(a_run("after", "digest", 1))  # to the deleted file
        await store.notice_data_loss()
        assert db.exists() and store.data_losses == 0
        assert await run_ids(db) == {"before", "after"}
        await store.record_run(a_run("later", "digest", 2))  # to the file written back
        assert await run_ids(db) == {"before", "after", "later"}
        assert [r.run_id for r in await store.list_runs(RunQuery(limit=10))] == [
            "later",
            "after",
            "before",
        ]
    assert [name for name in names(tmp_path) if "restoring" in name] == []


async def test_a_database_replaced_while_open_is_kept_beside_it_and_the_new_one_used(
    tmp_path: Path,
) -> None:
    db = tmp_path / "scheduler.db"
    async with SqliteStore(db, clock=VirtualClock(T0)) as store:
        await store.save_job(a_job("digest"), actor="test")
        await store.record_run(a_run("mine", "digest", 0))
        delete_database(db)
        async with SqliteStore(db) as cli:  # `agentcron jobs add` after the delete
            await cli.save_job(a_job("from-the-cli"), actor="cli")
        await store.notice_data_loss()
        assert store.data_losses == 1
        assert [job.id for job in await store.list_jobs()] == ["from-the-cli"]
        await store.record_run(a_run("next", "from-the-cli", 1))
        assert await run_ids(db) == {"next"}
    assert [name for name in names(tmp_path) if ".orphaned-" in name] == [
        "scheduler.db.orphaned-20260301T120000Z"
    ]
    orphan = tmp_path / "scheduler.db.orphaned-20260301T120000Z"
    assert await run_ids(orphan) == {"mine"}  # the history it had open, kept


async def test_a_database_still_in_place_is_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    async with SqliteStore(db) as store:
        await store.record_run(a_run("kept", "digest", 0))
        before = names(tmp_path)
        await store.notice_data_loss()
        assert store.data_losses == 0
        assert names(tmp_path) == before


@pytest.mark.parametrize("replaced", [False, True], ids=["deleted", "replaced"])
async def test_a_scheduler_whose_database_goes_away_keeps_its_jobs_in_the_file(
    tmp_path: Path, replaced: bool
) -> None:
    clock = VirtualClock(T0)
    db = tmp_path / "scheduler.db"
    async with SqliteStore(db, clock=clock) as store:
        sched = Scheduler(store=store, clock=clock, node_id="n", lease_s=30)
        sched.add_job("hourly", trigger="0 * * * *", handler="os:getcwd")
        async with sched:
            await sched.flush()
            delete_database(db)
            if replaced:
                async with SqliteStore(db) as cli:
                    await cli.save_job(a_job("from-the-cli"), actor="cli")
            await clock.advance(10)  # the next lease renewal looks at the file
            async with asyncio.timeout(20):
                while store.data_losses != int(replaced) or not db.exists():
                    await asyncio.sleep(0.005)  # the store's threads (noqa: sleep-ok)
            await sched.flush()
            async with asyncio.timeout(20):
                while True:
                    async with SqliteStore(db) as other:
                        ids = {job.id for job in await other.list_jobs()}
                    if "hourly" in ids:
                        break
                    await asyncio.sleep(0.005)  # the write-back (noqa: sleep-ok)
    assert ("from-the-cli" in ids) is replaced
