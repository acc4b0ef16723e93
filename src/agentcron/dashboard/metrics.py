"""`/metrics`: Prometheus metrics from the event stream, in a registry owned by one app.

Counters and histograms are fed by events (runs by job and status, run duration,
lateness, circuit transitions, node health). Gauges that describe current state (queue
counts, jobs, WebSocket clients) are refreshed just before each scrape.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from agentcron.events import (
    CircuitClosed,
    CircuitEvent,
    CircuitHalfOpen,
    CircuitOpened,
    Event,
    NodeEvent,
    NodeOffline,
    NodeOnline,
    NodeRecovered,
    NodeSuspect,
    RunEvent,
    RunFailed,
    RunStarted,
    RunSucceeded,
)

__all__ = ["CONTENT_TYPE", "DashboardMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300)
_CIRCUIT_STATES = ("closed", "half_open", "open")
_NODE_STATES = ("online", "suspect", "offline")


class DashboardMetrics:
    """All metrics of one dashboard app, in their own `CollectorRegistry` (no globals)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = Counter(
            "agentcron_runs", "Finished runs and skips by job and final status",
            ["job_id", "status"], registry=r,
        )  # fmt: skip
        self.run_duration = Histogram(
            "agentcron_run_duration_seconds", "Run duration, start to finish",
            ["job_id"], buckets=_DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.lateness = Histogram(
            "agentcron_run_lateness_seconds", "How late runs started after their scheduled time",
            ["job_id"], buckets=_LATENESS_BUCKETS, registry=r,
        )  # fmt: skip
        self.queue_jobs = Gauge(
            "agentcron_queue_jobs", "Queue jobs by queue and state", ["queue", "state"], registry=r
        )
        self.node_up = Gauge(
            "agentcron_node_up", "1 when the node is online, else 0", ["node_id"], registry=r
        )
        self.node_state = Gauge(
            "agentcron_node_state", "1 for the node's current state", ["node_id", "state"],
            registry=r,
        )  # fmt: skip
        self.node_health = Gauge(
            "agentcron_node_health_score", "Node health score 0-100", ["node_id"], registry=r
        )
        self.circuit_state = Gauge(
            "agentcron_circuit_state", "1 for the circuit's current state", ["circuit", "state"],
            registry=r,
        )  # fmt: skip
        self.jobs = Gauge("agentcron_jobs", "Jobs by dashboard status", ["status"], registry=r)
        self.ws_clients = Gauge(
            "agentcron_dashboard_ws_clients", "Connected WebSocket clients", registry=r
        )
        self.ws_dropped = Gauge(
            "agentcron_dashboard_ws_slow_clients_dropped",
            "WebSocket clients dropped because they did not keep up", registry=r,
        )  # fmt: skip

    # -- events ------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        if isinstance(event, RunEvent):
            self._on_run(event)
        elif isinstance(event, CircuitEvent):
            state = {
                CircuitOpened: "open", CircuitHalfOpen: "half_open", CircuitClosed: "closed"
            }.get(type(event))  # fmt: skip
            if state is not None:
                self.set_circuit(event.circuit, state)
        elif isinstance(event, NodeEvent):
            state = {
                NodeOnline: "online", NodeRecovered: "online", NodeSuspect: "suspect",
                NodeOffline: "offline",
            }.get(type(event))  # fmt: skip
            if state is not None:
                self.set_node(event.node_id, state, event.health_score)

    def _on_run(self, event: RunEvent) -> None:
        if isinstance(event, RunStarted):
            lateness = (event.at - event.scheduled_for).total_seconds()
            self.lateness.labels(event.job_id).observe(max(0.0, lateness))
            return
        if event.type in ("run.retrying", "run.missed", "run.progress"):
            return  # not a run's end
        status = event.type.removeprefix("run.")
        self.runs.labels(event.job_id, status).inc()
        if isinstance(event, RunSucceeded | RunFailed):
            self.run_duration.labels(event.job_id).observe(max(0.0, event.duration_s))

    # -- state -------------------------------------------------------------------------
    def set_circuit(self, circuit: str, state: str) -> None:
        for name in _CIRCUIT_STATES:
            self.circuit_state.labels(circuit, name).set(1 if name == state else 0)

    def set_node(self, node_id: str, state: str, score: int | None) -> None:
        self.node_up.labels(node_id).set(1 if state == "online" else 0)
        for name in _NODE_STATES:
            self.node_state.labels(node_id, name).set(1 if name == state else 0)
        if score is not None:
            self.node_health.labels(node_id).set(score)

    def set_queue(self, queue: str, counts: Mapping[str, int]) -> None:
        for state, count in counts.items():
            self.queue_jobs.labels(queue, state).set(count)

    def set_jobs(self, by_status: Mapping[str, int]) -> None:
        for status in ("active", "paused", "running", "failing", "disabled"):
            self.jobs.labels(status).set(by_status.get(status, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
