"""A change made through the API is acknowledged only once it is in the store, over real
HTTP on a virtual clock: the scheduler applies it at once and stores it in the background,
so an answer before the write told the client "saved" about a change that a stop of the
process could still lose. A store that does not take it within `SAVE_WAIT_S` gets a 503
that says so, and the scheduler stores the change once the store is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest
from tests.dashboard import handlers
from tests.dashboard.conftest import TOKEN, auth, free_port, serve

from agentcron import Scheduler
from agentcron.dashboard import DashboardSettings, create_app
from agentcron.dashboard.api import SAVE_WAIT_S
from agentcron.dashboard.server import DashboardServer
from agentcron.engine.persistence import WRITE_RETRY_MAX_S
from agentcron.models import ConflictPolicy, StoredJob
from agentcron.store.base import StoreError
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock

#: The store's job writes take this long on the virtual clock in the "slow" tests.
WRITE_S = 5.0


class JobWrites(MemoryStore):
    """A memory store whose job writes are refused while `locked` (`StoreError`: a SQLite
    file locked past its busy timeout, a Redis that is down), or take `write_s` seconds of
    `clock` (a lock released within the busy timeout)."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self.clock = clock
        self.locked = False
        self.write_s = 0.0
        self.waiting = 0  # job writes waiting for the clock
        self.refused = 0

    async def _job_write(self) -> None:
        if self.locked:
            self.refused += 1
            raise StoreError("memory://: the store is locked (test)")
        if self.write_s:
            self.waiting += 1
            try:
                await self.clock.sleep(self.write_s)
            finally:
                self.waiting -= 1

    async def save_job(
        self, job: StoredJob, *, actor: str, conflict: ConflictPolicy = "replace"
    ) -> StoredJob:
        await self._job_write()
        return await super().save_job(job, actor=actor, conflict=conflict)

    async def delete_job(self, job_id: str, *, actor: str) -> bool:
        await self._job_write()
        return await super().delete_job(job_id, actor=actor)

    async def set_paused(
        self, job_id: str, paused: bool, *, note: str | None = None, actor: str
    ) -> StoredJob | None:
        await self._job_write()
        return await super().set_paused(job_id, paused, note=note, actor=actor)

    async def set_job_state(
        self, job_id: str, *, next_run: datetime | None, last_fire: datetime | None
    ) -> None:
        await self._job_write()
        await super().set_job_state(job_id, next_run=next_run, last_fire=last_fire)


@dataclass
class Served:
    sched: Scheduler
    clock: VirtualClock
    store: JobWrites
    client: httpx.AsyncClient


def new_scheduler() -> tuple[Scheduler, VirtualClock, JobWrites]:
    clock = VirtualClock()  # 2026-01-01 00:00 UTC: "backup" fires at 02:00, not in these tests
    store = JobWrites(clock)
    sched = Scheduler(store=store, clock=clock, node_id="save-wait")
    sched.add_job("backup", trigger="0 2 * * *", handler=handlers.ok, name="Nightly backup")
    return sched, clock, store


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """A started scheduler on a virtual clock and `JobWrites`, served by uvicorn on loopback."""
    sched, clock, store = new_scheduler()
    async with sched, serve(create_app(sched, DashboardSettings(auth_token=TOKEN))) as live:
        async with httpx.AsyncClient(base_url=live.url, headers=auth()) as client:
            yield Served(sched, clock, store, client)
            store.locked, store.write_s = False, 0.0
            await clock.advance(WRITE_S)  # a write still waiting (a failed test) ends


def waiting_for_the_store() -> bool:
    """True once a route waits for the store (`require_saved` spawned its flush)."""
    return any(t.get_name() == "dashboard-save-wait" and not t.done() for t in asyncio.all_tasks())


async def until(predicate: Callable[[], bool]) -> None:
    """Wait for the request to cross the real socket to the server and back (bounded)."""
    async with asyncio.timeout(20):
        while not predicate():
            await asyncio.sleep(0.005)  # real HTTP in flight, bounded (noqa: sleep-ok)


async def answered_while_writes_take_time(
    clock: VirtualClock, store: JobWrites, request: Awaitable[httpx.Response]
) -> httpx.Response:
    """Send `request`, moving the clock on whenever a job write waits for it, until the
    answer arrives."""
    task = asyncio.ensure_future(request)
    async with asyncio.timeout(20):
        while not task.done():
            if store.waiting:
                await clock.advance(WRITE_S)
            else:
                await asyncio.sleep(0.005)  # real HTTP in flight, bounded (noqa: sleep-ok)
    return task.result()


NEW_JOB = {"id": "report", "trigger": "0 3 * * *", "callable": "tests.dashboard.handlers:ok"}


