"""`RedisQueue`: a queue on Redis that speaks BullMQ's protocol (extra ``redis``).

Keys (``bull:<queue>:wait``, ``:active``, ``:prioritized``, ``:delayed``, job hashes, ...) and
every state change are BullMQ's own: each operation runs one of the Lua scripts shipped in
the ``bullmq`` Python package (`bullmq.Scripts` loads them; we build their arguments as it
does). So a job added here can be processed by a Node.js BullMQ worker, a job added by
Node.js BullMQ can be processed here, and BullMQ dashboards can read the queue.

What we add on top, without forking the package:

* a leaner worker path: scripts are called by ``EVALSHA`` in one non-transactional pipeline
  per exchange (every finished job's ``moveToFinished``/``retryJob``/``moveToDelayed`` plus
  up to `concurrency` ``moveToActive`` claims), instead of one round trip per call;
* the rate limiter: BullMQ's queue-wide limiter (``limiter`` option of ``moveToActive``) with
  the worker honouring the returned wait, which the package's worker does not do;
* adds without building a `bullmq.Job` per job (each builds its own `Scripts`);
* repeatables driven by `agentcron.cron` (specs in ``bull:<queue>:agentcron:repeatables``);
* reconnection: connection errors are retried; scripts are reloaded after a Redis restart;
* a first-contact check: a server that does not speak Redis, or does not answer within
  5 s, is refused with one line (`QueueConnectionError`) instead of retried for minutes.

The BullMQ prefix is ``bull`` (BullMQ's default) unless the URL says ``?prefix=P`` (the
store's key prefix, docs/multi-node.md): then it is ``P:bull``, so that deployments sharing
a Redis do not share queues and a queue's keys never mix with the store's under ``P:``. A
Node.js BullMQ worker of that deployment uses ``prefix: "P:bull"``.

Times on Redis are the wall clock of the machines (BullMQ passes client timestamps), so
this backend always uses the system clock.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit

import redis.asyncio as aioredis
import redis.exceptions as rex
from bullmq import Queue as BullQueue
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.commands.core import AsyncScript

from agentcron.clock import Clock, SystemClock
from agentcron.events import (
    EventBus,
    QueueJobProgress,
    QueueJobStateChanged,
    QueuePaused,
    QueueResumed,
)
from agentcron.queue.base import (
    MAX_REPEAT_KEY_LENGTH,
    Backoff,
    BulkJob,
    CleanState,
    Handler,
    Job,
    JobInfo,
    QueueConnectionError,
    QueueError,
    QueueInputError,
    RateLimit,
    Retention,
    check_jobs_page,
    check_queue_name,
    check_text,
    check_utf8,
    clean_grace_ms,
    encode_data,
)
from agentcron.queue.bullmq_calls import BullCalls, Call
from agentcron.queue.worker import Finished, Worker
from agentcron.store.redis_connection import parse_redis_url
from agentcron.tasks import keep_cancellation

__all__ = ["RedisQueue"]

log = logging.getLogger("agentcron.queue")

_COUNT_CALLS = (
    ("llen", "wait"),
    ("zcard", "prioritized"),
    ("llen", "paused"),
    ("llen", "active"),
    ("zcard", "completed"),
    ("zcard", "failed"),
    ("zcard", "delayed"),
)
#: `RedisQueue.jobs`: a page (ARGV[1] offset, ARGV[2] limit) of job ids in run order from the
#: lists in KEYS, each read from its tail (BullMQ pushes at the head and takes from the
#: tail), then, when ARGV[3] is "1", from the last key, a sorted set, in ascending order.
#: One script, so that the page is one snapshot.
_PAGE_SCRIPT = """
local offset, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local lists = #KEYS
if ARGV[3] == "1" then lists = lists - 1 end
local out = {}
for k = 1, lists do
  local n = redis.call("LLEN", KEYS[k])
  if offset >= n then
    offset = offset - n
  else
    local ids = redis.call("LRANGE", KEYS[k], -(offset + limit), -(offset + 1))
    for i = #ids, 1, -1 do out[#out + 1] = ids[i] end
    limit = limit - #ids
    offset = 0
    if limit <= 0 then return out end
  end
