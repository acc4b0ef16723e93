"""agentcron's Redis URLs, as the event bridge, the queue and the store read them: the
``?prefix=`` namespaces everything and never reaches redis-py; a bad port is refused before
anything connects; a server that is not Redis is refused in seconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from typer.testing import CliRunner

import agentcron.queue.redis as queue_redis
from agentcron.cli.main import build_app
from agentcron.events import Event, EventBus, RunStarted
from agentcron.events_redis import RedisEventBridge
from agentcron.queue import QueueConnectionError, QueueInputError, open_queue
from agentcron.store.base import StoreError
from agentcron.store.redis import RedisStore
from helpers.not_redis import http_server, silent_server
from helpers.redis_server import RedisServer

pytestmark = pytest.mark.redis

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
runner = CliRunner()


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(build_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def redis_url(server: RedisServer) -> Iterator[str]:
    yield server.url


# -- the prefix ------------------------------------------------------------------------
async def test_a_bridge_on_a_prefixed_url_starts_and_keeps_to_its_prefix(redis_url: str) -> None:
    """It hung forever: redis-py got ``prefix`` and the listener died with a TypeError."""
    seen: dict[str, list[Event]] = {"a": [], "b": [], "other": []}
    buses = {name: EventBus() for name in seen}
    for name, bus in buses.items():
        bus.subscribe(seen[name].append)
    team_b = f"{redis_url}?prefix=team-b"
    bridges = {
        "a": RedisEventBridge(buses["a"], team_b, node_id="a"),
        "b": RedisEventBridge(buses["b"], team_b, node_id="b"),
        "other": RedisEventBridge(buses["other"], redis_url, node_id="c"),
    }
    for bridge in bridges.values():
        await asyncio.wait_for(bridge.start(), 10)
    try:
        assert bridges["a"].channel == "team-b:events"
        assert bridges["other"].channel == "agentcron:events"
        event = RunStarted(at=T0, job_id="j", run_id="r", scheduled_for=T0, node_id="a")
        buses["a"].publish(event)
        async with asyncio.timeout(10):
            while not seen["b"]:
                await asyncio.sleep(0.01)  # pub/sub is real time (noqa: sleep-ok)
        assert seen["b"] == [event]
        await asyncio.sleep(0.2)  # time for a wrong delivery to show (noqa: sleep-ok)
        assert seen["other"] == []
    finally:
        for bridge in bridges.values():
            await bridge.stop()
            bridge.bus.close()


async def test_a_bridge_whose_listener_cannot_run_fails_start_instead_of_hanging() -> None:
    with http_server() as port:
        bridge = RedisEventBridge(EventBus(), f"redis://127.0.0.1:{port}/0", node_id="a")
        with pytest.raises(StoreError, match="could not subscribe"):
            await asyncio.wait_for(bridge.start(), 10)
        await bridge.stop()


async def test_two_prefixes_do_not_share_a_queue_of_the_same_name(redis_url: str) -> None:
    team_a = open_queue(f"{redis_url}?prefix=team-a", "emails")
    team_b = open_queue(f"{redis_url}?prefix=team-b", "emails")
    plain = open_queue(redis_url, "emails")
    try:
        await team_a.add("send", {"to": "a"})
        assert (await team_a.counts())["waiting"] == 1
        assert (await team_b.counts())["waiting"] == 0
        assert (await plain.counts())["waiting"] == 0
    finally:
        for q in (team_a, team_b, plain):
            await q.close()
    with redis.Redis.from_url(redis_url) as client:
        keys = {k.decode() for k in client.keys("*")}
    assert keys and all(k.startswith("team-a:bull:emails:") for k in keys), keys


async def test_without_a_prefix_the_queue_keeps_bullmqs_bull_prefix(redis_url: str) -> None:
    q = open_queue(redis_url, "emails")
    try:
        await q.add("send")
    finally:
        await q.close()
    with redis.Redis.from_url(redis_url) as client:
        assert client.llen("bull:emails:wait") == 1


def test_queue_commands_take_a_prefixed_store_url(redis_url: str) -> None:
    """They crashed with a TypeError traceback (redis-py got ``prefix``)."""
    store = f"{redis_url}?prefix=team-b"
    code, out, err = cli("queue", "add", "emails", "x", "--store", store)
    assert (code, err) == (0, "")
    code, out, err = cli("queue", "status", "emails", "--store", store, "--json")
    assert code == 0 and '"waiting": 1' in out
    code, out, err = cli("queue", "status", "emails", "--store", redis_url, "--json")
    assert code == 0 and '"waiting": 0' in out


# -- bad ports, refused before anything connects ---------------------------------------
BAD_PORTS = ["redis://127.0.0.1:0/0", "redis://:s3cret@127.0.0.1:notaport/0", "redis://h:70000/0"]


@pytest.mark.parametrize("url", BAD_PORTS)
def test_a_bad_port_is_refused_by_the_store_bridge_and_queue_before_connecting(url: str) -> None:
    # Each constructor connects nowhere: the error comes before any socket is opened.
    with pytest.raises(ValueError, match="bad port in Redis URL") as store_error:
        RedisStore(url)
    with pytest.raises(ValueError, match="bad port in Redis URL") as bridge_error:
        RedisEventBridge(EventBus(), url, node_id="a")
    with pytest.raises(QueueInputError, match="bad port in Redis URL") as queue_error:
        open_queue(url, "emails")
    for error in (store_error, bridge_error, queue_error):
        assert "s3cret" not in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("url", BAD_PORTS[:2])
def test_a_bad_port_on_the_cli_is_one_line_and_exit_2(url: str) -> None:
    for args in (("jobs", "list"), ("queue", "status", "emails")):
        code, out, err = cli(*args, "--store", url)
        assert code == 2, (args, out, err)
        assert err.count("\n") == 1 and "bad port" in err and "s3cret" not in err


# -- servers that are not Redis --------------------------------------------------------
@pytest.fixture
def quick_greeting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue_redis, "_GREET_TIMEOUT_S", 1.0, raising=False)


@pytest.mark.usefixtures("quick_greeting")
@pytest.mark.parametrize("command", [("status", "x"), ("add", "x", "job")])
def test_queue_commands_refuse_a_silent_server_with_one_line_in_seconds(
    command: tuple[str, ...],
) -> None:
    with silent_server() as port:
        started = time.monotonic()
        code, out, err = cli("queue", *command, "--store", f"redis://127.0.0.1:{port}/0")
        assert time.monotonic() - started < 5
    assert code == 2 and err.count("\n") == 1, err
    assert "cannot talk to Redis" in err


@pytest.mark.usefixtures("quick_greeting")
@pytest.mark.parametrize("command", [("status", "x"), ("add", "x", "job")])
def test_queue_commands_refuse_an_http_server_with_one_line(command: tuple[str, ...]) -> None:
    with http_server() as port:
        started = time.monotonic()
        code, out, err = cli("queue", *command, "--store", f"redis://127.0.0.1:{port}/0")
        assert time.monotonic() - started < 5
    assert code == 2 and err.count("\n") == 1, err
    assert "does not speak Redis" in err


@pytest.mark.usefixtures("quick_greeting")
async def test_the_queue_raises_queue_connection_error_on_a_server_that_is_not_redis() -> None:
    with http_server() as port:
        q = open_queue(f"redis://127.0.0.1:{port}/0", "x")
        try:
            with pytest.raises(QueueConnectionError, match="does not speak Redis"):
                await asyncio.wait_for(q.counts(), 5)
        finally:
            await q.close()
