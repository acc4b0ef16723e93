"""SqliteStore beyond the shared contract: URLs, durability, migrations and bad files."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentcron.models import RunQuery, RunRecord, RunStatus, StoredJob
from agentcron.store import migrations
from agentcron.store.base import StoreError, open_store
from agentcron.store.sqlite import SqliteStore
from helpers.sqlite_files import job_ids_seen_by_another_process

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def exists(path: Path) -> bool:
    return path.exists()


def schema_of(path: Path) -> list[tuple[str, str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
        ).fetchall()
        header = conn.execute("PRAGMA user_version").fetchone()[0]
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    finally:
        conn.close()
    return [("pragma", "user_version", str(header), ""), ("pragma", "app", str(app_id), ""), *rows]


async def open_and_close(path: Path, **options: object) -> SqliteStore:
    store = SqliteStore(path, **options)  # type: ignore[arg-type]
    await store.open()
    await store.close()
    return store


# -- URLs and files ------------------------------------------------------------------------------
def test_urls_give_relative_and_absolute_paths() -> None:
    assert SqliteStore.from_url("sqlite:///data/scheduler.db").path == Path("data/scheduler.db")
    assert SqliteStore.from_url("sqlite:////var/lib/a.db").path == Path("/var/lib/a.db")
    store = open_store("sqlite:///x.db")
    assert isinstance(store, SqliteStore)
    with pytest.raises(ValueError, match="sqlite:///"):
        SqliteStore.from_url("sqlite://x.db")


async def test_opening_creates_the_parent_directories_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "scheduler.db"
    await open_and_close(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_a_relative_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = SqliteStore.from_url("sqlite:///data/scheduler.db")
    await store.open()
    await store.close()
    assert (tmp_path / "data" / "scheduler.db").exists()


def test_synchronous_must_be_normal_or_full(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SqliteStore(tmp_path / "x.db", synchronous="OFF")  # type: ignore[arg-type]


async def test_a_new_job_is_returned_exactly_as_it_reads_back(tmp_path: Path) -> None:
    # save_job returns a new job as inserted instead of reading it back: the definition
    # (tuples as lists, keys as text once through JSON), flags and times must still match.
    created = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    job = StoredJob(
        id="j",
        definition={"trigger": "* * * * *", "args": (1, "two"), "env": {7: "x"}},
        paused=True,
        pause_note="hold",
        next_run=created + timedelta(minutes=1),
        created_at=created,
    )
    async with SqliteStore(tmp_path / "scheduler.db") as store:
        saved = await store.save_job(job, actor="cli")
        assert saved == await store.get_job("j")
        assert saved.definition == {"trigger": "* * * * *", "args": [1, "two"], "env": {"7": "x"}}
        assert (saved.version, saved.created_at, saved.paused) == (1, created, True)
        [added] = await store.list_audit("j")
        assert added.after == saved.definition


# -- durability and concurrency ------------------------------------------------------------------
async def test_everything_acknowledged_is_there_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.db"
    store = SqliteStore(path, synchronous="FULL")
    await store.open()
    await store.save_job(StoredJob(id="j", definition={"trigger": "* * * * *"}), actor="cli")
    await asyncio.gather(
        *(
            store.record_run(
                RunRecord(
                    run_id=f"r{i}",
                    job_id="j",
                    scheduled_for=T0 + timedelta(seconds=i),
                    status=RunStatus.succeeded,
                )
            )
            for i in range(300)
        )
    )
    await store.set_state("k", "v")
    await store.close()
    again = SqliteStore(path)
    await again.open()
    assert await again.count_runs(RunQuery(job_id="j")) == 300
    assert await again.get_state("k") == "v"
    assert [j.id for j in await again.list_jobs()] == ["j"]
    await again.close()


async def test_a_failed_write_does_not_undo_the_writes_committed_with_it(
    sqlite_store: SqliteStore,
) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO system_state (key, value, updated_us) VALUES ('x', NULL, 0)")

    good = [sqlite_store.set_state(f"k{i}", "v") for i in range(20)]
    results = await asyncio.gather(sqlite_store._write(broken), *good, return_exceptions=True)
    assert isinstance(results[0], StoreError) and "NOT NULL" in str(results[0])
    assert all(r is None for r in results[1:])
    assert [await sqlite_store.get_state(f"k{i}") for i in range(20)] == ["v"] * 20


async def test_the_store_opens_itself_on_first_use(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "lazy.db")
    await store.set_state("a", "b")
    assert await store.get_state("a") == "b"
    await store.close()
    await store.close()  # idempotent


# -- migrations ----------------------------------------------------------------------------------
async def test_a_fresh_schema_equals_one_migrated_from_every_older_version(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    await open_and_close(fresh)
    assert schema_of(fresh)[0] == ("pragma", "user_version", str(migrations.LATEST_VERSION), "")
    for start in range(1, migrations.LATEST_VERSION + 1):
        old = tmp_path / f"from-{start}.db"
        conn = sqlite3.connect(old, isolation_level=None)
        for migration in migrations.MIGRATIONS[:start]:
            for statement in migrations.split_statements(migration.sql):
                conn.execute(statement)
        conn.close()
        store = await open_and_close(old)
        assert store.migrated == (start, migrations.LATEST_VERSION)
        assert schema_of(old) == schema_of(fresh)


def test_migrations_are_numbered_from_1_and_each_sets_its_version() -> None:
    assert [m.version for m in migrations.MIGRATIONS] == list(
        range(1, migrations.LATEST_VERSION + 1)
    )
    for migration in migrations.MIGRATIONS:
        assert f"PRAGMA user_version = {migration.version};" in migration.sql


def test_statements_are_split_whole_even_with_semicolons_in_triggers() -> None:
    sql = (
        "-- a comment; with a semicolon\nCREATE TABLE t (x);\n"
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  UPDATE t SET x = 1;\n  SELECT 1;\nEND;\n"
    )
    statements = migrations.split_statements(sql)
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")


async def test_reopening_a_current_database_migrates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.db"
    await open_and_close(path)
    store = await open_and_close(path)
    assert store.migrated == (migrations.LATEST_VERSION, migrations.LATEST_VERSION)


# -- bad files: a clear message naming the file, and nothing written -------------------------------
async def test_a_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.db"
    await open_and_close(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {int(migrations.LATEST_VERSION) + 1}")  # no placeholders
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    before = digest(path)
    with pytest.raises(StoreError) as err:
        await SqliteStore(path).open()
    expected = (
        f"{path} was created by a newer agentcron (schema {migrations.LATEST_VERSION + 1} > "
        f"{migrations.LATEST_VERSION}); upgrade agentcron or restore a backup"
    )
    assert str(err.value) == expected
    assert digest(path) == before
    assert not exists(Path(f"{path}-wal"))


async def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.db"
    path.write_text("this is my shopping list\n")
    with pytest.raises(StoreError, match="is not an SQLite database") as err:
        await SqliteStore(path).open()
    assert str(path) in str(err.value) and "restore a backup" in str(err.value)
    assert path.read_text() == "this is my shopping list\n"


async def test_another_applications_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    before = digest(path)
    with pytest.raises(StoreError, match="not an agentcron database") as err:
        await SqliteStore(path).open()
    assert str(path) in str(err.value)
    assert digest(path) == before


async def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        await SqliteStore(tmp_path).open()


async def test_a_corrupt_catalogue_is_reported_with_the_way_out(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.db"
    await open_and_close(path)
    with path.open("r+b") as handle:  # keep the 100-byte header, wreck the rest of page 1
        handle.seek(100)
        handle.write(b"\xa5" * 3900)
    with pytest.raises(StoreError) as err:
        await SqliteStore(path).open()
    message = str(err.value)
    assert str(path) in message and "corrupt" in message and "agentcron db restore" in message


async def test_corrupt_table_pages_are_reported_when_read(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.db"
    store = SqliteStore(path)
    await store.open()
    for i in range(400):
        await store.record_run(
            RunRecord(
                run_id=f"r{i}",
                job_id="j",
                scheduled_for=T0 + timedelta(seconds=i),
                status=RunStatus.succeeded,
                output_tail="y" * 200,
            )
        )
    await store.close()
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.seek(size // 2)
        handle.write(b"\x00\xff" * 4096)
    store = SqliteStore(path)
    with pytest.raises(StoreError, match="corrupt") as err:
        await store.open()
        await store.list_runs(RunQuery(limit=1000))
        await store.run_stats("j")
    assert str(path) in str(err.value)
    await store.close()


async def test_a_locked_database_is_reported_as_locked(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.db"
    await open_and_close(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked by another process") as err:
            await SqliteStore(path, busy_timeout_s=0.05).open()
        assert str(path) in str(err.value)
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_read_only_database_is_reported_as_read_only(tmp_path: Path) -> None:
    # Root ignores file modes, so the open runs in a child as an unprivileged user.
    base = Path(tempfile.mkdtemp(prefix="agentcron-ro-"))
    try:
        path = base / "scheduler.db"
        asyncio.run(open_and_close(path))
        path.chmod(0o444)
        base.chmod(0o755)
        before = digest(path)
        code = (
            "import asyncio, os, sys\n"
            "from agentcron.store.sqlite import SqliteStore\n"
            "from agentcron.store.base import StoreError\n"
            "if sys.argv[2] != 'keep':\n"
            "    os.setgid(65534); os.setuid(65534)\n"
            "try:\n"
            "    asyncio.run(SqliteStore(sys.argv[1]).open())\n"
            "except StoreError as exc:\n"
            "    print(exc)\n"
        )
        drop = "drop" if getattr(os, "geteuid", lambda: -1)() == 0 else "keep"
        src = str(Path(__file__).resolve().parents[2] / "src")
        out = subprocess.run(
            [sys.executable, "-c", code, str(path), drop],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": src},
            cwd=base,
            check=True,
            timeout=60,
        ).stdout
        assert str(path) in out and "read-only" in out, out
        assert digest(path) == before
    finally:
        for child in base.iterdir():
            child.chmod(0o644)
            child.unlink()
        base.rmdir()


# -- the reference implementation agrees -----------------------------------------------------------
async def test_queries_statistics_and_pruning_agree_with_the_memory_store(tmp_path: Path) -> None:
    import random

    from agentcron.store.memory import MemoryStore

    rng = random.Random(20260301)
    sqlite, memory = SqliteStore(tmp_path / "scheduler.db"), MemoryStore()
    await sqlite.open()
    statuses = list(RunStatus)
    for i in range(600):
        minute = rng.randint(0, 300)
        started = T0 + timedelta(minutes=minute)
        status = rng.choice(statuses)
        run = RunRecord(
            run_id=f"r{rng.randint(0, 10**6):07d}-{i}",
            job_id=rng.choice(["a", "b", "c"]),
            scheduled_for=started,
            status=status,
            started_at=started if rng.random() < 0.9 else None,
            finished_at=started + timedelta(microseconds=rng.randint(0, 9 * 10**6))
            if status.is_final
            else None,
        )
        assert await sqlite.record_run(run) == await memory.record_run(run)
    for _ in range(60):
        query = RunQuery(
            job_id=rng.choice([None, "a", "b", "c", "zz"]),
            statuses=tuple(rng.sample(statuses, rng.randint(0, 3))),
            since=rng.choice([None, T0 + timedelta(minutes=rng.randint(0, 300))]),
            until=rng.choice([None, T0 + timedelta(minutes=rng.randint(0, 300))]),
            limit=rng.randint(0, 40),
            offset=rng.randint(0, 200),
        )
        assert await sqlite.list_runs(query) == await memory.list_runs(query)
        assert await sqlite.count_runs(query) == await memory.count_runs(query)
    for job_id in ("a", "b", "c", "zz"):
        assert await sqlite.run_stats(job_id) == await memory.run_stats(job_id)
    cutoff = T0 + timedelta(minutes=100)
    assert await sqlite.prune_runs(older_than=cutoff, keep_per_job=50) == await memory.prune_runs(
        older_than=cutoff, keep_per_job=50
    )
    everything = RunQuery(limit=10_000)
    assert await sqlite.list_runs(everything) == await memory.list_runs(everything)
    await sqlite.close()


async def test_the_queues_tables_in_a_new_file_do_not_make_it_foreign(tmp_path: Path) -> None:
    from agentcron.queue.sqlite import SqliteQueue

    path = tmp_path / "scheduler.db"
    queue = SqliteQueue(str(path), "emails")
    await queue.add("send", {"to": "a@b"})
    await queue.close()
    store = await open_and_close(path)
    assert store.migrated == (0, migrations.LATEST_VERSION)


async def test_a_full_database_is_reported_and_the_committed_state_kept(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "scheduler.db")
    await store.open()
    await store.set_state("before", "kept")
    pages = await store._write(lambda conn: conn.execute("PRAGMA page_count").fetchone()[0])
    # PRAGMA takes no placeholders; the value is an integer SQLite itself just returned.
    await store._write(lambda conn: conn.execute(f"PRAGMA max_page_count = {int(pages) + 2}"))
    big = [
        RunRecord(
            run_id=f"r{i}",
            job_id="j",
            scheduled_for=T0 + timedelta(seconds=i),
            status=RunStatus.succeeded,
            output_tail="z" * 3000,
        )
        for i in range(20)
    ]
    results = await asyncio.gather(*(store.record_run(r) for r in big), return_exceptions=True)
    errors = [r for r in results if isinstance(r, StoreError)]
    assert errors, results
    assert "disk is full" in str(errors[0]) and str(store.path) in str(errors[0])
    assert await store.get_state("before") == "kept"
    await store._write(lambda conn: conn.execute("PRAGMA max_page_count = 1073741823"))
    await store.set_state("after", "written")  # the store keeps working once there is room
    assert await store.get_state("after") == "written"
    await store.close()


async def test_a_second_store_on_the_file_keeps_the_first_ones_writes_visible_to_others(
    tmp_path: Path,
) -> None:
    # Opening a store checks the file's header. Read with a plain file handle, closing that
    # handle dropped every POSIX lock this process held on the file, those of the first
    # store's connection too: the next process to close its connection then took the
    # database for unused, checkpointed it and deleted the WAL the first store still wrote
    # to, and every write after that was lost to other processes (a worker's heartbeats
    # never reached `agentcron nodes`).
    path = tmp_path / "scheduler.db"
    first = SqliteStore(path)
    await first.open()
    await first.save_job(StoredJob(id="before", definition={}), actor="test")
    second = SqliteStore(path)
    await second.open()
    assert job_ids_seen_by_another_process(path) == ["before"]
    await first.save_job(StoredJob(id="after", definition={}), actor="test")
    assert job_ids_seen_by_another_process(path) == ["after", "before"]
    assert exists(Path(f"{path}-wal"))
    await second.close()
    await first.close()


async def test_a_read_only_store_reads_and_refuses_every_write(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.db"
    writer = SqliteStore(path)
    await writer.open()
    await writer.save_job(StoredJob(id="digest", definition={}), actor="test")
    reader = SqliteStore(path, read_only=True)
    assert [j.id for j in await reader.list_jobs()] == ["digest"]
    with pytest.raises(StoreError, match="open read-only"):
        await reader.set_state("k", "v")
    with pytest.raises(StoreError, match="open read-only"):
        await reader.save_job(StoredJob(id="other", definition={}), actor="test")
    await reader.close()
    await writer.close()
    assert job_ids_seen_by_another_process(path) == ["digest"]


async def test_a_read_only_store_needs_a_database_of_this_schema_and_makes_none(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nowhere" / "scheduler.db"
    with pytest.raises(StoreError, match="no database at"):
        await SqliteStore(missing, read_only=True).open()
    assert not exists(missing.parent)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(StoreError, match="agentcron db migrate"):
        await SqliteStore(empty, read_only=True).open()
    assert sorted(os.listdir(tmp_path)) == ["empty.db"]
