from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentcron.events import Event, EventBus
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


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
