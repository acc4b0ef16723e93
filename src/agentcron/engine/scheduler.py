"""`Scheduler`: the asyncio engine that fires jobs on time and applies their policies.

How a fire happens (each step's invariant):

1. **Wake.** One loop reads the clock once per tick, pops every due job from a heap of next
   fire times (O(log n) each) and dispatches them all in that one pass (in chunks of the
   store's `fire_batch`, yielding to the event loop between chunks), then sleeps until the
   next entry or until the job set changes. An instant with hundreds of fires is claimed
   ahead of time (`engine.ahead`): the loop wakes early, claims its fires, and starts their
   handlers when the instant comes, never before.
2. **Reschedule first.** The next fire is computed (strictly after the fire and after
   `last_fire`, so a backward clock step never re-runs a fire) and pushed before the fire's
   task starts, so a slow store or handler never delays other jobs.
3. **Misfires, never bursts.** A fire later than its misfire `grace` (the process was down,
   the machine slept, the wall clock jumped forward) goes through the misfire policy, which
   sees every missed fire time at once.
4. **Claim, then state, then run.** The tick's on-time fires are claimed together with
   `Store.start_fires` (one transaction; two schedulers on one store never both run an
   occurrence), which also writes each job's `last_fire` before its run starts; the run is
   recorded `running` with a lease that a single maintenance task renews.
5. **Policies.** Overlap decides against the job's active runs (a run waiting for a retry is
   active), the circuit breaker at the moment a run would start, retries inside the run.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import os
import random
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, TypeVar

from agentcron.clock import Clock, SystemClock
from agentcron.engine import ahead
from agentcron.engine.active import JobEntry
from agentcron.engine.catchup import missed_fires
from agentcron.engine.errors import JobNotFoundError, SchedulerNotRunningError
from agentcron.engine.firing import Claimed, Dispatch, DueFire, Firing, HeldSuccesses
from agentcron.engine.persistence import WATCH_JOBS_S, NewJobs, store_available, wait_store
from agentcron.engine.runner import Runner
from agentcron.engine.timeline import Timeline
from agentcron.events import (
    EventBus,
    JobAdded,
    JobPaused,
    JobRemoved,
    JobResumed,
    JobUpdated,
    RunMissed,
)
from agentcron.jobs import (
    Job,
    build_job,
    job_from_definition,
    job_options,
    job_to_definition,
    next_nominal_fire,
    update_job,
)
from agentcron.models import (
    ConflictPolicy,
    RunQuery,
    RunRecord,
    RunStatus,
    SkipReason,
    StoredJob,
    new_run_id,
)
from agentcron.policies.circuit import Circuit
from agentcron.policies.errors import JobConfigError, require, shown, within_max_duration
from agentcron.policies.jitter import jitter_delay
from agentcron.policies.misfire import decide_misfire
from agentcron.store.base import JobConflictError, Store, open_store
from agentcron.tasks import cancel_and_join
from agentcron.triggers import Date, Interval, resolve_tz

__all__ = ["Dispatch", "JobView", "Scheduler"]

_ONE_US = timedelta(microseconds=1)

log = logging.getLogger("agentcron.engine")

F = TypeVar("F", bound=Callable[..., Any])

#: A wall-vs-monotonic disagreement above this, between two ticks, is a clock jump.
CLOCK_JUMP_S = 2.0
#: The loop yields to the event loop after this many late jobs in a row (see `_loop`).
LATE_BATCH = 16
#: The longest pause note (as the HTTP API's): it is stored and shown with the job.
MAX_NOTE_LENGTH = 1000


@dataclass(frozen=True, slots=True)
class JobView:
    """A job with its live scheduling state, as `jobs()` / `job(id)` return it."""

    job: Job
    paused: bool
    pause_note: str | None
    next_run: datetime | None
    last_fire: datetime | None
    active_runs: int
    pending_fires: int
    unavailable: str | None
    #: The progress (0-100) last reported by the newest active run that reported any.
    progress: float | None = None

    @property
    def id(self) -> str:
        return self.job.id

    def to_dict(self) -> dict[str, Any]:
        def iso(dt: datetime | None) -> str | None:
            return dt.isoformat() if dt is not None else None

        return {
            "id": self.job.id,
            "name": self.job.display_name,
            "trigger": self.job.trigger.describe(),
            "handler": self.job.handler.describe(),
            "timezone": self.job.timezone,
            "tags": list(self.job.tags),
            "paused": self.paused,
            "pause_note": self.pause_note,
            "next_run": iso(self.next_run),
            "last_fire": iso(self.last_fire),
            "active_runs": self.active_runs,
            "pending_fires": self.pending_fires,
            "unavailable": self.unavailable,
            "progress": self.progress,
            "definition": job_to_definition(self.job),
        }


def _progress_of(entry: JobEntry) -> float | None:
    reported = [a for a in entry.active.values() if a.progress is not None]
    if not reported:
        return None
    return max(reported, key=lambda a: a.scheduled_for).progress


def _timing(job: Job) -> tuple[object, ...]:
    """What decides when a job fires: a change to any of it reschedules the job."""
    return (job.trigger, job.start, job.end, job.max_runs, job.jitter_s, job.enabled)


def _defaults_probe() -> None:
    """The handler of the throwaway job `job_defaults` are checked with."""


def _seconds(value: object) -> float | None:
    """`value` as a finite number of seconds, or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _check_arguments(
    store: object, node_id: object, timezone: object, lease_s: object, stop_grace_s: object
) -> None:
    """Raise `JobConfigError` naming the `Scheduler(...)` argument that is wrong: at
    construction, not at `start()` nor pinned on the first job added."""
    require(
        isinstance(store, str | Store),
        "store",
        f"expected a store URL (e.g. 'sqlite:///agentcron.db') or a Store, got {shown(store)}",
    )
    require(
        node_id is None or (isinstance(node_id, str) and 0 < len(node_id) <= 200
                            and node_id.isprintable()),
        "node_id",
        f"must be 1-200 printable characters (no newlines or tabs), got {shown(node_id)}",
    )  # fmt: skip
    resolve_tz(timezone, "timezone")  # type: ignore[arg-type]
    lease = _seconds(lease_s)
    require(
        lease is not None and lease > 0, "lease_s", f"must be > 0 seconds, got {shown(lease_s)}"
    )
    within_max_duration(lease, "lease_s")
    grace = _seconds(stop_grace_s)
    require(
        grace is not None and grace >= 0,
        "stop_grace_s",
        f"must be >= 0 seconds, got {shown(stop_grace_s)}",
    )
    within_max_duration(grace, "stop_grace_s")


