from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agentcron.heartbeat.monitor import view_node
from agentcron.heartbeat.probes import (
    JobCounts,
    LoopLagProbe,
    Probes,
    Readings,
    Thresholds,
    assess,
)
from agentcron.heartbeat.sender import (
    HeartbeatSender,
    interval_from_env,
    read_node_id,
    resolve_node_id,
)
from agentcron.models import NodeHeartbeat, StoredJob
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock

from .conftest import MACHINE_BLIND, T0


def test_assess_reports_healthy_when_every_reading_is_below_its_threshold() -> None:
    result = assess(Readings(rss_mb=100, memory_pct=50, cpu_pct=10, loop_lag_s=0.01), Thresholds())
    assert (result.status, result.reasons) == ("healthy", ())


def test_assess_takes_the_worst_level_and_names_each_reason() -> None:
    readings = Readings(rss_mb=2000, loop_lag_s=6.0, max_consecutive_failures=3)
    result = assess(readings, Thresholds())
    assert result.status == "unhealthy"
    assert result.reasons == (
        "rss_mb 2000 >= 1024",
        "loop_lag_s 6 >= 5",
        "consecutive_failures 3 >= 3",
    )


def test_an_unreachable_store_makes_the_node_unhealthy() -> None:
    result = assess(Readings(store_ok=False, store_error="locked"), Thresholds())
    assert result.status == "unhealthy"
    assert result.reasons == ("store unreachable: locked",)


def test_overdue_jobs_degrade_the_node_and_none_disables_a_check() -> None:
    readings = Readings(overdue_jobs=("backup",), cpu_pct=99)
    assert assess(readings, Thresholds()).status == "degraded"
    quiet = Thresholds(overdue_degraded=None, cpu_degraded_pct=None)
    assert assess(readings, quiet).status == "healthy"


def test_inconsistent_thresholds_are_refused_with_their_names() -> None:
    with pytest.raises(ValueError, match="rss_unhealthy_mb"):
        Thresholds(rss_degraded_mb=500, rss_unhealthy_mb=100)
    with pytest.raises(ValueError, match="failing_degraded"):
        Thresholds(failing_degraded=-1)


def test_the_heartbeat_interval_is_read_in_milliseconds_from_the_environment() -> None:
    assert interval_from_env({}) == 30.0
    assert interval_from_env({"HEARTBEAT_INTERVAL": "5000"}) == 5.0
    with pytest.raises(ValueError, match="HEARTBEAT_INTERVAL"):
        interval_from_env({"HEARTBEAT_INTERVAL": "fast"})
    with pytest.raises(ValueError, match="HEARTBEAT_INTERVAL"):
        interval_from_env({"HEARTBEAT_INTERVAL": "-1"})
    # Accepted before: a worker with 1 ms heartbeats spun at ~580 % CPU.
    with pytest.raises(ValueError, match="HEARTBEAT_INTERVAL: must be at least 100 milliseconds"):
        interval_from_env({"HEARTBEAT_INTERVAL": "1"})
    assert interval_from_env({"HEARTBEAT_INTERVAL": "100"}) == 0.1


def test_the_node_id_is_stable_per_data_dir_and_overridable(tmp_path: Path) -> None:
    first = resolve_node_id(tmp_path / "a")
    assert resolve_node_id(tmp_path / "a") == first
    assert read_node_id(tmp_path / "a") == first
    assert resolve_node_id(tmp_path / "b") != first
    assert resolve_node_id(tmp_path / "a", override="custom") == "custom"
    assert read_node_id(tmp_path / "missing") is None


def test_a_data_dir_copied_from_another_host_gets_a_new_node_id(tmp_path: Path) -> None:
    (tmp_path / "node-id").write_text(json.dumps({"host": "elsewhere", "node_id": "old"}))
    assert read_node_id(tmp_path) is None
    assert resolve_node_id(tmp_path) != "old"


async def test_loop_lag_probe_reports_the_worst_overshoot_since_the_last_read(
    clock: VirtualClock,
) -> None:
    probe = LoopLagProbe(clock, period_s=1.0)
    assert probe.take() is None
    probe.record(0.2)
    probe.record(0.9)
    probe.record(0.1)
    assert probe.take() == 0.9
    assert probe.take() == 0.1  # nothing new: the last measurement
    async with probe:
        await clock.advance(3)
    assert probe.take() == 0.0  # virtual sleeps never overshoot


async def test_probes_read_real_process_memory_and_the_store(tmp_path: Path) -> None:
    store = MemoryStore()
    await store.save_job(StoredJob(id="j", definition={}), actor="test")
    counts = JobCounts(max_consecutive_failures=4, failing_jobs=("j",), overdue_jobs=("k",))

    async def job_counts() -> JobCounts:
        return counts

    readings = await Probes(store, disk_path=tmp_path, job_counts=job_counts).read()
    assert readings.rss_mb is not None and readings.rss_mb > 1
    assert readings.memory_pct is not None and 0 < readings.memory_pct <= 100
    assert readings.disk_pct is not None and readings.disk_free_mb is not None
    assert readings.store_ok
    assert (readings.max_consecutive_failures, readings.overdue_jobs) == (4, ("k",))


