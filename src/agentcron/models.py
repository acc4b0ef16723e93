"""Plain, frozen records shared by the engine, the stores, the dashboard and the CLI.

Stores persist these and nothing else; the engine converts its rich job objects to and from
`StoredJob.definition` (a JSON-ready dict), so the store never imports engine code.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, NamedTuple

__all__ = [
    "CONFIG_JOBS_KEY",
    "NODE_STOPPED",
    "AuditEntry",
    "ConflictPolicy",
    "FireStart",
    "NodeHeartbeat",
    "RunQuery",
    "RunRecord",
    "RunStats",
    "RunStatus",
    "SkipReason",
    "StoredJob",
    "new_run_id",
    "new_run_ids",
    "occurrence_key",
]


class RunStatus(StrEnum):
    """Where a run is. `succeeded` .. `interrupted` are final (see `is_final`)."""

    scheduled = "scheduled"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    timed_out = "timed_out"
    cancelled = "cancelled"
    skipped = "skipped"
    interrupted = "interrupted"

    @property
    def is_final(self) -> bool:
        return self not in (RunStatus.scheduled, RunStatus.running)


class SkipReason(StrEnum):
    """Why a fire was recorded `skipped` instead of run."""

    overlap = "overlap"
    circuit_open = "circuit_open"
    paused = "paused"
    misfire = "misfire"
    concurrency = "concurrency"


ConflictPolicy = Literal["replace", "keep", "error"]


def interrupted_error(node_id: str | None) -> str:
    """The `error` of a run a store found `interrupted` (its lease expired): why it ended,
    as far as the store can tell."""
    node = node_id or "unknown"
    return (
        f"interrupted: its node ({node}) stopped renewing the run's lease"
        " (the process died or hung, or lost the store)"
    )


def occurrence_key(job_id: str, scheduled_for: datetime) -> str:
    """`"<job_id>@<scheduled_for ISO, UTC>"`: the same for every attempt of one fire.

    Handlers use it to make side effects idempotent; queues use it as the job id so that a
    fire is enqueued once.
    """
    return f"{job_id}@{scheduled_for.astimezone(UTC).isoformat()}"


class _RunIds:
    """The per-process parts of run ids (`new_run_id`): 48 random bits and a 32-bit counter.

    One `os.urandom` per process instead of one per run (a system call on the hot path);
    the random part is drawn again in a forked child, so parent and child never share it.
    """

    def __init__(self) -> None:
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self.node = int.from_bytes(os.urandom(6)) << 32
        self.counter = itertools.count(int.from_bytes(os.urandom(4)))


_RUN_IDS = _RunIds()
_time_ns = time.time_ns


def new_run_id() -> str:
    """A unique, roughly time-ordered run id: 32 hex digits, a 48-bit ms timestamp, then
    the process's random bits and counter (`_RunIds`)."""
    # One integer, one `hex()`: about half the cost of formatting three parts; and no
    # method call (this runs once per fire).
    ids = _RUN_IDS
    ms = _time_ns() // 1_000_000
    return ((ms << 80) | ids.node | (next(ids.counter) & 0xFFFFFFFF)).to_bytes(16).hex()


