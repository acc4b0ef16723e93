"""Typed, frozen events and the bus that carries them.

Events are the spine of agentcron: the engine publishes them, and the run log, metrics,
dashboard WebSocket and alerts subscribe. Every event is a frozen dataclass stamped with the
injected clock's time (`at`) and serialisable to JSON (`to_dict` / `event_from_dict`).

Invariant: `EventBus.publish` never blocks and never raises because of a subscriber. Each
subscriber has its own bounded buffer drained by its own task; a subscriber that falls behind
loses its oldest events (counted in `Subscription.dropped`) and never delays firing.

A sync callback runs on the event loop, between its fires, so it must return quickly: one
that blocks (network I/O, `time.sleep`) holds up every fire while it runs. Subscribe such a
callback with `in_thread=True` (it then runs in a worker thread) or make it async; a sync
callback that holds the loop for `SLOW_CALLBACK_S` or more is named in a warning, once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import dataclasses
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from agentcron.clock import Clock, SystemClock
from agentcron.tasks import yield_to_creator

if TYPE_CHECKING:
    from agentcron.handlers.threads import DaemonThreadPool

__all__ = [
    "EVENT_TYPES",
    "AlertSent",
    "BackupFailed",
    "CircuitClosed",
    "CircuitEvent",
    "CircuitHalfOpen",
    "CircuitOpened",
    "DiskSpaceLow",
    "Event",
    "EventBus",
    "JobAdded",
    "JobEvent",
    "JobOverdue",
    "JobPaused",
    "JobRecovered",
    "JobRemoved",
    "JobResumed",
    "JobUpdated",
    "NodeEvent",
    "NodeOffline",
    "NodeOnline",
    "NodeRecovered",
    "NodeSuspect",
    "QueueEvent",
    "QueueJobProgress",
    "QueueJobStateChanged",
    "QueuePaused",
    "QueueResumed",
    "RunCancelled",
    "RunEvent",
    "RunFailed",
    "RunInterrupted",
    "RunMissed",
    "RunProgress",
    "RunRetrying",
    "RunSkipped",
    "RunStarted",
    "RunSucceeded",
    "RunTimedOut",
    "Subscription",
    "event_from_dict",
]

log = logging.getLogger("agentcron.events")

#: A sync callback run on the event loop for this long (seconds) or longer is reported in a
#: warning (once per subscription): every fire due meanwhile waited for it.
SLOW_CALLBACK_S = 0.1
#: At most this many events are handed to an `in_thread` callback's thread at once (one
#: thread hop per batch, not per event).
THREAD_BATCH = 1_000

#: Every concrete event class by its `type` name (filled by `Event.__init_subclass__`).
EVENT_TYPES: dict[str, type[Event]] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of all events. `type` is the dotted name of DESIGN 2.4 (`run.started`, ...)."""

    type: ClassVar[str] = ""
    at: datetime

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Explicit form: slots=True rebuilds the class, so the zero-argument super() cell
        # would point at the discarded original and fail on Python 3.11.
        super(Event, cls).__init_subclass__(**kwargs)
        if cls.__dict__.get("type"):
            EVENT_TYPES[cls.type] = cls

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: `{"type": ..., "at": ISO-8601, ...fields}`."""
        out: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from `Event.to_dict()` output (e.g. received from another node).

    Raises `ValueError` for anything that is not such output: not a dict, an unknown type,
    a missing field, or a field of the wrong type (a naive or unparsable time included).
    """
    if not isinstance(data, dict):
        raise ValueError(f"an event must be a JSON object, not {type(data).__name__}")
    cls = EVENT_TYPES.get(str(data.get("type")))
    if cls is None:
        raise ValueError(f"unknown event type {str(data.get('type'))[:100]!r}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _field_value(cls, f.name, str(f.type), data[f.name])
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ValueError(f"{cls.type}: {exc}") from None


_SCALARS: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float)}


