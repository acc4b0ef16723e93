"""Fixtures of the store tests: one `store` fixture per backend, real SQLite files in tmp_path.

Adding a backend to the contract suite is one entry in `STORE_KINDS` plus one branch in
`make_store` (e.g. `"redis"`, marked `redis` and given a flushed database per test).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agentcron.store.base import Store
from agentcron.store.memory import MemoryStore
from agentcron.store.sqlite import SqliteStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.redis_server import RedisServer

STORE_KINDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_store(kind: str, tmp_path: Path) -> Store:
    """A fresh, unopened store of `kind` that keeps its files under `tmp_path`."""
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SqliteStore(tmp_path / "data" / "scheduler.db", busy_timeout_s=5.0)
    raise AssertionError(f"unknown store kind {kind!r}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One throwaway redis-server for the store tests (each test flushes it first)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), durable=False).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "redis":
        import redis

        from agentcron.store.redis import RedisStore

        server: RedisServer = request.getfixturevalue("redis_server")
        with redis.Redis(host="127.0.0.1", port=server.port) as client:
            client.flushdb()
        backend: Store = RedisStore(server.url)
    else:
        backend = make_store(request.param, tmp_path)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    backend = SqliteStore(tmp_path / "data" / "scheduler.db", busy_timeout_s=5.0)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()
