"""`RedisEventBridge`: one event stream for every node sharing a Redis (extra `redis`).

Each node's bridge publishes the events of its local `EventBus` to the Redis pub/sub
channel ``<prefix>:events`` and re-publishes on its local bus the events other nodes sent,
so a dashboard (or alert rule, or metric) on any node sees every node's runs live::

    async with RedisEventBridge(sched.events, "redis://10.0.0.5:6379/0", node_id=sched.node_id):
        await sched.serve()

Guarantees and limits:

* **No echo loops.** A message carries the sender's bridge id; a bridge ignores its own
  messages and never re-sends an event it received (it remembers the objects it injected).
* **Live, not durable.** Pub/sub delivers to whoever listens now: events sent while a node
  is disconnected are not replayed to it (the store keeps the runs; the dashboard reloads
  them). Publishing never blocks the engine: while Redis is away, local events are dropped
  from the bridge (counted in `dropped`), and the listener reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as rex

from agentcron.error_text import describe_error
from agentcron.events import Event, EventBus, Subscription, event_from_dict
from agentcron.store.base import StoreError
from agentcron.store.redis_connection import parse_redis_url
from agentcron.tasks import cancel_and_wait, keep_cancellation

__all__ = ["RedisEventBridge"]

log = logging.getLogger("agentcron.events.redis")

_DOWN = (rex.ConnectionError, rex.TimeoutError, OSError)
#: How long Redis has to confirm a subscription before the connection is taken as down.
_SUBSCRIBE_TIMEOUT_S = 10.0


class RedisEventBridge:
    """Bridge `bus` and the other nodes' buses through Redis pub/sub (see module docstring).

    `types`: only these event types cross (default: all). `prefix` should match the store's
    key prefix so that deployments sharing a Redis do not see each other's events; a
    ``?prefix=`` in `url` (as the store reads it) takes precedence, and is not passed to
    redis-py. A malformed `url` raises ValueError here, before anything connects.
    """

    def __init__(
        self,
        bus: EventBus,
        url: str,
        *,
        node_id: str,
        prefix: str = "agentcron",
        types: frozenset[str] | None = None,
        max_backoff_s: float = 2.0,
    ) -> None:
        parsed = parse_redis_url(url, default_prefix=prefix)
        self.bus = bus
        self.url = parsed.masked
        self._client_url = parsed.client_url
        self.node_id = node_id
        self.prefix = parsed.prefix
        self.channel = f"{parsed.prefix}:events"
        self.types = types
        self.max_backoff_s = max_backoff_s
        #: This bridge's identity on the channel (node ids may repeat across restarts).
        self.bridge_id = f"{node_id}/{os.urandom(6).hex()}"
        self.sent = 0
        self.received = 0
        self.dropped = 0
        #: Failed attempts to (re)subscribe since the bridge started.
        self.connect_failures = 0
        self._injected: set[int] = set()
        self._client: Any = None
        self._subscription: Subscription | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def __aenter__(self) -> RedisEventBridge:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect, start listening (returns once subscribed, or once Redis was found away:
        the listener then reconnects with backoff) and start forwarding.

        Raises `StoreError` (one line, the listener stopped) when the listener cannot run at
        all, e.g. the server does not speak Redis."""
        if self._client is not None:
            return
        self._client = aioredis.Redis.from_url(
            self._client_url, socket_connect_timeout=5.0, socket_timeout=5.0
        )
        listener = asyncio.create_task(self._listen(), name="agentcron-event-bridge")
        self._listener = listener
        listening = asyncio.create_task(self._listening.wait())
        try:
            await asyncio.wait({listener, listening}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            listening.cancel()
        if not self._listening.is_set():
            problem = listener.exception() if not listener.cancelled() else None
            self._listener = None  # done: `stop` must not await (and re-raise) it
            await self.stop()
            why = "cancelled" if problem is None else describe_error(problem).rstrip()
            raise StoreError(
                f"event bridge on {self.url} could not subscribe to channel {self.channel!r}: "
                f"{why}; the bridge needs Redis pub/sub (SUBSCRIBE and PUBLISH allowed on "
                "that channel)"
            )
        self._subscription = self.bus.subscribe(self._forward, types=self.types)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.drain()
            self._subscription.close()
            self._subscription = None
        if self._listener is not None:
            await cancel_and_wait(self._listener)
            self._listener = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _forward(self, event: Event) -> None:
        if id(event) in self._injected:
            self._injected.discard(id(event))  # came from another node: do not send back
            return
        payload = json.dumps({"from": self.bridge_id, "event": event.to_dict()}, default=str)
        try:
            await self._client.publish(self.channel, payload)
            self.sent += 1
        except _DOWN:
            self.dropped += 1

    def _inject(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
            if not isinstance(message, dict):  # `[1]` or `"x"`: valid JSON, not a message
                raise TypeError(f"expected a JSON object, got {type(message).__name__}")
            if message.get("from") == self.bridge_id:
                return
            event = event_from_dict(message["event"])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a malformed event on %s: %s", self.channel, exc)
            return
        if self.types is not None and event.type not in self.types:
            return
        self.received += 1
        if self._subscription is not None:
            self._injected.add(id(event))
        self.bus.publish(event)

    async def _subscribe(self, pubsub: Any) -> None:
        """Subscribe to the channel and wait for Redis to confirm it: a refusal arrives as
        the answer, and must fail here rather than in the listening loop."""
        await pubsub.subscribe(self.channel)
        async with asyncio.timeout(_SUBSCRIBE_TIMEOUT_S):  # TimeoutError: an OSError, _DOWN
            while True:
                message = await pubsub.get_message(timeout=_SUBSCRIBE_TIMEOUT_S)
                if message is not None and message.get("type") == "subscribe":
                    return

    async def _listen(self) -> None:
        """Subscribe and inject what arrives; reconnect with backoff when Redis goes away.

        An outage is logged once when it starts and once when it ends, not once per
        reconnect attempt (a Redis away for an hour would write thousands of lines)."""
        delay = 0.05
        lost = False
        while True:
            pubsub = self._client.pubsub()
            try:
                with keep_cancellation():  # (redis-py on Python 3.11 can swallow one)
                    await self._subscribe(pubsub)
                self._listening.set()
                delay = 0.05
                if lost:
                    lost = False
                    log.warning("event bridge reconnected to %s", self.url)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._inject(message["data"])
            except _DOWN as exc:
                self.connect_failures += 1
                if not lost:
                    lost = True
                    log.warning("event bridge lost %s (%s); reconnecting", self.url, exc)
                else:
                    log.debug("event bridge still cannot reach %s (%s)", self.url, exc)
                self._listening.set()  # start() must not hang on a Redis that is away
            except Exception as exc:
                # Redis answered, and refused (SUBSCRIBE disabled, or not allowed by an ACL):
                # retrying cannot help. Before `start()` returned, it raises this; later, the
                # listener ends (events from this node are still sent) instead of dying
                # silently and crashing `stop()`.
                if not self._listening.is_set():
                    raise
                log.error(
                    "event bridge on %s stopped listening (events of other nodes no longer "
                    "arrive here): %s",
                    self.url,
                    describe_error(exc),
                )
                return
            finally:
                with contextlib.suppress(*_DOWN):
                    await pubsub.aclose()
            await asyncio.sleep(delay)  # reconnect backoff (pub/sub is real time)
            delay = min(delay * 2, self.max_backoff_s)