def _field_value(cls: type[Event], name: str, annotation: str, value: Any) -> Any:
    kinds = [part.strip() for part in annotation.split("|")]
    if value is None and "None" in kinds:
        return None
    if "datetime" in kinds and isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{cls.type}.{name}: not an ISO-8601 time") from None
        if parsed.tzinfo is None:
            raise ValueError(f"{cls.type}.{name}: a time without a UTC offset")
        return parsed
    known = [_SCALARS[kind] for kind in kinds if kind in _SCALARS]
    if not known and "datetime" not in kinds:
        return value  # a field type this check does not know: taken as is
    if not isinstance(value, bool) and any(isinstance(value, types) for types in known):
        return value
    raise ValueError(f"{cls.type}.{name}: expected {annotation}, got {type(value).__name__}")


# -- jobs ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class JobEvent(Event):
    job_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class JobAdded(JobEvent):
    type: ClassVar[str] = "job.added"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobUpdated(JobEvent):
    type: ClassVar[str] = "job.updated"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRemoved(JobEvent):
    type: ClassVar[str] = "job.removed"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobPaused(JobEvent):
    type: ClassVar[str] = "job.paused"
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobResumed(JobEvent):
    type: ClassVar[str] = "job.resumed"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOverdue(JobEvent):
    """The job's dead-man's switch expired: no success within `expect_every`."""

    type: ClassVar[str] = "job.overdue"
    last_success: datetime | None = None
    expected_by: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRecovered(JobEvent):
    type: ClassVar[str] = "job.recovered"


# -- runs ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class RunEvent(Event):
    job_id: str
    run_id: str
    scheduled_for: datetime
    attempt: int = 1
    node_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(RunEvent):
    type: ClassVar[str] = "run.started"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunProgress(RunEvent):
    """A running handler reported progress (`ctx.progress(pct)`), 0-100; published when it
    moved by a whole percent or more, or reached 100."""

    type: ClassVar[str] = "run.progress"
    progress: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSucceeded(RunEvent):
    type: ClassVar[str] = "run.succeeded"
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFailed(RunEvent):
    """The run failed for good (after its last attempt)."""

    type: ClassVar[str] = "run.failed"
    error: str = ""
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRetrying(RunEvent):
    """An attempt failed; attempt `attempt + 1` starts after `delay_s`."""

    type: ClassVar[str] = "run.retrying"
    error: str = ""
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunTimedOut(RunEvent):
    type: ClassVar[str] = "run.timed_out"
    timeout_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCancelled(RunEvent):
    type: ClassVar[str] = "run.cancelled"
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSkipped(RunEvent):
    """A fire was not run; `reason` is a `SkipReason` value (overlap, circuit_open, ...)."""

    type: ClassVar[str] = "run.skipped"
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInterrupted(RunEvent):
    """The process running it died (found on restart or by lease expiry)."""

    type: ClassVar[str] = "run.interrupted"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunMissed(RunEvent):
    """Fires passed while the scheduler was down, asleep or late beyond grace.

    `scheduled_for` is the latest missed fire, `missed` how many were missed, `action` what
    the misfire policy decided (`run_once`, `skip`, `run_all`).
    """

    type: ClassVar[str] = "run.missed"
    missed: int = 1
    action: str = ""


# -- circuits --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitEvent(Event):
    circuit: str
    job_id: str | None = None
    failures: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitOpened(CircuitEvent):
    type: ClassVar[str] = "circuit.opened"


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitHalfOpen(CircuitEvent):
    type: ClassVar[str] = "circuit.half_open"


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitClosed(CircuitEvent):
    type: ClassVar[str] = "circuit.closed"


# -- nodes -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class NodeEvent(Event):
    node_id: str
    health_score: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeOnline(NodeEvent):
    type: ClassVar[str] = "node.online"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSuspect(NodeEvent):
    type: ClassVar[str] = "node.suspect"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeOffline(NodeEvent):
    """The node is offline. `stopped`: it said so itself, stopping cleanly (its last
    heartbeat reports `stopped`), rather than falling silent; the `node_offline` alert
    ignores such a stop."""

    type: ClassVar[str] = "node.offline"
    stopped: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRecovered(NodeEvent):
    type: ClassVar[str] = "node.recovered"


