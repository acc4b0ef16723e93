"""`AlertManager`: events in, alerts out, once per incident, never blocking the engine.

It subscribes to the `EventBus`, asks each rule (`rules.match`) whether an event is an alert,
drops alerts still in cooldown for their (rule, key), and delivers the rest to the rule's
sinks in background tasks (bounded by `max_in_flight`). Each delivered sink publishes
`alert.sent`. Cooldowns and a bounded alert history live in the store's system state
(`alerts.cooldown`, `alerts.history`: JSON), so a restart neither repeats nor forgets them,
and nodes sharing one store mostly alert once between them (cooldowns are re-read before
each alert; two nodes deciding in the same instant may both send).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from agentcron.alerts.rules import FailureStreaks, Rule, in_cooldown, match
from agentcron.alerts.sinks import Alert, Sink, SinkError
from agentcron.clock import Clock
from agentcron.events import AlertSent, Event, EventBus, Subscription
from agentcron.store.base import Store
from agentcron.tasks import hold_while_running

__all__ = ["COOLDOWN_KEY", "HISTORY_KEY", "AlertManager"]

log = logging.getLogger("agentcron.alerts")

COOLDOWN_KEY = "alerts.cooldown"
HISTORY_KEY = "alerts.history"


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
    ) -> None:
        names = [r.name for r in rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"alert rules: duplicate name(s) {', '.join(duplicates)}")
        for rule in rules:
            missing = [s for s in rule.sinks if s not in sinks]
            if missing:
                raise ValueError(f"alert rule {rule.name!r}: unknown sink(s) {', '.join(missing)}")
        self.store = store
        self.clock = clock
        self.events = events
        self.rules = list(rules)
        self.sinks = dict(sinks)
        self.history_limit = history_limit
        self.max_in_flight = max_in_flight
        self.streaks = FailureStreaks()
        self.dropped = 0
        self._cooldown: dict[str, str] = {}
        self._history: list[dict[str, Any]] = []
        self._loaded = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscription: Subscription | None = None

    # -- deciding ------------------------------------------------------------------------
    async def handle(self, event: Event) -> list[Alert]:
        """Evaluate every rule against `event`; dispatch and return the alerts raised."""
        if isinstance(event, AlertSent):
            return []
        streak = self.streaks.observe(event)
        alerts = [a for rule in self.rules if (a := match(rule, event, streak)) is not None]
        return await self._raise_all(alerts)

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

    async def _raise_all(self, alerts: Iterable[Alert]) -> list[Alert]:
        raised: list[Alert] = []
        now = self.clock.now()
        candidates = list(alerts)
        if candidates:
            await self._load()
            await self._merge_stored_cooldowns()
        for alert in candidates:
            rule = next(r for r in self.rules if r.name == alert.rule)
            cooldown_key = f"{alert.rule}|{alert.key}"
            last = self._cooldown.get(cooldown_key)
            if in_cooldown(datetime.fromisoformat(last) if last else None, rule.cooldown_s, now):
                log.debug("alert %s for %s is in cooldown", alert.rule, alert.key)
                continue
            self._cooldown[cooldown_key] = now.isoformat()
            raised.append(alert)
            self._dispatch(alert, rule)
        if raised:
            await self._save_cooldown(now)
        return raised

    # -- delivering ----------------------------------------------------------------------
    def _dispatch(self, alert: Alert, rule: Rule) -> None:
        if len(self._tasks) >= self.max_in_flight:
            self.dropped += 1
            log.error("too many alerts in flight; dropped %s for %s", alert.rule, alert.key)
            return
        task = asyncio.get_running_loop().create_task(
            self._deliver(alert, rule.sinks), name=f"agentcron-alert-{alert.rule}"
        )
        hold_while_running(self._tasks, task)

    async def _deliver(self, alert: Alert, sink_names: Sequence[str]) -> None:
        results = await asyncio.gather(
            *(self._send_one(alert, self.sinks[name]) for name in sink_names)
        )
        entry = alert.to_dict()
        entry["sinks"] = dict(zip(sink_names, results, strict=True))
        await self._append_history(entry)

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
            )
        )
        return "sent"

    async def drain(self) -> None:
        """Wait until events published so far are handled and their alerts delivered."""
        for _ in range(3):
            await self.events.drain()
            while self._tasks:
                await asyncio.gather(*tuple(self._tasks), return_exceptions=True)

    # -- state ---------------------------------------------------------------------------
    async def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for key, target in ((COOLDOWN_KEY, "_cooldown"), (HISTORY_KEY, "_history")):
            try:
                raw = await self.store.get_state(key)
                value = json.loads(raw) if raw else None
            except Exception as exc:
                log.warning("cannot read %s: %s", key, exc)
                continue
            if target == "_cooldown" and isinstance(value, dict):
                self._cooldown = {str(k): str(v) for k, v in value.items()}
            elif target == "_history" and isinstance(value, list):
                self._history = [e for e in value if isinstance(e, dict)]

    async def _merge_stored_cooldowns(self) -> None:
        # Other nodes sharing the store may have alerted since we last looked.
        try:
            raw = await self.store.get_state(COOLDOWN_KEY)
            stored = json.loads(raw) if raw else {}
        except Exception as exc:
            log.warning("cannot read %s: %s", COOLDOWN_KEY, exc)
            return
        if not isinstance(stored, dict):
            return
        for key, value in stored.items():
            mine = self._cooldown.get(str(key))
            try:
                if mine is None or datetime.fromisoformat(str(value)) > datetime.fromisoformat(
                    mine
                ):
                    self._cooldown[str(key)] = str(value)
            except ValueError:
                continue

    async def _save_cooldown(self, now: datetime) -> None:
        longest = max((r.cooldown_s for r in self.rules), default=0.0)
        self._cooldown = {
            k: v
            for k, v in self._cooldown.items()
            if in_cooldown(datetime.fromisoformat(v), longest, now)
        }
        try:
            await self.store.set_state(COOLDOWN_KEY, json.dumps(self._cooldown, sort_keys=True))
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
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)
