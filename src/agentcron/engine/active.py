"""The engine's live, per-job state (mutable, owned by the scheduler's event loop)."""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from agentcron.handlers.base import RunContext
from agentcron.jobs import Job
from agentcron.models import ConflictPolicy, RunRecord

if TYPE_CHECKING:
    from agentcron.engine.timeline import _Slot

__all__ = ["NO_RUNS", "ActiveRun", "JobEntry", "PendingFire"]


@dataclass(slots=True, eq=False)
class ActiveRun:
    """A run in progress (including its retry waits): what overlap counts as active."""

    run_id: str
    scheduled_for: datetime
    task: asyncio.Task[RunRecord | None] | None = None
    ctx: RunContext | None = None
    record: RunRecord | None = None
    cancel_reason: str | None = None
    lease_lost: bool = False
    #: False while `task` has not begun: a run admitted by its tick (recorded `running`)
    #: whose task was cancelled before its first step would leave no final record, so such
    #: a task is not cancelled; it sees `cancel_reason` when it starts and records
    #: `cancelled` itself.
    started: bool = True

    def cancel(self, reason: str) -> None:
        """Ask the run to stop: `ctx.cancelled` first, then cancel the task running it."""
        if self.cancel_reason is None:
            self.cancel_reason = reason
        if self.ctx is not None:
            self.ctx.cancelled.set()
        if self.task is not None and self.started and not self.task.done():
            self.task.cancel()


@dataclass(slots=True, eq=False)
class PendingFire:
    """A fire waiting for the active run to finish (overlap `queue` / `buffer_one`).
    The future resolves to None (start now) or to the record it ended with (skipped)."""

    scheduled_for: datetime
    planned: datetime
    future: asyncio.Future[RunRecord | None]


#: The shared, never-written "no runs" dict of idle entries (see `JobEntry.track`).
NO_RUNS: dict[str, ActiveRun] = {}


@dataclass(slots=True, eq=False)
class JobEntry:
    job: Job
    paused: bool = False
    pause_note: str | None = None
    next_fire: datetime | None = None
    wake: datetime | None = None
    last_fire: datetime | None = None
    #: The `Timeline` slot the entry is queued in (None: not queued).
    slot: _Slot | None = None
    fires: int = 0
    consecutive_skips: int = 0
    starting: int = 0
    removed: bool = False
    dormant: str | None = None
    #: The conflict policy given to `add_job` (None: the scheduler's).
    conflict: ConflictPolicy | None = None
    #: Runs in progress by run id; shares one empty dict until the first run (memory).
    active: dict[str, ActiveRun] = field(default_factory=lambda: NO_RUNS)
    #: Fires waiting for the active run (allocated on first use: most jobs never queue).
    pending: collections.deque[PendingFire] | None = None
    #: True from `add_job` (while running) until the store has the job: fires wait for it.
    unsaved: bool = False

    def track(self, active: ActiveRun) -> None:
        if self.active is NO_RUNS:
            self.active = {}
        self.active[active.run_id] = active

    @property
    def pending_count(self) -> int:
        return len(self.pending) if self.pending is not None else 0

    def waiting(self) -> collections.deque[PendingFire]:
        if self.pending is None:
            self.pending = collections.deque()
        return self.pending

    @property
    def busy(self) -> int:
        return len(self.active) + self.starting
