"""`RedisStore`'s connection: its key names, opening and checking the server, noticing an
outage, and the probe that notices the end of one.

A command that cannot reach Redis raises `StoreUnavailableError` and flips `available` to
False; a probe then pings with capped exponential backoff (on the injected clock) until
Redis answers. Idempotent writes go through `_retrying`, which waits out an outage for up to
`write_retry_s`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from importlib import resources
from typing import Any, NamedTuple, TypeVar, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
import redis.exceptions as rex
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from agentcron.clock import Clock, SystemClock
from agentcron.store import redis_codec as codec
from agentcron.store.base import StoreError
from agentcron.tasks import keep_cancellation

__all__ = [
    "SCHEMA_VERSION",
    "RedisConnection",
    "RedisURL",
    "StoreUnavailableError",
    "mask_url",
    "parse_redis_url",
]

log = logging.getLogger("agentcron.store.redis")

SCHEMA_VERSION = 1
_APP = "agentcron-store"
_DOWN = (rex.ConnectionError, rex.TimeoutError)  # BusyLoadingError is a ConnectionError
#: The names under the prefix that only agentcron's store writes (see `agentcron.store.redis`).
_OUR_NAMES = ("meta", "jobs", "jobstate", "runs", "runjobs", "leases", "audit", "state", "nodes")
_OUR_PREFIXES = ("run:", "runs:", "claim:", "claims:", "audit:")
#: What a server's refusal means, by the first word of its error.
_REFUSALS = {
    "OOM": "Redis is out of memory (maxmemory) and refused the write (a refused script or "
    "transaction writes nothing); give it more memory or prune runs (agentcron db prune)",
    "WRONGTYPE": "a key under the prefix holds another type than agentcron writes there "
    "(edited by hand?)",
    "READONLY": "the server is a read-only replica; point the store at the primary",
    "MISCONF": "Redis cannot persist (see its log) and refuses writes",
    "NOPERM": "the Redis user lacks a permission agentcron needs",
}
T = TypeVar("T")


def _lua(name: str) -> str:
    return (resources.files("agentcron.store") / "redis_lua" / f"{name}.lua").read_text()


#: The Lua functions (`redis_lua/<name>_fn.lua`) each script is given before its own text.
_LUA_FUNCTIONS = {
    "claim": ("claim_fn",),
    "record": ("record_fn",),
    "start": ("claim_fn", "record_fn"),
}
#: The Lua scripts (`redis_lua/<name>.lua`): claims, fencing, takeover, queries.
_SCRIPTS = {
    name: "".join(_lua(f) for f in (*_LUA_FUNCTIONS.get(name, ()), name))
    for name in (
        *("claim", "record", "renew", "interrupt", "query", "set_state", "delete_runs"),
        *("add_job", "start"),
    )
}


def _refusal(exc: rex.ResponseError) -> str:
    """What a server's refusal means, from its error (redis-py strips some error codes and
    gives a class instead)."""
    if isinstance(exc, rex.OutOfMemoryError) or "maxmemory" in str(exc):
        return _REFUSALS["OOM"]
    if isinstance(exc, rex.ReadOnlyError):
        return _REFUSALS["READONLY"]
    if isinstance(exc, rex.NoPermissionError):
        return _REFUSALS["NOPERM"]
    code = str(exc).split(" ", 1)[0]
    return _REFUSALS.get(code, "the server refused")


def mask_url(url: str) -> str:
    """`url` with its password (if any) replaced by ``***``."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if not at or not colon:  # no password (and `parts.port` may not parse: not read here)
        return url
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


class RedisURL(NamedTuple):
    """An agentcron Redis URL, checked (see `parse_redis_url`)."""

    #: What goes to redis-py: the URL without agentcron's own options (``prefix``).
    client_url: str
    #: The key prefix (``?prefix=``, else the caller's default).
    prefix: str
    #: The URL with its password replaced by ``***``, for messages.
    masked: str
    #: Whether the URL named the prefix (``?prefix=``), rather than the default.
    prefix_given: bool