end
if lists < #KEYS then
  for _, id in ipairs(redis.call("ZRANGE", KEYS[#KEYS], offset, offset + limit - 1)) do
    out[#out + 1] = id
  end
end
return out
"""
#: `RedisQueue.get`: the hash at KEYS[1] when it is a job's (BullMQ writes ``timestamp`` in
#: every job hash), else nothing. Keys next to the job hashes (``bull:<queue>:meta``, ``:id``,
#: ``:events``, ``<id>:lock``, our repeatables' hash ...) are then no job, whatever their type.
_JOB_HASH_SCRIPT = """
if redis.call("TYPE", KEYS[1])["ok"] ~= "hash" then return {} end
if redis.call("HEXISTS", KEYS[1], "timestamp") == 0 then return {} end
return redis.call("HGETALL", KEYS[1])
"""
#: `RedisQueue.retry_failed`: move up to ARGV[2] failed jobs back to waiting, atomically;
#: returns {ids taken from the failed set, jobs moved}. As BullMQ's ``moveJobsToWait``
#: (``Queue.retryJobs``: the same target list, marker and ``waiting`` event), but
#:
#: * a job starts afresh: its error, result, progress, stack trace, finish and attempt
#:   counters are cleared (``retryJobs`` keeps all but the error and the finish time);
#: * a job with a priority goes back to the prioritized set, scored as BullMQ's
#:   ``addJobWithPriority`` does (``retryJobs`` put it on the wait list, ahead of every
#:   prioritized job);
#: * a failed-set entry without its job hash is dropped, not enqueued.
#:
#: KEYS: failed, wait, paused, meta, active, prioritized, pc, marker, events.
_RETRY_SCRIPT = """
local rcall = redis.call
local failedKey, waitKey, pausedKey, metaKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ids = rcall("ZRANGE", failedKey, 0, tonumber(ARGV[2]) - 1)
if #ids == 0 then return {0, 0} end
local attrs = rcall("HMGET", metaKey, "paused", "concurrency")
local target, blocked = waitKey, false
if attrs[1] then
  target, blocked = pausedKey, true
elseif attrs[2] and rcall("LLEN", KEYS[5]) >= tonumber(attrs[2]) then
  blocked = true
end
local maxEvents = rcall("HGET", metaKey, "opts.maxLenEvents") or 10000
local moved = 0
for _, id in ipairs(ids) do
  local jobKey = ARGV[1] .. id
  rcall("ZREM", failedKey, id)
  if rcall("EXISTS", jobKey) == 1 then
    rcall("HDEL", jobKey, "failedReason", "returnvalue", "progress", "stacktrace",
          "finishedOn", "processedOn")
    rcall("HSET", jobKey, "atm", 0, "ats", 0, "stc", 0)
    local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
    if priority > 0 then
      local counter = rcall("INCR", KEYS[7])
      rcall("ZADD", KEYS[6], priority * 0x100000000 + counter % 0x100000000, id)
    else
      rcall("LPUSH", target, id)
    end
    rcall("XADD", KEYS[9], "MAXLEN", "~", maxEvents, "*", "event", "waiting", "jobId", id,
          "prev", "failed")
    moved = moved + 1
  end
end
if moved > 0 and not blocked then rcall("ZADD", KEYS[8], 0, "0") end
return {#ids, moved}
"""
#: Failed jobs `retry_failed` moves per script call (one call holds Redis for its length).
_RETRY_BATCH = 1000
_STATE_NAMES = {"wait": "waiting", "prioritized": "waiting", "waiting-children": "waiting"}


class _Retry(Retry):
    """Retries connection errors (a restarting Redis), but not refused credentials."""

    async def call_with_retry(self, do: Any, fail: Any) -> Any:
        async def on_error(error: Exception) -> None:
            if isinstance(error, rex.AuthenticationError):
                raise error
            await fail(error)

        return await super().call_with_retry(do, on_error)


#: Seconds to connect, and to wait for a reply (a blocking wait for work stays below it).
_SOCKET_TIMEOUT_S = 10.0
_MAX_BLOCK_S = 5.0
#: Seconds the first-contact check waits to connect and for the PING's reply.
_GREET_TIMEOUT_S = 5.0


class RedisQueue:
    """A `Queue` on Redis in BullMQ's format (prefix ``bull`` unless told otherwise: the
    URL's ``?prefix=P`` gives ``P:bull``, see the module docstring)."""

    def __init__(
        self,
        url: str,
        name: str,
        *,
        events: EventBus | None = None,
        prefix: str = "bull",
        clock: Clock | None = None,
    ) -> None:
        try:
            parsed = parse_redis_url(url, default_prefix=prefix)
        except ValueError as exc:
            raise QueueInputError(str(exc)) from None
        if not urlsplit(parsed.client_url).hostname:
            raise QueueInputError(f"redis URL needs a host: {parsed.masked}")
        if parsed.prefix_given:
            prefix = f"{parsed.prefix}:bull"
        self.name = check_queue_name(name)
        self.url = parsed.masked
        self.prefix = prefix
        self._client_url = parsed.client_url
        self._greeted = False
        self.events = events
        self.clock: Clock = clock or SystemClock()
        retry = _Retry(ExponentialBackoff(cap=1.0, base=0.05), 20)
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            parsed.client_url,
            decode_responses=True,
            retry=retry,
            retry_on_error=[rex.ConnectionError, rex.TimeoutError, rex.BusyLoadingError],
            socket_connect_timeout=_SOCKET_TIMEOUT_S,
            socket_timeout=_SOCKET_TIMEOUT_S,
        )
        self._bull = BullQueue(name, {"connection": self.client, "prefix": prefix})
        self.scripts = self._bull.scripts
        self.keys: dict[str, str] = self._bull.keys
        self._job_prefix = self.keys[""]
        self.calls = BullCalls(self.keys)
        self._shas: dict[str, str] = {}
        self._repeat_key = f"{prefix}:{name}:agentcron:repeatables"
        self._page: AsyncScript | None = None
        self._job_hash: AsyncScript | None = None
        self._retry: AsyncScript | None = None

    # -- plumbing ---------------------------------------------------------------------
    async def _greet(self) -> None:
        """Once: PING without retries, so that a server that does not speak Redis, or never
        answers, is refused in seconds. A refused connection (Redis restarting) is left to
        the client's retries."""
        if self._greeted:
            return
        client = aioredis.Redis.from_url(
            self._client_url,
            socket_connect_timeout=_GREET_TIMEOUT_S,
            socket_timeout=_GREET_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            await client.ping()
        except rex.TimeoutError as exc:
            raise QueueConnectionError(
                f"redis at {self.url}: cannot talk to Redis (no reply within "
                f"{_GREET_TIMEOUT_S:g}s: {exc}); is it running, and is it Redis?"
            ) from None
        except (rex.ConnectionError, OSError):  # (refused credentials too: the command says)
            return  # not reachable now: the client's retries wait for it
        except rex.ResponseError:
            pass  # it speaks Redis: the command itself reports the refusal
        except rex.RedisError as exc:
            raise QueueConnectionError(
                f"redis at {self.url}: the server does not speak Redis ({exc!r})"
            ) from None
        finally:
            await client.aclose()
        self._greeted = True

    @asynccontextmanager
    async def _errors(self) -> AsyncIterator[None]:
        try:
            with keep_cancellation():  # (redis-py on Python 3.11 can swallow one)
                await self._greet()
                yield
        except rex.AuthenticationError as exc:
            raise QueueConnectionError(
                f"redis at {self.url} refused authentication: {exc}"
            ) from None
        except rex.ResponseError as exc:
            if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
                raise QueueConnectionError(
                    f"redis at {self.url} refused authentication: {exc}"
                ) from None
            raise QueueError(f"redis at {self.url}: {exc}") from exc
        except (rex.ConnectionError, rex.TimeoutError, OSError) as exc:
            raise QueueConnectionError(f"cannot reach redis at {self.url}: {exc}") from None
        except rex.RedisError as exc:
            raise QueueConnectionError(
                f"redis at {self.url}: the server does not speak Redis ({exc!r})"
            ) from None

    async def _sha(self, name: str) -> str:
        sha = self._shas.get(name)
        if sha is None:
            script = self.scripts.commands[name]
            sha = await self.client.script_load(script.script)
            self._shas[name] = sha
        return sha

    async def _run(self, calls: list[Call]) -> list[Any]:
        """Run script calls in one pipeline; reload scripts once if Redis lost them."""
        with keep_cancellation():  # (redis-py on Python 3.11 can swallow one)
            return await self._run_pipelined(calls)

    async def _run_pipelined(self, calls: list[Call]) -> list[Any]:
        if len(calls) == 1:
            return [await self._run_one(*calls[0])]
        for attempt in range(2):
            shas = [await self._sha(name) for name, _, _ in calls]
            async with self.client.pipeline(transaction=False) as pipe:
                for sha, (_, keys, args) in zip(shas, calls, strict=True):
                    pipe.evalsha(sha, len(keys), *keys, *args)
                results = await pipe.execute(raise_on_error=False)
            if attempt == 0 and any(isinstance(r, rex.NoScriptError) for r in results):
                self._shas.clear()
                redo = [i for i, r in enumerate(results) if isinstance(r, rex.NoScriptError)]
                again = await self._run([calls[i] for i in redo])
                for i, value in zip(redo, again, strict=True):
                    results[i] = value
            for r in results:
                if isinstance(r, rex.ConnectionError | rex.TimeoutError):
                    raise r
            return list(results)
        raise AssertionError("unreachable")

    async def _run_one(self, name: str, keys: list[Any], args: list[Any]) -> Any:
        try:
            return await _aw(self.client.evalsha(await self._sha(name), len(keys), *keys, *args))
        except rex.NoScriptError:
            self._shas.clear()
            return await _aw(self.client.evalsha(await self._sha(name), len(keys), *keys, *args))
        except rex.ResponseError as exc:
            if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
                raise
            return exc

    def _key(self, job_id: str) -> str:
        return f"{self._job_prefix}{job_id}"

    async def close(self) -> None:
        await self.client.aclose()

    # -- adding -----------------------------------------------------------------------
    async def add(
        self,
        name: str,
        data: Any = None,
        *,
        priority: int = 0,
        delay: float = 0.0,
        attempts: int = 1,
        backoff: Backoff | None = None,
        job_id: str | None = None,
        remove_on_complete: Retention = False,
        remove_on_fail: Retention = False,
    ) -> str:
        job = BulkJob(
            name,
            data,
            priority,
            delay,
            attempts,
            backoff,
            job_id,
            remove_on_complete,
            remove_on_fail,
        )
        call = self.calls.add(job, int(time.time() * 1000))
        async with self._errors():
            (result,) = await self._run([call])
        added = self._added_id(result)
        self._publish_added([job], [added])
        return added

    async def add_bulk(self, jobs: Sequence[BulkJob]) -> list[str]:
        now_ms = int(time.time() * 1000)
        calls = [self.calls.add(job, now_ms) for job in jobs]
        if not calls:
            return []
        async with self._errors():
            shas = [await self._sha(name) for name, _, _ in calls]
            async with self.client.pipeline(transaction=True) as pipe:
                for sha, (_, keys, args) in zip(shas, calls, strict=True):
                    pipe.evalsha(sha, len(keys), *keys, *args)
                results = await pipe.execute()
        ids = [self._added_id(r) for r in results]
        self._publish_added(jobs, ids)
        return ids

    def _publish_added(self, jobs: Sequence[BulkJob], ids: Sequence[str]) -> None:
        if self.events is None:
            return
        at = self.clock.now()
        for job, job_id in zip(jobs, ids, strict=True):
            state = "delayed" if job.delay > 0 else "waiting"
            self.events.publish(
                QueueJobStateChanged(at=at, queue=self.name, job_id=job_id, state=state)
            )

    @staticmethod
    def _added_id(result: Any) -> str:
        if isinstance(result, Exception):
            raise QueueError(f"redis refused the job: {result}")
        if isinstance(result, int) and result < 0:
            raise QueueError(f"BullMQ refused the job (code {result})")
        return str(result)

    # -- reading ----------------------------------------------------------------------
    async def get(self, job_id: str) -> JobInfo | None:
        if not isinstance(job_id, str):
            raise QueueInputError(f"job id must be a string, got {job_id!r}")
        check_utf8(job_id, "job id")
        async with self._errors():
            if self._job_hash is None:
                self._job_hash = self.client.register_script(_JOB_HASH_SCRIPT)
            flat = await self._job_hash(keys=[self._key(job_id)])
            raw = dict(zip(flat[::2], flat[1::2], strict=True))
            if not raw:
                return None
            state = await self.scripts.getState(job_id)
            if state in ("wait", "prioritized") and await self.is_paused():
                state = "paused"
        return _info(job_id, raw, _STATE_NAMES.get(state, state))

    async def jobs(self, state: str, *, offset: int = 0, limit: int = 50) -> list[JobInfo]:
        check_jobs_page(state, offset, limit)
        k = self.keys
        async with self._errors():
            if state == "waiting":
                # BullMQ runs its wait list (or, paused, the list it was renamed to), then
                # its prioritized set by score.
                keys = [k["wait"], k["paused"], k["prioritized"]]
                ids = await self._page_ids(keys, offset, limit, with_set=True)
            elif state == "active":  # pushed at the head as they start
                ids = await self._page_ids([k["active"]], offset, limit, with_set=False)
            elif state == "delayed":  # scored by due time
                ids = await self.client.zrange(k["delayed"], offset, offset + limit - 1)
            else:  # completed, failed: scored by finish time
                ids = await self.client.zrevrange(k[state], offset, offset + limit - 1)
            async with self.client.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hgetall(self._key(job_id))
                hashes = await pipe.execute()
            paused = state == "waiting" and bool(ids) and await self.is_paused()
        shown = "paused" if paused else state
        # A job removed between the two reads (cleaned, or trimmed by retention) is left out.
        return [_info(i, raw, shown) for i, raw in zip(ids, hashes, strict=True) if raw]

    async def _page_ids(
        self, keys: list[str], offset: int, limit: int, *, with_set: bool
    ) -> list[str]:
        if self._page is None:
            self._page = self.client.register_script(_PAGE_SCRIPT)
        ids = await self._page(keys=keys, args=[offset, limit, "1" if with_set else "0"])
        return [str(i) for i in ids]

    async def counts(self) -> dict[str, int]:
        k = self.keys
        async with self._errors(), self.client.pipeline(transaction=True) as pipe:
            for method, key in _COUNT_CALLS:
                getattr(pipe, method)(k[key])
            pipe.hexists(k["meta"], "paused")
            (
                wait,
                prio,
                paused_list,
                active,
                completed,
                failed,
                delayed,
                paused,
            ) = await pipe.execute()
        waiting = wait + prio
        return {
            "waiting": 0 if paused else waiting,
            "active": active,
            "completed": completed,
            "failed": failed,
            "delayed": delayed,
            "paused": (waiting + paused_list) if paused else paused_list,
        }

    async def is_paused(self) -> bool:
        async with self._errors():
            return bool(await _aw(self.client.hexists(self.keys["meta"], "paused")))

    # -- managing ---------------------------------------------------------------------
    async def pause(self) -> None:
        async with self._errors():
            await self._bull.pause()
        if self.events is not None:
            self.events.publish(QueuePaused(at=self.clock.now(), queue=self.name))

    async def resume(self) -> None:
        async with self._errors():
            await self._bull.resume()
        if self.events is not None:
            self.events.publish(QueueResumed(at=self.clock.now(), queue=self.name))

    async def clean(
        self, grace: float, limit: int = 0, state: CleanState = "completed"
    ) -> list[str]:
        grace_ms = clean_grace_ms(grace, limit, state)
        sets = {
            "completed": ["completed"],
            "failed": ["failed"],
            "delayed": ["delayed"],
            "waiting": ["wait", "prioritized", "paused"],
        }[state]
        removed: list[str] = []
        async with self._errors():
            for name in sets:
                left = limit - len(removed) if limit else 0
                if limit and left <= 0:
                    break
                removed += await self._bull.clean(grace_ms, left, name)
        return removed

    async def retry_failed(self) -> int:
        k = self.keys
        names = ("failed", "wait", "paused", "meta", "active", "prioritized", "pc", "marker")
        keys = [k[n] for n in (*names, "events")]
        moved = 0
        async with self._errors():
            if self._retry is None:
                self._retry = self.client.register_script(_RETRY_SCRIPT)
            while True:
                taken, batch = await self._retry(keys=keys, args=[self._job_prefix, _RETRY_BATCH])
                moved += int(batch)
                if int(taken) < _RETRY_BATCH:
                    return moved

    # -- repeatables ------------------------------------------------------------------
    async def add_repeatable(
        self, name: str, data: Any = None, *, cron: str, tz: str = "UTC", key: str | None = None
    ) -> str:
        from agentcron.queue.repeat import next_fire_ms, repeat_key, validate_repeatable

        if key is not None:
            check_text(key, "repeat key", MAX_REPEAT_KEY_LENGTH)
        validate_repeatable(name)  # (before `repeat_key` hashes it: it must be UTF-8)
        next_fire_ms(cron, tz, int(time.time() * 1000))  # validates before anything is written
        key = key or repeat_key(name, cron, tz)
        spec = json.dumps(
            {"name": name, "data": json.loads(encode_data(data)), "cron": cron, "tz": tz}
        )
        async with self._errors():
            await _aw(self.client.hset(self._repeat_key, key, spec))
        await self.tick_repeatables()
        return key

    async def remove_repeatable(self, key: str) -> bool:
        from agentcron.queue.repeat import occurrence_prefix

        if not isinstance(key, str):
            raise QueueInputError(f"repeat key must be a string, got {key!r}")
        check_utf8(key, "repeat key")
        prefix = occurrence_prefix(key)
        async with self._errors():
            removed = bool(await _aw(self.client.hdel(self._repeat_key, key)))
            # Its next occurrence, enqueued delayed, goes too (as BullMQ's removeRepeatable).
            pattern = re.sub(r"([\\*?\[\]])", r"\\\1", prefix) + "*"  # a glob, escaped
            doomed = [m async for m, _ in self.client.zscan_iter(self.keys["delayed"], pattern)]
            for job_id in doomed:
                await self._bull.remove(job_id)
        return removed

    async def tick_repeatables(self) -> float | None:
        from agentcron.queue.repeat import next_fire_ms, occurrence_id

        async with self._errors():
            specs = await _aw(self.client.hgetall(self._repeat_key))
        now_ms = int(time.time() * 1000)
        soonest: int | None = None
        calls = []
        for key, text in specs.items():
            spec = json.loads(text)
            fire_ms = next_fire_ms(spec["cron"], spec["tz"], now_ms)
            if fire_ms is None:
                continue
            soonest = fire_ms if soonest is None else min(soonest, fire_ms)
            job = BulkJob(
                spec["name"],
                spec["data"],
                delay=(fire_ms - now_ms) / 1000,
                job_id=occurrence_id(key, fire_ms),
            )
            calls.append(self.calls.add(job, now_ms))
        if calls:
            async with self._errors():
                await self._run(calls)
        return None if soonest is None else (soonest - now_ms) / 1000

    # -- workers ----------------------------------------------------------------------
    def worker(
        self,
        handler: Handler,
        *,
        concurrency: int = 1,
        rate_limit: tuple[int, float] | None = None,
        **options: Any,
    ) -> Worker:
        return Worker(self, handler, concurrency=concurrency, rate_limit=rate_limit, **options)

    async def exchange(
        self,
        finished: Sequence[Finished],
        claim: int,
        *,
        token: str,
        lease_s: float,
        rate: RateLimit | None,
    ) -> tuple[list[Job], float | None]:
        now_ms = int(time.time() * 1000)
        lease_ms = round(lease_s * 1000)
        limiter = (
            None if rate is None else {"max": rate.max_jobs, "duration": round(rate.per_s * 1000)}
        )
        calls = [self.calls.finish(f, now_ms, lease_ms, limiter) for f in finished]
        calls += [self.calls.claim(f"{token}:{i}", now_ms, lease_ms, limiter) for i in range(claim)]
        if not calls:
            return [], None
        results = await self._run(calls)
        for f, result in zip(finished, results, strict=False):
            if isinstance(result, Exception) or (isinstance(result, int) and result < 0):
                log.warning(
                    "queue %s: could not record job %s (%s): %s",
                    self.name,
                    f.job.id,
                    f.outcome,
                    result,
                )
        return self.calls.claimed(results[len(finished) :], token, now_ms)

    async def extend(self, jobs: Sequence[Job], lease_s: float) -> list[str]:
        lease_ms = round(lease_s * 1000)
        results = await self._run([self.calls.extend(j, lease_ms) for j in jobs])
        return [j.id for j, r in zip(jobs, results, strict=True) if r != 1]

    async def recover_stalled(self, max_stalled: int, stalled_interval_s: float) -> None:
        call = self.calls.stalled(
            max_stalled, int(time.time() * 1000), round(stalled_interval_s * 1000)
        )
        (result,) = await self._run([call])
        if isinstance(result, Exception):
            raise result
        failed, stalled = result if result else ([], [])
        for job_id in stalled:
            log.warning(
                "queue %s: job %s stalled (its worker lost its lock): waiting", self.name, job_id
            )
            self._publish_state(job_id, "waiting", "stalled")
        for job_id in failed:
            log.warning("queue %s: job %s stalled too often: failed", self.name, job_id)
            self._publish_state(job_id, "failed", "job stalled more than allowable limit")

    def _publish_state(self, job_id: str, state: str, error: str | None = None) -> None:
        if self.events is not None:
            self.events.publish(
                QueueJobStateChanged(
                    at=self.clock.now(), queue=self.name, job_id=job_id, state=state, error=error
                )
            )

    async def report_progress(self, job: Job, pct: float) -> None:
        async with self._errors():
            await self._run([self.calls.progress(job, pct)])
        if self.events is not None:
            self.events.publish(
                QueueJobProgress(at=self.clock.now(), queue=self.name, job_id=job.id, progress=pct)
            )

    async def has_work(self) -> bool:
        k = self.keys
        with keep_cancellation():
            async with self.client.pipeline(transaction=True) as pipe:
                for method, key in (
                    ("llen", "wait"),
                    ("zcard", "prioritized"),
                    ("zcard", "delayed"),
                ):
                    getattr(pipe, method)(k[key])
                pipe.hexists(k["meta"], "paused")
                wait, prio, delayed, paused = await pipe.execute()
        return delayed > 0 or (not paused and wait + prio > 0)

    async def wait_for_work(self, timeout_s: float) -> None:
        # BullMQ's marker: producers add it when a job becomes ready; blocking on it wakes us.
        # (At most `_MAX_BLOCK_S` at a time: the socket's read timeout must not fire first.)
        block_s = min(max(round(timeout_s, 3), 0.01), _MAX_BLOCK_S)
        with keep_cancellation():
            await _aw(self.client.bzpopmin(self.keys["marker"], block_s))


def _aw(value: Any) -> Awaitable[Any]:
    """redis-py types commands as `Awaitable[T] | T`; on the asyncio client they are awaitable."""
    return cast(Awaitable[Any], value)


def _info(job_id: str, raw: dict[str, str], state: str) -> JobInfo:
    """A BullMQ job hash as a `JobInfo`."""
    opts = json.loads(raw.get("opts", "{}"))
    result = raw.get("returnvalue")
    return JobInfo(
        id=job_id,
        name=raw.get("name", ""),
        data=json.loads(raw.get("data", "null")),
        state=state,
        priority=int(raw.get("priority", 0)),
        attempts=int(opts.get("attempts") or 1),
        attempts_made=int(raw.get("atm", 0)),
        progress=float(json.loads(raw.get("progress", "0")) or 0),
        result=json.loads(result) if result else None,
        error=raw.get("failedReason"),
        created_at=_dt(raw.get("timestamp")),
        finished_at=_dt(raw.get("finishedOn")),
    )


def _dt(ms: str | None) -> datetime | None:
    return datetime.fromtimestamp(int(ms) / 1000, UTC) if ms else None
