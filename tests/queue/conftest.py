"""Fixtures of the queue tests: one `env` per backend (SQLite on a virtual clock, Redis on a
throwaway redis-server with real time), plus the server itself for process-level tests."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from queue_testlib import BACKENDS, T0, Env

from agentcron.events import Event, EventBus
from agentcron.queue import open_queue
from agentcron.testing import VirtualClock
from helpers.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One throwaway redis-server for the session (each test flushes it)."""
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    except RuntimeError as exc:
        pytest.fail(f"queue tests need redis-server: {exc}")
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, flushed for this test."""
    import redis

    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture(params=BACKENDS)
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    clock: VirtualClock | None = None
    if request.param == "sqlite":
        clock = VirtualClock(T0)
        url = f"sqlite:///{tmp_path}/data/scheduler.db"
    else:
        url = request.getfixturevalue("redis_url")
    queue = open_queue(url, "jobs", clock=clock, events=bus)
    try:
        yield Env(request.param, queue, url, clock, bus, events)
    finally:
        await queue.close()
        bus.close()
