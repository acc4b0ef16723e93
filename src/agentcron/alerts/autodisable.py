"""Auto-disable (opt-in per job): pause a job after N consecutive failures, say why, alert.

`AutoDisable` subscribes to run events, keeps failure streaks (`FailureStreaks`: final
failures, once per run id; a success resets), and when a job's streak reaches its limit
calls `pause(job_id, note)` (the Scheduler's pause) with a note such as
`auto-disabled after 5 consecutive failures (last error: ...)`, then raises a
`job_auto_disabled` alert through the `AlertManager`, if one is given. The job stays paused
until someone resumes it; `job.resumed` clears its streak so it gets a fresh budget.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType

from agentcron.alerts.manager import AlertManager
from agentcron.alerts.rules import FailureStreaks
from agentcron.events import (
    Event,
    EventBus,
    JobResumed,
    RunFailed,
    RunInterrupted,
    RunSucceeded,
    RunTimedOut,
    Subscription,
)

__all__ = ["AutoDisable", "disable_note", "should_disable"]

log = logging.getLogger("agentcron.alerts.autodisable")

PauseFn = Callable[[str, str], Awaitable[object] | object]


def should_disable(streak: int, limit: int | None, already_disabled: bool) -> bool:
    return limit is not None and not already_disabled and streak >= limit


def disable_note(streak: int, last_error: str | None) -> str:
    note = f"auto-disabled after {streak} consecutive failures"
    if last_error:
        first_line = last_error.strip().splitlines()[0] if last_error.strip() else ""
        note += f" (last error: {first_line[:200]})"
    return note


class AutoDisable:
    """Pauses jobs whose failure streak reaches their limit (`limits`: job id -> N)."""

    def __init__(
        self,
        events: EventBus,
        pause: PauseFn,
        limits: Mapping[str, int],
        *,
        alerts: AlertManager | None = None,
    ) -> None:
        for job_id, limit in limits.items():
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
                raise ValueError(
                    f"auto_disable of job {job_id!r}: must be a whole number >= 1, got {limit!r}"
                )
        self.events = events
        self.pause = pause
        self.limits = dict(limits)
        self.alerts = alerts
        self.streaks = FailureStreaks()
        self.disabled: set[str] = set()
        self._subscription: Subscription | None = None

    def set_limit(self, job_id: str, limit: int | None) -> None:
        if limit is None:
            self.limits.pop(job_id, None)
        else:
            self.limits[job_id] = limit

    async def handle(self, event: Event) -> bool:
        """Apply one event; True when it paused a job."""
        if isinstance(event, JobResumed):
            self.disabled.discard(event.job_id)
            self.streaks.reset(event.job_id)
            return False
        streak = self.streaks.observe(event)
        if streak is None or not isinstance(event, RunFailed | RunTimedOut | RunInterrupted):
            return False
        job_id = event.job_id
        if not should_disable(streak, self.limits.get(job_id), job_id in self.disabled):
            return False
        error = event.error if isinstance(event, RunFailed) else event.type
        note = disable_note(streak, error)
        self.disabled.add(job_id)
        log.error("pausing job %s: %s", job_id, note, extra={"event": "job.auto_disabled"})
        try:
            result = self.pause(job_id, note)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.disabled.discard(job_id)
            log.exception("could not pause job %s", job_id)
            return False
        if self.alerts is not None:
            await self.alerts.fire(
                "job_auto_disabled",
                job_id,
                f"job {job_id} was paused: {note}",
                job_id=job_id,
                details={"consecutive_failures": streak},
            )
        return True

    async def _on_event(self, event: Event) -> None:
        try:
            await self.handle(event)
        except Exception:
            log.exception("auto-disable failed on %s", event.type)

    async def __aenter__(self) -> AutoDisable:
        self._subscription = self.events.subscribe(
            self._on_event,
            types=[
                RunFailed.type,
                RunTimedOut.type,
                RunInterrupted.type,
                RunSucceeded.type,
                JobResumed.type,
            ],
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
