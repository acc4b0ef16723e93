"""Backups, retention, the interval helper, integrity checks and restore on real files."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentcron.events import BackupFailed, Event, EventBus
from agentcron.models import RunQuery, RunRecord, RunStatus, StoredJob
from agentcron.store.backup import (
    BackupScheduler,
    backup_database,
    backup_due,
    check_database,
    list_backups,
    restore_database,
)
from agentcron.store.base import StoreError
from agentcron.store.sqlite import SqliteStore
from agentcron.testing import VirtualClock
from helpers.sqlite_files import job_ids_seen_by_another_process

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def populated(path: Path, jobs: tuple[str, ...] = ("digest",), runs: int = 3) -> None:
    store = SqliteStore(path)
    await store.open()
    for job_id in jobs:
        await store.save_job(StoredJob(id=job_id, definition={"trigger": "@hourly"}), actor="cli")
        for i in range(runs):
            await store.record_run(
                RunRecord(
                    run_id=f"{job_id}-{i}",
                    job_id=job_id,
                    scheduled_for=T0 + timedelta(minutes=i),
                    status=RunStatus.succeeded,
                )
            )
    await store.close()


async def job_ids(path: Path) -> list[str]:
    store = SqliteStore(path)
    await store.open()
    try:
        return [j.id for j in await store.list_jobs()]
    finally:
        await store.close()


# -- the pure decision -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("last", "now", "due"),
    [
        (None, T0, True),
        (T0, T0 + timedelta(minutes=59), False),
        (T0, T0 + HOUR, True),
        (T0, T0 + timedelta(days=3), True),
        (T0 + timedelta(hours=2), T0, True),  # newest backup "from the future": clock stepped back
    ],
)
def test_a_backup_is_due_after_the_interval(
    last: datetime | None, now: datetime, due: bool
) -> None:
    assert backup_due(last, now, HOUR) is due


# -- backup ----------------------------------------------------------------------------------
def test_a_backup_is_a_verified_self_contained_copy_named_by_utc_stamp(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    asyncio.run(populated(db))
    phases: list[tuple[str, int]] = []
    info = backup_database(
        db, tmp_path / "backups", now=T0, progress=lambda p, done, _total: phases.append((p, done))
    )
    assert info.path == tmp_path / "backups" / "scheduler-20260301T120000Z.db"
    assert info.taken_at == T0 and info.size_bytes == info.path.stat().st_size
    assert ("verify", 1) in phases and phases[-1] == ("retention", 1)
    assert not Path(f"{info.path}-wal").exists()
    conn = sqlite3.connect(info.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
    assert asyncio.run(job_ids(info.path)) == ["digest"]


def test_backups_in_the_same_second_get_distinct_names(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    asyncio.run(populated(db))
    first = backup_database(db, tmp_path / "backups", now=T0)
    second = backup_database(db, tmp_path / "backups", now=T0)
    assert first.path != second.path
    assert [b.path for b in list_backups(tmp_path / "backups")] == [second.path, first.path]


def test_only_the_newest_backups_are_kept(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    asyncio.run(populated(db))
    backups = tmp_path / "backups"
    (backups / "notes.txt").parent.mkdir()
    (backups / "notes.txt").write_text("not a backup")
    for hour in range(5):
        backup_database(db, backups, now=T0 + hour * HOUR, keep=3)
    kept = [b.taken_at for b in list_backups(backups)]
    assert kept == [T0 + 4 * HOUR, T0 + 3 * HOUR, T0 + 2 * HOUR]
    assert (backups / "notes.txt").exists()


def test_a_backup_removes_the_partial_copies_that_killed_backups_left(tmp_path: Path) -> None:
    # A backup killed mid-copy leaves `<name>.partial` (and its journal), as large as the
    # database; nothing removed them, so repeated crashes could fill the disk.
    db = tmp_path / "scheduler.db"
    asyncio.run(populated(db))
    backups = tmp_path / "backups"
    backups.mkdir()
    stale = backups / "scheduler-20260228T220000Z.db.partial"
    fresh = backups / "scheduler-20260301T000000Z-7.db.partial"  # another backup's, writing
    for path in (stale, Path(f"{stale}-journal"), fresh):
        path.write_bytes(b"\0" * 4096)
    old = (T0 - 2 * HOUR).timestamp()
    for path in (stale, Path(f"{stale}-journal")):
        os.utime(path, (old, old))
    os.utime(fresh, (T0.timestamp(), T0.timestamp()))
    info = backup_database(db, backups, now=T0)
    assert not stale.exists() and not Path(f"{stale}-journal").exists()
    assert fresh.exists() and info.path.exists()


def test_backing_up_something_that_is_not_agentcron_fails_without_leftovers(
    tmp_path: Path,
) -> None:
    foreign = tmp_path / "notes.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    with pytest.raises(StoreError, match="not an agentcron database"):
        backup_database(foreign, tmp_path / "backups", now=T0)
    assert list((tmp_path / "backups").iterdir()) == []
    with pytest.raises(StoreError, match="nothing to back up"):
        backup_database(tmp_path / "missing.db", tmp_path / "backups", now=T0)


def test_a_backup_taken_while_the_store_writes_is_consistent(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"

    async def scenario() -> Path:
        store = SqliteStore(db)
        await store.open()
        await store.save_job(StoredJob(id="j", definition={}), actor="cli")
        writes = [
            store.record_run(
                RunRecord(
                    run_id=f"r{i}",
                    job_id="j",
                    scheduled_for=T0 + timedelta(seconds=i),
                    status=RunStatus.succeeded,
                )
            )
            for i in range(500)
        ]
        backup = asyncio.to_thread(backup_database, db, tmp_path / "backups", now=T0)
        results = await asyncio.gather(backup, *writes)
        await store.close()
        return results[0].path  # type: ignore[no-any-return]

    path = asyncio.run(scenario())
    report = check_database(path)
    assert report.jobs == 1 and 0 <= report.runs <= 500


# -- the interval helper -----------------------------------------------------------------------
async def test_the_backup_scheduler_backs_up_hourly_on_the_injected_clock(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    await populated(db)
    clock = VirtualClock(T0)
    scheduler = BackupScheduler(db, clock=clock, keep=2)
    taken = []
    for _ in range(7):  # T0 .. T0 + 3 h in half-hour steps
        info = await scheduler.run_pending()
        if info is not None:
            taken.append(info.taken_at)
        await clock.advance(30 * 60)
    assert taken == [T0, T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR]
    kept = await asyncio.to_thread(list_backups, scheduler.backups_dir)
    assert [b.taken_at for b in kept] == [T0 + 3 * HOUR, T0 + 2 * HOUR]


async def wait_for_backups(scheduler: BackupScheduler, count: int) -> None:
    while len(await asyncio.to_thread(list_backups, scheduler.backups_dir)) < count:
        await asyncio.sleep(0.01)  # waits for the backup thread, bounded (noqa: sleep-ok)


async def test_the_backup_loop_sleeps_on_the_clock_until_the_next_backup(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    await populated(db)
    clock = VirtualClock(T0)
    scheduler = BackupScheduler(db, clock=clock)
    task = asyncio.create_task(scheduler.run())
    try:
        await asyncio.wait_for(wait_for_backups(scheduler, 1), timeout=30)
        assert scheduler.next_due() == T0 + HOUR
        await clock.advance(3600)
        await asyncio.wait_for(wait_for_backups(scheduler, 2), timeout=30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_restarted_scheduler_waits_for_the_newest_backup_to_age(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    await populated(db)
    await asyncio.to_thread(backup_database, db, db.parent / "backups", now=T0)
    clock = VirtualClock(T0 + timedelta(minutes=20))
    scheduler = BackupScheduler(db, clock=clock)
    assert await scheduler.run_pending() is None
    assert scheduler.next_due() == T0 + HOUR
    await clock.advance(40 * 60)
    info = await scheduler.run_pending()
    assert info is not None and info.taken_at == T0 + HOUR


async def test_a_failed_backup_is_published_and_retried_later(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    scheduler = BackupScheduler(tmp_path / "missing.db", clock=clock, bus=bus)
    assert await scheduler.run_pending() is None
    await bus.drain()
    assert isinstance(seen[0], BackupFailed) and "nothing to back up" in seen[0].error
    assert scheduler.next_due() == T0 + timedelta(minutes=5)
    assert await scheduler.run_pending() is None  # not yet
    assert len(seen) == 1


# -- check -----------------------------------------------------------------------------------
def test_check_reports_counts_of_an_intact_database(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    asyncio.run(populated(db, jobs=("a", "b"), runs=4))
    report = check_database(db)
    assert (report.jobs, report.runs, report.schema_version) == (2, 8, report.latest_version)


def test_check_reports_corruption_with_the_way_out(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    asyncio.run(populated(db, runs=300))
    with db.open("r+b") as handle:
        handle.seek(db.stat().st_size // 2)
        handle.write(b"\x07" * 6000)
    with pytest.raises(StoreError, match="agentcron db restore") as err:
        check_database(db)
    assert str(db) in str(err.value)


# -- restore ---------------------------------------------------------------------------------
def test_restore_round_trip_keeps_the_replaced_database(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    asyncio.run(populated(db, jobs=("before",)))
    backup = backup_database(db, tmp_path / "backups", now=T0)
    asyncio.run(populated(db, jobs=("after",)))
    result = restore_database(db, backup.path, now=T0 + HOUR)
    assert result.replaced == tmp_path / "scheduler.db.replaced-20260301T130000Z"
    assert asyncio.run(job_ids(db)) == ["before"]
    assert asyncio.run(job_ids(result.replaced)) == ["after", "before"]
    assert not (tmp_path / "scheduler.db.restoring").exists()


def test_restore_into_an_empty_data_directory(tmp_path: Path) -> None:
    source = tmp_path / "old" / "scheduler.db"
    asyncio.run(populated(source))
    backup = backup_database(source, tmp_path / "backups", now=T0)
    db = tmp_path / "new" / "scheduler.db"
    result = restore_database(db, backup.path, now=T0)
    assert result.replaced is None
    assert asyncio.run(job_ids(db)) == ["digest"]


@pytest.mark.parametrize("kind", ["corrupt", "foreign", "text", "newer", "empty", "missing"])
def test_a_bad_restore_file_is_refused_and_the_database_untouched(
    tmp_path: Path, kind: str
) -> None:
    db = tmp_path / "scheduler.db"
    asyncio.run(populated(db))
    bad = tmp_path / "bad.db"
    if kind == "corrupt":
        asyncio.run(populated(bad, runs=300))
        with bad.open("r+b") as handle:
            handle.seek(bad.stat().st_size // 2)
            handle.write(b"\x07" * 6000)
    elif kind == "foreign":
        conn = sqlite3.connect(bad)
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.close()
    elif kind == "text":
        bad.write_text("hello")
    elif kind == "newer":
        asyncio.run(populated(bad))
        conn = sqlite3.connect(bad)
        conn.execute("PRAGMA user_version = 999")
        conn.close()
    elif kind == "empty":
        sqlite3.connect(bad).close()
    before = {p.name: digest(p) for p in tmp_path.iterdir() if p.is_file()}
    with pytest.raises(StoreError) as err:
        restore_database(db, bad, now=T0)
    message = str(err.value)
    assert str(bad) in message and f"{db} was not touched" in message
    after = {p.name: digest(p) for p in tmp_path.iterdir() if p.is_file()}
    assert after == before


def test_restore_is_refused_while_the_database_is_in_use(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    asyncio.run(populated(db, jobs=("live",)))
    backup = backup_database(db, tmp_path / "backups", now=T0)

    async def attempt() -> str:
        store = SqliteStore(db)
        await store.open()
        try:
            await store.get_job("live")
            with pytest.raises(StoreError, match="in use") as err:
                await asyncio.to_thread(restore_database, db, backup.path, now=T0)
            return str(err.value)
        finally:
            await store.close()

    assert "was not touched" in asyncio.run(attempt())
    assert asyncio.run(job_ids(db)) == ["live"]


def test_a_corrupt_live_database_is_replaced_and_kept_with_its_wal(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    asyncio.run(populated(db))
    backup = backup_database(db, tmp_path / "backups", now=T0)
    db.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)  # wrecked header
    result = restore_database(db, backup.path, now=T0)
    assert result.replaced is not None and result.replaced.exists()
    assert asyncio.run(job_ids(db)) == ["digest"]


def test_a_live_database_that_cannot_be_moved_aside_is_left_whole_with_its_wal(
    tmp_path: Path,
) -> None:
    # QA: with `chattr +i scheduler.db` the move of the live file failed after its -wal and
    # -shm had been moved to the kept copy's names: a traceback, an empty kept copy, and
    # the committed transactions in the WAL parted from their database. A portable
    # stand-in for a file that cannot be moved (root ignores permissions): a directory in
    # its place, which SQLite cannot open (so it is handled as damaged, and moved) and
    # which cannot be renamed over the regular file reserved for the kept copy.
    db = tmp_path / "scheduler.db"
    source = tmp_path / "source.db"
    asyncio.run(populated(source))
    backup = backup_database(source, tmp_path / "backups", now=T0)
    db.mkdir()
    (db / "pages").write_text("stands for an immutable database file")
    Path(f"{db}-wal").write_bytes(b"committed transactions")
    Path(f"{db}-shm").write_bytes(b"shared memory")
    before = {p.name: digest(p) for p in tmp_path.iterdir() if p.is_file()}
    with pytest.raises(StoreError) as err:
        restore_database(db, backup.path, now=T0)
    message = str(err.value)
    assert message.startswith(f"refusing to restore: cannot move {db} to "), message
    assert message.endswith(f"{db} was not touched") and "\n" not in message
    assert {p.name: digest(p) for p in tmp_path.iterdir() if p.is_file()} == before
    assert (db / "pages").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "backups",
        "scheduler.db",
        "scheduler.db-shm",
        "scheduler.db-wal",
        "source.db",
    ]


async def test_restored_history_is_queryable(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    await populated(db, runs=7)
    backup = await asyncio.to_thread(backup_database, db, tmp_path / "backups", now=T0)
    await asyncio.to_thread(restore_database, db, backup.path, now=T0)
    store = SqliteStore(db)
    await store.open()
    assert await store.count_runs(RunQuery(job_id="digest")) == 7
    await store.close()


async def test_the_writing_process_backs_up_and_checks_its_file_without_losing_later_writes(
    tmp_path: Path,
) -> None:
    # `agentcron run`'s daily maintenance backs up and checks the live file from the process
    # that writes it; a header check with a plain file handle dropped that process's locks,
    # and its later writes could be lost (see `migrations.check_sqlite_header`).
    db = tmp_path / "scheduler.db"
    store = SqliteStore(db)
    await store.open()
    await store.save_job(StoredJob(id="before", definition={}), actor="cli")
    await asyncio.to_thread(backup_database, db, tmp_path / "backups", now=T0)
    await asyncio.to_thread(check_database, db)
    assert job_ids_seen_by_another_process(db) == ["before"]
    await store.save_job(StoredJob(id="after", definition={}), actor="cli")
    assert job_ids_seen_by_another_process(db) == ["after", "before"]
    await store.close()
