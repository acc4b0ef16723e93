from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from tests.dashboard.fakes import FakeQueue, FakeQueues, FakeScheduler

from agentcron.dashboard import DashboardSettings, create_app

TOKEN = "test-token-0123456789abcdef"
XSS_NAME = "<img src=x onerror=alert(1)>"


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def build_fake() -> FakeScheduler:
    fake = FakeScheduler()
    fake.add_job("backup", trigger="0 2 * * *", name="Nightly backup", tags=["maintenance"],
                 timezone="Europe/Berlin")  # fmt: skip
    fake.add_job("digest", trigger="0 9,17 * * *", name="Mail digest", tags=["mail"])
    fake.add_job("xss", trigger="*/5 * * * *", name=XSS_NAME, tags=["<b>tag</b>"])
    return fake


def fake_queues(fake: FakeScheduler) -> FakeQueues:
    counts = {"waiting": 3, "active": 1, "completed": 40, "failed": 2, "delayed": 5}
    return FakeQueues([FakeQueue("emails", fake.events, fake.clock, counts)])


@pytest.fixture
async def fake() -> FakeScheduler:
    fake = build_fake()
    await fake.save_all()
    return fake


@pytest.fixture
def app(fake: FakeScheduler) -> FastAPI:
    return create_app(fake, DashboardSettings(auth_token=TOKEN), queues=fake_queues(fake))


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
            await asyncio.sleep(0.01)
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
