"""`WS /ws`: the engine's events, live, as JSON text frames.

Protocol: the client connects, then sends `{"type": "auth", "token": "<token>"}` as its
first message within `ws_auth_timeout_s`. Until then it receives nothing. A wrong or missing
token closes the socket with code 4401 (4403 for a wrong one). After `{"type": "hello"}`
each frame is a JSON array of one or more events (`Event.to_dict()`), oldest first.

Fan-out: the hub serialises each event once and gathers events for `ws_flush_interval_s`
(100 ms); then it joins them into one frame and queues that same frame for every client,
without waiting. Per event the cost is one append whatever the number of clients; per
flush, one queue append and one send per client. A client that still has more than
`ws_max_pending` events queued, or whose send takes longer than `ws_send_timeout_s`, is
closed with code 4408 and forgotten, so a slow or dead browser never slows the engine or
the other clients.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from dataclasses import dataclass, field

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from agentcron.dashboard.auth import token_matches
from agentcron.events import Event, EventBus, Subscription
from agentcron.tasks import cancel_and_wait_all

__all__ = ["CLOSE_AUTH_FAILED", "CLOSE_FORBIDDEN", "CLOSE_TOO_SLOW", "EventHub"]

log = logging.getLogger("agentcron.dashboard.ws")

CLOSE_AUTH_FAILED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = 4408
#: Most events sent in one frame.
_MAX_BATCH = 500
#: Senders woken together after a flush, and the spacing between groups.
_WAKE_GROUP = 10
_WAKE_SPACING_S = 0.001


@dataclass(eq=False)
class _Client:
    max_pending: int
    #: Frames waiting to be sent, with the number of events in each.
    frames: collections.deque[tuple[str, int]] = field(default_factory=collections.deque)
    pending_events: int = 0
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class EventHub:
    """One bus subscription fanned out to every authenticated WebSocket client."""

    def __init__(
        self,
        bus: EventBus,
        token: str,
        *,
        max_pending: int = 1_000,
        auth_timeout_s: float = 5.0,
        send_timeout_s: float = 5.0,
        flush_interval_s: float = 0.1,
    ) -> None:
        self._bus = bus
        self._token = token
        self._max_pending = max_pending
        self._auth_timeout_s = auth_timeout_s
        self._send_timeout_s = send_timeout_s
        self._flush_interval_s = flush_interval_s
        self._clients: set[_Client] = set()
        self._batch: list[str] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._subscription: Subscription | None = None
        #: How many clients were dropped for not keeping up (for metrics and tests).
        self.slow_clients_dropped = 0

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def start(self) -> None:
        if self._subscription is None:
            # The hub's own callback never blocks, so its buffer only grows if the event
            # loop itself is starved; size it generously.
            self._subscription = self._bus.subscribe(self.on_event, max_pending=100_000)

    def stop(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._batch = []
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        for client in tuple(self._clients):
            client.dropped = True
            client.done.set()
        self._clients.clear()

    def on_event(self, event: Event) -> None:
        """Send `event` to every client (what `start()` subscribes to the bus)."""
        if not self._clients:
            return
        text = json.dumps(event.to_dict(), default=str, separators=(",", ":"))
        self.broadcast(text)

    def broadcast(self, text: str) -> None:
        """Add `text` (one serialised event) to the next frame.

        Costs one list append per event whatever the number of clients: every
        `flush_interval_s` the gathered events are joined into one frame, and that same
        frame is queued for every client (see `_flush`).
        """
        if not self._clients:
            return
        self._batch.append(text)
        if self._flush_interval_s <= 0 or len(self._batch) >= _MAX_BATCH:
            self._flush()
        elif self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self._flush_interval_s, self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._batch:
            return
        frame, count = "[" + ",".join(self._batch) + "]", len(self._batch)
        self._batch = []
        loop = asyncio.get_running_loop()
        for i, client in enumerate(tuple(self._clients)):
            # A client with nothing queued takes any frame; one that still has frames
            # waiting is dropped once it would hold more than `max_pending` events.
            if client.pending_events and client.pending_events + count > client.max_pending:
                self._drop(client)
                continue
            client.frames.append((frame, count))
            client.pending_events += count
            # Wake senders in small groups a millisecond apart: a due fire then waits
            # behind a few sends, not behind one send per client.
            group = i // _WAKE_GROUP
            if group == 0:
                client.wakeup.set()
            else:
                loop.call_later(group * _WAKE_SPACING_S, client.wakeup.set)

    def _drop(self, client: _Client) -> None:
        if not client.dropped:
            client.dropped = True
            self.slow_clients_dropped += 1
            log.warning("dropping a dashboard WebSocket client that does not keep up")
        self._clients.discard(client)
        client.done.set()

    async def _authenticate(self, websocket: WebSocket) -> bool:
        try:
            async with asyncio.timeout(self._auth_timeout_s):
                raw = await websocket.receive_text()
        except (TimeoutError, WebSocketDisconnect, RuntimeError, KeyError):
            await _close(websocket, CLOSE_AUTH_FAILED, "authenticate first")
            return False
        try:
            message = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            message = None
        token = message.get("token") if isinstance(message, dict) else None
        if (
            not isinstance(message, dict)
            or message.get("type") != "auth"
            or not isinstance(token, str)
        ):
            await _close(websocket, CLOSE_AUTH_FAILED, 'send {"type": "auth", "token": ...} first')
            return False
        if not token_matches(self._token, token):
            await _close(websocket, CLOSE_FORBIDDEN, "invalid token")
            return False
        return True

    async def serve(self, websocket: WebSocket) -> None:
        """Handle one connection from accept to close."""
        await websocket.accept()
        if not await self._authenticate(websocket):
            return
        client = _Client(max_pending=self._max_pending)
        await websocket.send_text(json.dumps({"type": "hello"}))
        self._clients.add(client)
        sender = asyncio.create_task(self._send_loop(websocket, client), name="dashboard-ws-send")
        receiver = asyncio.create_task(self._receive_loop(websocket), name="dashboard-ws-recv")
        waiter = asyncio.create_task(client.done.wait(), name="dashboard-ws-done")
        try:
            await asyncio.wait({sender, receiver, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._clients.discard(client)
            await cancel_and_wait_all((sender, receiver, waiter))
            if client.dropped:
                await _close(websocket, CLOSE_TOO_SLOW, "too slow; reconnect")
            else:
                await _close(websocket, 1000, "bye")

    async def _send_loop(self, websocket: WebSocket, client: _Client) -> None:
        # `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` can swallow a
        # cancellation that arrives as the send completes, leaving this task running.
        while not client.dropped:
            await client.wakeup.wait()
            client.wakeup.clear()
            while client.frames and not client.dropped:
                frame, count = client.frames.popleft()
                try:
                    async with asyncio.timeout(self._send_timeout_s):
                        await websocket.send_text(frame)
                except TimeoutError:
                    self._drop(client)
                    return
                client.pending_events -= count

    async def _receive_loop(self, websocket: WebSocket) -> None:
        # Clients only send pings ("ping" -> "pong" is not needed: uvicorn answers protocol
        # pings); reading detects a closed socket promptly.
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                message = await websocket.receive()
                if message.get("type") == "websocket.disconnect":
                    return


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state == WebSocketState.CONNECTED and (
        websocket.client_state == WebSocketState.CONNECTED
    ):
        with contextlib.suppress(Exception):
            await websocket.close(code=code, reason=reason)