def new_run_ids(count: int) -> list[str]:
    """`count` run ids made at once (a tick's fires), as `new_run_id` makes them, sharing
    one timestamp: one clock read and no call per id."""
    ids = _RUN_IDS
    prefix = ((_time_ns() // 1_000_000) << 80) | ids.node
    counter = ids.counter
    return [(prefix | (next(counter) & 0xFFFFFFFF)).to_bytes(16).hex() for _ in range(count)]


class RunRecord(NamedTuple):
    """One run: an attempt chain for one scheduled fire of one job.

    `attempt` counts from 1 and is the attempt running or last finished. `lease_expires_at`
    is set while `running`: the owner renews it; a run whose lease expired while its owner
    is gone becomes `interrupted`. `fence` increases each time a run is taken over, so a
    partitioned owner can tell that its result must not be recorded.

    A `NamedTuple` rather than a frozen dataclass: the engine builds two per fire, and a
    tuple is built ~3x faster. Build it with keywords; change it with `evolve`.
    """

    run_id: str
    job_id: str
    scheduled_for: datetime
    status: RunStatus
    attempt: int = 1
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    output_tail: str | None = None
    node_id: str | None = None
    skip_reason: str | None = None
    lease_expires_at: datetime | None = None
    fence: int = 0
    queue_job_id: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def occurrence_key(self) -> str:
        return occurrence_key(self.job_id, self.scheduled_for)

    def evolve(self, **changes: Any) -> RunRecord:
        """A copy with `changes` applied."""
        return self._replace(**changes)

    def interrupted(self, now: datetime) -> RunRecord:
        """This `running` run taken over as `interrupted` at `now`: its fence raised (so its
        node, if it lives on, cannot record a result over it), its lease gone, and the
        error saying whose it was (`interrupted_error`)."""
        return self._replace(
            status=RunStatus.interrupted,
            fence=self.fence + 1,
            finished_at=now,
            lease_expires_at=None,
            error=interrupted_error(self.node_id),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the run fields of DESIGN 2.3 (times ISO-8601 with offsets)."""

        def iso(dt: datetime | None) -> str | None:
            return dt.isoformat() if dt is not None else None

        return {
            "run_id": self.run_id,
            "job_id": self.job_id,
            "scheduled_for": iso(self.scheduled_for),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "duration": self.duration_s,
            "status": str(self.status),
            "attempt": self.attempt,
            "error": self.error,
            "output_tail": self.output_tail,
            "node_id": self.node_id,
            "skip_reason": self.skip_reason,
            "occurrence_key": self.occurrence_key,
        }


class FireStart(NamedTuple):
    """One fire to claim with `Store.start_fires`, and the job state to write if it is won."""

    job_id: str
    scheduled_for: datetime
    next_run: datetime | None
    last_fire: datetime | None
    #: The fire's `running` record (or its skip), written with the claim when the fire is
    #: won (the engine gives it for fires that start at once: an idle job without circuit
    #: or group). A new run: its `run_id` must never have been recorded (a store may
    #: write it without looking for an earlier record).
    run: RunRecord | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredJob:
    """A job as the store keeps it.

    `definition` is JSON-ready plain data produced by the engine's job codec (trigger,
    handler reference, policies, tags, ...). `next_run` and `last_fire` are scheduling state:
    `last_fire` is written before the fire's run starts, so a restart knows what already
    fired. `version` increases on every definition change (optimistic concurrency).
    """

    id: str
    definition: dict[str, Any]
    paused: bool = False
    pause_note: str | None = None
    next_run: datetime | None = None
    last_fire: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 1

    def evolve(self, **changes: Any) -> StoredJob:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunQuery:
    """Filters and paging for `Store.list_runs` (results newest `scheduled_for` first)."""

    job_id: str | None = None
    statuses: tuple[RunStatus, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStats:
    """Aggregates over one job's run log (computed by the store, not by loading rows)."""

    job_id: str
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    consecutive_failures: int = 0
    last_success: datetime | None = None
    last_failure: datetime | None = None
    p50_duration_s: float | None = None
    p95_duration_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """Who changed a job, how, and the definition before and after (None = absent)."""

    job_id: str
    action: str  # "added" | "updated" | "removed" | "paused" | "resumed"
    actor: str  # "api" | "cli" | "config" | "code" | "preset" | ...
    at: datetime
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


#: The store's state key listing the ids of the jobs `agentcron.toml` defines (JSON list):
#: `agentcron run` writes it; the API refuses to change those jobs (a reload undoes it).
CONFIG_JOBS_KEY = "config.jobs"

#: `NodeHeartbeat.status` of the last heartbeat of a node that stopped cleanly.
NODE_STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeHeartbeat:
    """The latest heartbeat of one node (`agentcron run` or `agentcron worker` process)."""

    node_id: str
    sequence: int
    sent_at: datetime
    status: str = "healthy"  # healthy | degraded | unhealthy | stopped (`NODE_STOPPED`)
    host: str = ""
    pid: int = 0
    version: str = ""
    platform: str = ""
    started_at: datetime | None = None
    interval_s: float = 30.0
    details: dict[str, Any] = field(default_factory=dict)
