"""Keeping the store in step with the scheduler's jobs (a mixin of `Scheduler`).

Invariants:

* Configuration calls (`add_job`, `update`, `pause`, ...) are synchronous; once started,
  their store writes go through one FIFO writer task, so they land in call order. The one
  exception: the jobs added between two other writes are independent of each other, so
  they form one write that stores them `tasks.CHUNK` at a time (a store
  that groups commits, like SQLite's writer, then needs a few transactions instead of one
  per job, and a queued job costs one small tuple, not a closure).
* A job added while running is in the store before any of its fires is recorded (stores
  may reference jobs from runs): its fires wait for the write (`JobEntry.unsaved`).
* A write the store refuses (`StoreError`: locked, unreachable) is tried again, after a
  delay that doubles up to `WRITE_RETRY_MAX_S`, until it lands; the writes queued after it
  wait (call order), and `flush()` returns only once they are all in. Nothing is dropped
  while the scheduler runs; once it is stopping, each write is tried once more, and one
  still refused is logged as not saved. Any other error is a bug in that write: logged,
  not retried.
* On start, stored jobs come back through the job codec; a job from code with the same id
  is merged by the conflict policy (`replace` keeps history, pause state and last fire).
* While running on a store other processes can change (SQLite, Redis), the scheduler reads
  the store's `jobs.changed` token every `watch_jobs_s` and, when it moved (`agentcron jobs
  add/pause/resume/remove/import/reload` set it), applies the store's jobs (`reload_jobs`).
  Its own changes are in the store before it reads the jobs, so a reload never undoes one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from agentcron.clock import Clock
from agentcron.engine.active import JobEntry
from agentcron.jobs import (
    Job,
    UnavailableHandler,
    job_from_definition,
    job_to_definition,
    update_job,
)
from agentcron.models import ConflictPolicy, RunQuery, StoredJob
from agentcron.policies.errors import JobConfigError
from agentcron.store.base import JobConflictError, Store, StoreError
from agentcron.tasks import map_in_chunks

__all__ = ["StoreSync", "store_available", "store_data_losses", "wait_store"]

log = logging.getLogger("agentcron.engine")

_ACTOR = "code"
#: From this many new jobs at once, `_persist_new_jobs` reads the stored jobs in one call.
_READ_ALL_FROM = 1000
#: How often a running scheduler reads the store's `jobs.changed` token (`watch_jobs_s`).
WATCH_JOBS_S = 2.0
#: A write the store refused is tried again after this, then after twice as long each time,
#: up to `WRITE_RETRY_MAX_S` (on the scheduler's clock).
WRITE_RETRY_FIRST_S = 1.0
WRITE_RETRY_MAX_S = 30.0


class NewJobs(list[JobEntry]):
    """Jobs added while running, stored together by one queued write. `policy` is the
    conflict policy of the jobs added without one (the scheduler's, when they were added)."""

    __slots__ = ("policy",)

    def __init__(self, policy: ConflictPolicy) -> None:
        super().__init__()
        self.policy: ConflictPolicy = policy


def store_available(store: Store) -> bool:
    """False while a store that tracks its connection (`RedisStore.available`) is down."""
    return bool(getattr(store, "available", True))


async def store_data_losses(store: Store) -> int:
    """How many times a store that can lose what it holds (a Redis restarted without
    persistence, or flushed: `RedisStore.notice_data_loss`, asked here first) found that it
    had; 0 for the others."""
    notice = getattr(store, "notice_data_loss", None)
    if notice is not None:
        await notice()
    return int(getattr(store, "data_losses", 0))


async def wait_store(store: Store) -> None:
    wait = getattr(store, "wait_available", None)
    if wait is not None:
        await wait()


class StoreSync:
    """The persistence half of `Scheduler` (see the module docstring)."""

    store: Store
    clock: Clock
    conflict: ConflictPolicy
    _entries: dict[str, JobEntry]
    _tasks: set[asyncio.Task[Any]]
    _writes: asyncio.Queue[Callable[[], Awaitable[None]]] | None
    #: The jobs added since the last other write, stored together by one queued write.
    _new_jobs: NewJobs | None
    _writer_task: asyncio.Task[None] | None
    _save_waiters: dict[str, list[asyncio.Future[None]]]
    #: pause/resume/remove called before start, applied once stored jobs are loaded.
    _early_pauses: dict[str, tuple[bool, str | None]]
    _early_removed: set[str]
    _stopping: bool
    #: How many writes were queued so far (`reload_jobs` reads the jobs between two).
    _writes_queued: int

    async def _sleep_unless_halted(self, until: datetime) -> None:
        raise NotImplementedError

    def _next_after(self, entry: JobEntry, after: datetime) -> datetime | None:
        raise NotImplementedError

    def _first_fire_after(self, entry: JobEntry, after: datetime) -> datetime | None:
        try:
            return self._next_after(entry, after)
        except Exception:  # a trigger bug: scheduled from now, where it is made dormant
            return None

    def _schedule_from(self, entry: JobEntry, now: datetime) -> None:
        raise NotImplementedError

    async def reload_jobs(self) -> int:
        raise NotImplementedError

    async def _cancel_active(self, entry: JobEntry, reason: str) -> None:
        raise NotImplementedError

    async def _reconcile(self) -> None:
        """Bring stored jobs back and merge the jobs defined in code (conflict policy), then
        apply what was decided before start (pause, resume, remove)."""
        stored = {s.id: s for s in await self.store.list_jobs()}
        for job_id in self._early_removed:
            if stored.pop(job_id, None) is not None:
                await self.store.delete_job(job_id, actor=_ACTOR)
        for job_id, entry in list(self._entries.items()):
            existing = stored.pop(job_id, None)
            await self._merge(entry, existing, entry.conflict or self.conflict)
        for job_id, existing in stored.items():
            try:
                job = self._restored_job(existing, fallback=None)
            except JobConfigError as exc:
                log.error("stored job %s is invalid and stays unscheduled: %s", job_id, exc)
                continue
            entry = JobEntry(job=job)
            if isinstance(job.handler, UnavailableHandler):
                entry.dormant = job.handler.reason
            self._adopt_state(entry, existing)
            if existing.next_run is None and existing.last_fire is None and existing.created_at:
                # Stored with no scheduling state (`agentcron jobs add` or `jobs import`
                # while no scheduler ran): its first fire is the first after it was stored,
                # so one that fell before this start is missed (the misfire policy), not
                # dropped by scheduling from now.
                entry.next_fire = self._first_fire_after(entry, existing.created_at)
            self._entries[job_id] = entry
        for job_id, (paused, note) in self._early_pauses.items():
            decided = self._entries.get(job_id)
            if decided is not None:
                decided.paused, decided.pause_note = paused, note
                await self.store.set_paused(job_id, paused, note=note, actor=_ACTOR)
        self._early_pauses.clear()
        self._early_removed.clear()
        for entry in self._entries.values():
            if entry.job.max_runs is not None:
                entry.fires = await self.store.count_runs(RunQuery(job_id=entry.job.id))

    async def _restore_jobs(self) -> None:
        """Write every job back, with its pause and scheduling state, after the store lost
        them (`store_data_losses`). `keep`: a job another node wrote back first stays."""

        async def restore(entry: JobEntry) -> None:
            if entry.removed or entry.unsaved:
                return
            stored = StoredJob(
                id=entry.job.id,
                definition=job_to_definition(entry.job),
                paused=entry.paused,
                pause_note=entry.pause_note,
                next_run=entry.next_fire,
                last_fire=entry.last_fire,
            )
            await self.store.save_job(stored, actor=_ACTOR, conflict="keep")

        await map_in_chunks(restore, list(self._entries.values()))

    async def _merge(
        self, entry: JobEntry, existing: StoredJob | None, policy: ConflictPolicy
    ) -> None:
        job_id = entry.job.id
        definition = job_to_definition(entry.job)
        if existing is None:
            await self.store.save_job(StoredJob(id=job_id, definition=definition), actor=_ACTOR)
            return
        if existing.definition != definition:
            if policy == "error":
                raise JobConflictError(
                    f"job {job_id!r} in the store differs from the one in code "
                    "(conflict='error'); use conflict='replace' or 'keep'"
                )
            if policy == "keep":
                entry.job = self._restored_job(existing, fallback=entry.job)
            else:
                await self.store.save_job(
                    StoredJob(id=job_id, definition=definition), actor=_ACTOR, conflict="replace"
                )
        self._adopt_state(entry, existing)

    def _restored_job(self, stored: StoredJob, fallback: Job | None) -> Job:
        job = job_from_definition(stored.id, stored.definition)
        if isinstance(job.handler, UnavailableHandler) and fallback is not None:
            job = update_job(job, handler=fallback.handler)
        return job

    @staticmethod
    def _adopt_state(entry: JobEntry, stored: StoredJob) -> None:
        entry.last_fire = stored.last_fire
        entry.next_fire = stored.next_run
        entry.paused, entry.pause_note = stored.paused, stored.pause_note

    async def _persist_new(
        self,
        entry: JobEntry,
        policy: ConflictPolicy,
        stored: dict[str, StoredJob] | None = None,
    ) -> None:
        """Store a job added while running. `stored`: the store's jobs as read for the whole
        batch (`_persist_new_jobs`), else this job is read here."""
        try:
            job_id = entry.job.id
            definition = job_to_definition(entry.job)
            inserted = False
            # The scheduling state the insert wrote with the job (None: none written).
            written: tuple[datetime | None, datetime | None] | None = None
            if stored is None:
                existing = await self.store.get_job(job_id)
            elif (existing := stored.get(job_id)) is None:
                written = (entry.next_fire, entry.last_fire)
                existing, inserted = await self._insert_new(job_id, definition, *written)
            if existing is not None and existing.definition != definition and policy == "error":
                log.error(
                    "job %s conflicts with the stored one (conflict='error'); kept stored", job_id
                )
                entry.job = self._restored_job(existing, fallback=entry.job)
            elif existing is not None and policy == "keep":
                entry.job = self._restored_job(existing, fallback=entry.job)
            elif not inserted:
                await self.store.save_job(StoredJob(id=job_id, definition=definition), actor=_ACTOR)
            if existing is not None and not entry.removed:
                # Another node stored it meanwhile: continue from its state.
                self._adopt_state(entry, existing)
                self._schedule_from(entry, self.clock.now())
            state_written = inserted and written == (entry.next_fire, entry.last_fire)
            if not entry.removed and not state_written:
                await self.store.set_job_state(
                    job_id, next_run=entry.next_fire, last_fire=entry.last_fire
                )
        except StoreError:
            if self._stopping:
                self._mark_saved(entry)
            raise  # still unsaved: its fires wait for the write's next try
        except BaseException:
            self._mark_saved(entry)  # a bug, or cancelled: not tried again
            raise
        self._mark_saved(entry)

    def _mark_saved(self, entry: JobEntry) -> None:
        """The write of a job added while running is over: its waiting fires go on."""
        entry.unsaved = False
        for waiter in self._save_waiters.pop(entry.job.id, ()):
            if not waiter.done():
                waiter.set_result(None)

    async def _store_next_runs(self, entries: list[JobEntry]) -> None:
        async def store_next_run(entry: JobEntry) -> None:
            if not entry.removed:
                await self.store.set_job_state(
                    entry.job.id, next_run=entry.next_fire, last_fire=entry.last_fire
                )

        await map_in_chunks(store_next_run, entries)

    async def _save(self, stored: StoredJob) -> None:
        await self.store.save_job(stored, actor=_ACTOR, conflict="replace")

    async def _store_pause(self, job_id: str, paused: bool, note: str | None) -> None:
        await self.store.set_paused(job_id, paused, note=note, actor=_ACTOR)
        entry = self._entries.get(job_id)
        if entry is not None:
            await self.store.set_job_state(
                job_id, next_run=entry.next_fire, last_fire=entry.last_fire
            )

    async def _delete(self, entry: JobEntry) -> None:
        await self._cancel_active(entry, "job removed")
        await self.store.delete_job(entry.job.id, actor=_ACTOR)

    async def _saved(self, entry: JobEntry) -> None:
        """Wait until a job added while running is in the store (runs reference it)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._save_waiters.setdefault(entry.job.id, []).append(waiter)
        await waiter

    async def flush(self) -> None:
        """Wait until every change made so far (add, update, pause, ...) is in the store."""
        await self._flush_writes()

    async def drain(self) -> None:
        """Wait until every fire dispatched so far has finished (its run recorded) and every
        change is in the store. Runs still waiting for time (retries, delays) are waited
        for too, so with a virtual clock call it once time has been advanced past them."""
        while pending := {t for t in self._tasks if not t.done()}:
            await asyncio.wait(pending)
        await self._flush_writes()

    def _enqueue_write(self, write: Callable[[], Awaitable[None]]) -> None:
        assert self._writes is not None
        self._new_jobs = None  # jobs added from now on are stored after this write
        self._writes_queued += 1
        self._writes.put_nowait(write)

    def _enqueue_new_job(self, entry: JobEntry) -> None:
        """Store `entry` with its conflict policy (`entry.conflict`, else the scheduler's)."""
        assert self._writes is not None
        self._writes_queued += 1
        batch = self._new_jobs
        if batch is None or batch.policy != self.conflict:
            new = NewJobs(self.conflict)
            batch = self._new_jobs = new
            self._writes.put_nowait(lambda: self._persist_new_jobs(new))
        # The entry alone (its policy is `entry.conflict`, else the batch's): no tuple per job.
        batch.append(entry)

    async def _insert_new(
        self,
        job_id: str,
        definition: dict[str, Any],
        next_run: datetime | None,
        last_fire: datetime | None,
    ) -> tuple[StoredJob | None, bool]:
        """Insert a job that was not stored when its batch read the store, with its
        scheduling state (one round trip instead of two): (None, True) if it is ours now,
        else (the job another node stored since, False). `keep` inserts atomically or
        returns the stored job, so the batch's read cannot be stale. A job another node
        stored with the same definition and state is taken as ours: adopting its state
        would change nothing."""
        saved = await self.store.save_job(
            StoredJob(id=job_id, definition=definition, next_run=next_run, last_fire=last_fire),
            actor=_ACTOR,
            conflict="keep",
        )
        if (
            saved.definition == definition
            and saved.next_run == next_run
            and saved.last_fire == last_fire
        ):
            return None, True
        return saved, False

    async def _persist_new_jobs(self, batch: NewJobs) -> None:
        """Store a batch of jobs added while running. For a large batch the stored jobs are
        read once (`list_jobs`) instead of one `get_job` per job: each is a round trip, and
        on SQLite those were a third of storing 100,000 jobs."""
        stored: dict[str, StoredJob] | None = None
        if len(batch) >= _READ_ALL_FROM:
            stored = {job.id: job for job in await self.store.list_jobs()}
        refused: list[tuple[JobEntry, StoreError]] = []

        async def persist(entry: JobEntry) -> None:
            try:
                await self._persist_new(entry, entry.conflict or batch.policy, stored)
            except StoreError as exc:  # tried again, with the batch's other refused jobs
                refused.append((entry, exc))
            except Exception:  # one job's failure must not keep the others out
                log.exception("store write failed")

        done = 0
        while done < len(batch):  # jobs may join the batch while it is being stored
            chunk = batch[done:]
            done += len(chunk)
            await map_in_chunks(persist, chunk)
        if self._new_jobs is batch:  # stored: let go of it (jobs added later start a new one)
            self._new_jobs = None
        # What is left is what the store refused (the writer may hold the queued write
        # until the next one, and tries it again with only these).
        batch[:] = [entry for entry, _ in refused]
        if refused:
            raise refused[0][1]

    async def _stored_jobs_settled(self) -> dict[str, StoredJob]:
        """The store's jobs, read after this scheduler's own changes are written, and read
        again if one was made while they were being read (`Scheduler.reload_jobs`): a change
        not in the store yet is never taken for one the store undid."""
        while True:
            await self._flush_writes()
            queued = self._writes_queued
            stored = {s.id: s for s in await self.store.list_jobs()}
            if queued == self._writes_queued:
                return stored

    async def _watch_jobs(self, every_s: float) -> None:
        """Reload the jobs (`reload_jobs`) whenever the store's `jobs.changed` token moves,
        read every `every_s` on the clock; a store that cannot be read is tried at the next
        read (logged once per outage)."""
        from agentcron.control import JOBS_CHANGED_KEY

        seen: str | None = None
        known = False  # (the token at start is the baseline, read when the store answers)
        failing = False
        while True:
            try:
                token = await self.store.get_state(JOBS_CHANGED_KEY)
                if known and token != seen:
                    changed = await self.reload_jobs()
                    log.info("jobs reloaded from the store (%d changed)", changed)
                seen, known, failing = token, True, False
            except Exception as exc:
                if not failing:
                    log.warning("cannot read the store's job changes; trying again: %s", exc)
                failing = True
            await self.clock.sleep(every_s)

    async def _writer(self) -> None:
        assert self._writes is not None
        while True:
            write = await self._writes.get()
            try:
                await self._write_until_stored(write)
            finally:
                self._writes.task_done()

    async def _write_until_stored(self, write: Callable[[], Awaitable[None]]) -> None:
        """Run one queued write; one the store refuses is tried again until it lands (see
        the module docstring). Every write is one the store can take twice: it sets a
        job, its state or its pause, or deletes it."""
        delay_s = WRITE_RETRY_FIRST_S
        refusals = 0
        while True:
            try:
                await write()
            except StoreError as exc:
                refusals += 1
                if self._stopping:
                    log.error("a change to the jobs was not saved before the stop: %s", exc)
                    return
                if refusals == 1:
                    log.warning(
                        "the store refused a change to the jobs; trying again until it takes"
                        " it (later changes wait): %s",
                        exc,
                    )
                await self._sleep_unless_halted(self.clock.now() + timedelta(seconds=delay_s))
                delay_s = min(2 * delay_s, WRITE_RETRY_MAX_S)
            except Exception:
                log.exception("store write failed")
                return
            else:
                if refusals:
                    log.warning("the store took the change after %d refusal(s)", refusals)
                return

    async def _flush_writes(self) -> None:
        if (
            self._writes is not None
            and self._writer_task is not None
            and not self._writer_task.done()
        ):
            await self._writes.join()
