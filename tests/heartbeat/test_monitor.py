from __future__ import annotations

from datetime import timedelta

import pytest

from agentcron.events import EventBus, NodeOffline
from agentcron.heartbeat.monitor import (
    HeartbeatMonitor,
    health_score,
    missed_beats,
    node_status,
    should_remove,
    view_node,
)
from agentcron.models import NodeHeartbeat
from agentcron.store.base import StoreError
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock

from .conftest import T0, Collector


def beat(
    seq: int = 1, at_s: float = 0.0, status: str = "healthy", **details: object
) -> NodeHeartbeat:
    return NodeHeartbeat(
        node_id="n1",
        sequence=seq,
        sent_at=T0 + timedelta(seconds=at_s),
        status=status,
        host="h",
        pid=42,
        interval_s=10.0,
        details=dict(details),
    )


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [
        (0.0, "online"),
        (12.4, "online"),
        (12.5, "suspect"),  # interval 10 s + 25 % grace: the beat due at 10 s did not come
        (22.5, "suspect"),
        (32.4, "suspect"),
        (32.5, "offline"),  # three missed beats
        (3600.0, "offline"),
    ],
)
def test_node_status_follows_missed_intervals_at_exact_times(elapsed: float, expected: str) -> None:
    now = T0 + timedelta(seconds=elapsed)
    assert node_status(T0, 10.0, 3, now) == expected


def test_missed_beats_counts_whole_intervals_after_the_grace() -> None:
    assert missed_beats(T0, 10.0, T0 + timedelta(seconds=12.49)) == 0
    assert missed_beats(T0, 10.0, T0 + timedelta(seconds=12.5)) == 1
    assert missed_beats(T0, 10.0, T0 + timedelta(seconds=22.5)) == 2
    assert missed_beats(T0, 10.0, T0 + timedelta(seconds=12.5), grace_fraction=0.5) == 0


def test_health_score_applies_the_documented_deductions() -> None:
    assert health_score("online", 0, "healthy") == 100
    assert health_score("online", 0, "degraded") == 85
    assert health_score("online", 0, "unhealthy") == 60
    assert health_score("suspect", 1, "healthy") == 80
    assert health_score("suspect", 2, "degraded") == 45
    assert health_score("online", 0, "healthy", loop_lag_s=0.5) == 90
    assert health_score("online", 0, "healthy", loop_lag_s=2.0) == 80
    assert health_score("suspect", 4, "unhealthy", loop_lag_s=9) == 0
    assert health_score("offline", 3, "healthy") == 0


def test_only_offline_nodes_past_the_removal_age_are_removed() -> None:
    assert should_remove("offline", T0, 100, T0 + timedelta(seconds=100))
    assert not should_remove("offline", T0, 100, T0 + timedelta(seconds=99))
    assert not should_remove("suspect", T0, 100, T0 + timedelta(seconds=1000))


def test_bad_thresholds_are_refused_with_their_name() -> None:
    with pytest.raises(ValueError, match="missed_threshold"):
        node_status(T0, 10.0, 0, T0)
    with pytest.raises(ValueError, match="interval"):
        missed_beats(T0, 0.0, T0)


def test_a_node_view_carries_the_reported_lag_into_its_score() -> None:
    view = view_node(beat(loop_lag_s=0.7), T0 + timedelta(seconds=1))
    assert (view.status, view.health_score, view.to_dict()["last_seen"]) == (
        "online",
        90,
        T0.isoformat(),
    )


