"""The `Store` protocol: what the engine, heartbeat, dashboard and CLI need from storage.

Invariants every backend keeps (the contract suite in `tests/store/` checks them):

* **Durable before acknowledged.** When an `async` method returns, its change survives a
  crash of this process (SQLite: committed in WAL; Redis: acknowledged by the server).
* **Claims are exclusive.** `claim_fire(job_id, scheduled_for, ...)` returns True for exactly
  one caller per `(job_id, scheduled_for)`, across processes sharing the store, forever
  (claims older than the run retention may be pruned).
* **Takeover is exclusive.** `interrupt_expired(now)` marks each `running` run whose lease
  expired `interrupted` (fence + 1) and returns it to exactly one caller.
* **Fencing.** `record_run` of a run whose stored `fence` is higher than the record's is
  refused (returns False): a partitioned node that lost its lease (its run was interrupted,
  which raised the fence) must not overwrite what another node recorded. The node that takes
  the run over records it with the new fence.
* **Lists are newest first** (`scheduled_for` descending, then `run_id`), paged by
  `limit`/`offset`.
* Missing ids are not errors: getters return None, deleters return False.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from agentcron.models import (
    AuditEntry,
    ConflictPolicy,
    FireStart,
    NodeHeartbeat,
    RunQuery,
    RunRecord,
    RunStats,
    StoredJob,
)

__all__ = ["JobConflictError", "Store", "StoreError", "open_store"]


class StoreError(RuntimeError):
    """The store cannot be used (corrupt, locked, newer schema, unreachable, ...).

    The message names the store (file or URL, password masked) and what to do.
    """


class JobConflictError(ValueError):
    """`save_job(..., conflict="error")` found a job with the same id."""


@runtime_checkable
class Store(Protocol):
    """Persistence for one agentcron deployment. All methods are coroutine functions."""

    #: A human-readable location (file path or URL with the password masked).
    url: str
    #: How many of a tick's due fires the engine hands to one `start_fires` call. A store
    #: whose calls are in-process steps takes few (the fires of one call then die young,
    #: which keeps the garbage collector cheap); one whose calls are round trips to a writer
    #: thread or a server takes many (fewer round trips per tick).
    fire_batch: int

    async def open(self) -> None:
        """Connect, create or migrate the schema. Raises `StoreError` with a clear message."""
        ...

    async def close(self) -> None:
        """Flush pending writes and release connections. Idempotent."""
        ...

    # -- jobs ----------------------------------------------------------------------------
    async def save_job(
        self, job: StoredJob, *, actor: str, conflict: ConflictPolicy = "replace"
    ) -> StoredJob:
        """Insert or update a job definition and write an audit entry.

        On an existing id: `replace` updates the definition (version + 1) but keeps its
        paused flag, note, scheduling state and run history; `keep` leaves the stored job
        untouched and returns it; `error` raises `JobConflictError`. An update whose
        definition equals the stored one writes nothing and returns the stored job.
        """
        ...

    async def get_job(self, job_id: str) -> StoredJob | None: ...

    async def list_jobs(self) -> list[StoredJob]:
        """Every job, ordered by id."""
        ...

    async def delete_job(self, job_id: str, *, actor: str) -> bool:
        """Remove a job, its run history, claims, and write an audit entry."""
        ...

    async def set_paused(
        self, job_id: str, paused: bool, *, note: str | None = None, actor: str
    ) -> StoredJob | None:
        """Pause (with an optional note) or resume; audited. None for an unknown id."""
        ...

    async def set_job_state(
        self, job_id: str, *, next_run: datetime | None, last_fire: datetime | None
    ) -> None:
        """Record scheduling state (not audited, called on every fire)."""
        ...

    # -- fire claims ---------------------------------------------------------------------
    async def claim_fire(
        self, job_id: str, scheduled_for: datetime, node_id: str, *, now: datetime
    ) -> bool:
        """Claim one occurrence; True for exactly one caller (see module invariants)."""
        ...

    async def start_fires(
        self, fires: Sequence[FireStart], node_id: str, *, now: datetime
    ) -> list[bool]:
        """Claim each fire as `claim_fire` does and, for each one won, write its job's
        `next_run`/`last_fire` as `set_job_state` does and its `run` (if given) as
        `record_run` does: one call (one transaction where the backend has them) for all
        the fires due at one instant. A fire lost writes nothing. Returns, in order, whether
        each fire was won; a job id given twice in one call is claimed in order."""
        ...

    # -- runs ----------------------------------------------------------------------------
    async def record_run(self, run: RunRecord) -> bool:
        """Insert or update a run by `run_id`; False when refused by fencing."""
        ...

    async def record_runs(self, runs: Sequence[RunRecord]) -> list[bool]:
        """`record_run` for each of `runs`, in order, in one call (one transaction where the
        backend has them; each run is still refused or accepted on its own by fencing).
        Returns, in order, whether each was recorded."""
        ...

    async def get_run(self, run_id: str) -> RunRecord | None: ...

    async def list_runs(self, query: RunQuery) -> list[RunRecord]: ...

    async def count_runs(self, query: RunQuery) -> int:
        """How many runs match `query` (ignoring `limit` and `offset`)."""
        ...

    async def run_stats(self, job_id: str) -> RunStats: ...

    async def prune_runs(
        self, *, older_than: datetime | None = None, keep_per_job: int | None = None
    ) -> int:
        """Delete final runs scheduled before `older_than` and/or beyond the newest
        `keep_per_job` of each job; never deletes `running`/`scheduled` runs. Returns the
        number deleted."""
        ...

    # -- leases --------------------------------------------------------------------------
    async def renew_lease(self, run_id: str, node_id: str, fence: int, *, until: datetime) -> bool:
        """Extend a running run's lease; False when the run is no longer ours (taken over,
        finished, or fence moved on): the caller must stop the run."""
        ...

    async def interrupt_expired(self, now: datetime) -> list[RunRecord]:
        """Atomically mark `running` runs with `lease_expires_at <= now` as `interrupted`
        (fence + 1, `finished_at = now`) and return them (each to exactly one caller)."""
        ...

    # -- system state --------------------------------------------------------------------
    async def get_state(self, key: str) -> str | None: ...

    async def set_state(self, key: str, value: str) -> None: ...

    # -- nodes ---------------------------------------------------------------------------
    async def write_heartbeat(self, heartbeat: NodeHeartbeat) -> None:
        """Replace the node's latest heartbeat."""
        ...

    async def list_heartbeats(self) -> list[NodeHeartbeat]: ...

    async def delete_node(self, node_id: str) -> bool: ...

    # -- audit ---------------------------------------------------------------------------
    async def list_audit(self, job_id: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        """Audit entries, newest first, optionally for one job."""
        ...


def open_store(url: str, *, read_only: bool = False) -> Store:
    """Build (not open) the store for `url`; raises `ValueError` for an unknown scheme.

    `read_only=True` is for commands that only read: on SQLite the store then opens only
    readers (no write lock to wait for while another process writes, no migration, no new
    file; see `SqliteStore`). The other backends ignore it: their reads take no lock."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(
            f"store URL {url!r} has no scheme; use memory://, sqlite:///path/to/file.db "
            "or redis://host:port/db"
        )
    if scheme == "memory":
        from agentcron.store.memory import MemoryStore

        return MemoryStore()
    if scheme == "sqlite":
        try:
            from agentcron.store.sqlite import SqliteStore  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:  # pragma: no cover - until the SQLite backend lands
            raise ValueError(f"the sqlite store is not available: {exc}") from exc
        return SqliteStore.from_url(url, read_only=read_only)  # type: ignore[no-any-return,unused-ignore]
    if scheme in ("redis", "rediss"):
        try:
            from agentcron.store.redis import RedisStore  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise ValueError(
                f"the redis store needs the 'redis' extra (pip install 'agentcron[redis]'): {exc}"
            ) from exc
        return RedisStore.from_url(url)  # type: ignore[no-any-return,unused-ignore]
    raise ValueError(
        f"unknown store scheme {scheme!r} in {url!r}; use memory://, sqlite:/// or redis://"
    )
