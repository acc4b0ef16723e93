"""`RedisStore`: the `Store` contract on one Redis server, for several machines (extra `redis`).

Keys (all under a configurable prefix, default ``agentcron``, so deployments can share a
server; ``{p}`` below)::

    {p}:meta                  hash   app + schema version (the marker checked at open)
    {p}:jobs / {p}:jobstate   hash   job id -> definition JSON / {next_run, last_fire}
    {p}:run:<run_id>          hash   d (record JSON), f fence, s status, n node, l lease, j job
    {p}:runs, {p}:runs:<job>  zset   run ids by scheduled_for (us): paging, ranges, bounds
    {p}:runjobs               set    job ids that have runs (pruning)
    {p}:leases                zset   running run ids by lease expiry (us)
    {p}:claim:<job>:<us>      string the node that claimed the occurrence (SET NX EX)
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
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
import redis.exceptions as rex
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from agentcron.clock import Clock, SystemClock
from agentcron.models import (
    AuditEntry,
    ConflictPolicy,
    NodeHeartbeat,
    RunQuery,
    RunRecord,
    RunStats,
    RunStatus,
    StoredJob,
)
from agentcron.store.base import JobConflictError, StoreError
from agentcron.store.memory import stats_from_runs

__all__ = ["SCHEMA_VERSION", "RedisStore", "StoreUnavailableError", "mask_url"]

log = logging.getLogger("agentcron.store.redis")

SCHEMA_VERSION = 1
_APP = "agentcron-store"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_FINAL_SKIP = ("running", "scheduled")
_DOWN = (rex.ConnectionError, rex.TimeoutError)  # BusyLoadingError is a ConnectionError
T = TypeVar("T")

#: The Lua scripts (`redis_lua/<name>.lua`): claims, fencing, takeover, queries.
_SCRIPTS = {
    name: (resources.files("agentcron.store") / "redis_lua" / f"{name}.lua").read_text()
    for name in ("claim", "record", "renew", "interrupt", "query", "set_state", "delete_runs")
}









def mask_url(url: str) -> str:
    """`url` with its password (if any) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _us(dt: datetime) -> int:
    return (dt.astimezone(UTC) - _EPOCH) // _US


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _run_data(run: RunRecord) -> str:
    return _dumps(
        {
            "run_id": run.run_id,
            "job_id": run.job_id,
            "scheduled_for": _iso(run.scheduled_for),
            "status": str(run.status),
            "attempt": run.attempt,
            "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at),
            "error": run.error,
            "output_tail": run.output_tail,
            "node_id": run.node_id,
            "skip_reason": run.skip_reason,
            "fence": run.fence,
            "queue_job_id": run.queue_job_id,
        }
    )


def _run_from(data: bytes | str, lease: bytes | str | None) -> RunRecord:
    d = json.loads(data)
    lease_text = lease.decode() if isinstance(lease, bytes) else lease
    return RunRecord(
        run_id=d["run_id"],
        job_id=d["job_id"],
        scheduled_for=datetime.fromisoformat(d["scheduled_for"]),
        status=RunStatus(d["status"]),
        attempt=d["attempt"],
        started_at=_dt(d["started_at"]),
        finished_at=_dt(d["finished_at"]),
        error=d["error"],
        output_tail=d["output_tail"],
        node_id=d["node_id"],
        skip_reason=d["skip_reason"],
        lease_expires_at=_dt(lease_text),
        fence=d["fence"],
        queue_job_id=d["queue_job_id"],
    )


def _job_data(job: StoredJob) -> str:
    return _dumps(
        {
            "definition": job.definition,
            "paused": job.paused,
            "pause_note": job.pause_note,
            "created_at": _iso(job.created_at),
            "updated_at": _iso(job.updated_at),
            "version": job.version,
        }
    )


def _job_from(job_id: str, data: bytes | str, state: bytes | str | None) -> StoredJob:
    d = json.loads(data)
    s = json.loads(state) if state else {}
    return StoredJob(
        id=job_id,
        definition=d["definition"],
        paused=d["paused"],
        pause_note=d["pause_note"],
        next_run=_dt(s.get("next_run")),
        last_fire=_dt(s.get("last_fire")),
        created_at=_dt(d["created_at"]),
        updated_at=_dt(d["updated_at"]),
        version=d["version"],
    )


