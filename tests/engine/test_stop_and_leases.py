"""Blocking run/serve with signals, and leases: renewal, and a run whose lease was lost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from agentcron.engine import Scheduler
from agentcron.handlers import RunContext
from agentcron.models import RunRecord, RunStatus
from agentcron.store.base import FireStart, StoreError
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock
from agentcron.triggers import Date, Interval

from .conftest import T0, all_runs


async def test_serve_runs_until_a_stop_is_requested(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    sched = make_scheduler()
    fired: list[int] = []

    async def job(ctx: RunContext) -> None:
        fired.append(1)

    sched.add_job("j", trigger=Interval(seconds=10), handler=job)
    serving = asyncio.ensure_future(sched.serve())
    await clock.settle()
    await clock.advance(30)
    sched.request_stop()
    await serving
    assert len(fired) == 3
    assert sched.health()["status"] == "stopped"


async def test_a_second_stop_request_cancels_running_jobs_without_waiting_for_the_grace(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    # A second Ctrl+C used to change nothing: the stop waited out the whole grace period.
    sched = make_scheduler(stop_grace_s=600)
    started = asyncio.Event()

    async def job(ctx: RunContext) -> None:
        started.set()
        await asyncio.Event().wait()  # runs until cancelled

    sched.add_job("j", trigger=Interval(seconds=10), handler=job)
    serving = asyncio.ensure_future(sched.serve())
    await clock.settle()
    await clock.advance(10)
    await asyncio.wait_for(started.wait(), timeout=10)
    sched.request_stop()
    await clock.settle()
    assert not serving.done()  # within its grace: the run may still end by itself
    sched.request_stop()
    await asyncio.wait_for(serving, timeout=10)  # the clock never moved
    [run] = await all_runs(sched, "j")
    assert run.status == RunStatus.cancelled


async def test_a_running_lease_is_renewed_while_the_run_lasts(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock, store: MemoryStore
) -> None:
    sched = make_scheduler(lease_s=30)

    async def long(ctx: RunContext) -> None:
        await clock.sleep(100)

    sched.add_job("j", trigger=Date(T0 + timedelta(seconds=1)), handler=long)
    async with sched:
        await clock.advance(60)
        (run,) = await all_runs(sched, "j")
        assert run.status == RunStatus.running
        assert run.lease_expires_at is not None and run.lease_expires_at > clock.now()
        assert await store.interrupt_expired(clock.now()) == []
        await clock.advance(45)
        (run,) = await all_runs(sched, "j")
    assert run.status == RunStatus.succeeded


class RenewCountingStore(MemoryStore):
    """Counts lease renewals in flight at once (each waits one loop turn, as a round trip)."""

    def __init__(self) -> None:
        super().__init__()
        self.renewing = 0
        self.most_renewing = 0

    async def renew_lease(self, run_id: str, node_id: str, fence: int, *, until: datetime) -> bool:
        self.renewing += 1
        self.most_renewing = max(self.most_renewing, self.renewing)
        try:
            await asyncio.sleep(0)
            return await super().renew_lease(run_id, node_id, fence, until=until)
        finally:
            self.renewing -= 1


async def test_the_leases_of_many_running_runs_are_renewed_together_not_one_by_one(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    store = RenewCountingStore()
    sched = make_scheduler(store=store, lease_s=30)

    async def long(ctx: RunContext) -> None:
        await clock.sleep(100)

    for i in range(300):
        sched.add_job(f"j{i}", trigger=Date(T0 + timedelta(seconds=1)), handler=long)
    async with sched:
        await clock.advance(45)  # past the lease: only renewals keep the runs ours
        runs = [run for i in range(300) for run in await all_runs(sched, f"j{i}")]
        assert {run.status for run in runs} == {RunStatus.running}
        assert all(
            r.lease_expires_at is not None and r.lease_expires_at > clock.now() for r in runs
        )
        await clock.advance(60)
    assert 1 < store.most_renewing <= 256


async def test_a_run_whose_lease_was_taken_over_is_stopped_and_not_recorded(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock, store: MemoryStore
) -> None:
    sched = make_scheduler(lease_s=30)
    stopped: list[bool] = []

    async def long(ctx: RunContext) -> None:
        try:
            await clock.sleep(1000)
        finally:
            stopped.append(ctx.cancel_requested)

    sched.add_job("j", trigger=Date(T0 + timedelta(seconds=1)), handler=long)
    async with sched:
        await clock.advance(2)
        # another node decides the lease expired (e.g. this one was partitioned)
        taken = await store.interrupt_expired(clock.now() + timedelta(hours=1))
        assert len(taken) == 1
        await clock.advance(11)  # the next renewal finds out
        (run,) = await all_runs(sched, "j")
    assert stopped == [True]
    assert run.status == RunStatus.interrupted  # what the other node recorded stands


SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from agentcron import Scheduler, Interval

    marker = Path(sys.argv[1])
    sched = Scheduler(stop_grace_s=5)

    @sched.interval(seconds=0.2, id="tick")
    async def tick(ctx):
        marker.write_text("ran")

    sched.run()
    print("stopped cleanly")
    """
)