async def test_a_job_added_while_the_store_refuses_writes_is_a_503_and_stored_once_it_is_back(
    served: Served,
) -> None:
    sched, clock, store, client = served.sched, served.clock, served.store, served.client
    store.locked = True
    request = asyncio.ensure_future(client.post("/api/jobs", json=NEW_JOB))
    await until(lambda: waiting_for_the_store() or request.done())
    assert not request.done(), request.result().text  # was a 201 at once, before any write
    assert store.refused >= 1
    await clock.advance(SAVE_WAIT_S)
    async with asyncio.timeout(20):
        answer = await request
    assert answer.status_code == 503, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith("store unavailable: job 'report' is added in the running scheduler")
    assert "not saved yet" in detail and "when the store is back" in detail
    assert "lost if the scheduler stops before then" in detail and "\n" not in detail
    assert await store.get_job("report") is None
    assert sched.job("report").id == "report"  # applied: the running scheduler has it
    shown = await client.get("/api/jobs/report")
    assert shown.status_code == 200, shown.text
    # The store is back: the scheduler's next try (at most WRITE_RETRY_MAX_S away) lands.
    store.locked = False
    await clock.advance(WRITE_RETRY_MAX_S)
    async with asyncio.timeout(20):
        await sched.flush()
    stored = await store.get_job("report")
    assert stored is not None and stored.definition["trigger"]["expr"] == "0 3 * * *"
    assert stored.next_run is not None


async def test_a_pause_the_store_refuses_is_a_503_and_the_scheduler_keeps_trying(
    served: Served,
) -> None:
    sched, clock, store, client = served.sched, served.clock, served.store, served.client
    store.locked = True
    request = asyncio.ensure_future(client.post("/api/jobs/backup/pause", json={"note": "disk"}))
    await until(lambda: waiting_for_the_store() or request.done())
    await clock.advance(SAVE_WAIT_S)
    async with asyncio.timeout(20):
        answer = await request
    assert answer.status_code == 503, answer.text
    assert answer.json()["detail"].startswith("store unavailable: job 'backup' is paused")
    assert sched.job("backup").paused
    stored = await store.get_job("backup")
    assert stored is not None and not stored.paused
    store.locked = False
    await clock.advance(WRITE_RETRY_MAX_S)
    async with asyncio.timeout(20):
        await sched.flush()
    stored = await store.get_job("backup")
    assert stored is not None and stored.paused and stored.pause_note == "disk"


async def test_changes_are_answered_once_they_are_in_the_store(served: Served) -> None:
    """A healthy but slow store (each job write takes `WRITE_S` on the clock): every answer
    comes after the write, so reading the store right after it finds the change."""
    clock, store, client = served.clock, served.store, served.client
    store.write_s = WRITE_S

    created = await answered_while_writes_take_time(
        clock, store, client.post("/api/jobs", json=NEW_JOB)
    )
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "report"
    stored = await store.get_job("report")
    assert stored is not None and stored.definition["trigger"]["expr"] == "0 3 * * *"

    patched = await answered_while_writes_take_time(
        clock, store, client.patch("/api/jobs/report", json={"name": "Weekly report"})
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Weekly report"
    stored = await store.get_job("report")
    assert stored is not None and stored.definition["name"] == "Weekly report"

    paused = await answered_while_writes_take_time(
        clock, store, client.post("/api/jobs/report/pause", json={"note": "holiday"})
    )
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True
    stored = await store.get_job("report")
    assert stored is not None and stored.paused and stored.pause_note == "holiday"

    resumed = await answered_while_writes_take_time(
        clock, store, client.post("/api/jobs/report/resume")
    )
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["paused"] is False
    stored = await store.get_job("report")
    assert stored is not None and not stored.paused

    removed = await answered_while_writes_take_time(clock, store, client.delete("/api/jobs/report"))
    assert removed.status_code == 200, removed.text
    assert removed.json()["message"] == "removed report"
    assert await store.get_job("report") is None


async def test_stopping_the_server_answers_a_waiting_change_at_once() -> None:
    """A change waiting for a store that is down does not hold the dashboard's stop for
    `SAVE_WAIT_S`: it is answered 503 when the server stops, and stays queued in the
    scheduler (tried once more when the scheduler stops)."""
    sched, clock, store = new_scheduler()
    settings = DashboardSettings(auth_token=TOKEN, port=free_port())
    async with sched:
        server = DashboardServer(sched, settings)
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url, headers=auth()) as client:
                store.locked = True
                request = asyncio.ensure_future(client.delete("/api/jobs/backup"))
                await until(lambda: waiting_for_the_store() or request.done())
                async with asyncio.timeout(20):  # the clock does not move
                    await server.stop()
                    answer = await request
        finally:
            await server.stop()
        assert answer.status_code == 503, answer.text
        assert answer.json()["detail"].startswith("store unavailable: job 'backup' is removed")
        store.locked = False
        await clock.advance(WRITE_RETRY_MAX_S)
        async with asyncio.timeout(20):
            await sched.flush()
        assert await store.get_job("backup") is None