def _check_job_defaults(defaults: Mapping[str, Any], timezone: str | tzinfo) -> None:
    """Raise `JobConfigError` naming `job_defaults` (and the option) when a job given only
    these options would be refused: a typo or a bad value is reported by `Scheduler(...)`,
    not pinned on whichever job `add_job` defines first."""
    try:
        build_job(
            "job-defaults",
            trigger="@hourly",
            handler=_defaults_probe,
            default_timezone=timezone,
            **defaults,
        )
    except JobConfigError as exc:
        raise JobConfigError("job_defaults", str(exc)) from None


def _job_id_of(fn: object, id: str | None, decorator: str) -> str:
    """The id a decorator registers `fn` under: `id`, else the function's `__name__`."""
    if id is not None:
        return id
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or not name or name == "<lambda>":
        raise JobConfigError(
            "id",
            f"{shown(fn)} has no name to use as the job id; pass one: "
            f'@sched.{decorator}(..., id="my-job")',
        )
    return name


def _default_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Scheduler(Firing):
    """The engine (DESIGN 2.13). Configure with `add_job` / decorators, then
    `async with sched:` (or `await sched.start()` ... `await sched.stop()`), or block in
    `sched.run()` until SIGINT/SIGTERM.

    `store`: a URL (`memory://` default, `sqlite:///...`) or a `Store`. `conflict` says what
    a job registered from code does to a stored job with the same id: `replace` (update it
    in place, keeping its history and pause state), `keep` (the stored one wins) or `error`.
    """

    def __init__(
        self,
        store: str | Store = "memory://",
        *,
        clock: Clock | None = None,
        node_id: str | None = None,
        timezone: str | tzinfo = "UTC",
        events: EventBus | None = None,
        conflict: ConflictPolicy = "replace",
        lease_s: float = 60.0,
        stop_grace_s: float = 30.0,
        rng: random.Random | None = None,
        dispatch: Dispatch | None = None,
        concurrency_limits: Mapping[str, int] | None = None,
        job_defaults: Mapping[str, Any] | None = None,
        watch_jobs_s: float | None = WATCH_JOBS_S,
    ) -> None:
        require(conflict in ("replace", "keep", "error"), "conflict", "use replace, keep or error")
        _check_arguments(store, node_id, timezone, lease_s, stop_grace_s)
        require(
            watch_jobs_s is None
            or (
                isinstance(watch_jobs_s, int | float)
                and math.isfinite(watch_jobs_s)
                and watch_jobs_s > 0
            ),
            "watch_jobs_s",
            f"must be a number of seconds > 0, or None not to watch; got {watch_jobs_s!r}",
        )
        #: How often to look for changes other processes made to the store's jobs (None:
        #: never; a `MemoryStore`, which no other process can change, is not watched).
        self.watch_jobs_s = watch_jobs_s
        self._owns_store = isinstance(store, str)
        self.store: Store = open_store(store) if isinstance(store, str) else store
        self.clock: Clock = clock or SystemClock()
        self.node_id = node_id or _default_node_id()
        self.timezone = timezone
        self.events = events or EventBus(clock=self.clock)
        self.conflict: ConflictPolicy = conflict
        self.lease_s = lease_s
        self.stop_grace_s = stop_grace_s
        self.rng = rng or random.Random()
        self.dispatch = dispatch
        limits = dict(concurrency_limits or {})
        for group, limit in limits.items():
            require(
                isinstance(limit, int) and limit >= 1,
                "concurrency_limits",
                f"{group!r}: must be >= 1",
            )
        self.concurrency_limits = limits
        #: Options `add_job` gives a job that does not set them itself (`agentcron run`:
        #: the settings' `RETRY_*` and `OVERLAP_*`, for jobs added by the API as well).
        self.job_defaults: dict[str, Any] = dict(job_defaults or {})
        for key in ("id", "trigger", "handler", "conflict"):
            require(key not in self.job_defaults, "job_defaults", f"{key!r} has no default")
        if self.job_defaults:
            _check_job_defaults(self.job_defaults, timezone)
        self._group_active: collections.Counter[str] = collections.Counter()
        #: Called at every loop iteration (the systemd watchdog's proof of progress).
        self.on_tick: Callable[[], None] | None = None
        #: With `on_tick`, the loop iterates at least this often even when nothing is due.
        self.max_idle_s: float | None = None
        #: Extra health facts merged into `health()["node"]` (the health supervisor's).
        self.health_extra: Callable[[], Mapping[str, Any]] | None = None
        self._entries: dict[str, JobEntry] = {}
        self._circuits: dict[str, Circuit] = {}
        self._circuit_mismatches: set[tuple[str, str]] = set()
        self._timeline = Timeline()
        self._runner = Runner(
            store=self.store,
            clock=self.clock,
            events=self.events,
            node_id=self.node_id,
            lease_s=lease_s,
            stop_grace_s=stop_grace_s,
            rng=self.rng,
        )
        self._runner.progress_reporter = self._progress_from
        self._event_loop: asyncio.AbstractEventLoop | None = None  # (set by `start`)
        self._loop_thread = 0
        self._running = False
        self._stopping = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._abandoned: set[asyncio.Task[Any]] = set()
        self._succeeded = []
        self._recording = set()
        self._claimed_spare = []
        self._held = None
        self._skips = None
        self._admitting: set[asyncio.Task[None]] = set()
        #: What taking a fire ahead of its instant took last time, per fire: scheduling its
        #: job's next fire and claiming it (`engine.ahead`).
        self._ahead_s_per_fire = 0.0
        #: The task claiming and then launching a crowded instant's fires, if any.
        self._ahead: asyncio.Task[None] | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._maintenance_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._writes_queued = 0
        #: The store's `data_losses` when this scheduler last wrote its data back.
        self._losses_seen = 0
        self._writer_task: asyncio.Task[None] | None = None
        self._writes: asyncio.Queue[Callable[[], Awaitable[None]]] | None = None
        self._new_jobs: NewJobs | None = None
        self._wakeup: asyncio.Event | None = None
        self._last_jump_s = 0.0
        self._started_at: datetime | None = None
        self._stop_requested: asyncio.Event | None = None
        #: `request_stop()` came before or during `start()`: `serve()` stops at once.
        self._stop_early = False
        #: Resolved when the `start()` under way ends (`stop()` meanwhile waits for it).
        self._starting: asyncio.Future[None] | None = None
        #: `end_grace()` was called: the stop under way (or the next) waits for no run.
        self._grace_ended = False
        self._grace_timer: asyncio.Future[None] | None = None
        #: Set by `stop()`: fires claimed ahead of their instant stop waiting for it.
        self._halting: asyncio.Event | None = None
        self._save_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._early_pauses: dict[str, tuple[bool, str | None]] = {}
        self._early_removed: set[str] = set()

    # == configuration (sync; persisted in the background once started) ===============
    def add_job(
        self,
        id: str,
        *,
        trigger: object,
        handler: object,
        conflict: ConflictPolicy | None = None,
        **options: Any,
    ) -> Job:
        """Define a job (see DESIGN 2.3 for the options). Validates everything now and
        raises `JobConfigError` naming the bad field; an id already defined in this process
        is replaced. Options it leaves out come from `job_defaults`. Returns the `Job`."""
        if self.job_defaults:
            options = {**self.job_defaults, **options}
        job = build_job(
            id, trigger=trigger, handler=handler, default_timezone=self.timezone, **options
        )
        require(
            conflict in (None, "replace", "keep", "error"), "conflict", "use replace, keep or error"
        )
        policy = conflict or self.conflict
        old = self._entries.get(id)
        if old is not None and not old.removed:
            if policy == "keep" and old.dormant is None:
                return old.job
            if policy == "error" and old.dormant is None:
                raise JobConflictError(
                    f"a job with id {id!r} is already defined (conflict='error')"
                )
            self._replace_job(old, job)
            self.events.publish(JobUpdated(at=self.clock.now(), job_id=id))
            return job
        entry = JobEntry(job=job, conflict=conflict)
        self._entries[id] = entry
        self._early_removed.discard(id)
        if self._running:
            entry.unsaved = True  # its fires wait until the store has it
            self._schedule_new(entry, self.clock.now())  # @reboot: at the next start
            self._enqueue_new_job(entry)
        if self.events.subscriber_count:
            self.events.publish(JobAdded(at=self.clock.now(), job_id=id))
        return job

    def cron(self, expr: str, *, id: str | None = None, **options: Any) -> Callable[[F], F]:
        """Decorator: run the function on a cron schedule (`id` defaults to its name)."""

        def register(fn: F) -> F:
            self.add_job(_job_id_of(fn, id, "cron"), trigger=expr, handler=fn, **options)
            return fn

        return register

    def interval(
        self,
        *,
        weeks: float = 0,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
        start: datetime | None = None,
        id: str | None = None,
        **options: Any,
    ) -> Callable[[F], F]:
        """Decorator: run the function every period."""
        trigger = Interval(
            weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds, start=start
        )

        def register(fn: F) -> F:
            self.add_job(_job_id_of(fn, id, "interval"), trigger=trigger, handler=fn, **options)
            return fn

        return register

    def update(self, job_id: str, **changes: Any) -> Job:
        """Change a job's options (trigger, handler, policies, ...) without losing history."""
        entry = self._entry(job_id)
        job = update_job(entry.job, default_timezone=self.timezone, **changes)
        self._replace_job(entry, job)
        self.events.publish(JobUpdated(at=self.clock.now(), job_id=job_id))
        return job

    def remove(self, job_id: str) -> None:
        """Delete a job and its history; its active runs are cancelled (recorded first)."""
        entry = self._entry(job_id)
        entry.removed = True
        self._timeline.drop(entry)
        del self._entries[job_id]
        self._release_pending(entry, None, "job removed", record=False)
        self._early_pauses.pop(job_id, None)
        if self._running:
            self._enqueue_write(lambda: self._delete(entry))
        else:
            self._early_removed.add(job_id)
        self.events.publish(JobRemoved(at=self.clock.now(), job_id=job_id))

    async def reload_jobs(self) -> int:
        """Apply the store's jobs to this running scheduler: those another process (the
        CLI, another node) added, changed, paused, resumed or removed; returns how many jobs
        changed. This scheduler's own changes are written first, so none is undone; a store
        that lost its data (a Redis restarted empty) gets this scheduler's jobs back first,
        so its emptiness is not taken for jobs removed. On a store other processes can
        change, a running scheduler does this by itself when the store's `jobs.changed`
        token moves (`watch_jobs_s`)."""
        if self._running:
            await self._restore_if_data_lost()
        return self._apply_stored(await self._stored_jobs_settled())

    def _apply_stored(self, stored: dict[str, StoredJob]) -> int:
        changed = 0
        for job_id in [i for i in self._entries if i not in stored]:
            self.remove(job_id)
            changed += 1
        for job_id, record in stored.items():
            entry = self._entries.get(job_id)
            try:
                job = job_from_definition(job_id, record.definition)
            except ValueError as exc:
                log.error("stored job %s is invalid and stays unscheduled: %s", job_id, exc)
                continue
            if entry is None:
                self.add_job(job_id, **job_options(job))
                changed += 1
            elif job_to_definition(entry.job) != record.definition:
                self.update(job_id, **job_options(job))
                changed += 1
            if entry is None or entry.paused != record.paused:
                if record.paused:
                    self.pause(job_id, note=record.pause_note)
                elif entry is not None:
                    self.resume(job_id)
        return changed

    def pause(self, job_id: str, note: str | None = None) -> None:
        """Stop firing the job (a run in progress finishes); `note` says why (text of at
        most `MAX_NOTE_LENGTH` characters, else `JobConfigError` naming `note`)."""
        entry = self._entry(job_id)
        require(
            note is None or (isinstance(note, str) and len(note) <= MAX_NOTE_LENGTH),
            "note",
            f"expected text of at most {MAX_NOTE_LENGTH} characters, got {shown(note)}"
            + (f" ({len(note)} characters)" if isinstance(note, str) else ""),
        )
        entry.paused, entry.pause_note = True, note
        self._timeline.drop(entry)
        entry.next_fire = None
        self._release_pending(entry, SkipReason.paused, "job paused")
        if self._running:
            self._enqueue_write(lambda: self._store_pause(job_id, True, note))
        else:
            self._early_pauses[job_id] = (True, note)
        self.events.publish(JobPaused(at=self.clock.now(), job_id=job_id, note=note))

    def resume(self, job_id: str) -> None:
        """Fire the job again from now on (fires missed while paused are not run)."""
        entry = self._entry(job_id)
        entry.paused, entry.pause_note = False, None
        if self._running:
            self._schedule_from(entry, self.clock.now())
            self._enqueue_write(lambda: self._store_pause(job_id, False, None))
        else:
            self._early_pauses[job_id] = (False, None)
        self.events.publish(JobResumed(at=self.clock.now(), job_id=job_id))

    # == reading ========================================================================
    def jobs(self) -> list[JobView]:
        """Every job, ordered by id."""
        return [self._view(self._entries[k]) for k in sorted(self._entries)]

    def job(self, job_id: str) -> JobView:
        return self._view(self._entry(job_id))

    async def runs(self, job_id: str, limit: int = 50) -> list[RunRecord]:
        """The job's runs, newest first (`limit` >= 1)."""
        require(
            isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1,
            "limit",
            f"must be a whole number >= 1, got {limit!r}",
        )
        return await self.store.list_runs(RunQuery(job_id=job_id, limit=limit))

    def health(self) -> dict[str, Any]:
        """A JSON-ready snapshot: running, counts, next wake, circuits, clock jumps."""
        next_runs = [e.next_fire for e in self._entries.values() if e.next_fire is not None]
        return {
            "status": (
                "stopped"
                if not self._running or self._stopping
                else "running"
                if store_available(self.store)
                else "degraded"
            ),
            "node_id": self.node_id,
            "started_at": self._started_at.isoformat() if self._started_at else None,
            "jobs": len(self._entries),
            "paused": sum(1 for e in self._entries.values() if e.paused),
            "unavailable": sum(1 for e in self._entries.values() if e.dormant),
            "active_runs": sum(len(e.active) for e in self._entries.values()),
            "pending_fires": sum(e.pending_count for e in self._entries.values()),
            "next_fire": min(next_runs).isoformat() if next_runs else None,
            "circuits": {name: c.state.state for name, c in self._circuits.items()},
            "last_clock_jump_s": self._last_jump_s,
            **({"node": dict(self.health_extra())} if self.health_extra is not None else {}),
        }

    # == lifecycle ======================================================================
    async def __aenter__(self) -> Scheduler:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Open the store, recover interrupted runs, reconcile stored and code jobs, handle
        fires missed while down, and start firing."""
        if self._running:
            return
        if self._starting is not None:  # started twice at once: the second waits
            await asyncio.wait({self._starting})
            return
        starting = self._starting = asyncio.get_running_loop().create_future()
        try:
            await self._start()
        finally:
            self._starting = None
            starting.set_result(None)
        if self._stop_early:  # `request_stop()` before or during `start()`: it wins
            self._stop_early = False
            assert self._stop_requested is not None
            self._stop_requested.set()

    async def _start(self) -> None:
        await self.store.open()
        self.events.unpark()
        self._losses_seen = int(getattr(self.store, "data_losses", 0))
        self._event_loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        self._wakeup = asyncio.Event()
        self._writes = asyncio.Queue()
        self._new_jobs = None
        self._stop_requested = asyncio.Event()
        self._halting = asyncio.Event()
        self._grace_ended = False
        self._stopping = False
        now = self.clock.now()
        self._started_at = now
        await self._reconcile()
        self._running = True
        never_fired: list[JobEntry] = []
        for entry in list(self._entries.values()):
            if entry.job.is_reboot and not entry.paused and entry.dormant is None:
                self._spawn(self._fire(entry, now, now))
                continue
            stored_next = entry.next_fire
            self._schedule_initial(entry, now)
            if entry.last_fire is None and entry.next_fire != stored_next:
                never_fired.append(entry)
        await self._recover_interrupted(now)
        self._loop_task = asyncio.create_task(self._loop(), name="agentcron-scheduler")
        self._maintenance_task = asyncio.create_task(self._maintain(), name="agentcron-leases")
        if self.watch_jobs_s is not None and getattr(self.store, "shared", True):
            self._watch_task = asyncio.create_task(
                self._watch_jobs(self.watch_jobs_s), name="agentcron-jobs-watch"
            )
        self._writer_task = asyncio.create_task(self._writer(), name="agentcron-store-writer")
        if never_fired:
            # So that a first fire missed while down is found after a restart.
            self._enqueue_write(lambda: self._store_next_runs(never_fired))

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop taking fires, give running jobs `grace_s` (default `stop_grace_s`), then
        cancel them (recorded `cancelled`), flush writes and close an owned store.

        The grace period is measured on the scheduler's clock: with a `VirtualClock`, advance
        it (or pass `grace_s=0`) while runs are still active, or `stop()` keeps waiting.

        Called while `start()` is under way, it waits for the start to end, then stops: the
        scheduler is stopped when both have returned."""
        if self._starting is not None:
            await asyncio.wait({self._starting})  # (its error, if any, is `start()`'s)
        if not self._running:
            return
        self._stopping = True
        if self._halting is not None:
            self._halting.set()
        grace = 0.0 if self._grace_ended else self.stop_grace_s if grace_s is None else grace_s
        for task in (self._loop_task, self._maintenance_task, self._watch_task):
            await cancel_and_join(task)  # (a cancellation of `stop()` itself propagates)
        if self._ahead is not None:  # ends at once (`_halting`), its fires launched or not
            await asyncio.wait({self._ahead})
        for entry in self._entries.values():
            self._release_pending(entry, None, "scheduler stopped")
        running = {t for t in self._tasks if not t.done()}
        if running and grace > 0:
            timer = self._grace_timer = asyncio.ensure_future(self.clock.sleep(grace))
            try:
                await asyncio.wait({*running, timer}, return_when=asyncio.FIRST_COMPLETED)
                while not timer.done() and any(not t.done() for t in running):
                    await asyncio.wait(
                        {*(t for t in running if not t.done()), timer},
                        return_when=asyncio.FIRST_COMPLETED,
                    )
            finally:
                timer.cancel()
                self._grace_timer = None
        for entry in self._entries.values():
            for active in list(entry.active.values()):
                active.cancel("scheduler stopped")
        # Runs admitted but not begun take their first step now and record `cancelled`.
        await asyncio.sleep(0)
        for task in self._tasks - self._recording:  # recording results is never cut short
            task.cancel()
        # Bounded in real time: a handler that ignores cancellation cannot hold stop().
        patience_s = 1.0 if self._grace_ended else max(1.0, self.stop_grace_s)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=patience_s)
        for entry in self._entries.values():  # such handlers' runs end `cancelled` anyway
            for active in list(entry.active.values()):
                if active.task is not None and not active.task.done():
                    await self._abandon(entry, active, patience_s)
        if self._recording:  # the results of runs that ended: in the store before it closes
            await asyncio.wait(set(self._recording))
        self._tasks = {t for t in self._tasks if not t.done()}
        await self._flush_writes()
        await cancel_and_join(self._writer_task)
        self._running = False
        # Subscribers' delivery tasks end once they have delivered what they hold; the
        # next event starts them again.
        await self.events.park()
        if self._owns_store:
            await self.store.close()

    def request_stop(self) -> None:
        """Ask `serve()` / `run()` to stop gracefully (what SIGINT/SIGTERM do); asked again
        while stopping, stop without waiting for running jobs (`end_grace`). Asked before
        `serve()` or while it starts, `serve()` stops as soon as the scheduler has started."""
        if self._stop_requested is None or not self._running or self._starting is not None:
            self._stop_early = True
            return
        if self._stop_requested.is_set():
            self.end_grace()
        self._stop_requested.set()

    def end_grace(self) -> None:
        """End the grace period of the stop under way, or skip the next one: running jobs
        are cancelled at once and recorded `cancelled` (what a second Ctrl+C or SIGTERM
        does), and a handler that ignores cancellation is abandoned after 1 s."""
        self._grace_ended = True
        if self._grace_timer is not None:
            self._grace_timer.cancel()

    async def serve(self) -> None:
        """Start, run until `request_stop()` or SIGINT/SIGTERM (Ctrl+Break on Windows), stop."""
        await self.start()
        assert self._stop_requested is not None
        loop = asyncio.get_running_loop()
        installed = self._install_signals(loop)
        try:
            await self._stop_requested.wait()
        finally:
            try:
                await self.stop()  # a second signal meanwhile ends its grace period
            finally:
                for sig in installed:
                    loop.remove_signal_handler(sig)

    def run(self) -> None:
        """Block in a new event loop until SIGINT/SIGTERM, then stop gracefully."""
        asyncio.run(self.serve())

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        installed: list[int] = []
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            for name in ("SIGINT", "SIGBREAK", "SIGTERM"):
                sig = getattr(signal, name, None)
                if sig is not None:
                    signal.signal(sig, lambda *_: loop.call_soon_threadsafe(self.request_stop))
            return installed
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.request_stop)
                installed.append(sig)
            except (RuntimeError, ValueError):  # not the main thread
                pass
        return installed

    # == manual runs ====================================================================
    async def run_now(self, job_id: str) -> RunRecord:
        """Fire the job now through its policies (overlap, circuit, retries, timeout) and
        return the finished run (or the skipped record)."""
        if not self._running:
            raise SchedulerNotRunningError("start the scheduler first (async with sched: ...)")
        entry = self._entry(job_id)
        now = self.clock.now()
        record = await self._fire(entry, now, now, manual=True)
        if record is None:  # the same instant was claimed elsewhere
            record = RunRecord(
                run_id=new_run_id(),
                job_id=job_id,
                scheduled_for=now,
                status=RunStatus.skipped,
                skip_reason=SkipReason.concurrency,
                node_id=self.node_id,
            )
        return record

    # == the loop =======================================================================
    async def _loop(self) -> None:
        assert self._wakeup is not None
        clock = self.clock
        # A tick admits its due fires `fire_batch` at a time, letting the event loop run the
        # fires of one batch before admitting the next: a tick of 10,000 fires never holds
        # 10,000 fires' worth of tasks and records at once, and the first fires start before
        # the last ones are claimed. The store picks the size (see `Store.fire_batch`).
        fire_batch = self.store.fire_batch
        prev_wall, prev_mono = clock.now(), clock.monotonic()
        while not self._stopping:
            if self._admitting:
                # Backpressure: a tick begins once the claims of the last one are written.
                # A store that cannot keep up (SQLite at its write ceiling) then makes the
                # loop late instead of its queue longer, and each job's misfire policy
                # folds the fires it fell behind on into one, so that overload means fewer
                # writes per second, not more.
                await asyncio.wait(set(self._admitting))
            self._wakeup.clear()
            if self.on_tick is not None:
                self.on_tick()
            now, mono = clock.now(), clock.monotonic()
            jump = (now - prev_wall).total_seconds() - (mono - prev_mono)
            if abs(jump) > CLOCK_JUMP_S:
                self._last_jump_s = jump
                log.warning(
                    "wall clock jumped %+.1fs against the monotonic clock (%s); "
                    "missed fires go through each job's misfire policy",
                    jump,
                    "suspend or NTP step" if jump > 0 else "stepped back",
                )
            prev_wall, prev_mono = now, mono
            if not store_available(self.store):
                # Keep our place and claim nothing until the store answers again; fires
                # that came due meanwhile are then late, so each job's misfire policy
                # decides (never a burst).
                await wait_store(self.store)
                continue
            due: list[DueFire] = []
            late = 0  # late jobs handled since the loop last yielded
            for entry in self._timeline.pop_due(now):
                if entry.slot is not None:  # rescheduled while an earlier chunk ran
                    continue
                late += self._due_guarded(entry, now, due)
                if len(due) == fire_batch:
                    self._admit_due(due, now)
                    due, late = [], 0
                    # Let the fires just started run before admitting more: a tick's
                    # objects then die young instead of all living until the tick ends.
                    await asyncio.sleep(0)
                elif late == LATE_BATCH:
                    # Walking a late job's missed fires takes up to a few ms (`catchup`);
                    # after a long sleep every job is late, and the rest of the process
                    # (dashboard, heartbeats, running handlers) must not wait for them all.
                    late = 0
                    await asyncio.sleep(0)
            if due:
                self._admit_due(due, now)
            wake = self._timeline.next_wake()
            if wake is not None:
                lead = ahead.lead_s(self._timeline.count_at(wake), self._ahead_s_per_fire)
                if lead > 0:
                    until_s = (wake - clock.now()).total_seconds()
                    if until_s <= lead:
                        if until_s > 0:  # else it is due already: the next turn pops it
                            self._claim_ahead(wake)
                        continue
                    wake -= timedelta(seconds=lead)
            if self.max_idle_s is not None:
                idle_until = now + timedelta(seconds=self.max_idle_s)
                wake = idle_until if wake is None else min(wake, idle_until)
            # One wait, on `_wakeup`, which the timer sets too (no `asyncio.wait` over a
            # waiter and a sleeper: its bookkeeping and its extra turn of the event loop
            # were a good part of an idle scheduler's CPU).
            timer = None if wake is None else asyncio.ensure_future(self._wake_at(wake))
            try:
                await self._wakeup.wait()
            finally:
                # Also when this task is cancelled (`stop()`): a timer left pending
                # outlives the scheduler ("Task was destroyed but it is pending!").
                if timer is not None and not timer.done():
                    timer.cancel()

    async def _wake_at(self, when: datetime) -> None:
        """The loop's timer: set `_wakeup` at `when`."""
        await self.clock.sleep_until(when)
        assert self._wakeup is not None
        self._wakeup.set()

    def _due_guarded(self, entry: JobEntry, now: datetime, due: list[DueFire]) -> bool:
        """Schedule the entry's next fire and hand its due fire(s) on (synchronously): an
        on-time fire joins `due`, this tick's batch; late ones go through the misfire
        policy (then True). A trigger that raises makes its job dormant."""
        try:
            fire = entry.next_fire
            # (`entry.dormant`, read through its slots, not the property: once per fire.)
            if fire is None or entry.removed or entry.paused or entry._rare.dormant:
                return False
            job = entry.job
            options = job._options  # (slots, not the option properties: once per fire)
            planned = entry.wake or fire  # the nominal fire plus its jitter
            # `_next_after(entry, fire)`, inline (once per fire).
            max_runs = options.max_runs
            if max_runs is not None and entry.fires >= max_runs:
                following = None
            else:
                last = entry.last_fire
                following = next_nominal_fire(
                    job, last if last is not None and fire < last else fire
                )
            # (A fire taken at or before its time, as ahead of a crowded instant, is on time.)
            if (planned >= now or (now - planned).total_seconds() <= options.misfire.grace_s) and (
                following is None or following > now
            ):
                entry.fires += 1
                entry.last_fire = fire
                # (No wake-up: the loop looks at the timeline after it, `_admit_due`.)
                self._queue_next(entry, following, max_runs)
                due.append((entry, fire, planned))
                return False
            self._misfired(entry, fire, now, due)
            return True
        except Exception:  # a trigger bug must not stop the other jobs
            log.exception("scheduling job %s failed; it is paused", entry.job.id)
            entry.dormant = "trigger failed; see the log"
            return False

    def _claim_ahead(self, at: datetime) -> None:
        """Take the fires due at the crowded instant `at` now, before it (`engine.ahead`):
        the next tick begins once they are claimed and started (`_start_ahead`)."""
        # The lead must cover the whole of it: at 10,000 fires, scheduling the jobs' next
        # fires took 20-60 ms of a 100-140 ms lead, and a third of the claims came late.
        begun = self.clock.monotonic()
        entries = collections.deque(self._timeline.pop_due(at))
        if entries:
            # Not among the tasks `drain()` waits for: fires waiting for their instant are
            # not dispatched yet (and a virtual clock may never get there). `stop()` waits
            # for it instead.
            self._ahead = self._admit_tick(self._start_ahead(entries, at, begun), drained=False)

    def _take_due(self, entries: collections.deque[JobEntry], at: datetime) -> list[DueFire]:
        """The next chunk of the fires due at `at` (`store.fire_batch` of them, fewer at
        the end), taken from the front of `entries` (`_due_guarded`: each job's next fire is
        scheduled as it is taken). An entry rescheduled since it was popped (resumed or
        updated in between) is left to the loop, as in a tick."""
        batch = self.store.fire_batch
        due: list[DueFire] = []
        while entries and len(due) < batch:
            entry = entries.popleft()
            if entry.slot is None:
                self._due_guarded(entry, at, due)
        # The loop is not woken for the next fires queued (`_queue_next`): it waits for
        # this task to end (`_admitting`) and then looks at the timeline again.
        return due

    async def _start_ahead(
        self, entries: collections.deque[JobEntry], at: datetime, begun: float
    ) -> None:
        """Schedule and claim the fires of `entries`, due at `at`, chunk by chunk until
        `at` comes; wait for it, then launch them chunk by chunk, as a tick would (those
        still unclaimed then are claimed and launched one chunk after another, as in a
        tick). Stopping before `at` records the fires claimed `cancelled`: this node
        claimed them, so no other node will run them.

        The event loop runs after each `ahead.CLAIM_SLICE` fires claimed: the rest of the
        process (running handlers, the dashboard, heartbeats) must not wait for all of an
        instant's claims, 155 ms at 10,000 jobs. Only the `Claimed` lists of the chunks stay
        until `at`. `begun`: when the loop began taking them (`clock.monotonic()`); the time
        from then until the last claim sets the next crowded instant's lead.

        From `at` until the last chunk is launched, the runs that succeed are held and
        recorded after (`HeldSuccesses`): the instant's last handlers start sooner. Two of
        these never overlap (the loop waits for this task before its next tick), so one
        `_held` is enough."""
        clock = self.clock
        claimed: collections.deque[Claimed] = collections.deque()
        count, turn_at = 0, ahead.CLAIM_SLICE
        try:
            while entries and clock.now() < at:
                due = self._take_due(entries, at)
                count += len(due)
                chunk = await self._claim_fires(due, at, ahead=True) if due else None
                if chunk is not None:
                    claimed.append(chunk)
                if count >= turn_at:
                    turn_at = count + ahead.CLAIM_SLICE
                    await asyncio.sleep(0)
            if count:
                self._ahead_s_per_fire = (clock.monotonic() - begun) / count
            await self._sleep_unless_halted(at)
            if not self._stopping:
                # The instant has come: its runs are dispatched, so `drain()` waits for it.
                launching = asyncio.current_task()
                assert launching is not None
                self._tasks.add(launching)
                self._held = HeldSuccesses()  # recorded once all are launched
            while (claimed or entries) and not self._stopping:
                if claimed:
                    self._launch_fires(claimed.popleft())
                elif due := self._take_due(entries, at):
                    # Not claimed in time: claimed and launched as in a tick.
                    chunk = await self._claim_fires(due, at, ahead=True)
                    if chunk is not None:
                        self._launch_fires(chunk)
                await asyncio.sleep(0)  # as a tick's chunks: the runs of one go first
        finally:
            while claimed:
                self._launch_fires(claimed.popleft(), cancel_reason="scheduler stopped")
            self._release_held()

    async def _sleep_unless_halted(self, until: datetime) -> None:
        """Sleep until `until`, or until `stop()` begins."""
        assert self._halting is not None
        sleeper = asyncio.ensure_future(self.clock.sleep_until(until))
        halted = asyncio.ensure_future(self._halting.wait())
        try:
            await asyncio.wait({sleeper, halted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            halted.cancel()

    def _admit_due(self, due: list[DueFire], now: datetime) -> None:
        """Admit a tick's chunk of due fires in a task of its own.

        Called by the loop only, which looks at the timeline again before it sleeps: the
        next fires `_due_guarded` queued (`_queue_next`) need no wake-up. Setting
        `_wakeup` here made the loop go round once more after every tick (an idle
        scheduler's costliest turn, the whole loop's code run cold once a second)."""
        self._admit_tick(self._start_fires(due, now))

    def _admit_tick(
        self, tick: Coroutine[Any, Any, None], *, drained: bool = True
    ) -> asyncio.Task[None]:
        """Run a tick's admission in its own task; the next tick waits for it, and so does
        `drain()` if `drained`."""
        task = asyncio.get_running_loop().create_task(tick)
        if drained:
            self._tasks.add(task)
        self._admitting.add(task)
        task.add_done_callback(self._admitted)
        return task

    def _admitted(self, task: asyncio.Task[None]) -> None:
        self._admitting.discard(task)
        self._task_done(task)

    def _misfired(
        self, entry: JobEntry, first: datetime, now: datetime, due: list[DueFire]
    ) -> None:
        job = entry.job
        walked = missed_fires(
            lambda t: self._next_after(entry, t),
            first,
            now,
            grace_s=job.misfire.grace_s,
            window_s=job.misfire.catchup_window_s,
            keep=job.misfire.max_catchup,
        )
        late, count, on_time = list(walked.late), walked.count, list(walked.on_time)
        if len(on_time) > 1 and job.misfire.policy != "run_all":
            # Several fires within grace at once (a sleep shorter than a grace longer than
            # the job's period, or an every-second job woken mid-second): they are missed
            # like the later ones, and only the newest runs. Never a burst.
            late.extend(on_time[:-1])
            count += len(on_time) - 1
            on_time = on_time[-1:]
        decision = decide_misfire(late, now, job.misfire, missed_count=count)
        latest = max([*late, *on_time]) if (late or on_time) else first
        entry.last_fire = latest
        if decision.latest is not None:
            self.events.publish(
                RunMissed(
                    at=now,
                    job_id=job.id,
                    run_id="",
                    scheduled_for=decision.latest,
                    node_id=self.node_id,
                    missed=decision.missed,
                    action=job.misfire.policy,
                )
            )
        fires = list(decision.run)
        if on_time and job.misfire.policy == "run_once":
            fires = []  # the on-time fire absorbs the coalesced one
        fires.extend(on_time)
        skip_recorded = job.misfire.policy == "skip" and decision.latest is not None
        if skip_recorded:
            entry.fires += 1  # its record counts, as after a restart (`max_runs`)
        if job.max_runs is not None:
            fires = fires[: max(0, job.max_runs - entry.fires)]
        entry.fires += len(fires)
        self._schedule_next(entry, self._next_after(entry, now), now)
        if skip_recorded:
            assert decision.latest is not None
            self._spawn(self._record_skip_claimed(entry, decision.latest, SkipReason.misfire))
        # Planned for their own time, not `now`: `ctx.lateness_s` says how late they run.
        if len(fires) == 1:  # claimed with the tick's on-time fires
            due.append((entry, fires[0], fires[0]))
        elif fires:
            self._begin_catch_up(entry, fires)

    def _next_after(self, entry: JobEntry, after: datetime) -> datetime | None:
        job = entry.job
        if job.max_runs is not None and entry.fires >= job.max_runs:
            return None
        if entry.last_fire is not None and after < entry.last_fire:
            after = entry.last_fire
        return next_nominal_fire(job, after)

    def _schedule_next(self, entry: JobEntry, fire: datetime | None, now: datetime) -> None:
        self._queue_next(entry, fire, entry.job.max_runs)
        if self._wakeup is not None:
            self._wakeup.set()

    def _queue_next(self, entry: JobEntry, fire: datetime | None, max_runs: int | None) -> None:
        """`_schedule_next` without waking the loop: for the due fires `_due_guarded` takes,
        whose callers need no wake-up (`_admit_due`, `_take_due`).
        `max_runs`: the job's, read by the caller."""
        job = entry.job
        if max_runs is not None and entry.fires >= max_runs:
            fire = None
        entry.next_fire = fire
        entry.wake = None
        if fire is None:
            self._timeline.drop(entry)
            return
        wake = fire
        jitter_s = job._options.jitter_s  # (the slot, not the property: once per fire)
        if jitter_s > 0:
            following = next_nominal_fire(job, fire)
            wake = fire + timedelta(seconds=jitter_delay(jitter_s, fire, following, self.rng))
            entry.wake = wake
        self._timeline.push(entry, wake)

    def _schedule_from(self, entry: JobEntry, now: datetime) -> None:
        if entry.paused or entry.dormant or entry.job.is_reboot or not entry.job.enabled:
            self._timeline.drop(entry)
            entry.next_fire = None
            return
        self._schedule_next(entry, self._next_after(entry, now), now)

    def _schedule_initial(self, entry: JobEntry, now: datetime) -> None:
        """At start: from `last_fire` (so fires missed while down are found), else now."""
        if entry.paused or entry.dormant or entry.job.is_reboot or not entry.job.enabled:
            entry.next_fire = None
            return
        if entry.last_fire is not None:
            self._schedule_next(entry, self._next_after(entry, entry.last_fire), now)
        elif entry.next_fire is not None and entry.next_fire <= now:
            # It was due while we were down and never fired.
            self._schedule_next(entry, entry.next_fire, now)
        else:
            self._schedule_new(entry, now)

    def _schedule_new(self, entry: JobEntry, now: datetime) -> None:
        """`_schedule_from` for a job scheduled anew (added, defined in code, or given a new
        trigger), except that a one-off (`Date`) whose instant has come already, and that
        has not fired since, is due at once: within its grace it runs, later its misfire
        policy decides. Scheduled from now, it would never fire, without a record."""
        trigger = entry.job.trigger
        if (
            isinstance(trigger, Date)
            and trigger.at <= now
            and (entry.last_fire is None or trigger.at > entry.last_fire)
            and not (entry.paused or entry.dormant or not entry.job.enabled)
            # (its `start`, `end` and `max_runs` allow it)
            and self._next_after(entry, trigger.at - _ONE_US) == trigger.at
        ):
            self._schedule_next(entry, trigger.at, now)
        else:
            self._schedule_from(entry, now)

    # == job changes ====================================================================
    def _replace_job(self, entry: JobEntry, job: Job) -> None:
        old = entry.job
        was_dormant = entry.dormant is not None
        entry.job = job
        entry.dormant = None
        name = old.circuit_name
        if (
            job.circuit is None
            and name is not None
            and name in self._circuits
            and not self._circuit_shared(name, entry)
        ):
            del self._circuits[name]
        if self._running:
            if was_dormant or _timing(old) != _timing(job):
                self._schedule_new(entry, self.clock.now())
            definition = job_to_definition(job)
            self._enqueue_write(lambda: self._save(StoredJob(id=job.id, definition=definition)))

    def _circuit_shared(self, name: str, entry: JobEntry) -> bool:
        """True when a job other than `entry`'s uses the breaker `name` (shared by name: its
        state is theirs too, and outlives one job dropping it)."""
        return any(
            other is not entry and other.job.circuit_name == name
            for other in self._entries.values()
        )

    # == helpers ========================================================================
    def _entry(self, job_id: str) -> JobEntry:
        if not isinstance(job_id, str):  # (`pause(["j"])` would raise "unhashable type")
            raise JobNotFoundError(job_id)
        entry = self._entries.get(job_id)
        if entry is None:
            raise JobNotFoundError(job_id)
        return entry

    def _view(self, entry: JobEntry) -> JobView:
        return JobView(
            job=entry.job,
            paused=entry.paused,
            pause_note=entry.pause_note,
            next_run=entry.next_fire,
            last_fire=entry.last_fire,
            active_runs=len(entry.active),
            pending_fires=entry.pending_count,
            unavailable=entry.dormant,
            progress=_progress_of(entry),
        )
