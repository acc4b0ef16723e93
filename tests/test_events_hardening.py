"""The EventBus across event loops, and events rebuilt from hostile dicts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from agentcron.events import Event, EventBus, RunStarted, event_from_dict

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def run_started(n: int) -> RunStarted:
    return RunStarted(at=AT, job_id=f"j{n}", run_id=str(n), scheduled_for=AT)


def test_a_subscriber_still_receives_events_after_the_loop_that_served_it_is_gone() -> None:
    bus = EventBus()
    seen: list[str] = []

    async def callback(event: Event) -> None:
        assert isinstance(event, RunStarted)
        seen.append(event.run_id)

    bus.subscribe(callback)

    async def publish_and_drain(n: int) -> None:
        bus.publish(run_started(n))
        async with asyncio.timeout(5):  # a guard against a hang, not a timing assertion
            await bus.drain()

    asyncio.run(publish_and_drain(1))
    asyncio.run(publish_and_drain(2))
    assert seen == ["1", "2"]


async def test_a_subscriber_whose_delivery_task_was_cancelled_gets_the_next_events() -> None:
    bus = EventBus()
    seen: list[str] = []
    started = asyncio.Event()
    release = asyncio.Event()

    async def callback(event: Event) -> None:
        assert isinstance(event, RunStarted)
        seen.append(event.run_id)
        if event.run_id == "1":
            started.set()
            await release.wait()

    bus.subscribe(callback)
    bus.publish(run_started(1))
    await started.wait()
    # Something (a task group, a shutdown) cancels every task, the subscriber's included.
    for task in asyncio.all_tasks():
        if task.get_name() == "agentcron-event-subscriber":
            task.cancel()
    await asyncio.sleep(0)
    bus.publish(run_started(2))
    async with asyncio.timeout(5):
        await bus.drain()
    assert seen == ["1", "2"]


async def test_closing_the_bus_releases_a_drain_waiting_on_a_stuck_subscriber() -> None:
    bus = EventBus()
    started = asyncio.Event()

    async def stuck(event: Event) -> None:
        started.set()
        await asyncio.Event().wait()

    bus.subscribe(stuck)
    bus.publish(run_started(1))
    drain = asyncio.create_task(bus.drain())
    await started.wait()
    bus.close()
    async with asyncio.timeout(5):
        await drain
    assert bus.subscriber_count == 0


def valid(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = run_started(1).to_dict()
    data.update(changes)
    return data


@pytest.mark.parametrize(
    "data",
    [
        ["run.started"],
        "run.started",
        {"type": "run.started"},
        valid(at="yesterday"),
        valid(at="2026-05-01T12:00:00"),
        valid(at=12345),
        valid(job_id={"nested": "dict"}),
        valid(job_id=None),
        valid(attempt="1; DROP TABLE runs"),
        valid(attempt=True),
        valid(scheduled_for=None),
        {"type": ["not", "hashable"], "at": AT.isoformat()},
    ],
    ids=[
        "a list",
        "a string",
        "no time",
        "unparsable time",
        "naive time",
        "number as time",
        "dict as job id",
        "null job id",
        "text as attempt",
        "bool as attempt",
        "null scheduled_for",
        "unhashable type",
    ],
)
def test_an_event_dict_with_hostile_values_is_rejected_with_a_value_error(data: Any) -> None:
    with pytest.raises(ValueError):
        event_from_dict(data)


def test_an_event_dict_with_optional_fields_left_null_is_accepted() -> None:
    event = event_from_dict(valid(node_id=None, attempt=3))
    assert event == RunStarted(at=AT, job_id="j1", run_id="1", scheduled_for=AT, attempt=3)


def test_thousands_of_subscribers_each_get_the_event_and_all_can_unsubscribe() -> None:
    bus = EventBus()
    seen: list[int] = []
    subs = [bus.subscribe(lambda e, i=i: seen.append(i)) for i in range(5000)]
    bus.publish(run_started(1))
    assert seen == list(range(5000))
    for sub in subs:
        sub.close()
    assert bus.subscriber_count == 0