async def test_monitor_publishes_each_transition_once_at_the_documented_times(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    monitor = HeartbeatMonitor(store, clock, bus, remove_after_s=None)
    await store.write_heartbeat(beat())
    await monitor.check()
    assert await collector.take() == ["node.online"]

    await clock.advance(12.4)
    await monitor.check()
    assert await collector.take() == []
    await clock.advance(0.1)  # 12.5 s
    views = await monitor.check()
    assert await collector.take() == ["node.suspect"]
    assert views[0].health_score == 80
    await clock.advance(10)  # 22.5 s: still suspect, no new event
    await monitor.check()
    assert await collector.take() == []
    await clock.advance(10)  # 32.5 s
    await monitor.check()
    assert await collector.take() == ["node.offline"]
    assert collector.events == []

    await store.write_heartbeat(beat(seq=2, at_s=40))
    await clock.advance(7.5)  # 40 s
    await monitor.check()
    assert await collector.types() == ["node.recovered"]
    assert collector.events[0].to_dict()["health_score"] == 100


async def test_monitor_loop_runs_as_a_task_on_the_injected_clock(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    await store.write_heartbeat(beat())
    async with HeartbeatMonitor(store, clock, bus, check_every_s=2.5, remove_after_s=None):
        await clock.advance(0)
        assert await collector.take() == ["node.online"]
        await clock.advance(12.5)
        assert await collector.take() == ["node.suspect"]
        await clock.advance(20)
        assert await collector.take() == ["node.offline"]


async def test_monitor_removes_long_dead_nodes_from_the_store(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    monitor = HeartbeatMonitor(store, clock, bus, remove_after_s=3600)
    await store.write_heartbeat(beat())
    await monitor.check()
    await clock.advance(3599)
    await monitor.check()
    assert len(await store.list_heartbeats()) == 1
    await clock.advance(1)
    assert await monitor.check() == []
    assert await store.list_heartbeats() == []
    assert monitor.nodes() == []


async def test_a_node_first_seen_late_is_reported_as_it_is(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    await store.write_heartbeat(beat(at_s=-100))
    await HeartbeatMonitor(store, clock, bus).check()
    assert await collector.take() == ["node.offline"]


async def test_a_clean_stop_is_offline_at_once_and_says_it_stopped_a_silence_does_not(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    monitor = HeartbeatMonitor(store, clock, bus, remove_after_s=None)
    await store.write_heartbeat(beat())
    await monitor.check()
    await store.write_heartbeat(beat(seq=2, at_s=1, status="stopped"))
    await clock.advance(1)
    await monitor.check()
    await store.write_heartbeat(beat(seq=3, at_s=2))  # started again
    await clock.advance(1)
    await monitor.check()
    await clock.advance(40)  # then silent: three beats missed
    await monitor.check()
    await collector.bus.drain()
    offline = [e for e in collector.events if isinstance(e, NodeOffline)]
    assert [e.stopped for e in offline] == [True, False]


async def test_a_failing_store_does_not_stop_the_monitor_loop(
    clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    class Flaky(MemoryStore):
        calls = 0

        async def list_heartbeats(self) -> list[NodeHeartbeat]:
            self.calls += 1
            if self.calls == 1:
                raise OSError("disk I/O error")
            return await super().list_heartbeats()

    store = Flaky()
    await store.write_heartbeat(beat())
    async with HeartbeatMonitor(store, clock, bus, check_every_s=1):
        await clock.advance(1)
        assert await collector.take() == ["node.online"]


async def test_a_malformed_heartbeat_row_is_skipped_not_fatal(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    await store.write_heartbeat(beat())
    broken = NodeHeartbeat(node_id="n0", sequence=1, sent_at=T0, interval_s=0)
    await store.write_heartbeat(broken)
    views = await HeartbeatMonitor(store, clock, bus).check()
    assert [v.node_id for v in views] == ["n1"]


class OutageStore(MemoryStore):
    """Heartbeats cannot be read (nor written) while `down`: Redis restarting, or SQLite
    locked past its busy timeout."""

    down = False

    async def list_heartbeats(self) -> list[NodeHeartbeat]:
        if self.down:
            raise StoreError("cannot talk to Redis at 127.0.0.1:6380")
        return await super().list_heartbeats()


async def test_a_store_outage_is_not_taken_for_every_node_going_silent(
    clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    # After a 40 s Redis outage every node marked every node offline, itself included, and
    # paged `node_offline`: their heartbeats were old because none could be written.
    store = OutageStore()
    monitor = HeartbeatMonitor(store, clock, bus, remove_after_s=None)
    await store.write_heartbeat(beat())
    await monitor.check()
    assert await collector.take() == ["node.online"]
    store.down = True
    await clock.advance(60)  # 6 beats could not be written
    with pytest.raises(StoreError):
        await monitor.check()
    store.down = False
    [view] = await monitor.check()
    assert (view.status, view.last_seen) == ("online", T0)  # judged from the store's return
    assert await collector.take() == []
    # A node that died meanwhile: suspect, then offline, counted from the store's return.
    await clock.advance(12.5)
    await monitor.check()
    assert await collector.take() == ["node.suspect"]
    await clock.advance(20)
    await monitor.check()
    assert await collector.take() == ["node.offline"]