class StoreUnavailableError(StoreError):
    """Redis did not answer (down, restarting, partitioned); the store retries in the
    background and `available` turns True again when it answers."""


class RedisStore:
    """The `Store` contract on Redis; see the module docstring for keys and guarantees.

    `url`: ``redis://[:password@]host:port/db`` or ``rediss://`` (TLS); the query may set
    ``prefix=``. `max_runs_per_job` bounds each job's run log (oldest final runs go first);
    `claim_ttl_s` is how long an occurrence claim is kept.
    """

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
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"not a Redis URL: {mask_url(url)!r} (use redis:// or rediss://)")
        query = dict(parse_qsl(parts.query))
        prefix = unquote(query.pop("prefix", prefix))
        if not prefix or any(c in prefix for c in "*?[]\\ "):
            raise ValueError(f"bad key prefix {prefix!r} in {mask_url(url)!r}")
        db = parts.path.lstrip("/") or "0"
        if not db.isdigit():
            raise ValueError(f"bad database index {db!r} in {mask_url(url)!r} (use /0 .. /15)")
        self._client_url = urlunsplit(parts._replace(query=urlencode(query)))
        self.url = mask_url(url)
        self.prefix = prefix
        self.clock: Clock = clock or SystemClock()
        self.max_runs_per_job = max_runs_per_job
        self.max_audit = max_audit
        self.claim_ttl_s = claim_ttl_s
        self.socket_timeout_s = socket_timeout_s
        self.write_retry_s = write_retry_s
        self.max_backoff_s = max_backoff_s
        self._redis: aioredis.Redis | None = None
        self._up = asyncio.Event()
        self._probe: asyncio.Task[None] | None = None
        p = prefix
        self._meta, self._jobs, self._jobstate = f"{p}:meta", f"{p}:jobs", f"{p}:jobstate"
        self._run_prefix, self._runs = f"{p}:run:", f"{p}:runs"
        self._runjobs, self._leases = f"{p}:runjobs", f"{p}:leases"
        self._audit, self._state, self._nodes = f"{p}:audit", f"{p}:state", f"{p}:nodes"

    @classmethod
    def from_url(cls, url: str, *, clock: Clock | None = None) -> RedisStore:
        return cls(url, clock=clock)

    # -- keys ----------------------------------------------------------------------------
    def _run_key(self, run_id: str) -> str:
        return self._run_prefix + run_id

    def _job_runs(self, job_id: str) -> str:
        return f"{self._runs}:{job_id}"

    def _claim_key(self, job_id: str, scheduled_for: datetime) -> str:
        return f"{self.prefix}:claim:{job_id}:{_us(scheduled_for)}"

    def _claims(self, job_id: str) -> str:
        return f"{self.prefix}:claims:{job_id}"

    def _job_audit(self, job_id: str) -> str:
        return f"{self._audit}:{job_id}"

    # -- connection ----------------------------------------------------------------------
    @property
    def available(self) -> bool:
        """False from a failed command until a probe reaches Redis again."""
        return self._redis is not None and self._up.is_set()

    async def wait_available(self) -> None:
        """Return once Redis answers again (immediately when it does)."""
        if not self._up.is_set():
            self._start_probe()
            await self._up.wait()

    @property
    def r(self) -> aioredis.Redis:
        if self._redis is None:
            raise StoreError(f"the store {self.url} is not open; call open() first")
        return self._redis

    async def open(self) -> None:
        if self._redis is not None:
            return
        client = aioredis.Redis.from_url(
            self._client_url,
            socket_connect_timeout=self.socket_timeout_s,
            socket_timeout=self.socket_timeout_s,
            # One quick retry on a fresh connection: a pooled connection dies with a Redis
            # restart. Safe: scripts are idempotent and a re-sent claim only loses (never
            # doubles) an occurrence.
            retry=Retry(ExponentialBackoff(cap=0.25, base=0.05), 1),
            retry_on_error=[rex.ConnectionError, rex.TimeoutError],
        )
        try:
            await self._check(client)
        except BaseException:
            await client.aclose()
            raise
        self._redis = client
        self._up.set()
        self._scripts = {name: client.register_script(src) for name, src in _SCRIPTS.items()}

    async def _check(self, client: Any) -> None:
        """Refuse (writing nothing) a server that is not Redis, bad credentials, a bad
        database index, or a prefix holding someone else's keys."""
        where = f"Redis store {self.url} (prefix {self.prefix!r})"
        try:
            await client.ping()
            meta = {k.decode(): v.decode() for k, v in (await client.hgetall(self._meta)).items()}
            if not meta:
                pattern = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix) + ":*"
                async for key in client.scan_iter(match=pattern, count=1000):
                    raise StoreError(
                        f"{where} already holds keys that are not agentcron's (e.g. "
                        f"{key.decode(errors='replace')!r}); choose another prefix (?prefix=...) "
                        "or database"
                    )
                await client.hsetnx(self._meta, "app", _APP)
                await client.hsetnx(self._meta, "schema", str(SCHEMA_VERSION))
                return
        except StoreError:
            raise
        except rex.AuthenticationError as exc:
            raise StoreError(f"{where}: authentication failed ({exc}); check REDIS_PASSWORD") from exc
        except rex.ResponseError as exc:
            text = str(exc)
            if "DB index" in text or "invalid DB" in text:
                raise StoreError(f"{where}: bad database index ({exc}); check REDIS_DB") from exc
            if "NOAUTH" in text or "WRONGPASS" in text or "AUTH" in text:
                raise StoreError(f"{where}: authentication failed ({exc})") from exc
            raise StoreError(f"{where}: the server refused: {exc}") from exc
        except (rex.ConnectionError, rex.TimeoutError, OSError) as exc:
            raise StoreError(
                f"{where}: cannot talk to Redis ({exc}); is it running, and is it Redis?"
            ) from exc
        except (rex.RedisError, ValueError, UnicodeDecodeError) as exc:
            raise StoreError(f"{where}: the server does not speak Redis ({exc!r})") from exc
        if meta.get("app") != _APP:
            raise StoreError(f"{where} holds a marker of another application: {meta}")
        schema = int(meta.get("schema", "0"))
        if schema > SCHEMA_VERSION:
            raise StoreError(
                f"{where} has schema {schema}, newer than this agentcron's ({SCHEMA_VERSION}); "
                "upgrade agentcron on this machine"
            )

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

    def _start_probe(self) -> None:
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.05
        while self._redis is not None:
            try:
                await self._redis.ping()
            except (*_DOWN, OSError):
                await self.clock.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            log.warning("Redis store %s is reachable again", self.url)
            self._up.set()
            return

    @asynccontextmanager
    async def _op(self) -> AsyncIterator[Any]:
        # redis-py's stubs type replies as `Awaitable[T] | T`; the asyncio client awaits.
        client: Any = self.r
        try:
            yield client
        except (*_DOWN, OSError) as exc:
            if self._up.is_set():
                log.warning("Redis store %s is unreachable: %s; retrying with backoff", self.url, exc)
                self._up.clear()
            self._start_probe()
            raise StoreUnavailableError(f"Redis store {self.url} is unreachable: {exc}") from exc

    async def _retrying(self, attempt: Callable[[], Any]) -> T:
        """Run an idempotent write, waiting out an outage for up to `write_retry_s`."""
        deadline = self.clock.monotonic() + self.write_retry_s
        while True:
            try:
                return cast(T, await attempt())
            except StoreUnavailableError:
                left = deadline - self.clock.monotonic()
                if left <= 0:
                    raise
                try:
                    await asyncio.wait_for(self.wait_available(), left)
                except TimeoutError:
                    raise StoreUnavailableError(
                        f"Redis store {self.url} stayed unreachable for {self.write_retry_s:g}s"
                    ) from None

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
        entry = _dumps(
            {
                "job_id": job_id,
                "action": action,
                "actor": actor,
                "at": self.clock.now().isoformat(),
                "before": before,
                "after": after,
            }
        )
        for key in (self._audit, self._job_audit(job_id)):
            pipe.lpush(key, entry)
            pipe.ltrim(key, 0, self.max_audit - 1)

    async def _job_txn(self, keys: list[str], body: Callable[[Any], Any]) -> Any:
        """WATCH `keys`, let `body(pipe)` read then queue writes (after `pipe.multi()`),
        EXEC; start over when a watched key changed."""
        async with self._op() as client:
            while True:
                async with client.pipeline(transaction=True) as pipe:
                    try:
                        await pipe.watch(*keys)
                        result = await body(pipe)
                        if pipe.explicit_transaction:
                            await pipe.execute()
                        return result
                    except rex.WatchError:
                        continue

    async def save_job(
        self, job: StoredJob, *, actor: str, conflict: ConflictPolicy = "replace"
    ) -> StoredJob:
        async def body(pipe: Any) -> StoredJob:
            raw, state = await pipe.hget(self._jobs, job.id), await pipe.hget(self._jobstate, job.id)
            now = self.clock.now()
            if raw is None:
                stored = job.evolve(created_at=job.created_at or now, updated_at=now, version=1)
                pipe.multi()
                pipe.hset(self._jobs, job.id, _job_data(stored))
                self._audit_into(pipe, job.id, "added", actor, None, stored.definition)
                return stored
            old = _job_from(job.id, raw, state)
            if conflict == "keep":
                return old
            if conflict == "error":
                raise JobConflictError(f"a job with id {job.id!r} already exists")
            if old.definition == job.definition:
                return old
            new = old.evolve(definition=job.definition, updated_at=now, version=old.version + 1)
            pipe.multi()
            pipe.hset(self._jobs, job.id, _job_data(new))
            self._audit_into(pipe, job.id, "updated", actor, old.definition, new.definition)
            return new

        return cast(StoredJob, await self._job_txn([self._jobs], body))

    async def get_job(self, job_id: str) -> StoredJob | None:
        async with self._op() as client:
            async with client.pipeline(transaction=False) as pipe:
                pipe.hget(self._jobs, job_id).hget(self._jobstate, job_id)
                raw, state = await pipe.execute()
        return None if raw is None else _job_from(job_id, raw, state)

    async def list_jobs(self) -> list[StoredJob]:
        async with self._op() as client:
            async with client.pipeline(transaction=False) as pipe:
                pipe.hgetall(self._jobs).hgetall(self._jobstate)
                jobs, states = await pipe.execute()
        return [
            _job_from(k.decode(), jobs[k], states.get(k)) for k in sorted(jobs, key=bytes.decode)
        ]

    async def delete_job(self, job_id: str, *, actor: str) -> bool:
        runs_key, claims_key = self._job_runs(job_id), self._claims(job_id)

        async def body(pipe: Any) -> bool:
            raw = await pipe.hget(self._jobs, job_id)
            if raw is None:
                return False
            definition = json.loads(raw)["definition"]
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

        return bool(await self._job_txn([self._jobs, runs_key, claims_key], body))

    async def set_paused(
        self, job_id: str, paused: bool, *, note: str | None = None, actor: str
    ) -> StoredJob | None:
        async def body(pipe: Any) -> StoredJob | None:
            raw, state = await pipe.hget(self._jobs, job_id), await pipe.hget(self._jobstate, job_id)
            if raw is None:
                return None
            new = _job_from(job_id, raw, state).evolve(
                paused=paused, pause_note=note if paused else None, updated_at=self.clock.now()
            )
            pipe.multi()
            pipe.hset(self._jobs, job_id, _job_data(new))
            self._audit_into(pipe, job_id, "paused" if paused else "resumed", actor, None, None)
            return new

        return cast("StoredJob | None", await self._job_txn([self._jobs], body))

    async def set_job_state(
        self, job_id: str, *, next_run: datetime | None, last_fire: datetime | None
    ) -> None:
        state = _dumps({"next_run": _iso(next_run), "last_fire": _iso(last_fire)})
        async with self._op():
            await self._scripts["set_state"](keys=[self._jobs, self._jobstate], args=[job_id, state])

    # -- claims --------------------------------------------------------------------------
    async def claim_fire(
        self, job_id: str, scheduled_for: datetime, node_id: str, *, now: datetime
    ) -> bool:
        key = self._claim_key(job_id, scheduled_for)
        forget = _us(now) - self.claim_ttl_s * 1_000_000
        async with self._op():
            won = await self._scripts["claim"](
                keys=[key, self._claims(job_id)],
                args=[node_id, self.claim_ttl_s, _us(scheduled_for), forget],
            )
        return bool(won)

    # -- runs ----------------------------------------------------------------------------
    async def record_run(self, run: RunRecord) -> bool:
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
            _run_data(run),
            run.fence,
            str(run.status),
            run.node_id or "",
            _iso(lease) or "",
            _us(lease) if lease is not None else "",
            _us(run.scheduled_for),
            run.job_id,
            self.max_runs_per_job,
            self._run_prefix,
        ]

        async def attempt() -> bool:
            async with self._op():
                return bool(await self._scripts["record"](keys=keys, args=args))

        return await self._retrying(attempt)

    async def get_run(self, run_id: str) -> RunRecord | None:
        async with self._op() as client:
            data, lease = await client.hmget(self._run_key(run_id), ["d", "l"])
        return None if data is None else _run_from(data, lease)

    def _range(self, query: RunQuery) -> tuple[str, str, str]:
        key = self._runs if query.job_id is None else self._job_runs(query.job_id)
        high = f"({_us(query.until)}" if query.until is not None else "+inf"
        low = str(_us(query.since)) if query.since is not None else "-inf"
        return key, high, low

    async def list_runs(self, query: RunQuery) -> list[RunRecord]:
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
        return [_run_from(d, lease) for d, lease in pairs if d is not None]

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
                    if status is not None and status.decode() not in _FINAL_SKIP
                ]
                doomed = set()
                if older_than is not None:
                    doomed |= {i for i, score in final if score < _us(older_than)}
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
                        args=[node_id, fence, until.isoformat(), _us(until), run_id],
                    )
                )

        return await self._retrying(attempt)

    async def interrupt_expired(self, now: datetime) -> list[RunRecord]:
        out: list[RunRecord] = []
        async with self._op() as client:
            for raw_id in await client.zrangebyscore(self._leases, "-inf", _us(now)):
                run_id = raw_id.decode()
                data, lease = await client.hmget(self._run_key(run_id), ["d", "l"])
                if data is None:
                    await client.zrem(self._leases, run_id)
                    continue
                run = _run_from(data, lease)
                new = run.evolve(
                    status=RunStatus.interrupted,
                    fence=run.fence + 1,
                    finished_at=now,
                    lease_expires_at=None,
                )
                won = await self._scripts["interrupt"](
                    keys=[self._run_key(run_id), self._leases],
                    args=[run_id, _us(now), run.fence, _run_data(new), os.urandom(8).hex()],
                )
                if won:
                    out.append(new)
        return out

    # -- system state --------------------------------------------------------------------
    async def get_state(self, key: str) -> str | None:
        async with self._op() as client:
            value = await client.hget(self._state, key)
        return None if value is None else cast(bytes, value).decode()

    async def set_state(self, key: str, value: str) -> None:
        async with self._op() as client:
            await client.hset(self._state, key, value)

    # -- nodes ---------------------------------------------------------------------------
    async def write_heartbeat(self, heartbeat: NodeHeartbeat) -> None:
        data = _dumps(
            {
                "node_id": heartbeat.node_id,
                "sequence": heartbeat.sequence,
                "sent_at": _iso(heartbeat.sent_at),
                "status": heartbeat.status,
                "host": heartbeat.host,
                "pid": heartbeat.pid,
                "version": heartbeat.version,
                "platform": heartbeat.platform,
                "started_at": _iso(heartbeat.started_at),
                "interval_s": heartbeat.interval_s,
                "details": heartbeat.details,
            }
        )
        async with self._op() as client:
            await client.hset(self._nodes, heartbeat.node_id, data)

    async def list_heartbeats(self) -> list[NodeHeartbeat]:
        async with self._op() as client:
            raw = await client.hgetall(self._nodes)
        out = []
        for key in sorted(raw, key=bytes.decode):
            d = json.loads(raw[key])
            d["sent_at"] = datetime.fromisoformat(d["sent_at"])
            d["started_at"] = _dt(d["started_at"])
            out.append(NodeHeartbeat(**d))
        return out

    async def delete_node(self, node_id: str) -> bool:
        async with self._op() as client:
            return bool(await client.hdel(self._nodes, node_id))

    # -- audit ---------------------------------------------------------------------------
    async def list_audit(self, job_id: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        key = self._audit if job_id is None else self._job_audit(job_id)
        async with self._op() as client:
            raw = await client.lrange(key, 0, limit - 1) if limit > 0 else []
        out = []
        for item in raw:
            d = json.loads(item)
            d["at"] = datetime.fromisoformat(d["at"])
            out.append(AuditEntry(**d))
        return out
