from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agentcron.engine import Scheduler
from agentcron.events import EventBus
from agentcron.heartbeat.supervisor import HealthSupervisor, loop_progressing
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock
from agentcron.triggers import Interval

from .conftest import MACHINE_BLIND, T0, Collector


async def fails() -> None:
    raise RuntimeError("upstream 503")


async def works() -> None:
    return None


def test_the_loop_is_progressing_while_no_fire_is_overdue_beyond_the_stall_window() -> None:
    from datetime import timedelta

    now = T0 + timedelta(seconds=100)
    assert loop_progressing([None, now, now - timedelta(seconds=5)], now, 5)
    assert not loop_progressing([now - timedelta(seconds=5.001)], now, 5)
    assert loop_progressing([], now, 5)


async def test_the_supervisor_wires_heartbeats_deadman_alerts_and_auto_disable_to_a_scheduler(
    clock: VirtualClock, store: MemoryStore, bus: EventBus, collector: Collector, tmp_path: Path
) -> None:
    sched = Scheduler(store=store, clock=clock, events=bus, node_id="node-a")
    sched.add_job("flaky", trigger=Interval(seconds=10), handler=fails)
    sched.add_job("weekly", trigger=Interval(seconds=3600), handler=works, expect_every=60)
    supervisor = HealthSupervisor(
        sched,
        data_dir=tmp_path,
        interval_s=5,
        alerting={"rules": [{"kind": "job_auto_disabled"}, {"kind": "job_overdue"}]},
        auto_disable={"flaky": 3},
        environ={},
    )
    async with sched, supervisor:
        # To 66 s: the job is found overdue at 60 s, the instant of the 13th heartbeat (which
        # goes first depends on the loop's task order), so the 14th, at 65 s, carries it.
        await clock.advance(66)
        await supervisor.alerts.drain()
        view = sched.job("flaky")
        assert view.paused
        assert view.pause_note == (
            "auto-disabled after 3 consecutive failures (last error: RuntimeError: upstream 503)"
        )
        history = await supervisor.alerts.history()
        assert sorted(h["kind"] for h in history) == ["job_auto_disabled", "job_overdue"]
        types = await collector.types()
        assert types.count("job.overdue") == 1 and "node.online" in types
        health = supervisor.health()
        assert (health["node_id"], health["overdue_jobs"]) == ("node-a", ["weekly"])
        [beat] = await store.list_heartbeats()
        assert beat.node_id == "node-a" and beat.sequence == 14
        assert beat.details["overdue_jobs"] == ["weekly"]
        assert beat.status == "degraded"  # one job overdue
    assert sched.health()["status"] == "stopped"


def test_a_bad_alert_rule_stops_start_up_naming_it(clock: VirtualClock, store: MemoryStore) -> None:
    sched = Scheduler(store=store, clock=clock, node_id="n")
    with pytest.raises(ValueError, match=r"alerts.rules\[0\] \('nodes_down'\): unknown kind"):
        HealthSupervisor(sched, alerting={"rules": [{"kind": "nodes_down"}]}, environ={})


async def test_the_watchdog_is_fed_while_the_scheduler_loop_keeps_firing(
    clock: VirtualClock, store: MemoryStore, tmp_path: Path
) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.setblocking(False)
        sched = Scheduler(store=store, clock=clock, node_id="n")
        sched.add_job("tick", trigger=Interval(seconds=1), handler=works)
        env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"}
        supervisor = HealthSupervisor(sched, environ=env, monitor=False)
        async with sched, supervisor:
            await clock.advance(10)
        messages: list[str] = []
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except BlockingIOError:
                break
    assert messages[0].startswith("READY=1\nSTATUS=")
    pings = [m for m in messages if m.startswith("WATCHDOG=1")]
    assert len(pings) == 5  # every 2 s for 10 s
    assert messages[-1] == "STOPPING=1"


