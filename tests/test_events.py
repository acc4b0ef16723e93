"""Typed events and the EventBus: serialisation, delivery, isolation of slow subscribers."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime

import pytest

from agentcron import Scheduler
from agentcron.events import (
    EVENT_TYPES,
    SLOW_CALLBACK_S,
    Event,
    EventBus,
    JobPaused,
    RunMissed,
    RunStarted,
    event_from_dict,
)
from agentcron.handlers import RunContext
from agentcron.testing import VirtualClock

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

DESIGN_2_4 = (
    "job.added job.updated job.removed job.paused job.resumed run.started run.succeeded "
    "run.failed run.retrying run.timed_out run.cancelled run.skipped run.interrupted "
    "run.missed circuit.opened circuit.half_open circuit.closed node.online node.suspect "
    "node.offline node.recovered queue.paused queue.resumed alert.sent"
).split()


def test_every_event_type_of_the_design_exists() -> None:
    assert set(DESIGN_2_4) <= set(EVENT_TYPES)


def test_events_are_frozen() -> None:
    event = JobPaused(at=AT, job_id="j", note="x")
    with pytest.raises(AttributeError):
        event.job_id = "k"  # type: ignore[misc]


def test_an_event_round_trips_through_json() -> None:
    event = RunMissed(
        at=AT, job_id="j", run_id="r", scheduled_for=AT, missed=8, action="run_once", node_id="n"
    )
    data = json.loads(json.dumps(event.to_dict()))
    assert data["type"] == "run.missed" and data["at"] == AT.isoformat()
    assert event_from_dict(data) == event


def test_an_unknown_event_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        event_from_dict({"type": "run.exploded", "at": AT.isoformat()})


def run_started(n: int) -> RunStarted:
    return RunStarted(at=AT, job_id=f"j{n}", run_id=str(n), scheduled_for=AT)


async def test_subscribers_receive_events_in_order_sync_or_async() -> None:
    bus = EventBus()
    sync_seen: list[str] = []
    async_seen: list[str] = []

    async def async_cb(event: Event) -> None:
        await asyncio.sleep(0)
        async_seen.append(event.type)

    bus.subscribe(lambda e: sync_seen.append(e.type))
    bus.subscribe(async_cb)
    bus.publish(run_started(1))
    bus.publish(JobPaused(at=AT, job_id="j"))
    await bus.drain()
    assert sync_seen == async_seen == ["run.started", "job.paused"]


async def test_a_subscriber_is_never_called_inside_publish() -> None:
    # Under an eager task factory the subscription's first delivery ran inside `publish`,
    # in the publisher's stack (`make test` runs this suite on such a loop too).
    bus = EventBus()
    seen: list[str] = []
    bus.subscribe(lambda e: seen.append(e.run_id if isinstance(e, RunStarted) else ""))
    bus.publish(run_started(1))
    assert seen == []
    bus.publish(run_started(2))
    await bus.drain()
    assert seen == ["1", "2"]


async def test_a_subscription_can_filter_by_type_and_be_closed() -> None:
    bus = EventBus()
    seen: list[str] = []
    sub = bus.subscribe(lambda e: seen.append(e.type), types=["job.paused"])
    bus.publish(run_started(1))
    bus.publish(JobPaused(at=AT, job_id="j"))
    await bus.drain()
    assert seen == ["job.paused"]
    sub.close()
    bus.publish(JobPaused(at=AT, job_id="j"))
    await bus.drain()
    assert seen == ["job.paused"] and bus.subscriber_count == 0


async def test_a_slow_subscriber_never_blocks_publish_and_drops_its_oldest_events() -> None:
    bus = EventBus()
    gate = asyncio.Event()
    seen: list[str] = []

    async def slow(event: Event) -> None:
        await gate.wait()
        seen.append(event.run_id)  # type: ignore[attr-defined]

    sub = bus.subscribe(slow, max_pending=3)
    for n in range(10):
        bus.publish(run_started(n))  # returns at once although nothing is consumed
    await asyncio.sleep(0)
    gate.set()
    await bus.drain()
    assert sub.dropped > 0
    assert seen[-3:] == ["7", "8", "9"]


async def test_a_failing_subscriber_does_not_affect_the_others() -> None:
    bus = EventBus()
    seen: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(broken)
    bus.subscribe(lambda e: seen.append(e.type))
    bus.publish(run_started(1))
    await bus.drain()
    assert seen == ["run.started"]


def test_publishing_without_a_running_loop_delivers_to_sync_subscribers() -> None:
    bus = EventBus()
    seen: list[str] = []
    bus.subscribe(lambda e: seen.append(e.type))
    bus.publish(JobPaused(at=AT, job_id="j"))
    assert seen == ["job.paused"]


async def test_a_subscriber_blocked_in_its_thread_never_delays_firing() -> None:
    clock = VirtualClock(AT)
    sched = Scheduler("memory://", node_id="n", clock=clock)
    fires: list[datetime] = []

    async def job(ctx: RunContext) -> None:
        fires.append(ctx.scheduled_for)

    sched.add_job("tick", trigger="* * * * * *", handler=job)
    gate = threading.Event()
    seen: list[str] = []

    def blocking(event: Event) -> None:
        gate.wait(timeout=60)  # a webhook that hangs (released below)
        seen.append(event.type)

    sched.events.subscribe(blocking, types=["run.succeeded"], in_thread=True)
    try:
        async with sched:
            for _ in range(3):
                await clock.advance(1)
                await sched.drain()
            assert len(fires) == 3 and seen == []  # fired on time while it hung
            gate.set()
            await sched.events.drain()
            assert seen == ["run.succeeded"] * 3
    finally:
        gate.set()


async def test_an_in_thread_subscriber_gets_every_event_in_order_despite_a_failure() -> None:
    bus = EventBus()
    seen: list[str] = []
    threads: set[int] = set()

    def callback(event: Event) -> None:
        threads.add(threading.get_ident())
        if event.run_id == "2":  # type: ignore[attr-defined]
            raise RuntimeError("subscriber bug")
        seen.append(event.run_id)  # type: ignore[attr-defined]

    bus.subscribe(callback, in_thread=True)
    for n in range(5):
        bus.publish(run_started(n))
    await bus.drain()
    assert seen == ["0", "1", "3", "4"]
    assert threading.get_ident() not in threads


async def test_an_async_callback_cannot_be_subscribed_in_a_thread() -> None:
    async def callback(event: Event) -> None:
        pass

    with pytest.raises(ValueError, match="in_thread: .*callback is async"):
        EventBus().subscribe(callback, in_thread=True)


async def test_a_sync_subscriber_that_holds_the_loop_is_named_in_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock(AT)
    bus = EventBus(clock=clock)

    def post_to_chat(event: Event) -> None:
        clock.block(2 * SLOW_CALLBACK_S)  # as a blocking HTTP call does

    bus.subscribe(post_to_chat)
    with caplog.at_level(logging.WARNING, logger="agentcron.events"):
        for n in range(3):
            bus.publish(run_started(n))
        await bus.drain()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "post_to_chat" in warnings[0] and "in_thread=True" in warnings[0]


async def test_a_quick_sync_subscriber_is_not_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock(AT)
    bus = EventBus(clock=clock)
    bus.subscribe(lambda event: clock.block(SLOW_CALLBACK_S / 2))
    with caplog.at_level(logging.WARNING, logger="agentcron.events"):
        bus.publish(run_started(1))
        await bus.drain()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_scheduler_times_its_subscribers_on_its_own_clock() -> None:
    clock = VirtualClock(AT)
    assert Scheduler("memory://", node_id="n", clock=clock).events.clock is clock


def test_a_program_whose_in_thread_subscriber_hangs_still_exits() -> None:
    # In the event loop's default executor the hung call's thread was waited for by
    # `asyncio.run` and by the interpreter at exit: the program never ended.
    script = textwrap.dedent(
        """
        import asyncio, threading
        from datetime import UTC, datetime
        from agentcron.events import EventBus, JobPaused

        async def main():
            bus = EventBus()
            started = asyncio.get_running_loop().create_future()
            loop = asyncio.get_running_loop()

            def hung(event):
                loop.call_soon_threadsafe(started.set_result, None)
                threading.Event().wait()  # a webhook call without a timeout

            bus.subscribe(hung, in_thread=True)
            bus.publish(JobPaused(at=datetime(2026, 5, 1, tzinfo=UTC), job_id="j"))
            await started
            print("stopping")

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert (done.returncode, done.stdout.strip()) == (0, "stopping"), done.stderr