# -- queues ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEvent(Event):
    queue: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuePaused(QueueEvent):
    type: ClassVar[str] = "queue.paused"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueResumed(QueueEvent):
    type: ClassVar[str] = "queue.resumed"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueJobStateChanged(QueueEvent):
    """A queue job moved to `state` (waiting, delayed, active, completed, failed)."""

    type: ClassVar[str] = "queue.job_state"
    job_id: str
    state: str
    attempt: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueJobProgress(QueueEvent):
    type: ClassVar[str] = "queue.job_progress"
    job_id: str
    progress: float


# -- alerts ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class AlertSent(Event):
    """An alert delivered to `sink`; `resolved`: it is the resolve alert that ends the
    incident, not the alert that raised it."""

    type: ClassVar[str] = "alert.sent"
    rule: str
    key: str
    sink: str
    message: str
    severity: str = "warning"
    resolved: bool = False


# -- system ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class BackupFailed(Event):
    """A database backup (or its verification) failed; `path` is the intended target."""

    type: ClassVar[str] = "backup.failed"
    path: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DiskSpaceLow(Event):
    """The file system holding `path` (the data directory) is `used_pct` % full."""

    type: ClassVar[str] = "disk.low"
    path: str
    used_pct: float
    free_mb: float | None = None
    node_id: str | None = None


# -- the bus ---------------------------------------------------------------------------
Callback = Callable[[Event], Awaitable[None] | None]
#: The event type a callback takes: `subscribe(on_ok, types=["run.succeeded"])` type-checks
#: with `async def on_ok(e: RunSucceeded) -> None` (that it only gets those is the caller's).
E = TypeVar("E", bound=Event)


