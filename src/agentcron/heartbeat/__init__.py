"""Heartbeats and liveness (DESIGN 2.7): a scheduler that cannot die quietly.

* `HeartbeatSender` (sender.py): this node writes its heartbeat and probed status to the store.
* `HeartbeatMonitor` (monitor.py): any process reading the store sees nodes go
  online / suspect / offline / recovered, with a 0-100 health score.
* `Watchdog` (watchdog.py): systemd `READY=1` / `WATCHDOG=1`, only while the loop progresses.
* `DeadMansSwitch`, `JobPinger` (deadman.py): per-job "has it succeeded lately?" and
  healthchecks.io-style pings.
* `HealthSupervisor` (supervisor.py): all of the above plus alerts and auto-disable, wired
  around one running `Scheduler`.
"""

from __future__ import annotations

from agentcron.heartbeat.deadman import DeadMansSwitch, Expectation, JobPinger, PingUrls
from agentcron.heartbeat.monitor import HeartbeatMonitor, NodeView, health_score, node_status
from agentcron.heartbeat.probes import Probes, Readings, Thresholds, assess
from agentcron.heartbeat.sender import HeartbeatSender, read_node_id, resolve_node_id
from agentcron.heartbeat.watchdog import SystemdNotifier, Watchdog

__all__ = [
    "DeadMansSwitch",
    "Expectation",
    "JobPinger",
    "PingUrls",
    "HeartbeatMonitor",
    "HeartbeatSender",
    "NodeView",
    "Probes",
    "Readings",
    "SystemdNotifier",
    "Thresholds",
    "Watchdog",
    "assess",
    "health_score",
    "node_status",
    "read_node_id",
    "resolve_node_id",
]
