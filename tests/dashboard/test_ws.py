from __future__ import annotations

import asyncio
import json
import weakref
from typing import Any

import pytest
import websockets
from tests.dashboard.conftest import TOKEN, LiveServer, serve
from websockets.asyncio.client import ClientConnection, connect

from agentcron import Scheduler
from agentcron.dashboard import DashboardSettings, create_app
from agentcron.events import JobPaused, RunStarted


class Reader:
    """Events from one socket, one at a time (frames carry arrays of events)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.pending: list[dict[str, Any]] = []

    async def next(self) -> dict[str, Any]:
        async with asyncio.timeout(10):
            while not self.pending:
                data = json.loads(await self.ws.recv())
                self.pending.extend(data if isinstance(data, list) else [data])
        return self.pending.pop(0)


_readers: weakref.WeakKeyDictionary[ClientConnection, Reader] = weakref.WeakKeyDictionary()


async def receive(ws: ClientConnection) -> dict[str, Any]:
    reader = _readers.setdefault(ws, Reader(ws))
    return await reader.next()


async def login(ws: ClientConnection, token: str = TOKEN) -> None:
    await ws.send(json.dumps({"type": "auth", "token": token}))
    assert (await receive(ws)) == {"type": "hello"}


async def closed_code(ws: ClientConnection) -> int | None:
    async with asyncio.timeout(10):
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await ws.recv()
    return ws.close_code


async def test_the_socket_streams_engine_events_after_authenticating(
    live: LiveServer, sched: Scheduler
) -> None:
    async with connect(live.ws_url) as ws:
        await login(ws)
        sched.pause("digest", note="travelling")
        event = await receive(ws)
        assert event["type"] == "job.paused" and event["job_id"] == "digest"
        assert event["note"] == "travelling"
        await sched.run_now("backup")
        kinds = [(await receive(ws))["type"] for _ in range(2)]
        assert kinds == ["run.started", "run.succeeded"]


async def test_nothing_is_sent_before_the_auth_message(live: LiveServer, sched: Scheduler) -> None:
    async with connect(live.ws_url) as ws:
        sched.pause("digest")
        await sched.events.drain()
        # The event went nowhere: the first thing this socket receives is the hello.
        await login(ws)
        sched.resume("digest")
        assert (await receive(ws))["type"] == "job.resumed"


async def test_a_wrong_token_closes_the_socket_with_4403(live: LiveServer) -> None:
    async with connect(live.ws_url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": "nope-nope-nope-nope"}))
        assert await closed_code(ws) == 4403


@pytest.mark.parametrize(
    "first", ["hello", '{"type": "subscribe"}', '{"type": "auth", "token": 5}', "[]"]
)
async def test_anything_but_an_auth_message_first_closes_with_4401(
    live: LiveServer, first: str
) -> None:
    async with connect(live.ws_url) as ws:
        await ws.send(first)
        assert await closed_code(ws) == 4401


@pytest.mark.parametrize(
    ("first", "code"),
    [
        ("[" * 100_000 + "]" * 100_000, 4401),  # json.loads raised RecursionError
        ('{"type": "auth", "token": "\\ud800"}', 4403),  # a lone surrogate: UnicodeEncodeError
        (b"\xff\xfe", 4401),  # a binary frame
    ],
    ids=["deeply-nested", "lone-surrogate-token", "binary"],
)
async def test_a_malformed_first_message_is_refused_with_a_close_code_not_a_crash(
    live: LiveServer, first: str | bytes, code: int
) -> None:
    async with connect(live.ws_url, max_size=None) as ws:
        await ws.send(first)
        assert await closed_code(ws) == code  # was 1006: the handler raised
    async with connect(live.ws_url) as ws:  # and the server still serves
        await login(ws)


async def test_a_silent_client_is_closed_after_the_auth_timeout(sched: Scheduler) -> None:
    settings = DashboardSettings(auth_token=TOKEN, ws_auth_timeout_s=0.2)
    async with serve(create_app(sched, settings)) as server, connect(server.ws_url) as ws:
        assert await closed_code(ws) == 4401


async def test_a_token_in_the_url_is_not_accepted(live: LiveServer) -> None:
    async with connect(f"{live.ws_url}?token={TOKEN}") as ws:
        await ws.send("{}")
        assert await closed_code(ws) == 4401


async def test_a_client_that_does_not_keep_up_is_dropped_and_new_clients_still_receive(
    sched: Scheduler,
) -> None:
    # No flush interval: one frame per event, so 200 frames queue up at once.
    settings = DashboardSettings(auth_token=TOKEN, ws_max_pending=5, ws_flush_interval_s=0)
    app = create_app(sched, settings)
    async with serve(app) as server:
        hub = app.state.dashboard.hub
        async with connect(server.ws_url) as slow:
            await login(slow)
            # 200 events published in one go overflow the client's 5-event queue before a
            # single socket write completes: publish() does not wait, the client is dropped.
            now = sched.clock.now()
            for i in range(200):
                sched.events.publish(JobPaused(at=now, job_id=f"j{i}"))
            await sched.events.drain()
            assert hub.slow_clients_dropped == 1
            assert await closed_code(slow) == 4408
        async with connect(server.ws_url) as fresh:
            await login(fresh)
            sched.events.publish(
                RunStarted(at=now, job_id="backup", run_id="r1", scheduled_for=now)
            )
            assert (await receive(fresh))["type"] == "run.started"
