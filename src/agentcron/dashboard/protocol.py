"""What the dashboard needs from the rest of agentcron, written down as Protocols.

The dashboard is built against these seams, not against concrete classes, so it can be
tested with a small fake and served against the real `agentcron.Scheduler` (DESIGN 2.13)
unchanged. Only what the HTTP API uses is listed; everything else about a job is read
defensively (see `agentcron.dashboard.views`), because job objects are the engine's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from agentcron.clock import Clock
from agentcron.events import EventBus
from agentcron.models import RunRecord
from agentcron.store.base import Store

__all__ = ["JobLike", "QueueLike", "QueueSource", "SchedulerLike"]


@runtime_checkable
class JobLike(Protocol):
    """A scheduled job as the engine exposes it. Only `id` is required.

    Other attributes read when present (DESIGN 2.3): `name`, `trigger`, `timezone`,
    `enabled`, `tags`, `timeout`, `overlap`, `retry`, `misfire`, `circuit`, `queue`,
    `handler`, `paused`, `pause_note`, `next_run`, `active_runs`, `progress` (percent, of
    the newest running run that reported any), and `to_dict()`.
    """

    @property
    def id(self) -> str: ...


@runtime_checkable
class SchedulerLike(Protocol):
    """The DESIGN 2.13 surface of `agentcron.Scheduler` that the dashboard calls."""

    events: EventBus
    store: Store
    clock: Clock

    def jobs(self) -> Sequence[Any]:
        """Every job (objects with at least an `id`)."""
        ...

    def job(self, job_id: str) -> Any:
        """One job; raises `KeyError` (or a `LookupError`) or returns None when unknown."""
        ...

    async def runs(self, job_id: str, limit: int = 50) -> list[RunRecord]:
        """The job's runs, newest first."""
        ...

    async def run_now(self, job_id: str) -> RunRecord:
        """Fire the job now through its policies and return the finished run."""
        ...

    def pause(self, job_id: str, note: str | None = None) -> Any: ...

    def resume(self, job_id: str) -> Any: ...

    @property
    def add_job(self) -> Callable[..., Any]:
        """`add_job(job_id, *, trigger=..., handler=..., **options)`: define a job (its
        exact keyword options are the engine's, so the signature is left open here)."""
        ...

    def update(self, job_id: str, **changes: Any) -> Any: ...

    def remove(self, job_id: str) -> Any: ...

    def health(self) -> Any:
        """A health report (a mapping, a dataclass or an object with `to_dict()`)."""
        ...


@runtime_checkable
class QueueLike(Protocol):
    """The part of `agentcron.queue.Queue` (DESIGN 2.6) the queues panel uses."""

    async def counts(self) -> Mapping[str, int]:
        """`{"waiting", "active", "completed", "failed", "delayed", "paused"}`."""
        ...

    async def pause(self) -> Any: ...

    async def resume(self) -> Any: ...

    async def clean(self, grace: float, limit: int, state: str) -> Any:
        """Remove up to `limit` jobs in `state` older than `grace` seconds."""
        ...

    async def jobs(self, state: str, *, offset: int = 0, limit: int = 50) -> Sequence[Any]:
        """A page of the jobs in `state` (`agentcron.queue.JobInfo`s)."""
        ...

    async def get(self, job_id: str) -> Any:
        """One job (`agentcron.queue.JobInfo`), or None."""
        ...


@runtime_checkable
class QueueSource(Protocol):
    """Where the dashboard finds queues: their names and a handle per name."""

    def names(self) -> Sequence[str]: ...

    def get(self, name: str) -> QueueLike | None: ...


if TYPE_CHECKING:  # mypy checks that the engine and the store observer fit the protocol
    from agentcron.dashboard.observer import StoreObserver
    from agentcron.engine import Scheduler

    def _conforms(engine: Scheduler, observer: StoreObserver) -> list[SchedulerLike]:
        return [engine, observer]
