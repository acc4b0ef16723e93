from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

import pytest

from agentcron.events import Event, EventBus
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T = TypeVar("T")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Script:
    """Answers in order (status codes); after the script runs out, 200. `hold` blocks replies."""

    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    hold: threading.Event | None = None


class LocalHTTP:
    """A threaded HTTP server on 127.0.0.1 (free port) that records every request."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script = Script()
        self.arrived = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with outer.arrived:
                    outer.requests.append(Received(self.path, dict(self.headers.items()), body))
                    outer.arrived.notify_all()
                    status = outer.script.statuses.pop(0) if outer.script.statuses else 200
                if outer.script.hold is not None:
                    outer.script.hold.wait(10)  # bounded; released by the test (noqa: sleep-ok)
                if outer.script.delay_s:
                    threading.Event().wait(outer.script.delay_s)  # a slow server (noqa: sleep-ok)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> LocalHTTP:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.script.hold is not None:
            self.script.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http() -> Iterator[LocalHTTP]:
    with LocalHTTP() as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Collector:
    def __init__(self, bus: EventBus) -> None:
        self.events: list[Event] = []
        self.bus = bus
        bus.subscribe(self.events.append)

    async def types(self) -> list[str]:
        for _ in range(3):
            await self.bus.drain()
        return [e.type for e in self.events]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def collector(bus: EventBus) -> Collector:
    return Collector(bus)


async def drive(clock: VirtualClock, awaitable: Awaitable[T]) -> T:
    """Await `awaitable` while it does real I/O, moving the virtual clock whenever it sleeps."""
    task = asyncio.ensure_future(awaitable)
    for _ in range(2000):
        if task.done():
            return task.result()
        deadline = clock.next_deadline()
        if deadline is not None:
            await clock.advance(deadline)
        else:
            await asyncio.wait({task}, timeout=0.02)
    task.cancel()
    raise AssertionError("the awaited task did not finish")