def parse_redis_url(url: str, *, default_prefix: str) -> RedisURL:
    """Check an agentcron Redis URL (``redis[s]://[:password@]host[:port][/db][?prefix=p]``)
    and split off agentcron's own option, ``prefix``, which redis-py does not know.

    Raises ValueError (one line, naming the URL with its password masked) for another
    scheme, a port that is not a number in 1..65535 (redis-py would silently use 6379 for
    0), a database index that is not a number, or a bad prefix. Connects nowhere.
    """
    if not isinstance(url, str):
        raise ValueError(f"not a Redis URL: {url!r}")
    masked = mask_url(url)
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("redis", "rediss"):
        raise ValueError(f"not a Redis URL: {masked!r} (use redis:// or rediss://)")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"bad port in Redis URL {masked!r} (use a number in 1..65535)")
    query = dict(parse_qsl(parts.query))
    given = "prefix" in query
    prefix = unquote(query.pop("prefix", default_prefix))
    if not prefix or any(c in prefix for c in "*?[]\\ "):
        raise ValueError(f"bad key prefix {prefix!r} in {masked!r}")
    db = parts.path.lstrip("/") or "0"
    if not db.isdigit():
        raise ValueError(f"bad database index {db!r} in {masked!r} (use /0 .. /15)")
    client_url = urlunsplit(parts._replace(query=urlencode(query)))
    return RedisURL(client_url, prefix, masked, given)


class StoreUnavailableError(StoreError):
    """Redis did not answer (down, restarting, partitioned); the store retries in the
    background and `available` turns True again when it answers."""