def test_run_blocks_until_sigterm_then_stops_gracefully(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert time.monotonic() < deadline, "the scheduler never ran its job"
            time.sleep(0.02)  # waits for a real child process, bounded (noqa: sleep-ok)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped cleanly" in out


async def test_jobs_runs_and_pauses_survive_a_restart_on_a_real_sqlite_file(
    tmp_path: Path, clock: VirtualClock
) -> None:
    url = f"sqlite:///{tmp_path / 'scheduler.db'}"
    first = Scheduler(url, clock=clock, node_id="a", lease_s=600)
    first.add_job(
        "a",
        trigger=Interval(seconds=10),
        handler="engine.engine_samples:record",
        retry=2,
        tags=["t"],
    )
    async with first:
        for _ in range(3):
            await clock.advance(10)
            await asyncio.wait_for(first.drain(), timeout=30)
        first.add_job("b", trigger=Interval(seconds=10), handler="engine.engine_samples:record")
        await clock.advance(10)
        await asyncio.wait_for(first.drain(), timeout=30)
        assert len(await first.runs("b")) == 1
        first.pause("a", note="away")
        first.remove("b")
        await asyncio.wait_for(first.drain(), timeout=30)
    second = Scheduler(url, clock=clock, node_id="a", lease_s=600)
    async with second:
        assert [(j.id, j.paused, j.pause_note, j.job.tags) for j in second.jobs()] == [
            ("a", True, "away", ("t",))
        ]
        runs = await second.runs("a")
    assert [(r.scheduled_for - T0).total_seconds() for r in runs] == [40, 30, 20, 10]
    assert all(r.status == RunStatus.succeeded for r in runs)


class LosingStore(MemoryStore):
    """A store that loses a run's record (as a Redis restarted empty does): the run then ends
    while the engine writes its `running` record back, and its end lands first."""

    def __init__(self, release: asyncio.Event) -> None:
        super().__init__()
        self.release = release
        self.data_losses = 0
        self.vanished: str | None = None

    async def _let_the_run_end(self, run_id: str) -> None:
        self.release.set()
        for _ in range(1000):  # bounded: the run ends within a few loop turns
            run = await super().get_run(run_id)
            if run is not None and run.status != RunStatus.running:
                return
            await asyncio.sleep(0)
        raise AssertionError("the run never ended")

    async def renew_lease(self, run_id: str, node_id: str, fence: int, *, until: datetime) -> bool:
        if self.vanished == run_id:
            return False  # its record is gone
        return await super().renew_lease(run_id, node_id, fence, until=until)

    async def get_run(self, run_id: str) -> RunRecord | None:
        if self.vanished == run_id:
            self.vanished = None
            await self._let_the_run_end(run_id)
            return None
        return await super().get_run(run_id)

    async def notice_data_loss(self) -> bool:
        return False

    async def record_runs(self, runs: Sequence[RunRecord]) -> list[bool]:
        if self.data_losses and runs and runs[0].status == RunStatus.running:
            await self._let_the_run_end(runs[0].run_id)  # the write-back arrives late
        return await super().record_runs(runs)


async def test_a_run_ending_while_its_vanished_record_is_written_back_stays_ended(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    release = asyncio.Event()
    store = LosingStore(release)
    sched = make_scheduler(store=store, lease_s=30)

    async def long(ctx: RunContext) -> None:
        await release.wait()

    sched.add_job("j", trigger=Date(T0 + timedelta(seconds=1)), handler=long)
    async with sched:
        await clock.advance(2)
        (run,) = await all_runs(sched, "j")
        store.vanished = run.run_id
        await clock.advance(10)  # the renewal finds no record and writes it back
        await sched.drain()
        (run,) = await all_runs(sched, "j")
    assert run.status == RunStatus.succeeded  # not `running`, to be interrupted later


async def test_a_run_ending_while_the_lost_data_is_written_back_stays_ended(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    release = asyncio.Event()
    store = LosingStore(release)
    sched = make_scheduler(store=store, lease_s=30)

    async def long(ctx: RunContext) -> None:
        await release.wait()

    sched.add_job("j", trigger=Date(T0 + timedelta(seconds=1)), handler=long)
    async with sched:
        await clock.advance(2)
        store.data_losses = 1  # Redis restarted empty (noticed by a heartbeat)
        await clock.advance(10)  # the jobs and the running run are written back
        await sched.drain()
        (run,) = await all_runs(sched, "j")
    assert run.status == RunStatus.succeeded


class LostClaimStore(MemoryStore):
    """A store on which another node claims each fire first, while this node's claim is on
    its way; the claim is answered (refused) once `answer` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = asyncio.Event()

    async def start_fires(
        self, fires: Sequence[FireStart], node_id: str, *, now: datetime
    ) -> list[bool]:
        for fire in fires:
            await super().claim_fire(fire.job_id, fire.scheduled_for, "other", now=now)
        await self.answer.wait()
        return await super().start_fires(fires, node_id, now=now)


async def test_a_fire_whose_claim_another_node_wins_leaves_no_record_though_a_renewal_ran(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    # Seen on a loaded three-node cluster: the renewal found the lost claim's run (tracked
    # from its claim) without a record, took it for lost data and wrote it back `running`;
    # its lease then expired and it was retried, beside the winner's own run.
    store = LostClaimStore()
    sched = make_scheduler(store=store, lease_s=30)
    sched.add_job(
        "j", trigger=Date(T0 + timedelta(seconds=5)), handler="engine.engine_samples:record"
    )
    async with sched:
        await clock.advance(6)  # the claim is on its way
        await clock.advance(5)  # the lease renewal, at lease_s / 3
        store.answer.set()
        await sched.drain()
        assert await all_runs(sched, "j") == []


@contextlib.asynccontextmanager
async def one_long_run(sched: Scheduler, clock: VirtualClock) -> AsyncIterator[Scheduler]:
    """`sched`, started, with its job "j" running from 1 s until the block ends (at 2 s on
    `clock` when the block begins); the run is then let finish and recorded, also when the
    block fails (a stop would wait for it on the virtual clock)."""
    release = asyncio.Event()

    async def long(ctx: RunContext) -> None:
        await release.wait()

    sched.add_job("j", trigger=Date(T0 + timedelta(seconds=1)), handler=long)
    async with sched:
        try:
            await clock.advance(2)
            yield sched
        finally:
            release.set()
        await sched.drain()


class LateClaimStore(MemoryStore):
    """A store where one renewal arrives before the run's `running` record (written with its
    claim) has landed: refused, though nobody took the run over."""

    def __init__(self) -> None:
        super().__init__()
        self.early: str | None = None

    async def renew_lease(self, run_id: str, node_id: str, fence: int, *, until: datetime) -> bool:
        if self.early == run_id:
            self.early = None
            return False  # (as if it came first: the record was not there yet)
        return await super().renew_lease(run_id, node_id, fence, until=until)


async def test_a_renewal_that_came_before_the_runs_record_does_not_cancel_the_run(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    # A run is active from its claim; a renewal at that instant could be refused before
    # the claim's write landed, and the run was cancelled as "taken over by another node"
    # without a record or an event (seen in CI as a run that silently vanished).
    store = LateClaimStore()
    async with one_long_run(make_scheduler(store=store, lease_s=30), clock) as sched:
        (run,) = await all_runs(sched, "j")
        store.early = run.run_id
        await clock.advance(10)  # the refused renewal
        assert sched.job("j").active_runs == 1
        await clock.advance(10)  # the next one renews it
        (run,) = await all_runs(sched, "j")
        assert run.status == RunStatus.running
        assert run.lease_expires_at == T0 + timedelta(seconds=20 + 30)
    (run,) = await all_runs(sched, "j")
    assert run.status == RunStatus.succeeded


class UncheckableStore(MemoryStore):
    """A store whose check for lost data fails once (it went away right then)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next_check = False

    async def notice_data_loss(self) -> bool:
        if self.fail_next_check:
            self.fail_next_check = False
            raise StoreError("the store is unreachable")
        return False


async def test_a_failed_check_for_lost_data_does_not_skip_that_lease_renewal(
    make_scheduler: Callable[..., Scheduler], clock: VirtualClock
) -> None:
    store = UncheckableStore()
    async with one_long_run(make_scheduler(store=store, lease_s=30), clock) as sched:
        store.fail_next_check = True
        await clock.advance(10)  # the renewal at 10 s, after the failed check
        (run,) = await all_runs(sched, "j")
        assert run.lease_expires_at == T0 + timedelta(seconds=10 + 30)
