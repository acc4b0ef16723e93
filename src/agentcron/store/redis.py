"""`RedisStore`: the `Store` contract on one Redis server, for several machines (extra `redis`).

Keys (all under a configurable prefix, default ``agentcron``, so deployments can share a
server; ``{p}`` below)::

    {p}:meta                  hash   app + schema version (the marker checked at open), and
                                     an epoch made anew with each marker (lost data)
    {p}:jobs / {p}:jobstate   hash   job id -> definition JSON / {next_run, last_fire}
    {p}:run:<run_id>          hash   d (record JSON), f fence, s status, n node, l lease, j job
    {p}:runs, {p}:runs:<job>  zset   run ids by scheduled_for (us): paging, ranges, bounds
    {p}:runjobs               set    job ids that have runs (pruning)
    {p}:leases                zset   running run ids by lease expiry (us)
    {p}:claim:<job>:<us>      string "<call token> <node>": who claimed the occurrence, in
                                     which call (SET NX EX; see `claim_fn.lua`)
    {p}:claims:<job>          zset   that job's claim keys (so deleting a job drops them)
    {p}:audit, {p}:audit:<job> list  audit entries, newest first, trimmed
    {p}:state / {p}:nodes     hash   system state / latest heartbeat per node

Every multi-key change is one Lua script or one MULTI/EXEC (WATCHed when it reads first).
Claims, fencing and takeover are decided in Lua, so they are exclusive across processes.
Redis Cluster is not supported (scripts touch keys they compute); use one primary.

**Connection loss.** A command that cannot reach Redis raises `StoreUnavailableError`
and flips `available` to False; a probe then pings with capped exponential backoff (on the
injected clock) until Redis answers. The engine stops claiming while `available` is False
(see `wait_available`). `record_run` and `renew_lease` are idempotent, so they retry
through an outage for up to `write_retry_s`: a run that finished while Redis was away is
recorded when it comes back instead of being taken over and run twice.

The parts: `redis_connection` (open, check, outages, retries), `redis_codec` (values), the
Lua scripts in `redis_lua/`.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

import redis.exceptions as rex

from agentcron.clock import Clock
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
from agentcron.store import redis_codec as codec
from agentcron.store.base import JobConflictError
from agentcron.store.checks import check_keep, check_paging, definition_json
from agentcron.store.redis_connection import (
    SCHEMA_VERSION,
    RedisConnection,
    StoreUnavailableError,
    mask_url,
)
from agentcron.store.run_stats import stats_from_runs

__all__ = ["SCHEMA_VERSION", "RedisStore", "StoreUnavailableError", "mask_url"]

_FINAL_SKIP = ("running", "scheduled")
log = logging.getLogger("agentcron.store.redis")
R = TypeVar("R")


def _readable(what: str, read: Callable[..., R], *args: Any) -> R | None:
    """`read(*args)`, or None (logged) when the value it reads is unreadable: a record
    edited by hand or written by something else is skipped by reads, never an error of the
    caller."""
    try:
        return read(*args)
    except codec.BadRecord as exc:
        log.error("Redis store: %s is unreadable and skipped: %s", what, exc)
        return None


def _claim_value(node_id: str) -> str:
    """What a claim holds: a token of this call, then the node (see `claim_fn.lua`)."""
    return f"{secrets.token_hex(8)} {node_id}"


class RedisStore(RedisConnection):
    """The `Store` contract on Redis; see the module docstring for keys and guarantees.

    `url`: ``redis://[:password@]host:port/db`` or ``rediss://`` (TLS); the query may set
    ``prefix=``. `max_runs_per_job` bounds each job's run log (oldest final runs go first);
    `claim_ttl_s` is how long an occurrence claim is kept.
    """

    #: Each `start_fires` is a round trip to the server: few, large calls per tick.
    fire_batch = 256

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "agentcron",
        clock: Clock | None = None,
        max_runs_per_job: int = 10_000,
        max_audit: int = 10_000,
        claim_ttl_s: int = 14 * 86_400,
        socket_timeout_s: float = 5.0,
        write_retry_s: float = 60.0,
        max_backoff_s: float = 2.0,
    ) -> None:
        super().__init__(
            url,
            prefix=prefix,
            clock=clock,
            socket_timeout_s=socket_timeout_s,
            write_retry_s=write_retry_s,
            max_backoff_s=max_backoff_s,
        )
        self.max_runs_per_job = max_runs_per_job
        self.max_audit = max_audit
        self.claim_ttl_s = claim_ttl_s

    @classmethod
    def from_url(cls, url: str, *, clock: Clock | None = None) -> RedisStore:
        return cls(url, clock=clock)

    # -- jobs ----------------------------------------------------------------------------
    def _audit_into(
        self,
        pipe: Any,
        job_id: str,
        action: str,
        actor: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        entry = codec.audit_data(
            AuditEntry(
                job_id=job_id,
                action=action,
                actor=actor,
                at=self.clock.now(),
                before=before,
                after=after,
            )
        )
        for key in (self._audit, self._job_audit(job_id)):
            pipe.lpush(key, entry)
            pipe.ltrim(key, 0, self.max_audit - 1)

    async def save_job(
        self, job: StoredJob, *, actor: str, conflict: ConflictPolicy = "replace"
    ) -> StoredJob:
        # A new id, the common case, is one script call. It also stores the state a new job
        # is saved with (`delete_job` and `set_state.lua` leave no state without a job, so
        # none given means none stored). The transaction below WATCHes the whole jobs hash,
        # so it starts over whenever any other job is written meanwhile: jobs registered
        # together kept restarting each other's (20,000 jobs took 24 s).
        definition_json(job)  # refused before anything is written, as by the other stores
        now = self.clock.now()
        new_job = job.evolve(created_at=job.created_at or now, updated_at=now, version=1)
        has_state = new_job.next_run is not None or new_job.last_fire is not None
        added = codec.audit_data(
            AuditEntry(
                job_id=job.id,
                action="added",
                actor=actor,
                at=now,
                before=None,
                after=new_job.definition,
            )
        )
        async with self._op():
            found = await self._scripts["add_job"](
                keys=[self._jobs, self._jobstate, self._audit, self._job_audit(job.id)],
                args=[
                    job.id,
                    codec.job_data(new_job),
                    codec.job_state(new_job) if has_state else "",
                    added,
                    self.max_audit,
                ],
            )
        if found is None:
            return new_job
        old = _readable(f"job {job.id!r}", codec.job_from, job.id, found[0], found[1])
        if old is None:  # unreadable: what is saved now replaces it, whatever `conflict`
            return await self._overwrite_job(new_job, actor)
        if conflict == "keep" or (conflict == "replace" and old.definition == job.definition):
            return old
        if conflict == "error":
            raise JobConflictError(f"a job with id {job.id!r} already exists")

        async def replace(pipe: Any) -> StoredJob | None:
            raw, state = (
                await pipe.hget(self._jobs, job.id),
                await pipe.hget(self._jobstate, job.id),
            )
            if raw is None:  # deleted since the script looked: insert it after all
                return None
            now = self.clock.now()
            old = _readable(f"job {job.id!r}", codec.job_from, job.id, raw, state)
            if old is None:
                return await self._overwrite_job(new_job, actor)
            if old.definition == job.definition:
                return old
            new = old.evolve(definition=job.definition, updated_at=now, version=old.version + 1)
            pipe.multi()
            pipe.hset(self._jobs, job.id, codec.job_data(new))
            self._audit_into(pipe, job.id, "updated", actor, old.definition, new.definition)
            return new

        replaced = cast("StoredJob | None", await self._transaction([self._jobs], replace))
        return replaced or await self.save_job(job, actor=actor, conflict=conflict)

    async def _overwrite_job(self, job: StoredJob, actor: str) -> StoredJob:
        """Store `job` over an unreadable record of its id (its state and history kept)."""
        async with self._op() as client:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hset(self._jobs, job.id, codec.job_data(job))
                self._audit_into(pipe, job.id, "updated", actor, None, job.definition)
                await pipe.execute()
        log.warning("Redis store: unreadable job %r replaced by the one saved now", job.id)
        return job

    async def get_job(self, job_id: str) -> StoredJob | None:
        """None also for a job whose record is unreadable (logged)."""
        async with self._op() as client:
            async with client.pipeline(transaction=False) as pipe:
                pipe.hget(self._jobs, job_id).hget(self._jobstate, job_id)
                raw, state = await pipe.execute()
        if raw is None:
            return None
        return _readable(f"job {job_id!r}", codec.job_from, job_id, raw, state)

    async def list_jobs(self) -> list[StoredJob]:
        """Every readable job, by id; unreadable ones are skipped (logged)."""
        async with self._op() as client:
            async with client.pipeline(transaction=False) as pipe:
                pipe.hgetall(self._jobs).hgetall(self._jobstate)
                jobs, states = await pipe.execute()
        out = []
        for key in sorted(jobs):  # UTF-8 bytes sort as their code points: the order of ids
            job = _readable(_named("job", key), _job_at, key, jobs[key], states.get(key))
            if job is not None:
                out.append(job)
        return out

    async def delete_job(self, job_id: str, *, actor: str) -> bool:
        runs_key, claims_key = self._job_runs(job_id), self._claims(job_id)

        async def body(pipe: Any) -> bool:
            raw = await pipe.hget(self._jobs, job_id)
            if raw is None:
                return False
            stored = _readable(f"job {job_id!r}", codec.job_from, job_id, raw, None)
            definition = None if stored is None else stored.definition
            run_ids = [i.decode() for i in await pipe.zrange(runs_key, 0, -1)]
            claims = await pipe.zrange(claims_key, 0, -1)
            pipe.multi()
            pipe.hdel(self._jobs, job_id).hdel(self._jobstate, job_id)
            if run_ids:
                pipe.delete(*(self._run_key(i) for i in run_ids))
                pipe.zrem(self._runs, *run_ids).zrem(self._leases, *run_ids)
            if claims:
                pipe.delete(*claims)
            pipe.delete(runs_key, claims_key).srem(self._runjobs, job_id)
            self._audit_into(pipe, job_id, "removed", actor, definition, None)
            return True

        return bool(await self._transaction([self._jobs, runs_key, claims_key], body))

    async def set_paused(
        self, job_id: str, paused: bool, *, note: str | None = None, actor: str
    ) -> StoredJob | None:
        async def body(pipe: Any) -> StoredJob | None:
            raw, state = (
                await pipe.hget(self._jobs, job_id),
                await pipe.hget(self._jobstate, job_id),
            )
            if raw is None:
                return None
            try:
                old = codec.job_from(job_id, raw, state)
            except codec.BadRecord as exc:
                raise codec.BadRecord(
                    f"job {job_id!r} in {self.url} is unreadable ({exc}); save it again"
                ) from None
            new = old.evolve(
                paused=paused, pause_note=note if paused else None, updated_at=self.clock.now()
            )
            pipe.multi()
            pipe.hset(self._jobs, job_id, codec.job_data(new))
            self._audit_into(pipe, job_id, "paused" if paused else "resumed", actor, None, None)
            return new

        return cast("StoredJob | None", await self._transaction([self._jobs], body))

    async def set_job_state(
        self, job_id: str, *, next_run: datetime | None, last_fire: datetime | None
    ) -> None:
        state = codec.dumps({"next_run": codec.iso(next_run), "last_fire": codec.iso(last_fire)})
        async with self._op():
            await self._scripts["set_state"](
                keys=[self._jobs, self._jobstate], args=[job_id, state]
            )

    # -- claims --------------------------------------------------------------------------
    async def claim_fire(
        self, job_id: str, scheduled_for: datetime, node_id: str, *, now: datetime
    ) -> bool:
        key = self._claim_key(job_id, scheduled_for)
        forget = codec.us(now) - self.claim_ttl_s * 1_000_000
        async with self._op():
            won = await self._scripts["claim"](
                keys=[key, self._claims(job_id)],
                args=[_claim_value(node_id), self.claim_ttl_s, codec.us(scheduled_for), forget],
            )
        return bool(won)

    async def start_fires(
        self, fires: Sequence[FireStart], node_id: str, *, now: datetime
    ) -> list[bool]:
        """One script for the whole batch (`start.lua`): the claims, and the states and
        `running` records of those won, all or nothing, in one round trip."""
        if not fires:
            return []
        forget = codec.us(now) - self.claim_ttl_s * 1_000_000
        keys = [self._jobs, self._jobstate, self._runs, self._leases, self._runjobs]
        args: list[Any] = [
            _claim_value(node_id), self.claim_ttl_s, forget, self.max_runs_per_job,
            self._run_prefix,
        ]  # fmt: skip
        for f in fires:
            run = f.run
            state = {"next_run": codec.iso(f.next_run), "last_fire": codec.iso(f.last_fire)}
            keys += (self._claim_key(f.job_id, f.scheduled_for), self._claims(f.job_id))
            args += (codec.us(f.scheduled_for), f.job_id, codec.dumps(state))
            if run is None:
                keys += (self._run_key(""), self._job_runs(f.job_id))
                args += ("",) * 8
                continue
            lease = run.lease_expires_at
            keys += (self._run_key(run.run_id), self._job_runs(run.job_id))
            args += (
                run.run_id, codec.run_data(run), run.fence, str(run.status), run.node_id or "",
                codec.iso(lease) or "", codec.us(lease) if lease is not None else "",
                codec.us(run.scheduled_for),
            )  # fmt: skip
        async with self._op():
            won = await self._scripts["start"](keys=keys, args=args)
        return [bool(reply) for reply in won]

    # -- runs ----------------------------------------------------------------------------
    async def record_run(self, run: RunRecord) -> bool:
        keys, args = self._record_args(run)

        async def attempt() -> bool:
            async with self._op():
                return bool(await self._scripts["record"](keys=keys, args=args))

        return await self._retrying(attempt)

    async def record_runs(self, runs: Sequence[RunRecord]) -> list[bool]:
        """One pipelined round trip for all of `runs`."""
        if not runs:
            return []
        record = self._scripts["record"]

        async def attempt() -> list[bool]:
            async with self._op() as client:
                try:
                    return await batch(client)
                except rex.NoScriptError:
                    # Redis lost its scripts between the batch's check that they are loaded
                    # and the batch (it restarted, and redis-py sent the batch again): the
                    # batch checks again. Idempotent: the same records, fenced.
                    return await batch(client)

        async def batch(client: Any) -> list[bool]:
            async with client.pipeline(transaction=False) as pipe:
                for run in runs:
                    keys, args = self._record_args(run)
                    await record(keys=keys, args=args, client=pipe)
                return [bool(reply) for reply in await pipe.execute()]

        return await self._retrying(attempt)

    def _record_args(self, run: RunRecord) -> tuple[list[str], list[Any]]:
        lease = run.lease_expires_at
        keys = [
            self._run_key(run.run_id),
            self._runs,
            self._job_runs(run.job_id),
            self._leases,
            self._runjobs,
        ]
        args = [
            run.run_id,
            codec.run_data(run),
            run.fence,
            str(run.status),
            run.node_id or "",
            codec.iso(lease) or "",
            codec.us(lease) if lease is not None else "",
            codec.us(run.scheduled_for),
            run.job_id,
            self.max_runs_per_job,
            self._run_prefix,
        ]
        return keys, args

    async def get_run(self, run_id: str) -> RunRecord | None:
        async with self._op() as client:
            data, lease = await client.hmget(self._run_key(run_id), ["d", "l"])
        return None if data is None else self._run_or_none(data, lease)

    @staticmethod
    def _run_or_none(data: bytes, lease: bytes | None) -> RunRecord | None:
        return _readable("a run", codec.run_from, data, lease)

    def _range(self, query: RunQuery) -> tuple[str, str, str]:
        key = self._runs if query.job_id is None else self._job_runs(query.job_id)
        high = f"({codec.us(query.until)}" if query.until is not None else "+inf"
        low = str(codec.us(query.since)) if query.since is not None else "-inf"
        return key, high, low

    async def list_runs(self, query: RunQuery) -> list[RunRecord]:
        check_paging(query)
        key, high, low = self._range(query)
        async with self._op() as client:
            if query.statuses:
                args = [high, low, query.offset, query.limit, self._run_prefix]
                flat = await self._scripts["query"](
                    keys=[key], args=[*args, *(str(s) for s in query.statuses)]
                )
                pairs = list(zip(flat[::2], flat[1::2], strict=True))
            else:
                ids = await client.zrevrangebyscore(
                    key, high, low, start=query.offset, num=query.limit
                )
                async with client.pipeline(transaction=False) as pipe:
                    for run_id in ids:
                        pipe.hmget(self._run_key(run_id.decode()), ["d", "l"])
                    pairs = [tuple(p) for p in await pipe.execute()]
        runs = (self._run_or_none(d, lease) for d, lease in pairs if d is not None)
        return [run for run in runs if run is not None]

    async def count_runs(self, query: RunQuery) -> int:
        key, high, low = self._range(query)
        async with self._op() as client:
            if query.statuses:
                args = [high, low, 0, -1, self._run_prefix, *(str(s) for s in query.statuses)]
                return int(await self._scripts["query"](keys=[key], args=args))
            return int(await client.zcount(key, low, high))

    async def run_stats(self, job_id: str) -> RunStats:
        runs = await self.list_runs(RunQuery(job_id=job_id, limit=self.max_runs_per_job + 100))
        return stats_from_runs(job_id, runs)

    async def prune_runs(
        self, *, older_than: datetime | None = None, keep_per_job: int | None = None
    ) -> int:
        check_keep(keep_per_job)
        cutoff = codec.us(older_than) if older_than is not None else None
        deleted = 0
        async with self._op() as client:
            for raw_job in await client.smembers(self._runjobs):
                entries = await client.zrevrange(self._job_runs(raw_job.decode()), 0, -1, True)
                async with client.pipeline(transaction=False) as pipe:
                    for run_id, _ in entries:
                        pipe.hget(self._run_key(run_id.decode()), "s")
                    statuses = await pipe.execute()
                final = [
                    (run_id.decode(), score)
                    for (run_id, score), status in zip(entries, statuses, strict=True)
                    if status is not None and status.decode(errors="replace") not in _FINAL_SKIP
                ]
                doomed = set()
                if cutoff is not None:
                    doomed |= {i for i, score in final if score < cutoff}
                if keep_per_job is not None:
                    doomed |= {i for i, _ in final[keep_per_job:]}
                if doomed:
                    deleted += int(
                        await self._scripts["delete_runs"](
                            keys=[self._runs, f"{self._runs}:"],
                            args=[*sorted(doomed), self._run_prefix],
                        )
                    )
        return deleted

    # -- leases --------------------------------------------------------------------------
    async def renew_lease(self, run_id: str, node_id: str, fence: int, *, until: datetime) -> bool:
        async def attempt() -> bool:
            async with self._op():
                return bool(
                    await self._scripts["renew"](
                        keys=[self._run_key(run_id), self._leases],
                        args=[node_id, fence, until.isoformat(), codec.us(until), run_id],
                    )
                )

        return await self._retrying(attempt)

    async def interrupt_expired(self, now: datetime) -> list[RunRecord]:
        out: list[RunRecord] = []
        async with self._op() as client:
            for raw_id in await client.zrangebyscore(self._leases, "-inf", codec.us(now)):
                run_id = raw_id.decode()
                data, lease = await client.hmget(self._run_key(run_id), ["d", "l"])
                if data is None:
                    await client.zrem(self._leases, run_id)
                    continue
                run = self._run_or_none(data, lease)
                if run is None:  # nothing to take over: no longer offered (logged once)
                    await client.zrem(self._leases, run_id)
                    continue
                new = run.interrupted(now)
                won = await self._scripts["interrupt"](
                    keys=[self._run_key(run_id), self._leases],
                    args=[
                        run_id,
                        codec.us(now),
                        run.fence,
                        codec.run_data(new),
                        os.urandom(8).hex(),
                    ],
                )
                if won:
                    out.append(new)
        return out

    # -- system state --------------------------------------------------------------------
    async def get_state(self, key: str) -> str | None:
        async with self._op() as client:
            value = await client.hget(self._state, key)
        return None if value is None else cast(bytes, value).decode(errors="replace")

    async def set_state(self, key: str, value: str) -> None:
        async with self._op() as client:
            await client.hset(self._state, key, value)

    async def notice_data_loss(self) -> bool:
        """Mark the prefix again if Redis lost agentcron's data (its marker is gone, or was
        made again by another process since this store looked); True, counted in
        `data_losses` and logged, when it had. The engine asks every
        `lease_s / 3`, then writes back its jobs and running runs."""
        async with self._op() as client:
            return await self._mark(client)

    # -- nodes ---------------------------------------------------------------------------
    async def write_heartbeat(self, heartbeat: NodeHeartbeat) -> None:
        """Also marks the prefix again (and says so) when Redis lost its data meanwhile, so
        that nodes starting later recognise it; one more command per heartbeat."""
        data = codec.heartbeat_data(heartbeat)
        async with self._op() as client:
            await client.hset(self._nodes, heartbeat.node_id, data)
            await self._mark(client)

    async def list_heartbeats(self) -> list[NodeHeartbeat]:
        async with self._op() as client:
            raw = await client.hgetall(self._nodes)
        beats = (
            _readable(_named("heartbeat of node", key), codec.heartbeat_from, raw[key])
            for key in sorted(raw)
        )
        return [beat for beat in beats if beat is not None]

    async def delete_node(self, node_id: str) -> bool:
        async with self._op() as client:
            return bool(await client.hdel(self._nodes, node_id))

    # -- audit ---------------------------------------------------------------------------
    async def list_audit(self, job_id: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        key = self._audit if job_id is None else self._job_audit(job_id)
        async with self._op() as client:
            raw = await client.lrange(key, 0, limit - 1) if limit > 0 else []
        entries = (_readable("an audit entry", codec.audit_from, item) for item in raw)
        return [entry for entry in entries if entry is not None]


def _named(what: str, key: bytes) -> str:
    return f"{what} {key[:80].decode(errors='replace')!r}"


def _job_at(key: bytes, data: bytes, state: bytes | None) -> StoredJob:
    return codec.job_from(_text(key), data, state)


def _text(value: bytes) -> str:
    """Text Redis holds; bytes that are not UTF-8 (a hand edit) as `BadRecord`."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise codec.BadRecord(f"not UTF-8 text: {value[:80]!r}") from None