async def test_the_watchdog_starves_when_the_scheduler_loop_stops_firing(
    clock: VirtualClock, store: MemoryStore, tmp_path: Path
) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.setblocking(False)
        sched = Scheduler(store=store, clock=clock, node_id="n")
        sched.add_job("tick", trigger=Interval(seconds=1), handler=works)
        env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"}
        supervisor = HealthSupervisor(sched, environ=env, monitor=False)
        async with sched, supervisor:
            await clock.advance(4)
            # Wedge the engine: its loop task stops, due fires stay unfired.
            loop_task = sched._loop_task
            assert loop_task is not None
            loop_task.cancel()
            await clock.advance(0)
            assert supervisor.watchdog is not None
            before = supervisor.watchdog.pings
            await clock.advance(10)
            after = supervisor.watchdog.pings
            await clock.advance(30)
            assert supervisor.watchdog.pings == after  # starved: systemd restarts the unit
    assert before == 2
    # The fire due at 5 s is judged stalled once it is 2 s (the stall window) overdue: the
    # pings at 6 s and 8 s still go out, none after; systemd kills at 8 s + WatchdogSec.
    assert after == before + 2


async def test_jobs_added_changed_or_removed_later_update_the_dead_mans_switches(
    clock: VirtualClock, store: MemoryStore, bus: EventBus, collector: Collector
) -> None:
    sched = Scheduler(store=store, clock=clock, events=bus, node_id="n")
    supervisor = HealthSupervisor(sched, environ={}, monitor=False)
    async with sched, supervisor:
        sched.add_job("late", trigger=Interval(seconds=3600), handler=works, expect_every=30)
        sched.add_job("fine", trigger=Interval(seconds=3600), handler=works)
        await clock.advance(0)
        sched.update("fine", expect_every=5000)
        await clock.advance(40)
        assert supervisor.deadman.overdue_jobs() == ("late",)
        sched.remove("late")
        await clock.advance(0)
        assert supervisor.deadman.overdue_jobs() == ()
        assert supervisor.deadman.due("fine") is not None


async def test_a_per_schedule_switch_expects_each_fire_to_succeed_within_its_grace(
    clock: VirtualClock, store: MemoryStore, bus: EventBus
) -> None:
    sched = Scheduler(store=store, clock=clock, events=bus, node_id="n")
    sched.add_job("sync", trigger=Interval(seconds=60), handler=fails)
    sched.add_job("ok", trigger=Interval(seconds=60), handler=works)
    with pytest.raises(ValueError, match="unknown job"):
        HealthSupervisor(sched, environ={}, per_schedule={"nope": 5})
    supervisor = HealthSupervisor(
        sched, environ={}, monitor=False, per_schedule={"sync": 5, "ok": 5}
    )
    async with sched, supervisor:
        await clock.advance(59)
        assert supervisor.deadman.overdue_jobs() == ()
        await clock.advance(11)  # the fire at 60 s failed; its grace ended at 65 s
        assert supervisor.deadman.overdue_jobs() == ("sync",)


async def test_a_restarted_node_is_not_reported_offline_by_its_own_monitor(
    clock: VirtualClock, store: MemoryStore
) -> None:
    from agentcron.events import EventBus
    from agentcron.heartbeat.monitor import HeartbeatMonitor
    from agentcron.heartbeat.sender import HeartbeatSender
    from agentcron.models import NodeHeartbeat

    from .conftest import Collector

    # Down for ten minutes: its last heartbeat is far beyond missed_threshold intervals.
    await store.write_heartbeat(
        NodeHeartbeat(
            node_id="n1", sequence=9, sent_at=T0.replace(minute=50, hour=11), interval_s=10
        )
    )
    bus = EventBus()
    seen = Collector(bus)
    sender = HeartbeatSender(
        store, clock, node_id="n1", interval_s=10, loop_lag_period_s=None, thresholds=MACHINE_BLIND
    )
    async with sender, HeartbeatMonitor(store, clock, bus, check_every_s=5):
        await clock.advance(0)
        await clock.advance(30)
    assert await seen.types() == ["node.online"]
