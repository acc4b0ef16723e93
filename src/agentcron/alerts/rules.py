"""Alert rules: which events become alerts, keyed so that cooldowns work per incident.

| kind | fires on | key | default severity |
|---|---|---|---|
| `run_failed` | `run.failed` / `run.timed_out` (the run failed after all retries) | job id | warning |
| `consecutive_failures` | the job's failure streak reaches `threshold` (default 3) | job id | critical |
| `circuit_opened` | `circuit.opened` | circuit name | warning |
| `job_overdue` | `job.overdue` (dead-man's switch) | job id | critical |
| `node_offline` | `node.offline`, unless the node stopped cleanly (`stopped`) | node id | critical |
| `backup_failed` | `backup.failed` | backup path | critical |
| `disk_nearly_full` | `disk.low` with `used_pct >= threshold` (default 90) | node:path | warning |
| `job_auto_disabled` | a job paused by auto-disable (`AlertManager.fire`) | job id | critical |

A rule may restrict itself to jobs whose id matches one of `jobs` (shell-style patterns).

Four kinds have an event that ends their incident (`resolve(rule, event)` returns the resolve
alert, `resolved=True`, for it):

| kind | ended by |
|---|---|
| `consecutive_failures` | `run.succeeded` of the job |
| `circuit_opened` | `circuit.closed` |
| `job_overdue` | `job.recovered` |
| `node_offline` | `node.recovered` / `node.online` |

Decisions here are pure: `match(rule, event, streak)`, `resolve(rule, event)`,
`in_cooldown(last, cooldown, now)` and `retry_delay(attempts, base, cap)`.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agentcron.alerts.sinks import Alert
from agentcron.events import (
    BackupFailed,
    CircuitClosed,
    CircuitOpened,
    DiskSpaceLow,
    Event,
    JobOverdue,
    JobRecovered,
    NodeOffline,
    NodeOnline,
    NodeRecovered,
    RunFailed,
    RunInterrupted,
    RunSucceeded,
    RunTimedOut,
)

__all__ = [
    "DEFAULT_SEVERITY",
    "RESOLVABLE_KINDS",
    "RULE_KINDS",
    "FailureStreaks",
    "Rule",
    "default_rules",
    "in_cooldown",
    "match",
    "resolve",
    "retry_delay",
]

RULE_KINDS = (
    "run_failed",
    "consecutive_failures",
    "circuit_opened",
    "job_overdue",
    "node_offline",
    "backup_failed",
    "disk_nearly_full",
    "job_auto_disabled",
)

DEFAULT_SEVERITY = {
    "run_failed": "warning",
    "consecutive_failures": "critical",
    "circuit_opened": "warning",
    "job_overdue": "critical",
    "node_offline": "critical",
    "backup_failed": "critical",
    "disk_nearly_full": "warning",
    "job_auto_disabled": "critical",
}
#: kinds whose incidents end with an event (see `resolve`)
RESOLVABLE_KINDS = frozenset(
    {"consecutive_failures", "circuit_opened", "job_overdue", "node_offline"}
)
DEFAULT_THRESHOLD = {"consecutive_failures": 3.0, "disk_nearly_full": 90.0}
SEVERITIES = ("info", "warning", "critical")
DEFAULT_COOLDOWN_S = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One configured rule. `name` is unique; cooldown applies per (name, key)."""

    name: str
    kind: str
    sinks: tuple[str, ...] = ("log",)
    cooldown_s: float = DEFAULT_COOLDOWN_S
    threshold: float | None = None
    severity: str | None = None
    jobs: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        where = f"alert rule {self.name!r}"
        if self.kind not in RULE_KINDS:
            raise ValueError(
                f"{where}: unknown kind {self.kind!r}; choose one of {', '.join(RULE_KINDS)}"
            )
        if not self.sinks:
            raise ValueError(f"{where}: needs at least one sink")
        if not self.cooldown_s >= 0:  # NaN too: a NaN cooldown would never hold
            raise ValueError(f"{where}: cooldown must be >= 0")
        if self.threshold is not None:
            if not math.isfinite(self.threshold):
                raise ValueError(f"{where}: threshold must be a finite number")
            if self.kind not in DEFAULT_THRESHOLD:
                raise ValueError(f"{where}: kind {self.kind!r} takes no threshold")
            if self.kind == "consecutive_failures" and (
                self.threshold < 1 or self.threshold != int(self.threshold)
            ):
                raise ValueError(f"{where}: threshold must be a whole number >= 1")
            if self.kind == "disk_nearly_full" and not 0 < self.threshold <= 100:
                raise ValueError(f"{where}: threshold must be a percentage in (0, 100]")
        if self.severity is not None and self.severity not in SEVERITIES:
            raise ValueError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")

    @property
    def effective_threshold(self) -> float:
        return self.threshold if self.threshold is not None else DEFAULT_THRESHOLD[self.kind]

    @property
    def effective_severity(self) -> str:
        return self.severity or DEFAULT_SEVERITY[self.kind]

    def wants_job(self, job_id: str | None) -> bool:
        if not self.jobs or job_id is None:
            return True
        return any(fnmatch.fnmatchcase(job_id, pattern) for pattern in self.jobs)


def default_rules(sinks: Sequence[str] = ("log",)) -> list[Rule]:
    """One rule of every kind, to `sinks`, with default thresholds and cooldowns."""
    return [Rule(name=kind, kind=kind, sinks=tuple(sinks)) for kind in RULE_KINDS]


def in_cooldown(last_sent: datetime | None, cooldown_s: float, now: datetime) -> bool:
    """True while an alert for the same rule and key was sent less than `cooldown_s` ago."""
    return last_sent is not None and (now - last_sent).total_seconds() < cooldown_s


