"""Events cross nodes through Redis pub/sub, once, without echo."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agentcron.events import Event, EventBus, RunStarted, RunSucceeded
from agentcron.events_redis import RedisEventBridge
from agentcron.store.base import StoreError
from helpers.redis_server import RedisServer

pytestmark = pytest.mark.redis

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Node:
    def __init__(self, server: RedisServer, node_id: str, prefix: str = "agentcron") -> None:
        self.bus = EventBus()
        self.seen: list[Event] = []
        self.bus.subscribe(self.seen.append)
        self.bridge = RedisEventBridge(self.bus, server.url, node_id=node_id, prefix=prefix)


def started(node_id: str, run_id: str = "r1") -> RunStarted:
    return RunStarted(at=T0, job_id="digest", run_id=run_id, scheduled_for=T0, node_id=node_id)


async def until(predicate: object, timeout_s: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)  # pub/sub delivery is real time (noqa: sleep-ok)

    await asyncio.wait_for(poll(), timeout_s)


@pytest.fixture
async def nodes(server: RedisServer) -> AsyncIterator[tuple[Node, Node, Node]]:
    trio = (Node(server, "a"), Node(server, "b"), Node(server, "c", prefix="other"))
    for node in trio:
        await node.bridge.start()
    try:
        yield trio
    finally:
        for node in trio:
            await node.bridge.stop()


async def test_an_event_published_on_one_node_reaches_the_others_once_as_it_was(
    nodes: tuple[Node, Node, Node],
) -> None:
    a, b, _ = nodes
    event = started("a")
    a.bus.publish(event)
    await until(lambda: len(b.seen) == 1)
    assert b.seen == [event] and b.seen[0].node_id == "a"  # type: ignore[attr-defined]
    finished = RunSucceeded(at=T0, job_id="digest", run_id="r1", scheduled_for=T0, node_id="b")
    b.bus.publish(finished)
    await until(lambda: len(a.seen) == 2)
    await asyncio.sleep(0.3)  # time for a wrongful echo to arrive (noqa: sleep-ok)
    assert a.seen == [event, finished]
    assert b.seen == [event, finished]
    assert a.bridge.sent == 1 and b.bridge.sent == 1  # nothing re-sent


async def test_another_prefix_is_another_deployment_and_sees_nothing(
    nodes: tuple[Node, Node, Node],
) -> None:
    a, b, c = nodes
    a.bus.publish(started("a"))
    await until(lambda: len(b.seen) == 1)
    await asyncio.sleep(0.3)  # time for a wrongful delivery to arrive (noqa: sleep-ok)
    assert c.seen == []


async def test_messages_that_are_not_event_objects_are_ignored_and_the_bridge_listens_on(
    server: RedisServer, nodes: tuple[Node, Node, Node]
) -> None:
    # Before, valid JSON that was not an object (`[1]`, `"x"`) raised AttributeError in the
    # listener, which died: no later event from any node arrived.
    import redis.asyncio as aioredis

    a, b, _ = nodes
    client = aioredis.Redis.from_url(server.url)
    try:
        for garbage in (b"[1]", b'"x"', b"42", b'{"event": [1]}', b"not json"):
            await client.publish(b.bridge.channel, garbage)
    finally:
        await client.aclose()
    event = started("a")
    a.bus.publish(event)
    await until(lambda: len(b.seen) == 1)
    assert b.seen == [event]


async def test_the_bridge_survives_a_redis_restart(
    server: RedisServer, nodes: tuple[Node, Node, Node]
) -> None:
    a, b, _ = nodes
    server.restart()
    await until(lambda: _resubscribed(server), 20)
    for i in range(100):  # until both listeners are back (pub/sub has no replay)
        a.bus.publish(started("a", run_id=f"r{i}"))
        await asyncio.sleep(0.1)  # reconnect backoff is real time (noqa: sleep-ok)
        if b.seen:
            break
    assert b.seen and b.seen[-1].type == "run.started"


async def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Every reconnect attempt logged "event bridge lost": a Redis away for an hour wrote
    # thousands of warnings.
    node = Node(server, "a", prefix="outage")
    caplog.set_level(logging.DEBUG, logger="agentcron.events.redis")
    await node.bridge.start()
    try:
        server.stop(kill=True)
        await until(lambda: node.bridge.connect_failures >= 4, 30)
        server.start()
        await until(lambda: _resubscribed(server, "outage:events", 1), 30)
    finally:
        await node.bridge.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [m.split(" (")[0] for m in warnings] == [
        f"event bridge lost {node.bridge.url}",
        f"event bridge reconnected to {node.bridge.url}",
    ]


@pytest.fixture
def no_pubsub_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis with SUBSCRIBE disabled, as some managed Redis services ship."""
    srv = RedisServer(tmp_path / "redis", extra_args=("--rename-command", "SUBSCRIBE", ""))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


async def test_a_redis_that_refuses_subscribe_fails_start_in_one_line_naming_the_channel(
    no_pubsub_server: RedisServer,
) -> None:
    # Redis answers SUBSCRIBE asynchronously: start() returned, the listener died silently,
    # and stop() re-raised its ResponseError (a traceback when the daemon stopped).
    node = Node(no_pubsub_server, "a")
    with pytest.raises(StoreError) as info:
        await node.bridge.start()
    message = str(info.value)
    assert "'agentcron:events'" in message and "SUBSCRIBE" in message
    assert "\n" not in message
    await node.bridge.stop()


async def test_a_subscription_refused_after_start_ends_the_listener_with_one_error(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    import redis.asyncio as aioredis

    node = Node(server, "a")
    await node.bridge.start()
    try:
        admin = aioredis.Redis.from_url(server.url)
        try:
            await admin.execute_command("ACL", "SETUSER", "default", "-subscribe")
            await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        finally:
            await admin.aclose()
        await until(lambda: any("stopped listening" in r.getMessage() for r in caplog.records))
    finally:
        await node.bridge.stop()  # raised the listener's ResponseError
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "NoPermissionError" in errors[0].getMessage()


def _resubscribed(server: RedisServer, channel: str = "agentcron:events", least: int = 2) -> bool:
    import redis

    with redis.Redis(host="127.0.0.1", port=server.port) as client:
        return int(client.pubsub_numsub(channel)[0][1]) >= least