class Subscription:
    """One subscriber's buffer and delivery task. `close()` stops delivery.

    The delivery task is started by the first event offered inside a running loop, and
    started again if it ended (cancelled with its loop, or its loop closed): events offered
    later are delivered, never stranded.
    """

    def __init__(
        self,
        bus: EventBus,
        callback: Callback,
        types: frozenset[str] | None,
        max_pending: int,
        *,
        in_thread: bool = False,
    ) -> None:
        self._bus = bus
        self._callback = callback
        self._types = types
        self._in_thread = in_thread
        # Its own daemon thread, not the loop's default executor: a callback that hangs
        # would hold up `asyncio.run` and the interpreter's exit for good.
        self._thread: DaemonThreadPool | None = None
        self._warned_slow = False
        self._pending: collections.deque[Event] = collections.deque(maxlen=max_pending)
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy = False  # a callback is running
        self._drainers: list[asyncio.Future[None]] = []
        self.dropped = 0
        self.closed = False

    def wants(self, event: Event) -> bool:
        return self._types is None or event.type in self._types

    def offer(self, event: Event) -> None:
        if self.closed:
            return
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1  # the deque drops the oldest
        self._pending.append(event)
        if self._running():
            self._wakeup.set()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._deliver_now()
            return
        self._start(loop)

    def _running(self) -> bool:
        task = self._task
        return task is not None and not task.done() and not task.get_loop().is_closed()

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        # A fresh Event: the old one may be bound to a loop that is gone.
        self._wakeup = asyncio.Event()
        self._wakeup.set()
        self._busy = False
        self._task = loop.create_task(self._deliver(), name="agentcron-event-subscriber")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._busy = False
        self._end_thread()  # (a delivery task started again starts a thread again)
        self._wake_drainers()

    def _end_thread(self) -> None:
        if self._thread is not None:
            self._thread.shutdown()  # its thread ends once the call under way returns
            self._thread = None

    def _wake_drainers(self) -> None:
        drainers, self._drainers = self._drainers, []
        for waiter in drainers:
            if not waiter.done():
                with contextlib.suppress(RuntimeError):  # its loop is closed
                    waiter.set_result(None)

    def _deliver_now(self) -> None:
        # Without a running loop (sync code, tests) only sync callbacks can be served.
        while self._pending and not self.closed:
            event = self._pending.popleft()
            try:
                result = self._callback(event)
                if inspect.isawaitable(result):
                    with contextlib.suppress(RuntimeError):
                        asyncio.run(_await(result))
            except Exception:
                log.exception("event subscriber failed on %s", event.type)
        self._wake_drainers()

    async def _deliver(self) -> None:
        # Started eagerly, the first delivery would run inside `publish` (a slow subscriber
        # delaying the publisher), before `offer` has stored this task.
        await yield_to_creator()
        monotonic = self._bus.clock.monotonic
        while not self.closed:
            if not self._pending:
                self._wake_drainers()
                if self._bus.parked:  # (the next event offered starts this task again)
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            self._busy = True
            if self._in_thread:
                try:
                    await self._in_own_thread(self._take_batch())
                finally:
                    self._busy = False
                continue
            # On the loop (inline: this runs for every event a subscriber gets).
            event = self._pending.popleft()
            began = monotonic()
            awaited = False
            try:
                result = self._callback(event)
                if inspect.isawaitable(result):
                    awaited = True  # (an async callback yields the loop while it waits)
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event subscriber failed on %s", event.type)
            finally:
                self._busy = False
            if not awaited:
                self._held_loop(monotonic() - began, event)

    def _held_loop(self, held_s: float, event: Event) -> None:
        if held_s >= SLOW_CALLBACK_S and not self._warned_slow:
            self._warned_slow = True
            log.warning(
                "event subscriber %s held the event loop for %.3f s on %s, and every fire"
                " due meanwhile waited; make it async or subscribe it with in_thread=True"
                " (reported once)",
                _name_of(self._callback),
                held_s,
                event.type,
            )

    async def _in_own_thread(self, events: list[Event]) -> None:
        if self._thread is None:
            from agentcron.handlers.threads import DaemonThreadPool  # (only when used)

            self._thread = DaemonThreadPool(1, thread_name_prefix="agentcron-subscriber")
        call = functools.partial(contextvars.copy_context().run, self._call_in_thread, events)
        await asyncio.wrap_future(self._thread.submit(call))

    def _take_batch(self) -> list[Event]:
        pending = self._pending
        return [pending.popleft() for _ in range(min(len(pending), THREAD_BATCH))]

    def _call_in_thread(self, events: list[Event]) -> None:
        """Deliver `events` in order (in a worker thread: the callback may block)."""
        for event in events:
            if self.closed:
                return
            try:
                result = self._callback(event)
            except Exception:
                log.exception("event subscriber failed on %s", event.type)
                continue
            if inspect.isawaitable(result):  # cannot be awaited in this thread
                if inspect.iscoroutine(result):
                    result.close()
                log.error(
                    "event subscriber %s returned an awaitable in its thread; subscribe an"
                    " async callback without in_thread=True",
                    _name_of(self._callback),
                )

    async def drain(self) -> None:
        """Wait until every event offered so far has been delivered."""
        loop = asyncio.get_running_loop()
        while not self.closed and (self._pending or self._busy):
            if not self._running():
                self._start(loop)
            waiter: asyncio.Future[None] = loop.create_future()
            self._drainers.append(waiter)
            await waiter

    def close(self) -> None:
        self.closed = True
        self._bus._remove(self)
        if self._task is not None:
            self._task.cancel()
        self._end_thread()
        self._wake_drainers()


async def _await(awaitable: Awaitable[None]) -> None:
    await awaitable


def _shown(value: object) -> str:
    try:
        text = repr(value)
    except Exception:  # its own __repr__ may raise
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= 60 else f"{text[:57]}..."


def _checked_types(types: object) -> frozenset[str] | None:
    if types is None:
        return None
    if isinstance(types, str | bytes):
        raise TypeError(
            f"types: expected a list of event type names, got the string {_shown(types)};"
            f" write types=[{_shown(types)}]"
        )
    if not isinstance(types, Iterable):
        raise TypeError(f"types: expected a list of event type names, got {_shown(types)}")
    names = list(types)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"types: expected event type names (str), got {_shown(name)}")
        if name not in EVENT_TYPES:
            raise ValueError(
                f"types: unknown event type {_shown(name)}; known: {', '.join(sorted(EVENT_TYPES))}"
            )
    return frozenset(names)


