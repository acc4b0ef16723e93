"""The daemon's side of `agentcron jobs reload`: after each reload it makes, `agentcron run`
writes its verdict to the store (`control.JOBS_RELOADED_KEY`), stamped by its own clock;
a verdict the store refuses is logged and the watch goes on. On a `MemoryStore` and a
`VirtualClock`, without a process (the CLI's side is in test_cli_jobs and test_cli_run)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agentcron.config import load_settings
from agentcron.control import (
    JOBS_CHANGED_KEY,
    JOBS_RELOADED_KEY,
    VERDICT_ERROR_CHARS,
    ReloadVerdict,
    read_reload_verdict,
)
from agentcron.models import StoredJob
from agentcron.store.base import StoreError
from agentcron.store.memory import MemoryStore
from agentcron.system import JOBS_WATCH_S, AgentcronSystem
from agentcron.testing import VirtualClock

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def job(job_id: str, trigger: str = "0 * * * *") -> str:
    return f'[[jobs]]\nid = "{job_id}"\ntrigger = "{trigger}"\ncallable = "os:getcwd"\n'


class Daemon:
    """An `AgentcronSystem` started as far as `_watch_jobs` needs (store, scheduler)."""

    def __init__(self, system: AgentcronSystem, store: MemoryStore, clock: VirtualClock) -> None:
        self.system, self.store, self.clock = system, store, clock
        assert system.config_path is not None
        self.config = system.config_path

    def job_ids(self) -> list[str]:
        assert self.system.scheduler is not None
        return sorted(view.id for view in self.system.scheduler.jobs())


@contextlib.asynccontextmanager
async def daemon(tmp_path: Path, store: MemoryStore | None = None) -> AsyncIterator[Daemon]:
    config = tmp_path / "agentcron.toml"
    config.write_text(job("a"))
    environ = {"SCHEDULER_DATA_DIR": str(tmp_path), "SCHEDULER_NODE_ID": "node-1"}
    clock = VirtualClock(T0)
    system = AgentcronSystem(
        settings=load_settings(environ=environ, env_file=None), config_path=config, clock=clock
    )
    store = store if store is not None else MemoryStore()
    await system._write_jobs(store, system._load_job_file())
    sched = system._build_scheduler(store, tmp_path)
    system.store, system.scheduler = store, sched
    system._reload = asyncio.Event()  # what `serve` creates
    async with sched:
        watcher = asyncio.create_task(system._watch_jobs(store))
        try:
            yield Daemon(system, store, clock)
            assert not watcher.done()
        finally:
            watcher.cancel()
            await sched.stop(grace_s=0)


async def until(condition: Callable[[], object]) -> None:
    """Let the watch loop run until `condition` holds (it reacts to a SIGHUP at once)."""
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0)


async def verdict_for(store: MemoryStore, token: str) -> ReloadVerdict:
    found: list[ReloadVerdict] = []

    async def answered() -> bool:
        verdict = await read_reload_verdict(store)
        found[:] = [verdict] if verdict is not None and verdict.token == token else []
        return bool(found)

    async with asyncio.timeout(10):
        while not await answered():
            await asyncio.sleep(0)
    return found[0]


async def test_a_reload_after_a_sighup_writes_an_ok_verdict_stamped_by_the_daemons_clock(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path) as d:
        await d.clock.advance(90)
        d.config.write_text(job("a") + job("b"))
        await d.store.set_state(JOBS_CHANGED_KEY, "token-1")
        d.system.request_reload()  # what SIGHUP does
        verdict = await verdict_for(d.store, "token-1")
        assert verdict == ReloadVerdict(
            token="token-1",
            at=datetime(2026, 11, 26, 12, 1, 30, tzinfo=UTC),
            node_id="node-1",
            outcome="reloaded",
            changed=1,
            error=None,
            via="signal",
        )
        assert verdict.ok and d.job_ids() == ["a", "b"]
        assert verdict.to_dict()["at"] == "2026-11-26T12:01:30+00:00"


async def test_a_rejected_file_gives_a_verdict_naming_the_problem_and_keeps_the_schedule(
    tmp_path: Path,
) -> None:
    async with daemon(tmp_path) as d:
        long_id = "bad-" + "x" * 150  # five errors naming it are over VERDICT_ERROR_CHARS
        bad = "".join(job(f"{long_id}-{i}", "61 * * * *") for i in range(40))
        d.config.write_text(job("a") + bad)
        await d.store.set_state(JOBS_CHANGED_KEY, "token-2")
        d.system.request_reload()
        verdict = await verdict_for(d.store, "token-2")
        assert (verdict.outcome, verdict.ok, verdict.changed) == ("rejected", False, 0)
        assert verdict.error is not None
        assert verdict.error.startswith(f"{d.config}: 40 error(s): jobs[1] ('{long_id}-0'): ")
        assert "minute field: 61 is out of range" in verdict.error
        assert "\n" not in verdict.error
        head, _, rest = verdict.error.partition("... [")
        assert len(head) == VERDICT_ERROR_CHARS and rest.endswith(" more characters]")
        assert d.job_ids() == ["a"]


class FailingStore(MemoryStore):
    """A MemoryStore whose next `list_jobs` fails, and which may refuse reload verdicts."""

    fail_list = False
    refuse_verdicts = False
    fail_reads = 0  # how many reads of the `jobs.changed` token fail next

    async def get_state(self, key: str) -> str | None:
        if self.fail_reads and key == JOBS_CHANGED_KEY:
            self.fail_reads -= 1
            raise StoreError("the store is unreachable")
        return await super().get_state(key)

    async def list_jobs(self, *args: Any, **kwargs: Any) -> list[StoredJob]:
        if self.fail_list:
            self.fail_list = False
            raise StoreError("database is locked\n(waited 10 s)")
        return await super().list_jobs(*args, **kwargs)

    async def set_state(self, key: str, value: str) -> None:
        if self.refuse_verdicts and key == JOBS_RELOADED_KEY:
            raise StoreError("disk full")
        await super().set_state(key, value)


async def test_a_reload_the_store_fails_gives_a_failed_verdict_on_one_line(
    tmp_path: Path,
) -> None:
    store = FailingStore()
    async with daemon(tmp_path, store) as d:
        store.fail_list = True
        await store.set_state(JOBS_CHANGED_KEY, "token-3")
        d.system.request_reload()
        verdict = await verdict_for(store, "token-3")
        assert (verdict.outcome, verdict.ok) == ("failed", False)
        assert verdict.error == "database is locked (waited 10 s)"


async def test_a_verdict_the_store_refuses_is_logged_and_the_watch_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FailingStore()
    async with daemon(tmp_path, store) as d:
        store.refuse_verdicts = True
        d.config.write_text(job("a") + job("b"))
        d.system.request_reload()
        await until(lambda: "cannot write the reload verdict" in caplog.text)
        assert d.job_ids() == ["a", "b"]
        d.config.write_text(job("a"))
        d.system.request_reload()  # still watched: the next reload is applied
        await until(lambda: d.job_ids() == ["a"])
    assert await read_reload_verdict(store) is None
    assert "disk full" in caplog.text


async def test_a_store_down_when_the_watch_begins_does_not_end_the_watch(
    tmp_path: Path,
) -> None:
    # The first read of the token had no error handling: the watch task died, and neither
    # SIGHUP nor `agentcron jobs reload` reached the daemon until it was restarted.
    store = FailingStore()
    store.fail_reads = 1
    async with daemon(tmp_path, store) as d:
        d.config.write_text(job("a") + job("b"))
        d.system.request_reload()
        await until(lambda: d.job_ids() == ["a", "b"])


async def test_a_sighup_reload_the_store_failed_is_tried_again_re_reading_the_file(
    tmp_path: Path,
) -> None:
    # It was tried again as a reload of the store's jobs alone (or, with no new token,
    # not at all): the edit to agentcron.toml that the SIGHUP asked for was never applied.
    store = FailingStore()
    async with daemon(tmp_path, store) as d:
        d.config.write_text(job("a") + job("b"))
        store.fail_list = True
        await store.set_state(JOBS_CHANGED_KEY, "token-4")
        d.system.request_reload()
        failed = await verdict_for(store, "token-4")
        assert (failed.outcome, failed.via) == ("failed", "signal")
        assert d.job_ids() == ["a"]
        await d.clock.advance(JOBS_WATCH_S)  # the next poll, on the daemon's clock
        async with asyncio.timeout(10):
            while (verdict := await verdict_for(store, "token-4")).outcome == "failed":
                await asyncio.sleep(0)
        assert (verdict.outcome, verdict.via) == ("reloaded", "signal")
        assert d.job_ids() == ["a", "b"]


async def test_a_store_down_for_many_polls_is_logged_once_and_its_return_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A 41 s Redis outage wrote "cannot watch the store for job changes" every 2 s.
    caplog.set_level(logging.INFO, logger="agentcron.system")
    store = FailingStore()
    async with daemon(tmp_path, store) as d:
        store.fail_reads = 10
        async with asyncio.timeout(10):
            while store.fail_reads:
                await d.clock.advance(JOBS_WATCH_S)
        await d.clock.advance(JOBS_WATCH_S)
        async with asyncio.timeout(10):
            while "watching the store for job changes again" not in caplog.text:
                await asyncio.sleep(0)
    assert caplog.text.count("cannot watch the store for job changes") == 1