class RedisConnection:
    """One Redis client behind a key prefix: the key names under it (the layout is in
    `agentcron.store.redis`), open and check, outage detection and retries.

    `RedisStore` builds on it; `url` and `prefix` are checked here (see `RedisStore`).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        clock: Clock | None,
        socket_timeout_s: float,
        write_retry_s: float,
        max_backoff_s: float,
    ) -> None:
        parsed = parse_redis_url(url, default_prefix=prefix)
        self._client_url = parsed.client_url
        self.url = parsed.masked
        self.prefix = parsed.prefix
        self.clock: Clock = clock or SystemClock()
        self.socket_timeout_s = socket_timeout_s
        self.write_retry_s = write_retry_s
        self.max_backoff_s = max_backoff_s
        self._redis: aioredis.Redis | None = None
        #: How many times Redis was found to have lost agentcron's data since this store
        #: was made (`_mark`); the engine then writes back what it knows.
        self.data_losses = 0
        #: The prefix's epoch when this store last looked (`_stamp`): a new one means the
        #: marker was lost and made again, by whichever process came first.
        self._epoch: str | None = None
        self._up = asyncio.Event()
        self._probe: asyncio.Task[None] | None = None
        p = self.prefix
        self._meta, self._jobs, self._jobstate = f"{p}:meta", f"{p}:jobs", f"{p}:jobstate"
        self._run_prefix, self._runs = f"{p}:run:", f"{p}:runs"
        self._runjobs, self._leases = f"{p}:runjobs", f"{p}:leases"
        self._audit, self._state, self._nodes = f"{p}:audit", f"{p}:state", f"{p}:nodes"

    # -- keys ----------------------------------------------------------------------------
    def _run_key(self, run_id: str) -> str:
        return self._run_prefix + run_id

    def _job_runs(self, job_id: str) -> str:
        return f"{self._runs}:{job_id}"

    def _claim_key(self, job_id: str, scheduled_for: datetime) -> str:
        return f"{self.prefix}:claim:{job_id}:{codec.us(scheduled_for)}"

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
            # restart. Safe: scripts are idempotent, and a claim sent again finds its own
            # (`claim_fn.lua`), so it neither doubles nor loses an occurrence.
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

    async def _read_meta(self, client: Any) -> dict[str, str]:
        """The prefix's marker: which application writes it, at which schema (empty: none)."""
        return {k.decode(): v.decode() for k, v in (await client.hgetall(self._meta)).items()}

    async def _check(self, client: Any) -> None:
        """Refuse (writing nothing) a server that is not Redis, bad credentials, a bad
        database index, or a prefix holding someone else's keys."""
        where = f"Redis store {self.url} (prefix {self.prefix!r})"
        try:
            await client.ping()
            meta = await self._read_meta(client)
            if not meta:
                pattern = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix) + ":*"
                async for key in client.scan_iter(match=pattern, count=1000):
                    # Another node starting on the same new prefix may have marked it since
                    # the read above: then the key found is its doing, and the prefix ours.
                    meta = await self._read_meta(client)
                    if meta.get("app") == _APP:
                        break
                    if self._ours(key):  # agentcron wrote it, the marker is gone: lost data
                        await self._mark(client)
                        return
                    raise StoreError(
                        f"{where} already holds keys that are not agentcron's (e.g. "
                        f"{key.decode(errors='replace')!r}); choose another prefix (?prefix=...) "
                        "or database"
                    )
                else:
                    _, self._epoch = await self._stamp(client)
                    return
            schema_text = meta.get("schema", "0")
            if not schema_text.isdigit():
                raise StoreError(
                    f"{where} holds a schema version agentcron cannot read ({schema_text!r}) "
                    f"in {self._meta}; was it edited by hand?"
                )
        except StoreError:
            raise
        except rex.AuthenticationError as exc:
            raise StoreError(
                f"{where}: authentication failed ({exc}); check REDIS_PASSWORD"
            ) from exc
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
        schema = int(schema_text)
        if schema > SCHEMA_VERSION:
            raise StoreError(
                f"{where} has schema {schema}, newer than this agentcron's ({SCHEMA_VERSION}); "
                "upgrade agentcron on this machine"
            )
        # (None from a marker made before epochs: the first `_mark` gives it one.)
        self._epoch = meta.get("epoch")

    def _ours(self, key: bytes) -> bool:
        """Whether `key` (under the prefix) is one of the names agentcron's store writes."""
        name = key.decode(errors="replace")[len(self.prefix) + 1 :]
        return name in _OUR_NAMES or name.startswith(_OUR_PREFIXES)

    async def _mark(self, client: Any) -> bool:
        """Mark the prefix as agentcron's if its marker is gone; True (and an error logged)
        when it was, by this call or, since this store last looked, by another process (a
        new epoch): Redis lost what it held (restarted without persistence, flushed, or
        failed over to a replica that had not received it). Each process that had seen the
        marker before notices, not only the first to make it again."""
        marked, epoch = await self._stamp(client)
        seen, self._epoch = self._epoch, epoch
        if not marked and (seen is None or seen == epoch):
            return False
        self.data_losses += 1
        log.error(
            "Redis store %s (prefix %r) lost agentcron's data: its marker was gone, so Redis "
            "restarted without persistence or was flushed. Runs and claims stored before "
            "are gone (running schedulers write back their jobs and running runs; an "
            "occurrence claimed before may run again); turn on AOF (appendonly yes)",
            self.url,
            self.prefix,
        )
        return True

    async def _stamp(self, client: Any) -> tuple[bool, str]:
        """Mark the prefix if its marker is gone (True: this call did) and give it an epoch
        if it has none; the epoch, made anew with each marker. One round trip (MULTI) when
        the marker is there."""
        async with client.pipeline(transaction=True) as pipe:
            pipe.hsetnx(self._meta, "app", _APP)
            pipe.hsetnx(self._meta, "epoch", secrets.token_hex(8))
            pipe.hget(self._meta, "epoch")
            marked, _, epoch = await pipe.execute()
        if marked:
            await client.hsetnx(self._meta, "schema", str(SCHEMA_VERSION))
        return bool(marked), epoch.decode() if isinstance(epoch, bytes) else str(epoch)

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
            try:
                await self._mark(self._redis)
            except (*_DOWN, OSError, rex.ResponseError):
                pass  # it went away again, or refuses writes: the next command tells
            self._up.set()
            return

    @asynccontextmanager
    async def _op(self) -> AsyncIterator[Any]:
        # redis-py's stubs type replies as `Awaitable[T] | T`; the asyncio client awaits.
        client: Any = self.r
        try:
            with keep_cancellation():  # (redis-py on Python 3.11 can swallow one)
                yield client
        except (*_DOWN, OSError) as exc:
            if self._up.is_set():
                log.warning(
                    "Redis store %s is unreachable: %s; retrying with backoff", self.url, exc
                )
                self._up.clear()
            self._start_probe()
            raise StoreUnavailableError(f"Redis store {self.url} is unreachable: {exc}") from exc
        except rex.ResponseError as exc:
            text = str(exc)
            if len(text) > 300:  # a pipeline's error quotes its command, definitions included
                text = text[:300] + "..."
            what = _refusal(exc)
            log.error("Redis store %s: %s: %s", self.url, what, text)
            raise StoreError(
                f"Redis store {self.url} (prefix {self.prefix!r}): {what} ({text})"
            ) from exc

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
                    async with asyncio.timeout(left):
                        await self.wait_available()
                except TimeoutError:
                    raise StoreUnavailableError(
                        f"Redis store {self.url} stayed unreachable for {self.write_retry_s:g}s"
                    ) from None

    async def _transaction(self, keys: list[str], body: Callable[[Any], Any]) -> Any:
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
