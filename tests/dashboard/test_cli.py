"""`agentcron dashboard` as a real process, and the read-only store observer behind it."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from tests.dashboard.conftest import TOKEN, add_jobs, auth

from agentcron import Scheduler
from agentcron.dashboard import DashboardSettings, create_app
from agentcron.dashboard.observer import StoreObserver
from agentcron.dashboard.queues import QueueSet
from agentcron.dashboard.server import DashboardServer, exposure_warning
from agentcron.events import Event
from agentcron.models import RunRecord, RunStatus, new_run_id
from agentcron.queue import open_queue
from agentcron.store.base import open_store
from agentcron.testing import VirtualClock

ROOT = Path(__file__).resolve().parents[2]


async def seed(data_dir: Path) -> str:
    url = f"sqlite:///{(data_dir / 'scheduler.db').as_posix()}"
    sched = Scheduler(store=url, node_id="seed-node")
    add_jobs(sched)
    async with sched:
        await sched.run_now("backup")
        sched.pause("digest", note="travelling")
    return url


async def start_cli(
    *args: str, env: dict[str, str]
) -> tuple[asyncio.subprocess.Process, str, list[str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agentcron", "dashboard", *args,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(60):
        while True:
            line = (await proc.stdout.readline()).decode()
            assert line, f"exited early: {lines} {(await proc.communicate())[1].decode()}"
            lines.append(line.rstrip("\n"))
            if line.startswith("agentcron dashboard on "):
                url = line.split(" on ", 1)[1].split(" ", 1)[0].rstrip("/")
                return proc, url, lines


async def stop_cli(proc: asyncio.subprocess.Process) -> None:
    proc.terminate()
    async with asyncio.timeout(30):
        await proc.wait()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DASHBOARD_", "SCHEDULER_"))}
    return {**clean, "PYTHONPATH": str(ROOT / "src")}


async def test_the_command_generates_a_token_once_and_serves_the_store_read_only(
    tmp_path: Path, env: dict[str, str]
) -> None:
    data = tmp_path / "data"
    await seed(data)
    args = ("--data-dir", str(data), "--port", "0", "--poll", "0.2")
    proc, url, lines = await start_cli(*args, env=env)
    try:
        token_file = data / "dashboard.token"
        token = token_file.read_text().strip()
        assert any(token in line for line in lines)  # printed once, at first start
        if sys.platform != "win32":
            assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(base_url=url, headers=auth(token)) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (
                await client.get("/api/jobs", headers=auth("wrong-token-wrong-token"))
            ).status_code == 403
            jobs = {j["id"]: j for j in (await client.get("/api/jobs")).json()["items"]}
            assert set(jobs) == {"backup", "digest", "xss"}
            assert (
                jobs["digest"]["status"] == "paused"
                and jobs["digest"]["pause_note"] == "travelling"
            )
            assert jobs["backup"]["last_result"]["status"] == "succeeded"
            assert jobs["backup"]["description"] == "At 02:00"
            refused = await client.post("/api/jobs/backup/run")
            assert refused.status_code == 409 and "only reads" in refused.json()["detail"]
            assert (await client.post("/api/jobs/digest/resume")).status_code == 409
            health = (await client.get("/api/health")).json()
            assert health["engine"]["mode"] == "read-only"
    finally:
        await stop_cli(proc)
    proc, _, lines = await start_cli(*args, env=env)
    await stop_cli(proc)
    assert not any(token in line for line in lines)  # not printed again


async def test_the_command_starts_while_another_process_holds_the_write_lock(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # As during `agentcron run`'s daily VACUUM: the observer used to open the store with
    # its writer, wait 10 s for the lock, then exit with "database is locked".
    data = tmp_path / "data"
    await seed(data)
    writer = sqlite3.connect(data / "scheduler.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        proc, url, _ = await start_cli("--data-dir", str(data), "--port", "0", env=env)
        try:
            token = (data / "dashboard.token").read_text().strip()
            async with httpx.AsyncClient(base_url=url, headers=auth(token)) as client:
                jobs = (await client.get("/api/jobs")).json()["items"]
            assert {j["id"] for j in jobs} == {"backup", "digest", "xss"}
        finally:
            await stop_cli(proc)
    finally:
        writer.execute("ROLLBACK")
        writer.close()


async def test_a_configured_token_is_used_and_a_taken_port_is_a_one_line_error(
    tmp_path: Path, env: dict[str, str]
) -> None:
    data = tmp_path / "data"
    await seed(data)
    env = {**env, "DASHBOARD_AUTH_TOKEN": TOKEN}
    proc, url, _ = await start_cli("--data-dir", str(data), "--port", "0", env=env)
    try:
        assert not (data / "dashboard.token").exists()
        async with httpx.AsyncClient(base_url=url, headers=auth()) as client:
            assert (await client.get("/api/jobs")).status_code == 200
        port = url.rsplit(":", 1)[1]
        clash = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agentcron", "dashboard", "--data-dir", str(data), "--port", port,
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(60):
            _, err = await clash.communicate()
        assert clash.returncode == 2
        assert "cannot listen" in err.decode() and len(err.decode().strip().splitlines()) == 1
    finally:
        await stop_cli(proc)


def test_binding_beyond_loopback_without_a_configured_token_warns_loudly() -> None:
    assert exposure_warning("127.0.0.1", token_configured=False) is None
    assert exposure_warning("::1", token_configured=False) is None
    assert exposure_warning("0.0.0.0", token_configured=True) is None
    warning = exposure_warning("0.0.0.0", token_configured=False)
    assert warning is not None and "WARNING" in warning and "DASHBOARD_AUTH_TOKEN" in warning


@pytest.fixture
async def observer(tmp_path: Path) -> AsyncIterator[StoreObserver]:
    url = await seed(tmp_path)
    clock = VirtualClock()
    async with StoreObserver(open_store(url), clock=clock, poll_s=5) as obs:
        yield obs


async def test_the_observer_turns_store_changes_into_live_events(observer: StoreObserver) -> None:
    seen: list[Event] = []
    observer.events.subscribe(seen.append)
    store = observer.store
    now = observer.clock.now()
    run = RunRecord(run_id=new_run_id(), job_id="xss", scheduled_for=now, status=RunStatus.running,
                    started_at=now)  # fmt: skip
    await store.record_run(run)
    await store.set_paused("backup", True, note="moving house", actor="cli")
    await observer.refresh()
    await store.record_run(run.evolve(status=RunStatus.failed, finished_at=now, error="boom"))
    await observer.refresh()
    await observer.events.drain()
    assert [(e.type, getattr(e, "job_id", None)) for e in seen] == [
        ("job.paused", "backup"), ("run.started", "xss"), ("run.failed", "xss"),
    ]  # fmt: skip
    assert observer.job("backup").paused and observer.job("backup").pause_note == "moving house"
    await observer.refresh()
    await observer.events.drain()
    assert len(seen) == 3  # nothing changed, nothing published


async def test_the_observer_is_served_on_an_ephemeral_port_by_dashboard_server(
    observer: StoreObserver,
) -> None:
    settings = DashboardSettings(auth_token=TOKEN, port=0)
    async with DashboardServer(observer, settings) as server:
        assert server.port != 0
        async with httpx.AsyncClient(base_url=server.url, headers=auth()) as client:
            page = (await client.get("/api/jobs")).json()
            assert page["total"] == 3
            assert (await client.post("/api/jobs/nope/run")).status_code == 404
    assert create_app(observer, settings) is not None


async def test_the_read_only_dashboard_shows_no_progress_for_a_running_job(
    observer: StoreObserver,
) -> None:
    # The progress lives in the scheduling process; the store does not carry it.
    now = observer.clock.now()
    await observer.store.record_run(RunRecord(
        run_id=new_run_id(), job_id="backup", scheduled_for=now, status=RunStatus.running,
        started_at=now,
    ))  # fmt: skip
    await observer.refresh()
    app = create_app(observer, DashboardSettings(auth_token=TOKEN))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", headers=auth()
        ) as client:
            listed = {j["id"]: j for j in (await client.get("/api/jobs")).json()["items"]}
            detail = (await client.get("/api/jobs/backup")).json()
    assert (listed["backup"]["status"], listed["backup"]["progress"]) == ("running", None)
    assert all(j["progress"] is None for j in listed.values())
    assert detail["progress"] is None


async def test_the_read_only_dashboard_refuses_to_pause_resume_or_clean_a_queue(
    observer: StoreObserver,
) -> None:
    # It refused job changes but paused queues and deleted their jobs (found by a session
    # probing the API): its page hides those buttons, and the docs promise a 409.
    url = observer.store.url
    queue = open_queue(url, "emails")
    try:
        await queue.add("send", {"to": "a"})
        await queue.add("send", {"to": "b"})
        queues = QueueSet(url, ["emails"], scheduler=observer)
        settings = DashboardSettings(auth_token=TOKEN, port=0)
        async with DashboardServer(observer, settings, queues=queues) as server:
            async with httpx.AsyncClient(base_url=server.url, headers=auth()) as client:
                clean = await client.post("/api/queues/emails/clean", json={"state": "waiting"})
                pause = await client.post("/api/queues/emails/pause")
                resume = await client.post("/api/queues/emails/resume")
                shown = (await client.get("/api/queues/emails")).json()
        await queues.close()
        for refused in (clean, pause, resume):
            assert refused.status_code == 409 and "only reads" in refused.json()["detail"]
        assert shown["counts"]["waiting"] == 2 and shown["paused"] is False
        assert (await queue.counts())["waiting"] == 2 and not await queue.is_paused()
    finally:
        await queue.close()


def test_a_data_dir_without_a_database_is_a_one_line_error_that_creates_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    missing = tmp_path / "typo" / "data"
    result = subprocess.run(
        [sys.executable, "-m", "agentcron", "dashboard", "--data-dir", str(missing), "--port", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("agentcron: no database at ") and result.stderr.count("\n") == 1
    assert not (tmp_path / "typo").exists()
