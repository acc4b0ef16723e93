"""The engine's live, per-job state (mutable, owned by the scheduler's event loop)."""

from __future__ import annotations

import asyncio
import collections
import operator
from dataclasses import dataclass
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

    # (The fields a tick sets come first: it passes them by position, once per fire.)
    run_id: str
    scheduled_for: datetime
    record: RunRecord | None = None
    #: False while `task` has not begun: a run admitted by its tick (recorded `running`)
    #: whose task was cancelled before its first step would leave no final record, so such
    #: a task is not cancelled; it sees `cancel_reason` when it starts and records
    #: `cancelled` itself.
    started: bool = True
    task: asyncio.Task[RunRecord | None] | None = None
    ctx: RunContext | None = None
    cancel_reason: str | None = None
    #: This engine no longer records the run's end nor publishes it: another node took the
    #: run over (its lease was lost), or the run was recorded `cancelled` without waiting
    #: for a handler that ignored cancellation (`Firing._abandon`).
    disowned: bool = False

    @property
    def progress(self) -> float | None:
        """The last `ctx.progress(pct)` of its handler, if any (kept on the context: a field
        here would cost every fire a little)."""
        ctx = self.ctx
        return None if ctx is None else ctx.__dict__.get("_progress")

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


#: The shared, never-written "no runs" dict of idle entries (see `JobEntry.untrack`).
NO_RUNS: dict[str, ActiveRun] = {}


class _Rare:
    """The parts of a `JobEntry` that most jobs never set: one shared, never-written
    instance (`_NONE`) stands for all defaults, so an ordinary job pays one slot for them."""

    __slots__ = ("conflict", "consecutive_skips", "dormant", "pause_note", "pending")

    def __init__(self) -> None:
        self.pause_note: str | None = None
        self.dormant: str | None = None
        self.conflict: ConflictPolicy | None = None
        self.consecutive_skips = 0
        self.pending: collections.deque[PendingFire] | None = None


_NONE = _Rare()


def _rare_field(name: str, doc: str) -> property:
    """A `JobEntry` attribute kept in its `_Rare` part; the first write of a value other
    than the default gives the entry a `_Rare` of its own."""
    default = getattr(_NONE, name)

    def set_(entry: JobEntry, value: object) -> None:
        rare = entry._rare
        if rare is _NONE:
            if value == default:
                return
            rare = entry._rare = _Rare()
        setattr(rare, name, value)

    # A C getter (no Python frame). The engine's per-fire code reads `entry._rare.<name>`
    # itself: a property read costs about ten times as much as the two slot reads.
    return property(operator.attrgetter(f"_rare.{name}"), set_, doc=doc)


class JobEntry:
    """A job as the scheduler holds it: the definition plus its live state.

    One exists per job, so its size is what 100,000 jobs cost: plain slots for what every
    fire reads or writes, and the rarely set attributes (pause note, dormant reason,
    conflict policy, skip count, waiting fires) in one shared `_Rare` until set."""

    __slots__ = (
        *("job", "paused", "next_fire", "wake", "last_fire", "slot", "fires", "starting"),
        *("removed", "active", "unsaved", "_rare"),
    )

    def __init__(self, job: Job, *, conflict: ConflictPolicy | None = None) -> None:
        self.job = job
        self.paused = False
        self.next_fire: datetime | None = None
        #: When the next fire is planned to start: `next_fire` plus its jitter (None: none).
        self.wake: datetime | None = None
        self.last_fire: datetime | None = None
        #: The `Timeline` slot the entry is queued in (None: not queued).
        self.slot: _Slot | None = None
        self.fires = 0
        #: Runs that keep the job busy but are not in `active`: fires claimed ahead of
        #: their instant and not yet launched (`engine.ahead`), a `run_all` catch-up's
        #: chain, and runs that succeeded during a crowded instant's launches and are not
        #: yet recorded (`firing.HeldSuccesses`).
        self.starting = 0
        self.removed = False
        #: Runs in progress by run id; shares one empty dict until the first run (memory).
        self.active: dict[str, ActiveRun] = NO_RUNS
        #: True from `add_job` (while running) until the store has the job: fires wait for it.
        self.unsaved = False
        self._rare = _NONE
        if conflict is not None:
            self.conflict = conflict

    if TYPE_CHECKING:
        pause_note: str | None
        dormant: str | None
        #: The conflict policy given to `add_job` (None: the scheduler's).
        conflict: ConflictPolicy | None
        consecutive_skips: int
        #: Fires waiting for the active run (allocated on first use: most jobs never queue).
        pending: collections.deque[PendingFire] | None
    else:
        pause_note = _rare_field("pause_note", "The note given to `pause` (None: none).")
        dormant = _rare_field("dormant", "Why the job cannot fire (None: it can).")
        conflict = _rare_field("conflict", "The conflict policy given to `add_job`.")
        consecutive_skips = _rare_field("consecutive_skips", "Fires skipped in a row.")
        pending = _rare_field("pending", "Fires waiting for the active run.")

    def track(self, active: ActiveRun) -> None:
        runs = self.active
        if runs is NO_RUNS:
            self.active = {active.run_id: active}
        else:
            runs[active.run_id] = active

    def untrack(self, run_id: str) -> None:
        """Forget an ended run. An entry left with no runs goes back to `NO_RUNS`.

        Invariant: a job's `active` dict lives no longer than its runs. Python's collector
        stops tracking an empty dict and tracks it again, as a new object, when a run is
        put into it: a dict kept for the job's lifetime would go through every generation
        again at each fire, and 10,000 jobs firing every second made a full collection
        (15-20 ms, in the middle of a tick) every 3 seconds. A new dict per run dies young."""
        active = self.active
        active.pop(run_id, None)
        if not active:
            self.active = NO_RUNS

    @property
    def pending_count(self) -> int:
        pending = self._rare.pending
        return len(pending) if pending is not None else 0

    def waiting(self) -> collections.deque[PendingFire]:
        pending = self.pending
        if pending is None:
            pending = self.pending = collections.deque()
        return pending

    @property
    def busy(self) -> int:
        return len(self.active) + self.starting
