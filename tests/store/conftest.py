"""Fixtures of the store tests: one `store` fixture per backend, real SQLite files in tmp_path.

Adding a backend to the contract suite is one entry in `STORE_KINDS` plus one branch in
`make_store` (e.g. `"redis"`, marked `redis` and given a flushed database per test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agentcron.store.base import Store
from agentcron.store.memory import MemoryStore
from agentcron.store.sqlite import SqliteStore

STORE_KINDS = [pytest.param("memory", id="memory"), pytest.param("sqlite", id="sqlite")]

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_store(kind: str, tmp_path: Path) -> Store:
    """A fresh, unopened store of `kind` that keeps its files under `tmp_path`."""
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SqliteStore(tmp_path / "data" / "scheduler.db", busy_timeout_s=5.0)
    raise AssertionError(f"unknown store kind {kind!r}")


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
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
