"""`AlertManager`: events in, alerts out, once per incident, never blocking the engine.

It subscribes to the `EventBus`, asks each rule (`rules.match`) whether an event is an alert,
drops alerts whose (rule, key) incident was already alerted within the rule's cooldown, and
delivers the rest to the rule's sinks in background tasks (bounded by `max_in_flight`). Each
delivered sink publishes `alert.sent`.

An incident counts as alerted (its cooldown starts) only once at least one sink delivered
it. An alert no sink took stays pending, one per (rule, key), and is sent again by a retry
loop on the injected clock (every `retry_s`, backing off per alert from `retry_s` to
`retry_max_s`) until a sink takes it or its incident ends. An event that ends an incident
(`rules.resolve`: `job.recovered`, a success after a failure streak, `node.recovered`,
`circuit.closed`) clears its cooldown, so the next incident alerts at once, and, when the
incident was alerted, sends a resolve alert (`resolved: true`) to the same sinks.

Cooldowns and a bounded alert history live in the store's system state (`alerts.cooldown`,
`alerts.history`: JSON), so a restart neither repeats nor forgets them, and nodes sharing one
store mostly alert once between them: an alert being sent is claimed in `alerts.claims` for
`CLAIM_S`, and both are re-read before each decision (two nodes deciding in the same instant
may both send). Pending retries are kept in memory only.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from agentcron.alerts.rules import (
    RESOLVABLE_KINDS,
    FailureStreaks,
    Rule,
    in_cooldown,
    match,
    resolve,
    retry_delay,
)
from agentcron.alerts.sinks import Alert, Sink, SinkError
from agentcron.clock import Clock
from agentcron.events import AlertSent, Event, EventBus, Subscription
from agentcron.store.base import Store
from agentcron.tasks import cancel_and_wait, cancel_and_wait_all, hold_while_running

__all__ = ["CLAIMS_KEY", "COOLDOWN_KEY", "HISTORY_KEY", "AlertManager"]

log = logging.getLogger("agentcron.alerts")

COOLDOWN_KEY = "alerts.cooldown"
CLAIMS_KEY = "alerts.claims"
HISTORY_KEY = "alerts.history"
#: how long a node's claim on an alert it is sending holds off the other nodes
CLAIM_S = 300.0
#: an alerted incident of a kind that ends with an event is remembered this long (for its
#: resolve alert), even past its cooldown; a node removed while offline never recovers
OPEN_INCIDENT_KEEP_S = 30 * 86_400.0


@dataclass(slots=True)
class _Pending:
    """An alert (or resolve alert) decided but not delivered yet."""

    alert: Alert
    rule: Rule
    attempts: int = 0
    #: when the retry loop sends it again; None while a delivery is in flight
    retry_at: datetime | None = None
    #: its incident ended while it was in flight: send this once it is delivered
    then_resolve: Alert | None = None
    #: a new incident began while its resolve was in flight: raise this after it
    then_alert: Alert | None = None


class AlertManager:
    """Turns events into alerts; see the module docstring."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: EventBus,
        rules: Sequence[Rule],
        sinks: Mapping[str, Sink],
        *,
        history_limit: int = 200,
        max_in_flight: int = 100,
        retry_s: float = 60.0,
        retry_max_s: float = 3600.0,
    ) -> None:
        names = [r.name for r in rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"alert rules: duplicate name(s) {', '.join(duplicates)}")
        for rule in rules:
            missing = [s for s in rule.sinks if s not in sinks]
            if missing:
                raise ValueError(f"alert rule {rule.name!r}: unknown sink(s) {', '.join(missing)}")
        if not 0 < retry_s <= retry_max_s:
            raise ValueError("alerts: retry_s must be positive and at most retry_max_s")
        self.store = store
        self.clock = clock
        self.events = events
        self.rules = list(rules)
        self.sinks = dict(sinks)
        self.history_limit = history_limit
        self.max_in_flight = max_in_flight
        self.retry_s = retry_s
        self.retry_max_s = retry_max_s
        self.streaks = FailureStreaks()
        self.dropped = 0
        self._cooldown: dict[str, str] = {}
        self._claims: dict[str, str] = {}
        self._pending: dict[str, _Pending] = {}
        self._history: list[dict[str, Any]] = []
        self._loaded = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscription: Subscription | None = None
        self._retry_task: asyncio.Task[None] | None = None

    # -- deciding ------------------------------------------------------------------------
    async def handle(self, event: Event) -> list[Alert]:
        """Evaluate every rule against `event`; dispatch and return the alerts raised
        (resolve alerts included)."""
        if isinstance(event, AlertSent):
            return []
        streak = self.streaks.observe(event)
        ends = [a for rule in self.rules if (a := resolve(rule, event)) is not None]
        alerts = [a for rule in self.rules if (a := match(rule, event, streak)) is not None]
        return await self._resolve_all(ends) + await self._raise_all(alerts)

    async def fire(
        self,
        kind: str,
        key: str,
        message: str,
        *,
        job_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> list[Alert]:
        """Raise an alert of `kind` directly (e.g. `job_auto_disabled`) through its rules."""
        now = self.clock.now()
        alerts = [
            Alert(
                rule=rule.name,
                kind=kind,
                key=key,
                severity=rule.effective_severity,
                message=message,
                at=now,
                details=dict(details or {}),
            )
            for rule in self.rules
            if rule.kind == kind and rule.wants_job(job_id)
        ]
        return await self._raise_all(alerts)

    def _rule(self, name: str) -> Rule:
        return next(r for r in self.rules if r.name == name)

    def _held_off(self, incident: str, rule: Rule, now: datetime) -> bool:
        """Alerted within its cooldown, or being sent by another node."""
        last = self._cooldown.get(incident)
        if in_cooldown(datetime.fromisoformat(last) if last else None, rule.cooldown_s, now):
            return True
        claim = self._claims.get(incident)
        return claim is not None and in_cooldown(datetime.fromisoformat(claim), CLAIM_S, now)

    async def _raise_all(self, alerts: Iterable[Alert]) -> list[Alert]:
        raised: list[Alert] = []
        now = self.clock.now()
        candidates = list(alerts)
        if not candidates:
            return raised
        await self._load()
        await self._merge_stored()
        for alert in candidates:
            rule = self._rule(alert.rule)
            incident = f"{alert.rule}|{alert.key}"
            pending = self._pending.get(incident)
            if pending is not None and pending.alert.resolved and pending.retry_at is not None:
                del self._pending[incident]  # a new incident: its alert replaces the resolve
            elif pending is not None:
                # being sent, or waiting for its retry: one alert per incident at a time
                if pending.retry_at is not None:
                    pending.alert = alert
                elif pending.alert.resolved or pending.then_resolve is not None:
                    pending.then_alert = alert  # the next incident, once this is sent
                continue
            if self._held_off(incident, rule, now):
                log.debug("alert %s for %s is in cooldown", alert.rule, alert.key)
                continue
            self._claims[incident] = now.isoformat()
            self._pending[incident] = _Pending(alert, rule)
            raised.append(alert)
            self._dispatch(incident)
        if raised:
            await self._save_state(now, claim=[f"{a.rule}|{a.key}" for a in raised])
        return raised

    async def _resolve_all(self, ends: Iterable[Alert]) -> list[Alert]:
        """End the incidents of `ends`; send the resolve alert of each that was alerted."""
        candidates = list(ends)
        if not candidates:
            return []
        now = self.clock.now()
        await self._load()
        await self._merge_stored()
        raised: list[Alert] = []
        cleared: list[str] = []
        for end in candidates:
            incident = f"{end.rule}|{end.key}"
            pending = self._pending.get(incident)
            if pending is not None and not pending.alert.resolved:
                if pending.retry_at is not None:
                    del self._pending[incident]  # never delivered: nothing to resolve
                    continue
                pending.then_resolve = end  # in flight: resolve once it is delivered
                continue
            if incident not in self._cooldown:
                continue  # not alerted (or another node already resolved it)
            del self._cooldown[incident]
            cleared.append(incident)
            self._pending[incident] = _Pending(end, self._rule(end.rule))
            raised.append(end)
            self._dispatch(incident)
        if cleared:
            await self._save_state(now, clear=cleared)
        return raised

    async def _retry_due(self, now: datetime) -> None:
        """Send again each pending alert whose retry time has come."""
        due = [
            incident
            for incident, p in self._pending.items()
            if p.retry_at is not None and p.retry_at <= now
        ]
        if not due:
            return
        await self._merge_stored()
        claimed: list[str] = []
        for incident in due:
            pending = self._pending[incident]
            if not pending.alert.resolved and self._held_off(incident, pending.rule, now):
                del self._pending[incident]  # another node delivered it meanwhile
                continue
            pending.retry_at = None
            if not pending.alert.resolved:
                self._claims[incident] = now.isoformat()
                claimed.append(incident)
            log.info("retrying alert %s for %s", pending.alert.rule, pending.alert.key)
            self._dispatch(incident)
        if claimed:
            await self._save_state(now, claim=claimed)

    async def _retry_loop(self) -> None:
        while True:
            await self.clock.sleep(self.retry_s)
            try:
                await self._retry_due(self.clock.now())
            except Exception:
                log.exception("alert retry failed")

    # -- delivering ----------------------------------------------------------------------
    def _dispatch(self, incident: str) -> None:
        pending = self._pending[incident]
        if len(self._tasks) >= self.max_in_flight:
            self.dropped += 1
            log.error(
                "too many alerts in flight; %s for %s waits for a retry",
                pending.alert.rule,
                pending.alert.key,
            )
            self._failed(incident, pending, self.clock.now())
            return
        task = asyncio.get_running_loop().create_task(
            self._deliver(incident, pending), name=f"agentcron-alert-{pending.alert.rule}"
        )
        hold_while_running(self._tasks, task)

    def _failed(self, incident: str, pending: _Pending, now: datetime) -> None:
        pending.attempts += 1
        delay = retry_delay(pending.attempts, self.retry_s, self.retry_max_s)
        pending.retry_at = now + timedelta(seconds=delay)

    async def _deliver(self, incident: str, pending: _Pending) -> None:
        alert, sink_names = pending.alert, pending.rule.sinks
        results = await asyncio.gather(
            *(self._send_one(alert, self.sinks[name]) for name in sink_names)
        )
        entry = alert.to_dict()
        entry["sinks"] = dict(zip(sink_names, results, strict=True))
        await self._append_history(entry)
        now = self.clock.now()
        delivered = "sent" in results
        if self._pending.get(incident) is pending:
            if delivered or pending.then_resolve is not None:
                del self._pending[incident]  # sent, or never sent and over
            else:
                self._failed(incident, pending, now)
        if not alert.resolved:
            await self._save_state(now, mark=[incident] if delivered else [], unclaim=[incident])
            if delivered and pending.then_resolve is not None:
                await self._resolve_all([pending.then_resolve])
        if pending.then_alert is not None:
            await self._raise_all([pending.then_alert])

    async def _send_one(self, alert: Alert, sink: Sink) -> str:
        try:
            await sink.send(alert)
        except asyncio.CancelledError:
            raise
        except SinkError as exc:
            log.error("alert %s for %s not delivered: %s", alert.rule, alert.key, exc)
            return f"failed: {exc}"
        except Exception as exc:
            log.exception("alert sink %s crashed", sink.name)
            return f"failed: {type(exc).__name__}: {exc}"
        self.events.publish(
            AlertSent(
                at=self.clock.now(),
                rule=alert.rule,
                key=alert.key,
                sink=sink.name,
                message=alert.message,
                severity=alert.severity,
                resolved=alert.resolved,
            )
        )
        return "sent"

    async def drain(self) -> None:
        """Wait until events published so far are handled and their alerts delivered."""
        for _ in range(3):
            await self.events.drain()
            # Only the tasks still running: one that has ended leaves `_tasks` in a later turn
            # of the loop (its done callback), and awaiting ended tasks never yields one, so
            # looping until `_tasks` is empty spun for ever (seen with eager tasks).
            while pending := {task for task in self._tasks if not task.done()}:
                await asyncio.wait(pending)

    # -- state ---------------------------------------------------------------------------
    async def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            raw = await self.store.get_state(HISTORY_KEY)
            value = json.loads(raw) if raw else None
        except Exception as exc:
            log.warning("cannot read %s: %s", HISTORY_KEY, exc)
            value = None
        if isinstance(value, list):
            self._history = [e for e in value if isinstance(e, dict)]
        await self._merge_stored()

    async def _read_times(self, key: str) -> dict[str, str] | None:
        """A stored `{incident: iso time}` map; None when it cannot be read."""
        try:
            raw = await self.store.get_state(key)
            value = json.loads(raw) if raw else {}
        except Exception as exc:
            log.warning("cannot read %s: %s", key, exc)
            return None
        if not isinstance(value, dict):
            return {}
        out: dict[str, str] = {}
        for k, v in value.items():
            try:
                datetime.fromisoformat(str(v))
            except ValueError:
                continue
            out[str(k)] = str(v)
        return out

    async def _merge_stored(self) -> None:
        # Other nodes sharing the store may have alerted, resolved or claimed since we looked.
        cooldown = await self._read_times(COOLDOWN_KEY)
        if cooldown is not None:
            # every change is written at once (`_save_state`), so the store is the truth
            self._cooldown = cooldown
        claims = await self._read_times(CLAIMS_KEY)
        if claims is not None:
            self._claims = claims

    def _keep(self, incident: str, at: str, now: datetime) -> bool:
        rule = next((r for r in self.rules if incident.startswith(r.name + "|")), None)
        if rule is None:
            return False
        keep_s = rule.cooldown_s
        if rule.kind in RESOLVABLE_KINDS:
            keep_s = max(keep_s, OPEN_INCIDENT_KEEP_S)
        return in_cooldown(datetime.fromisoformat(at), keep_s, now)

    async def _save_state(
        self,
        now: datetime,
        *,
        mark: Sequence[str] = (),
        claim: Sequence[str] = (),
        unclaim: Sequence[str] = (),
        clear: Sequence[str] = (),
    ) -> None:
        """Apply this node's changes to the stored cooldowns and claims (read, change, write:
        what other nodes stored meanwhile is kept)."""
        await self._merge_stored()
        for incident in mark:
            self._cooldown[incident] = now.isoformat()
        for incident in clear:
            self._cooldown.pop(incident, None)
        for incident in claim:
            self._claims[incident] = now.isoformat()
        for incident in unclaim:
            self._claims.pop(incident, None)
        self._cooldown = {k: v for k, v in self._cooldown.items() if self._keep(k, v, now)}
        self._claims = {
            k: v
            for k, v in self._claims.items()
            if in_cooldown(datetime.fromisoformat(v), CLAIM_S, now)
        }
        try:
            await self.store.set_state(COOLDOWN_KEY, json.dumps(self._cooldown, sort_keys=True))
            await self.store.set_state(CLAIMS_KEY, json.dumps(self._claims, sort_keys=True))
        except Exception as exc:
            log.warning("cannot store alert cooldowns: %s", exc)

    async def _append_history(self, entry: dict[str, Any]) -> None:
        await self._load()
        self._history.append(entry)
        del self._history[: -self.history_limit]
        try:
            await self.store.set_state(HISTORY_KEY, json.dumps(self._history, default=str))
        except Exception as exc:
            log.warning("cannot store alert history: %s", exc)

    async def history(self, limit: int = 50) -> list[dict[str, Any]]:
        """Delivered alerts, newest first, each with its per-sink outcome."""
        await self._load()
        return list(reversed(self._history))[:limit]

    # -- lifecycle -----------------------------------------------------------------------
    async def _on_event(self, event: Event) -> None:
        try:
            await self.handle(event)
        except Exception:
            log.exception("alert manager failed on %s", event.type)

    async def __aenter__(self) -> AlertManager:
        await self._load()
        self._subscription = self.events.subscribe(self._on_event)
        self._retry_task = asyncio.get_running_loop().create_task(
            self._retry_loop(), name="agentcron-alert-retry"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self, *, grace_s: float = 5.0) -> None:
        """Stop listening; give deliveries in flight `grace_s` (real time), then cancel."""
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        await cancel_and_wait(self._retry_task)
        self._retry_task = None
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            await cancel_and_wait_all(pending)
