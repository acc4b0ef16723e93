"""`HeartbeatMonitor`: which nodes are alive, read from the store by any process.

Decisions are pure functions of plain data and `now`; the monitor loop reads the clock once
per tick, asks them, and publishes an event for every transition.

Node status (`interval` = the node's own `interval_s`, from its heartbeat; `grace` =
`grace_fraction * interval`, default 25 %, covering write and scheduling jitter)::

    elapsed = now - heartbeat.sent_at
    missed  = floor((elapsed - grace) / interval), at least 0
    online   missed == 0                      (elapsed <  interval + grace)
    suspect  1 <= missed < missed_threshold   (one beat did not arrive)
    offline  missed >= missed_threshold       (default 3: elapsed >= 3 * interval + grace),
             or at once when its last heartbeat says `stopped` (a clean stop)

Health score, 0-100, of a node that is not offline (an offline node scores 0)::

    100
    - 20 per missed beat
    - 15 when the node reports itself degraded, 40 when unhealthy
    - 10 when its event-loop lag is >= 0.5 s, 20 when >= 2 s
    clamped to 0..100

Transitions and their events: first sight -> `node.online` (or `node.suspect` /
`node.offline` when first seen already late); online -> suspect -> `node.suspect`;
online/suspect -> offline -> `node.offline`; suspect/offline -> online -> `node.recovered`.
A node offline for `remove_after_s` (default 24 h) is deleted from the store.

Heartbeats carry the sender's wall-clock time, so monitor and senders on different machines
need synchronised clocks (NTP); skew of a few seconds only shifts the thresholds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Literal

from agentcron.clock import Clock
from agentcron.events import (
    EventBus,
    NodeEvent,
    NodeOffline,
    NodeOnline,
    NodeRecovered,
    NodeSuspect,
)
from agentcron.models import NODE_STOPPED, NodeHeartbeat
from agentcron.store.base import Store
from agentcron.tasks import cancel_and_wait

__all__ = [
    "DEFAULT_GRACE_FRACTION",
    "DEFAULT_MISSED_THRESHOLD",
    "DEFAULT_REMOVE_AFTER_S",
    "HeartbeatMonitor",
    "NodeStatus",
    "NodeView",
    "health_score",
    "missed_beats",
    "node_status",
    "should_remove",
    "transition_event",
    "view_node",
]

log = logging.getLogger("agentcron.heartbeat.monitor")

NodeStatus = Literal["online", "suspect", "offline"]

DEFAULT_MISSED_THRESHOLD = 3
DEFAULT_GRACE_FRACTION = 0.25
DEFAULT_REMOVE_AFTER_S = 24 * 3600.0

#: Points taken off the health score (see the module docstring).
MISSED_BEAT_PENALTY = 20
DEGRADED_PENALTY = 15
UNHEALTHY_PENALTY = 40
LAG_WARN_S = 0.5
LAG_WARN_PENALTY = 10
LAG_CRIT_S = 2.0
LAG_CRIT_PENALTY = 20


def missed_beats(
    last_seen: datetime,
    interval_s: float,
    now: datetime,
    *,
    grace_fraction: float = DEFAULT_GRACE_FRACTION,
) -> int:
    """How many heartbeats were due since `last_seen` and did not arrive."""
    # NaN or infinity (a node that would stay online for ever) cannot be judged either
    if not 0 < interval_s < math.inf:
        raise ValueError(f"heartbeat interval must be positive, got {interval_s}")
    elapsed = (now - last_seen).total_seconds()
    late = elapsed - grace_fraction * interval_s
    if late < interval_s:
        return 0
    return math.floor(late / interval_s)


def node_status(
    last_seen: datetime,
    interval_s: float,
    missed_threshold: int,
    now: datetime,
    *,
    grace_fraction: float = DEFAULT_GRACE_FRACTION,
) -> NodeStatus:
    """`online`, `suspect` (>= 1 missed beat) or `offline` (>= `missed_threshold` missed)."""
    if missed_threshold < 1:
        raise ValueError(f"missed_threshold must be at least 1, got {missed_threshold}")
    missed = missed_beats(last_seen, interval_s, now, grace_fraction=grace_fraction)
    if missed == 0:
        return "online"
    if missed < missed_threshold:
        return "suspect"
    return "offline"


def health_score(
    status: NodeStatus, missed: int, reported: str, loop_lag_s: float | None = None
) -> int:
    """0-100 from the monitor's view (`status`, `missed`) and the node's own (`reported`)."""
    if status == "offline":
        return 0
    score = 100 - MISSED_BEAT_PENALTY * missed
    if reported == "degraded":
        score -= DEGRADED_PENALTY
    elif reported == "unhealthy":
        score -= UNHEALTHY_PENALTY
    if loop_lag_s is not None:
        if loop_lag_s >= LAG_CRIT_S:
            score -= LAG_CRIT_PENALTY
        elif loop_lag_s >= LAG_WARN_S:
            score -= LAG_WARN_PENALTY
    return max(0, min(100, score))


def should_remove(
    status: NodeStatus, last_seen: datetime, remove_after_s: float, now: datetime
) -> bool:
    """True for an offline node not heard from for `remove_after_s`."""
    return status == "offline" and (now - last_seen).total_seconds() >= remove_after_s


def transition_event(previous: NodeStatus | None, current: NodeStatus) -> type[NodeEvent] | None:
    """The event class for a status change (None when nothing changed)."""
    if previous == current:
        return None
    if current == "online":
        return NodeOnline if previous is None else NodeRecovered
    if current == "suspect":
        return NodeSuspect
    return NodeOffline


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeView:
    """One node as the monitor sees it (what `agentcron nodes` and the API show)."""

    node_id: str
    host: str
    pid: int
    status: NodeStatus
    reported: str
    health_score: int
    missed: int
    last_seen: datetime
    interval_s: float
    version: str
    platform: str
    started_at: datetime | None
    sequence: int
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "host": self.host,
            "pid": self.pid,
            "status": self.status,
            "reported": self.reported,
            "health_score": self.health_score,
            "missed": self.missed,
            "last_seen": self.last_seen.isoformat(),
            "interval_s": self.interval_s,
            "version": self.version,
            "platform": self.platform,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "sequence": self.sequence,
            "details": self.details,
        }


def _lag(details: dict[str, Any]) -> float | None:
    value = details.get("loop_lag_s")
    return float(value) if isinstance(value, int | float) else None


def view_node(
    hb: NodeHeartbeat,
    now: datetime,
    *,
    missed_threshold: int = DEFAULT_MISSED_THRESHOLD,
    grace_fraction: float = DEFAULT_GRACE_FRACTION,
) -> NodeView:
    """Judge one heartbeat at `now` (pure)."""
    missed = missed_beats(hb.sent_at, hb.interval_s, now, grace_fraction=grace_fraction)
    status: NodeStatus = (
        "offline"  # it said so itself, on its way out
        if hb.status == NODE_STOPPED
        else node_status(
            hb.sent_at, hb.interval_s, missed_threshold, now, grace_fraction=grace_fraction
        )
    )
    return NodeView(
        node_id=hb.node_id,
        host=hb.host,
        pid=hb.pid,
        status=status,
        reported=hb.status,
        health_score=health_score(status, missed, hb.status, _lag(hb.details)),
        missed=missed,
        last_seen=hb.sent_at,
        interval_s=hb.interval_s,
        version=hb.version,
        platform=hb.platform,
        started_at=hb.started_at,
        sequence=hb.sequence,
        details=dict(hb.details),
    )


class HeartbeatMonitor:
    """Watches every node's heartbeat in `store` and publishes `node.*` events.

    Use `await monitor.check()` for one pass, or `async with monitor:` to run the loop as a
    named task that checks every `check_every_s` seconds of the injected clock.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: EventBus,
        *,
        missed_threshold: int = DEFAULT_MISSED_THRESHOLD,
        grace_fraction: float = DEFAULT_GRACE_FRACTION,
        remove_after_s: float | None = DEFAULT_REMOVE_AFTER_S,
        check_every_s: float = 5.0,
    ) -> None:
        if missed_threshold < 1:
            raise ValueError(f"missed_threshold must be at least 1, got {missed_threshold}")
        if not 0 <= grace_fraction < 1:
            raise ValueError(f"grace_fraction must be in [0, 1), got {grace_fraction}")
        if check_every_s <= 0:
            raise ValueError(f"check_every_s must be positive, got {check_every_s}")
        self.store = store
        self.clock = clock
        self.events = events
        self.missed_threshold = missed_threshold
        self.grace_fraction = grace_fraction
        self.remove_after_s = remove_after_s
        self.check_every_s = check_every_s
        self._known: dict[str, NodeStatus] = {}
        self._views: dict[str, NodeView] = {}
        self._task: asyncio.Task[None] | None = None
        #: The last check could not read the store (it was down, or locked).
        self._blind = False
        #: When the store answered again after the last such outage: a node's silence is
        #: counted from then at the earliest (`check`).
        self._back_at: datetime | None = None

    # -- one pass ------------------------------------------------------------------------
    async def check(self, now: datetime | None = None) -> list[NodeView]:
        """Read all heartbeats, publish transitions, remove long-dead nodes; return views."""
        now = self.clock.now() if now is None else now
        try:
            heartbeats = await self.store.list_heartbeats()
        except Exception:
            self._blind = True
            raise
        if self._blind:
            # No node could write a heartbeat while the store was down, this one included:
            # the silence is the store's, not theirs. Counted from now, a node that did die
            # meanwhile is offline `missed_threshold` beats later.
            self._blind, self._back_at = False, now
        views: list[NodeView] = []
        seen: set[str] = set()
        for hb in heartbeats:
            try:
                view = self._view(hb, now)
            except ValueError as exc:  # a malformed row from another node must not stop us
                log.warning("ignoring heartbeat of node %s: %s", hb.node_id, exc)
                continue
            seen.add(hb.node_id)
            event_cls = transition_event(self._known.get(hb.node_id), view.status)
            self._known[hb.node_id] = view.status
            if event_cls is not None:
                log.info(
                    "node %s is %s (score %d)",
                    hb.node_id,
                    view.status,
                    view.health_score,
                    extra={"event": event_cls.type, "node_id": hb.node_id},
                )
                if event_cls is NodeOffline:
                    event: NodeEvent = NodeOffline(
                        at=now,
                        node_id=hb.node_id,
                        health_score=view.health_score,
                        stopped=hb.status == NODE_STOPPED,
                    )
                else:
                    event = event_cls(at=now, node_id=hb.node_id, health_score=view.health_score)
                self.events.publish(event)
            if self.remove_after_s is not None and should_remove(
                view.status, view.last_seen, self.remove_after_s, now
            ):
                if await self.store.delete_node(hb.node_id):
                    log.info("removed node %s, offline since %s", hb.node_id, view.last_seen)
                seen.discard(hb.node_id)
                self._known.pop(hb.node_id, None)
                continue
            views.append(view)
        for gone in set(self._known) - seen:
            del self._known[gone]
        self._views = {v.node_id: v for v in views}
        return views

    def _view(self, hb: NodeHeartbeat, now: datetime) -> NodeView:
        """`view_node`, with a heartbeat sent before the store's last outage ended judged as
        if sent when it ended (`last_seen` stays the real one)."""
        back_at = self._back_at
        if back_at is not None and hb.sent_at < back_at and hb.status != NODE_STOPPED:
            judged = self._judge(dataclasses.replace(hb, sent_at=back_at), now)
            return dataclasses.replace(judged, last_seen=hb.sent_at)
        return self._judge(hb, now)

    def _judge(self, hb: NodeHeartbeat, now: datetime) -> NodeView:
        return view_node(
            hb, now, missed_threshold=self.missed_threshold, grace_fraction=self.grace_fraction
        )

    def nodes(self) -> list[NodeView]:
        """The views of the last `check()`, ordered by node id."""
        return [self._views[k] for k in sorted(self._views)]

    # -- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        """Check forever; a failing check (store down) is logged and retried next tick."""
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("heartbeat monitor check failed; retrying in %ss", self.check_every_s)
            await self.clock.sleep(self.check_every_s)

    async def __aenter__(self) -> HeartbeatMonitor:
        self._task = asyncio.get_running_loop().create_task(
            self.run(), name="agentcron-heartbeat-monitor"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
