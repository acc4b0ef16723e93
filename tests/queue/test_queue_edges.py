"""Opening queues: URLs, refused credentials, the SQLite file shared with the store, the
engine's dispatch seam."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from agentcron.queue import QueueConnectionError, QueueInputError, dispatch_to_queue, open_queue
from agentcron.queue.sqlite import SCHEMA_VERSION, SqliteQueue
from agentcron.store.sqlite import SqliteStore
from helpers.redis_server import RedisServer


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/x",
        "postgres://127.0.0.1/db",
        "nonsense",
        "redis:///0",
        "sqlite://",
        "sqlite:///x.db?bogus=1",
    ],
)
def test_an_unknown_or_malformed_queue_url_is_refused_at_open(url: str) -> None:
    with pytest.raises(QueueInputError):
        open_queue(url, "jobs")


@pytest.mark.parametrize("name", ["", "a:b", ".", ".."])  # dots: the page cannot address them
def test_a_queue_name_must_be_plain(name: str, tmp_path: Path) -> None:
    with pytest.raises(QueueInputError, match="queue name"):
        open_queue(f"sqlite:///{tmp_path}/q.db", name)


@pytest.mark.redis
async def test_a_redis_that_refuses_auth_fails_clearly_at_add_and_enqueues_nothing(
    tmp_path: Path,
) -> None:
    try:
        server = RedisServer(tmp_path / "redis", password="s3cret").start()
    except RuntimeError as exc:
        pytest.fail(f"queue tests need redis-server: {exc}")
    try:
        wrong = open_queue(f"redis://:wrong@127.0.0.1:{server.port}/0", "jobs")
        assert "wrong" not in wrong.url
        with pytest.raises(QueueConnectionError, match="refused authentication"):
            await wrong.add("x", {})
        await wrong.close()
        none = open_queue(f"redis://127.0.0.1:{server.port}/0", "jobs")
        with pytest.raises(QueueConnectionError, match="refused authentication"):
            await none.add("x", {})
        await none.close()
        right = open_queue(server.url, "jobs")
        assert sum((await right.counts()).values()) == 0
        await right.close()
    finally:
        server.stop()


@pytest.mark.redis
async def test_an_unreachable_redis_fails_clearly(tmp_path: Path) -> None:
    from helpers.redis_server import free_port

    q = open_queue(f"redis://127.0.0.1:{free_port()}/0", "jobs")
    with pytest.raises(QueueConnectionError, match="cannot reach redis"):
        await q.add("x", {})
    await q.close()


async def test_the_queue_shares_the_store_file_without_touching_user_version(
    tmp_path: Path,
) -> None:
    path = tmp_path / "scheduler.db"
    store = SqliteStore(path)
    await store.open()
    await store.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        store_version = conn.execute("PRAGMA user_version").fetchone()[0]
    q = SqliteQueue(path, "jobs")
    await q.add("x", {})
    await q.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store_version
        assert (
            conn.execute("SELECT max(version) FROM queue_schema_version").fetchone()[0]
            == SCHEMA_VERSION
        )
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = SqliteQueue(path, "jobs")  # reopening migrates nothing twice
    assert (await again.counts())["waiting"] == 1
    await again.close()


async def test_a_queue_file_from_a_newer_agentcron_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.db"
    q = SqliteQueue(path, "jobs")
    await q.counts()
    await q.close()
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("INSERT INTO queue_schema_version (version) VALUES (?)", (SCHEMA_VERSION + 1,))
    newer = SqliteQueue(path, "jobs")
    with pytest.raises(Exception, match="newer"):
        await newer.counts()
    # The refused file is not left open (its connection closed, not left to the collector).
    assert str(path) not in {f.path for f in psutil.Process().open_files()}
    await newer.close()


async def test_synchronous_full_is_applied_when_asked(tmp_path: Path) -> None:
    q = open_queue(f"sqlite:///{tmp_path}/q.db?synchronous=FULL", "jobs")
    assert isinstance(q, SqliteQueue)
    await q.counts()
    assert q.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    await q.close()


async def test_two_queues_in_one_file_do_not_see_each_others_jobs(tmp_path: Path) -> None:
    a = open_queue(f"sqlite:///{tmp_path}/q.db", "a")
    b = open_queue(f"sqlite:///{tmp_path}/q.db", "b")
    await a.add("x", {}, job_id="same")
    await b.add("y", {}, job_id="same")
    assert (await a.counts())["waiting"] == 1
    info = await b.get("same")
    assert info is not None and info.name == "y"
    await a.close()
    await b.close()


async def test_a_memory_queue_works_in_one_process() -> None:
    q = open_queue("memory://", "jobs")
    await q.add("x", {"a": 1})
    seen: list[object] = []

    async def handler(job: object) -> None:
        seen.append(job)

    await q.worker(handler).run(burst=True)
    assert len(seen) == 1
    await q.close()


async def test_a_fire_dispatched_twice_is_enqueued_once_under_its_occurrence_key(
    tmp_path: Path,
) -> None:
    q = open_queue(f"sqlite:///{tmp_path}/q.db", "scheduled")
    fire = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    first = await dispatch_to_queue(q, "nightly-backup", fire, {"k": 1})
    second = await dispatch_to_queue(q, "nightly-backup", fire, {"k": 2})
    assert first == second == "nightly-backup@2026-03-01T12:00:00+00:00"
    info = await q.get(first)
    assert info is not None and info.name == "nightly-backup"
    assert info.data == {
        "job_id": "nightly-backup",
        "scheduled_for": fire.isoformat(),
        "payload": {"k": 1},
    }
    assert (await q.counts())["waiting"] == 1
    await q.close()
