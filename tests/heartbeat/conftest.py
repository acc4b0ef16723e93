from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentcron.events import Event, EventBus
from agentcron.heartbeat.probes import Thresholds
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

#: For senders whose test is not about this machine's readings: a busy CI machine's CPU,
#: memory or disk must not turn the node `degraded` (the readings are still taken).
MACHINE_BLIND = Thresholds(
    rss_degraded_mb=None,
    rss_unhealthy_mb=None,
    memory_degraded_pct=None,
    memory_unhealthy_pct=None,
    cpu_degraded_pct=None,
    cpu_unhealthy_pct=None,
    disk_degraded_pct=None,
    disk_unhealthy_pct=None,
)


class Collector:
    def __init__(self, bus: EventBus) -> None:
        self.events: list[Event] = []
        self.bus = bus
        bus.subscribe(self.events.append)

    async def types(self) -> list[str]:
        for _ in range(3):  # subscribers may publish in turn
            await self.bus.drain()
        return [e.type for e in self.events]

    async def take(self) -> list[str]:
        out = await self.types()
        self.events.clear()
        return out


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
