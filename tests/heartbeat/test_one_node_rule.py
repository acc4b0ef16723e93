"""The daemon's monitor and the tools (`agentcron nodes`, `agentcron health`, `/api/nodes`,
`/metrics`: `view_node` with its defaults) call a node suspect and offline at the same
instants: one missed beat (interval + 25 % grace) and three (3 intervals + grace)."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path

import pytest

from agentcron.cli.nodes import is_healthy
from agentcron.config import load_settings
from agentcron.engine.scheduler import Scheduler
from agentcron.heartbeat.monitor import HeartbeatMonitor, view_node
from agentcron.heartbeat.supervisor import HealthSupervisor
from agentcron.models import NodeHeartbeat
from agentcron.store.memory import MemoryStore
from agentcron.system import AgentcronSystem
from agentcron.testing import VirtualClock

from .conftest import T0

#: Seconds after the last beat of a node with a 30 s interval (the default), around each
#: boundary: suspect at 37.5 s, offline at 97.5 s.
BOUNDARIES = [0.0, 37.4, 37.5, 67.4, 67.5, 97.4, 97.5, 127.5]
EXPECTED = ["online", "online", "suspect", "suspect", "suspect", "suspect", "offline", "offline"]


async def test_the_daemons_monitor_and_the_tools_agree_at_the_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    clock = VirtualClock(T0)
    # The defaults: HEARTBEAT_INTERVAL 30 s, HEARTBEAT_TIMEOUT 60 s.
    settings = load_settings(environ={"SCHEDULER_DATA_DIR": str(tmp_path)}, env_file=None)
    system = AgentcronSystem(settings, dashboard=False, clock=clock, install_signals=False)
    store = MemoryStore()
    scheduler = Scheduler(store=store, clock=clock, node_id="here")
    dead = NodeHeartbeat(node_id="dead", sequence=1, sent_at=T0, host="h", pid=1, interval_s=30)
    await store.write_heartbeat(dead)
    async with contextlib.AsyncExitStack() as stack:
        await system._start_health(stack, scheduler, tmp_path, system._load_job_file())
        supervisor = scheduler.health_extra.__self__  # type: ignore[union-attr]
        assert isinstance(supervisor, HealthSupervisor)
        monitor = supervisor.monitor
        assert isinstance(monitor, HeartbeatMonitor)
        seen = []
        for offset in BOUNDARIES:
            now = T0 + timedelta(seconds=offset)
            by_monitor = {v.node_id: v for v in await monitor.check(now)}["dead"]
            by_tools = view_node(dead, now)
            assert by_monitor.status == by_tools.status, offset
            assert by_monitor.health_score == by_tools.health_score, offset
            # `agentcron health` fails exactly when the daemon pages "node offline"
            assert is_healthy(by_tools) == (by_monitor.status != "offline"), offset
            seen.append(by_monitor.status)
    assert seen == EXPECTED