async def test_probes_fall_back_to_the_store_run_statistics_for_failure_streaks() -> None:
    readings = await Probes(MemoryStore()).read()
    assert (readings.max_consecutive_failures, readings.failing_jobs) == (0, ())


async def test_the_sender_writes_numbered_heartbeats_every_interval(clock: VirtualClock) -> None:
    store = MemoryStore()
    sender = HeartbeatSender(
        store, clock, node_id="n1", interval_s=10, loop_lag_period_s=1, thresholds=MACHINE_BLIND
    )
    async with sender:
        await clock.advance(0)
        first = (await store.list_heartbeats())[0]
        await clock.advance(25)
        latest = (await store.list_heartbeats())[0]
    assert (first.sequence, first.sent_at) == (1, T0)
    assert (latest.sequence, latest.sent_at) == (3, T0.replace(second=20))
    assert latest.pid == os.getpid() and latest.host and latest.version and latest.platform
    assert latest.started_at == T0 and latest.interval_s == 10
    assert latest.status == "healthy"
    assert latest.details["loop_lag_s"] == 0.0 and latest.details["reasons"] == []


async def test_an_unreachable_store_is_reported_and_does_not_stop_the_sender(
    clock: VirtualClock,
) -> None:
    class Down(MemoryStore):
        down = True

        async def get_state(self, key: str) -> str | None:
            if self.down:
                raise OSError("database is locked")
            return None

        async def write_heartbeat(self, heartbeat: NodeHeartbeat) -> None:
            if self.down:
                raise OSError("database is locked")
            await super().write_heartbeat(heartbeat)

    store = Down()
    sender = HeartbeatSender(
        store, clock, node_id="n1", interval_s=5, loop_lag_period_s=None, thresholds=MACHINE_BLIND
    )
    async with sender:
        await clock.advance(0)
        assert sender.last is not None and sender.last.status == "unhealthy"
        assert sender.failures == 1
        store.down = False
        await clock.advance(5)
        [written] = await store.list_heartbeats()
    assert (written.sequence, written.status) == (2, "healthy")


async def test_a_nearly_full_disk_is_published_for_the_alert_rules(
    clock: VirtualClock, tmp_path: Path
) -> None:
    from agentcron.events import EventBus

    bus = EventBus()
    seen: list[str] = []
    bus.subscribe(lambda e: seen.append(e.type))
    sender = HeartbeatSender(
        MemoryStore(),
        clock,
        node_id="n1",
        events=bus,
        disk_path=tmp_path,
        thresholds=Thresholds(disk_degraded_pct=0, disk_unhealthy_pct=None),
        loop_lag_period_s=None,
    )
    heartbeat = await sender.beat()
    await bus.drain()
    assert seen == ["disk.low"]
    assert heartbeat.status == "degraded"


async def test_the_first_probe_read_has_no_cpu_figure_and_the_next_one_has(
    tmp_path: Path,
) -> None:
    # CPU % is measured between two reads; the first has nothing to measure over (psutil
    # answers from a window of a few ms: 840 % was seen at start-up, degrading the node).
    probes = Probes(MemoryStore(), disk_path=tmp_path)
    assert (await probes.read()).cpu_pct is None
    second = await probes.read()
    assert second.cpu_pct is not None and second.cpu_pct >= 0


async def test_the_sender_has_written_its_first_beat_when_it_has_started(
    clock: VirtualClock,
) -> None:
    store = MemoryStore()
    # The heartbeat its previous run left behind, ten minutes old.
    await store.write_heartbeat(
        NodeHeartbeat(node_id="n1", sequence=7, sent_at=T0.replace(minute=50, hour=11))
    )
    sender = HeartbeatSender(store, clock, node_id="n1", interval_s=10, loop_lag_period_s=None)
    async with sender:
        [written] = await store.list_heartbeats()
        assert (written.sequence, written.sent_at) == (1, T0)
        await clock.advance(10)
        [written] = await store.list_heartbeats()
        assert (written.sequence, written.sent_at) == (2, T0.replace(second=10))


async def test_a_sender_that_stops_cleanly_leaves_a_stopped_heartbeat_judged_offline(
    clock: VirtualClock,
) -> None:
    # The node looked online, then suspect, for three intervals (90 s) after a clean stop:
    # `agentcron health` said healthy, and no monitor knew it had gone.
    store = MemoryStore()
    sender = HeartbeatSender(store, clock, node_id="n1", interval_s=10, loop_lag_period_s=None)
    async with sender:
        await clock.advance(10)
    await clock.advance(1)
    [last] = await store.list_heartbeats()
    assert (last.sequence, last.status, last.sent_at) == (3, "stopped", T0.replace(second=10))
    view = view_node(last, clock.now())
    assert (view.status, view.reported, view.health_score) == ("offline", "stopped", 0)