def _checked_max_pending(max_pending: object) -> int:
    if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
        raise ValueError(f"max_pending: expected a whole number >= 1, got {_shown(max_pending)}")
    return max_pending


def _name_of(callback: object) -> str:
    return str(getattr(callback, "__qualname__", None) or type(callback).__qualname__)


class EventBus:
    """In-process publish/subscribe for `Event`s; see the module docstring for guarantees."""

    def __init__(self, *, max_pending: int = 10_000, clock: Clock | None = None) -> None:
        # A dict (insertion-ordered) so that closing one of thousands is O(1).
        self._subscriptions: dict[Subscription, None] = {}
        self._max_pending = _checked_max_pending(max_pending)
        #: Set by `park()` (the scheduler stopped): idle delivery tasks end.
        self.parked = False
        #: Times sync callbacks run on the loop (`SLOW_CALLBACK_S`).
        self.clock: Clock = clock or SystemClock()

    def subscribe(
        self,
        callback: Callable[[E], Awaitable[None] | None],
        *,
        types: Iterable[str] | None = None,
        max_pending: int | None = None,
        in_thread: bool = False,
    ) -> Subscription:
        """Deliver every event (or only `types`) to `callback`, sync or async, in order.

        A sync callback runs on the event loop and must return quickly (see the module
        docstring). `in_thread=True` runs a sync callback that may block in a worker thread
        instead, one call at a time and in order, so firing never waits for it; it must
        then not touch the scheduler or other event-loop objects directly. An async
        callback cannot be `in_thread` (`ValueError`).

        `types`: a list of event type names (`["run.failed"]`, see `EVENT_TYPES`); a
        callback that is not callable, an unknown type name, a single string for `types` or
        a `max_pending` that is not a whole number >= 1 raise `TypeError` / `ValueError`
        naming the argument."""
        if not callable(callback):
            raise TypeError(
                f"callback: expected a function taking an Event, got {_shown(callback)}"
            )
        wanted = _checked_types(types)
        if max_pending is not None:
            max_pending = _checked_max_pending(max_pending)
        if in_thread and inspect.iscoroutinefunction(callback):
            raise ValueError(
                f"in_thread: {_name_of(callback)} is async and runs on the event loop;"
                " subscribe it without in_thread=True"
            )
        sub = Subscription(
            self,
            cast(Callback, callback),
            wanted,
            max_pending or self._max_pending,
            in_thread=in_thread,
        )
        self._subscriptions[sub] = None
        return sub

    def publish(self, event: Event) -> None:
        """Hand `event` to every subscriber's buffer; never blocks, never raises."""
        for sub in tuple(self._subscriptions):
            if sub.wants(event):
                sub.offer(event)

    async def drain(self) -> None:
        """Wait until every subscriber has received everything published so far."""
        for sub in tuple(self._subscriptions):
            await sub.drain()

    def close(self) -> None:
        for sub in tuple(self._subscriptions):
            sub.close()

    async def park(self, patience_s: float = 1.0) -> None:
        """End the subscribers' delivery tasks once they have delivered what they hold
        (waiting at most `patience_s`, real time, for a slow callback): nothing is left
        pending after the scheduler stops. The next event published starts them again."""
        self.parked = True
        tasks: set[asyncio.Task[None]] = set()
        for sub in tuple(self._subscriptions):
            task = sub._task
            if task is not None and not task.done() and not task.get_loop().is_closed():
                sub._wakeup.set()
                tasks.add(task)
        if tasks:
            await asyncio.wait(tasks, timeout=patience_s)

    def unpark(self) -> None:
        """Keep delivery tasks waiting for events again (a scheduler started)."""
        self.parked = False

    def _remove(self, sub: Subscription) -> None:
        self._subscriptions.pop(sub, None)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)
