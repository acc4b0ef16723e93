"""`HealthSupervisor`: every part of DESIGN 2.7 wired around one running `Scheduler`.

    sched = Scheduler(store, clock=clock, node_id=resolve_node_id(data_dir))
    async with sched, HealthSupervisor(sched, data_dir=data_dir, alerting=cfg.get("alerts")):
        ...

It uses the scheduler's store, clock, event bus and node id, and runs, as named tasks:

* `HeartbeatSender` (probes: memory, CPU, loop lag, disk of `data_dir`, store, failure
  streaks from the store, overdue jobs from the dead-man's switch);
* `HeartbeatMonitor` (optional; `node.*` events for every node sharing the store);
* `DeadMansSwitch` for every job with `expect_every` (plus `per_schedule`: job id -> grace,
  "the fire after the last success must succeed within grace");
* `AlertManager` (rules and sinks from `alerting`; a bad entry raises `ValueError` in the
  constructor, so start-up stops with a message naming it), `AutoDisable` (`auto_disable`:
  job id -> N, pausing through `Scheduler.pause`) and `JobPinger` (`pings`);
* the systemd `Watchdog` when `NOTIFY_SOCKET` is set. Progress is the engine calling
  `supervisor.progress()` each tick; until it does, the supervisor judges progress from
  outside: the loop is progressing while no unpaused job's next fire is older than the
  stall window (a wedged loop leaves due fires unfired).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from agentcron.alerts.autodisable import AutoDisable
from agentcron.alerts.config import load_alerting
from agentcron.alerts.manager import AlertManager
from agentcron.events import Event, JobAdded, JobEvent, JobRemoved, JobUpdated
from agentcron.heartbeat.deadman import DeadMansSwitch, Expectation, JobPinger, PingUrls
from agentcron.heartbeat.monitor import DEFAULT_MISSED_THRESHOLD, HeartbeatMonitor
from agentcron.heartbeat.probes import (
    JobCounts,
    LoopLagProbe,
    Probes,
    Thresholds,
    job_counts_from_store,
)
from agentcron.heartbeat.sender import DEFAULT_INTERVAL_S, HeartbeatSender
from agentcron.heartbeat.watchdog import Watchdog

if TYPE_CHECKING:
    from agentcron.engine.scheduler import Scheduler
    from agentcron.jobs import Job

__all__ = ["HealthSupervisor", "loop_progressing"]

log = logging.getLogger("agentcron.heartbeat")


def loop_progressing(next_fires: Iterable[datetime | None], now: datetime, stall_s: float) -> bool:
    """False when some fire is overdue by more than `stall_s`: the loop is not firing."""
    limit = now - timedelta(seconds=stall_s)
    return all(fire is None or fire >= limit for fire in next_fires)


class HealthSupervisor:
    """Heartbeats, monitor, dead-man's switches, alerts, auto-disable, pings and watchdog."""

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
        thresholds: Thresholds | None = None,
        monitor: bool = True,
        missed_threshold: int = DEFAULT_MISSED_THRESHOLD,
        alerting: Mapping[str, Any] | None = None,
        auto_disable: Mapping[str, int] | None = None,
        pings: Mapping[str, PingUrls] | None = None,
        per_schedule: Mapping[str, float] | None = None,
        deadman_check_every_s: float = 10.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.scheduler = scheduler
        self._per_schedule: dict[str, float] = {}
        store, clock, events = scheduler.store, scheduler.clock, scheduler.events
        sinks, rules = load_alerting(alerting, clock)
        self.alerts = AlertManager(store, clock, events, rules, sinks)
        self.auto_disable = AutoDisable(
            events, self._pause, dict(auto_disable or {}), alerts=self.alerts
        )
        self.pinger = JobPinger(events, dict(pings or {}))
        self.deadman = DeadMansSwitch(
            store,
            clock,
            events,
            self._expectations(per_schedule or {}),
            check_every_s=deadman_check_every_s,
        )
        self.loop_lag = LoopLagProbe(clock)
        probes = Probes(
            store,
            loop_lag=self.loop_lag,
            disk_path=Path(data_dir) if data_dir is not None else None,
            job_counts=self._job_counts,
        )
        self.sender = HeartbeatSender(
            store,
            clock,
            node_id=scheduler.node_id,
            interval_s=interval_s,
            probes=probes,
            thresholds=thresholds,
            events=events,
        )
        self.monitor = (
            HeartbeatMonitor(
                store,
                clock,
                events,
                missed_threshold=missed_threshold,
                check_every_s=max(0.5, interval_s / 2),
            )
            if monitor
            else None
        )
        self.watchdog = Watchdog.from_env(clock, environ, status=self._status)
        self._engine_marks = False
        self._stack: contextlib.AsyncExitStack | None = None

    # -- wiring helpers ------------------------------------------------------------------
    def _expectation(self, job: Job) -> Expectation | None:
        from agentcron.jobs import next_nominal_fire

        if job.id in self._per_schedule:
            return Expectation(
                job_id=job.id,
                next_fire=functools.partial(next_nominal_fire, job),
                grace_s=self._per_schedule[job.id],
            )
        if job.expect_every_s is not None:
            return Expectation(job_id=job.id, every_s=job.expect_every_s)
        return None

    def _expectations(self, per_schedule: Mapping[str, float]) -> list[Expectation]:
        self._per_schedule.update(per_schedule)
        out = [e for v in self.scheduler.jobs() if (e := self._expectation(v.job)) is not None]
        unknown = sorted(set(per_schedule) - {e.job_id for e in out})
        if unknown:
            raise ValueError(
                f"per-schedule dead-man's switch for unknown job(s): {', '.join(unknown)}"
            )
        return out

    def _on_job_change(self, event: Event) -> None:
        """Keep the dead-man's switches in step with jobs added, changed or removed later."""
        if not isinstance(event, JobEvent):
            return
        if isinstance(event, JobRemoved):
            self.deadman.unwatch(event.job_id)
            return
        try:
            job = self.scheduler.job(event.job_id).job
        except KeyError:
            self.deadman.unwatch(event.job_id)
            return
        expectation = self._expectation(job)
        if expectation is None:
            self.deadman.unwatch(job.id)
        else:
            self.deadman.watch(expectation)

    def _pause(self, job_id: str, note: str) -> None:
        self.scheduler.pause(job_id, note=note)

    async def _job_counts(self) -> JobCounts:
        counts = await job_counts_from_store(self.scheduler.store)
        return JobCounts(
            max_consecutive_failures=counts.max_consecutive_failures,
            failing_jobs=counts.failing_jobs,
            overdue_jobs=self.deadman.overdue_jobs(),
        )

    def _status(self) -> str:
        health = self.scheduler.health()
        state = self.sender.last.status if self.sender.last is not None else "starting"
        return (
            f"{state}: {health.get('jobs', 0)} jobs, {health.get('active_runs', 0)} running, "
            f"next {health.get('next_fire') or 'none'}"
        )

    # -- progress (systemd watchdog) -----------------------------------------------------
    def progress(self) -> None:
        """The engine calls this once per loop tick (the strong progress signal)."""
        self._engine_marks = True
        if self.watchdog is not None:
            self.watchdog.progress()

    async def _judge_progress(self) -> None:
        """Fallback while the engine does not call `progress()` (see the module docstring)."""
        assert self.watchdog is not None and self.watchdog.stall_after_s is not None
        step = self.watchdog.stall_after_s / 2
        while True:
            if not self._engine_marks:
                views = [v for v in self.scheduler.jobs() if not v.paused]
                now = self.scheduler.clock.now()
                running = self.scheduler.health().get("status") == "running"
                if running and loop_progressing(
                    (v.next_run for v in views), now, self.watchdog.stall_after_s
                ):
                    self.watchdog.progress()
            await self.scheduler.clock.sleep(step)

    # -- reading -------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """This node's heartbeat status, the nodes seen, overdue jobs (JSON-ready)."""
        last = self.sender.last
        return {
            "node_id": self.scheduler.node_id,
            "status": last.status if last is not None else "starting",
            "reasons": list(self.sender.last_assessment.reasons)
            if self.sender.last_assessment is not None
            else [],
            "last_heartbeat": last.sent_at.isoformat() if last is not None else None,
            "heartbeat_failures": self.sender.failures,
            "nodes": [v.to_dict() for v in self.monitor.nodes()] if self.monitor else [],
            "overdue_jobs": list(self.deadman.overdue_jobs()),
            "watchdog": self.watchdog is not None,
        }

    # -- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> HealthSupervisor:
        stack = contextlib.AsyncExitStack()
        try:
            subscription = self.scheduler.events.subscribe(
                self._on_job_change, types=[JobAdded.type, JobUpdated.type, JobRemoved.type]
            )
            stack.callback(subscription.close)
            await stack.enter_async_context(self.alerts)
            await stack.enter_async_context(self.auto_disable)
            await stack.enter_async_context(self.pinger)
            await stack.enter_async_context(self.deadman)
            await stack.enter_async_context(self.sender)
            if self.monitor is not None:
                await stack.enter_async_context(self.monitor)
            if self.watchdog is not None:
                await stack.enter_async_context(self.watchdog)
                if self.watchdog.stall_after_s is not None:
                    task = asyncio.get_running_loop().create_task(
                        self._judge_progress(), name="agentcron-watchdog-progress"
                    )
                    stack.callback(task.cancel)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