def retry_delay(attempts: int, base_s: float, cap_s: float) -> float:
    """Seconds before retrying an alert no sink delivered after `attempts` tries: `base_s`,
    then twice that, ... capped at `cap_s`."""
    return float(min(cap_s, base_s * 2 ** min(max(attempts, 1) - 1, 62)))


class FailureStreaks:
    """Consecutive final failures per job, from run events.

    `run.failed`, `run.timed_out` and `run.interrupted` count once per run id (an engine that
    publishes two of them for one run is not double counted); `run.succeeded` resets.
    """

    def __init__(self) -> None:
        self._streak: dict[str, int] = {}
        self._last_run: dict[str, str] = {}

    def observe(self, event: Event) -> int | None:
        """Apply a run event; the job's streak after it (None for other events)."""
        if isinstance(event, RunSucceeded):
            self._streak[event.job_id] = 0
            self._last_run.pop(event.job_id, None)
            return 0
        if isinstance(event, RunFailed | RunTimedOut | RunInterrupted):
            if self._last_run.get(event.job_id) != event.run_id:
                self._last_run[event.job_id] = event.run_id
                self._streak[event.job_id] = self._streak.get(event.job_id, 0) + 1
            return self._streak[event.job_id]
        return None

    def reset(self, job_id: str) -> None:
        self._streak.pop(job_id, None)
        self._last_run.pop(job_id, None)

    def get(self, job_id: str) -> int:
        return self._streak.get(job_id, 0)


def _alert(
    rule: Rule, event: Event, key: str, message: str, *, resolved: bool = False, **details: Any
) -> Alert:
    return Alert(
        rule=rule.name,
        kind=rule.kind,
        key=key,
        severity=rule.effective_severity,
        message=message,
        at=event.at,
        details={"event": event.to_dict(), **details},
        resolved=resolved,
    )


def resolve(rule: Rule, event: Event) -> Alert | None:
    """The resolve alert (`resolved=True`) for the incident of `rule` that `event` ends, or
    None when it ends none. Whether that incident was alerted is the caller's business. Pure."""
    job_id = getattr(event, "job_id", None)
    if not rule.wants_job(job_id if isinstance(job_id, str) else None):
        return None
    kind = rule.kind
    if kind == "consecutive_failures" and isinstance(event, RunSucceeded):
        message = f"job {event.job_id} succeeded again"
        return _alert(rule, event, event.job_id, message, resolved=True)
    if kind == "circuit_opened" and isinstance(event, CircuitClosed):
        message = f"circuit {event.circuit} closed again"
        return _alert(rule, event, event.circuit, message, resolved=True)
    if kind == "job_overdue" and isinstance(event, JobRecovered):
        message = f"job {event.job_id} is no longer overdue"
        return _alert(rule, event, event.job_id, message, resolved=True)
    if kind == "node_offline" and isinstance(event, NodeRecovered | NodeOnline):
        message = f"node {event.node_id} is online again"
        return _alert(rule, event, event.node_id, message, resolved=True)
    return None


def match(rule: Rule, event: Event, streak: int | None = None) -> Alert | None:
    """The alert `rule` raises for `event` (None if it does not apply). Pure."""
    job_id = getattr(event, "job_id", None)
    if not rule.wants_job(job_id if isinstance(job_id, str) else None):
        return None
    kind = rule.kind
    if kind == "run_failed" and isinstance(event, RunFailed):
        return _alert(
            rule,
            event,
            event.job_id,
            f"job {event.job_id} failed after {event.attempt} attempt(s): {event.error}",
        )
    if kind == "run_failed" and isinstance(event, RunTimedOut):
        return _alert(
            rule,
            event,
            event.job_id,
            f"job {event.job_id} timed out after {event.timeout_s:g}s (attempt {event.attempt})",
        )
    if (
        kind == "consecutive_failures"
        and isinstance(event, RunFailed | RunTimedOut | RunInterrupted)
        and streak is not None
        and streak >= rule.effective_threshold
    ):
        return _alert(
            rule,
            event,
            event.job_id,
            f"job {event.job_id} failed {streak} times in a row",
            consecutive_failures=streak,
        )
    if kind == "circuit_opened" and isinstance(event, CircuitOpened):
        scope = f" (job {event.job_id})" if event.job_id else ""
        return _alert(
            rule,
            event,
            event.circuit,
            f"circuit {event.circuit}{scope} opened after {event.failures} failures",
        )
    if kind == "job_overdue" and isinstance(event, JobOverdue):
        since = event.last_success.isoformat() if event.last_success else "never"
        return _alert(
            rule,
            event,
            event.job_id,
            f"job {event.job_id} is overdue: last success {since}",
        )
    if kind == "node_offline" and isinstance(event, NodeOffline) and not event.stopped:
        # A clean stop (`systemctl stop`, Ctrl+C) is someone's decision, not an incident.
        return _alert(rule, event, event.node_id, f"node {event.node_id} is offline")
    if kind == "backup_failed" and isinstance(event, BackupFailed):
        return _alert(
            rule,
            event,
            event.path or "backup",
            f"backup {event.path or ''} failed: {event.error}".replace("  ", " "),
        )
    if (
        kind == "disk_nearly_full"
        and isinstance(event, DiskSpaceLow)
        and event.used_pct >= rule.effective_threshold
    ):
        where = f"{event.node_id}:{event.path}" if event.node_id else event.path
        free = f", {event.free_mb:.0f} MiB free" if event.free_mb is not None else ""
        return _alert(rule, event, where, f"disk of {where} is {event.used_pct:.0f}% full{free}")
    return None
