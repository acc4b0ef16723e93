from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from tests.dashboard import handlers

from agentcron import Scheduler
from agentcron.dashboard import DashboardSettings, create_app
from agentcron.dashboard.queues import QueueSet
from agentcron.queue import open_queue
from agentcron.store.memory import MemoryStore

TOKEN = "test-token-0123456789abcdef"
XSS_NAME = "<img src=x onerror=alert(1)>"


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def add_jobs(sched: Scheduler) -> None:
    sched.add_job("backup", trigger="0 2 * * *", handler=handlers.ok, name="Nightly backup",
                  tags=["maintenance"], timezone="Europe/Berlin")  # fmt: skip
    sched.add_job("digest", trigger="0 9,17 * * *", handler=handlers.ok, name="Mail digest",
                  tags=["mail"])  # fmt: skip
    sched.add_job("xss", trigger="*/5 * * * *", handler=handlers.ok, name=XSS_NAME,
                  tags=["<b>tag</b>"])  # fmt: skip


@pytest.fixture
async def sched() -> AsyncIterator[Scheduler]:
    """The real engine on a memory store, started (jobs fire on their real schedules)."""
    sched = Scheduler(store=MemoryStore(), node_id="test-node")
    add_jobs(sched)
    async with sched:
        yield sched


@pytest.fixture
def queue_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'queues.db'}"


@pytest.fixture
async def queues(sched: Scheduler, queue_url: str) -> AsyncIterator[QueueSet]:
    """One real SQLite queue, `emails`, with 3 waiting, 2 delayed and 4 completed jobs."""
    q = open_queue(queue_url, "emails", clock=sched.clock)
    for i in range(4):
        await q.add("welcome", {"n": i})
    await q.worker(handlers.ok).run(burst=True)
    for i in range(5):
        await q.add("send", {"to": f"user{i}@example.org"}, delay=3600.0 if i >= 3 else 0.0)
    await q.close()
    qs = QueueSet(queue_url, ["emails"], scheduler=sched)
    yield qs
    await qs.close()


@pytest.fixture
def app(sched: Scheduler, queues: QueueSet) -> FastAPI:
    return create_app(sched, DashboardSettings(auth_token=TOKEN), queues=queues)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", headers=auth()
        ) as c:
            yield c


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        yield c


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    ws_url: str
    server: uvicorn.Server


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[LiveServer]:
    """Serve `app` with uvicorn on a free loopback port in this event loop."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(20):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)  # uvicorn starting, bounded (noqa: sleep-ok)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws", server)
    finally:
        server.should_exit = True
        async with asyncio.timeout(20):
            await task


@pytest.fixture
async def live(app: FastAPI) -> AsyncIterator[LiveServer]:
    async with serve(app) as server:
        yield server
