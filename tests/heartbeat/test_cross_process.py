"""A second process sees a SIGKILLed node go suspect, then offline.

The node is a real child process running `HeartbeatSender` on the real clock against a
SQLite file. The monitor runs here, in another process, reading the same file. Once the
child is killed, the monitor's virtual clock is set from the child's last real heartbeat
timestamp, so the documented thresholds are checked at exact times.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from agentcron.events import EventBus
from agentcron.heartbeat.monitor import HeartbeatMonitor
from agentcron.models import NodeHeartbeat
from agentcron.store.base import Store, open_store
from agentcron.testing import VirtualClock

from .conftest import Collector

INTERVAL_S = 0.3

CHILD = """
import asyncio, sys
from agentcron.clock import SystemClock
from agentcron.heartbeat.sender import HeartbeatSender
from agentcron.store.base import open_store

async def main() -> None:
    store = open_store(sys.argv[1])
    await store.open()
    async with HeartbeatSender(store, SystemClock(), node_id="child", interval_s=float(sys.argv[2])):
        await asyncio.Event().wait()

asyncio.run(main())
"""


async def latest(store: Store) -> NodeHeartbeat | None:
    beats = [b for b in await store.list_heartbeats() if b.node_id == "child"]
    return beats[0] if beats else None


@pytest.mark.slow
async def test_a_monitor_in_another_process_sees_a_killed_node_go_suspect_then_offline(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'scheduler.db'}"
    store = open_store(url)
    await store.open()
    script = tmp_path / "node.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(script), url, str(INTERVAL_S), env=env
    )
    try:
        deadline = time.monotonic() + 30
        beat = await latest(store)
        while beat is None or beat.sequence < 3:  # the child is up and beating
            assert child.returncode is None, "the heartbeat child exited"
            assert time.monotonic() < deadline, "no heartbeats from the child within 30 s"
            await asyncio.sleep(0.05)  # waiting for a real process to start (noqa: sleep-ok)
            beat = await latest(store)
        assert beat.pid == child.pid and beat.interval_s == INTERVAL_S

        bus = EventBus()
        events = Collector(bus)
        clock = VirtualClock(beat.sent_at)
        monitor = HeartbeatMonitor(store, clock, bus, remove_after_s=None)
        await monitor.check()
        assert await events.take() == ["node.online"]
    finally:
        child.send_signal(signal.SIGKILL)
        await asyncio.wait_for(child.wait(), 30)
    assert child.returncode == -signal.SIGKILL

    last = await latest(store)
    assert last is not None
    # Nothing arrives from a dead process: the sequence stays put for several intervals.
    await asyncio.sleep(INTERVAL_S * 3)  # proving silence of a killed process (noqa: sleep-ok)
    after = await latest(store)
    assert after is not None and after.sequence == last.sequence

    clock = VirtualClock(last.sent_at)
    monitor = HeartbeatMonitor(store, clock, bus, remove_after_s=None)
    await monitor.check()
    assert await events.take() == ["node.online"]
    await clock.advance(timedelta(seconds=INTERVAL_S * 1.25) - timedelta(microseconds=1))
    assert [v.status for v in await monitor.check()] == ["online"]
    await clock.advance(timedelta(microseconds=1))  # one interval + 25 % grace
    assert [v.status for v in await monitor.check()] == ["suspect"]
    assert await events.take() == ["node.suspect"]
    await clock.advance(INTERVAL_S * 2)  # three intervals + grace
    views = await monitor.check()
    assert [(v.status, v.health_score, v.pid) for v in views] == [("offline", 0, child.pid)]
    assert await events.take() == ["node.offline"]
    await store.close()
