"""Per-job dead-man's switches and outgoing pings.

A dead-man's switch answers "has this job succeeded recently enough?". Each watched job has
an `Expectation`: either a duration (`every_s`: a success at least every so often) or "per
schedule" (`next_fire`: the job's trigger; the fire after the last success must have
succeeded), plus a `grace_s` for the run's own duration. Pure::

    base        = last success, or when watching began (a new job is not overdue at once)
    expected_by = base + every_s + grace_s + asleep_s           (duration)
                = next_fire(base) + grace_s + asleep_s          (per schedule; never, if no
                                                                 next fire)
    overdue     = now >= expected_by

`asleep_s` is the time since `base` that the machine spent suspended (or that an NTP step
skipped): the wall clock moved and the monotonic clock did not, so no job could run. Without
it every watched job would be announced overdue on the first check after a long sleep,
before the misfire policy had a chance to run it. Each check compares how far both clocks
moved since the one before; a forward jump of more than `SUSPEND_MIN_S` is such time.

`DeadMansSwitch` checks every `check_interval_s()` of the injected clock: a quarter of the
shortest expectation (`every_s`, or the grace of a per-schedule one), at most `check_every_s`
(10 s) and at least `MIN_CHECK_S` (1 s), so a job expected every 10 s is noticed within 2.5 s
of being due, not up to 10 s late. It is recomputed, and the wait cut short, whenever a job
is watched or unwatched. Each check reads last successes
from the store (so runs on other nodes count) and from `run.succeeded` events (so recovery is
immediate). It publishes `job.overdue` once per incident and `job.recovered` on the next
success. Open incidents are kept in the store's state (`deadman.overdue`), so a restart does
not announce them again.

`JobPinger` calls per-job URLs on `run.started`, `run.succeeded` and `run.failed` /
`run.timed_out` (healthchecks.io style: `PingUrls.healthchecks(base)` gives `base/start`,
`base` and `base/fail`). Pings run as background tasks with a timeout and never block the
engine or the event bus; failures are logged with the URL's scheme and host only (its path
is often the secret, its user info a password).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

import httpx

from agentcron.clock import Clock
from agentcron.error_text import shown_url
from agentcron.events import (
    Event,
    EventBus,
    JobOverdue,
    JobRecovered,
    RunFailed,
    RunStarted,
    RunSucceeded,
    RunTimedOut,
    Subscription,
)
from agentcron.store.base import Store
from agentcron.tasks import cancel_and_wait, hold_while_running

__all__ = [
    "DeadMansSwitch",
    "Expectation",
    "JobPinger",
    "PingUrls",
    "asleep_since",
    "check_interval",
    "expected_by",
    "is_overdue",
]

log = logging.getLogger("agentcron.heartbeat.deadman")

STATE_KEY = "deadman.overdue"
#: A wall-clock jump forward of more than this (seconds) against the monotonic clock between
#: two checks is time the machine was suspended (or an NTP step): it does not count.
SUSPEND_MIN_S = 5.0
#: Checks are never closer together than this (seconds), however short the expectations.
MIN_CHECK_S = 1.0
#: ... and at most this fraction of the shortest expectation apart.
CHECK_FRACTION = 0.25
NextFire = Callable[[datetime], datetime | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Expectation:
    """How often `job_id` must succeed: `every_s`, or per schedule via `next_fire`."""

    job_id: str
    every_s: float | None = None
    next_fire: NextFire | None = None
    grace_s: float = 0.0

    def __post_init__(self) -> None:
        if (self.every_s is None) == (self.next_fire is None):
            raise ValueError(
                f"expect_every of job {self.job_id!r}: give either a duration or a schedule"
            )
        if self.every_s is not None and not 0 < self.every_s < math.inf:
            raise ValueError(f"expect_every of job {self.job_id!r} must be positive")
        if not 0 <= self.grace_s < math.inf:
            raise ValueError(f"expect_every grace of job {self.job_id!r} must be >= 0")


def expected_by(
    last_success: datetime | None,
    since: datetime,
    *,
    every_s: float | None = None,
    next_fire: NextFire | None = None,
    grace_s: float = 0.0,
    asleep_s: float = 0.0,
) -> datetime | None:
    """When the next success is due at the latest (None: never; see the module docstring).
    `asleep_s`: seconds the machine was suspended since the base."""
    base = last_success if last_success is not None else since
    try:
        grace = timedelta(seconds=grace_s + asleep_s)
        if every_s is not None:
            return base + timedelta(seconds=every_s) + grace
        if next_fire is not None:
            fire = next_fire(base)
            return fire + grace if fire is not None else None
    except OverflowError:
        return None  # due after the end of the calendar (year 9999): never
    raise ValueError("expected_by needs every_s or next_fire")


def is_overdue(due: datetime | None, now: datetime) -> bool:
    return due is not None and now >= due


def check_interval(
    expectations: Iterable[Expectation], most_s: float, *, least_s: float = MIN_CHECK_S
) -> float:
    """Seconds between checks: `CHECK_FRACTION` of the shortest expectation (`every_s`, or
    the grace of a per-schedule one), within `[least_s, most_s]` (pure)."""
    spans = [e.every_s if e.every_s is not None else e.grace_s for e in expectations]
    shortest = min((s for s in spans if s > 0), default=math.inf)
    return max(min(least_s, most_s), min(most_s, shortest * CHECK_FRACTION))


def asleep_since(base: datetime, suspensions: Iterable[tuple[datetime, float]]) -> float:
    """Seconds suspended after `base`, from `(latest time it can have begun, seconds)`
    pairs: a suspension that can have begun at or after `base` counts whole."""
    return sum(seconds for began, seconds in suspensions if began >= base)


class DeadMansSwitch:
    """Watches jobs' expectations; see the module docstring. `async with` runs the loop."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: EventBus,
        expectations: Iterable[Expectation] = (),
        *,
        check_every_s: float = 10.0,
    ) -> None:
        if check_every_s <= 0:
            raise ValueError(f"check_every_s must be positive, got {check_every_s}")
        self.store = store
        self.clock = clock
        self.events = events
        self.check_every_s = check_every_s
        self._expectations: dict[str, Expectation] = {}
        self._since: dict[str, datetime] = {}
        self._last_success: dict[str, datetime] = {}
        self._overdue: set[str] = set()
        #: (latest wall-clock time it can have begun, seconds) of each suspension noticed.
        self._suspensions: list[tuple[datetime, float]] = []
        self._clocks: tuple[datetime, float] | None = None  # both clocks at the last check
        self._loaded = False
        self._task: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None
        self._changed = asyncio.Event()  # the expectations changed: recompute the wait
        for expectation in expectations:
            self.watch(expectation)

    # -- configuration -------------------------------------------------------------------
    def watch(self, expectation: Expectation) -> None:
        """Start (or change) watching a job; its clock starts now if it never succeeded."""
        self._expectations[expectation.job_id] = expectation
        self._since.setdefault(expectation.job_id, self.clock.now())
        self._changed.set()

    def unwatch(self, job_id: str) -> None:
        self._expectations.pop(job_id, None)
        self._since.pop(job_id, None)
        self._overdue.discard(job_id)
        self._changed.set()

    def check_interval_s(self) -> float:
        """Seconds until the next check (see the module docstring)."""
        return check_interval(self._expectations.values(), self.check_every_s)

    def overdue_jobs(self) -> tuple[str, ...]:
        """Jobs currently overdue (for the heartbeat's `runs overdue` probe)."""
        return tuple(sorted(self._overdue))

    def due(self, job_id: str) -> datetime | None:
        exp = self._expectations[job_id]
        last_success, since = self._last_success.get(job_id), self._since[job_id]
        base = last_success if last_success is not None else since
        return expected_by(
            last_success,
            since,
            every_s=exp.every_s,
            next_fire=exp.next_fire,
            grace_s=exp.grace_s,
            asleep_s=asleep_since(base, self._suspensions),
        )

    def _note_clocks(self) -> None:
        """Record a suspension if the wall clock moved further than the monotonic one since
        the last check; forget the suspensions before every job's base."""
        wall, mono = self.clock.now(), self.clock.monotonic()
        previous, self._clocks = self._clocks, (wall, mono)
        if previous is None:
            return
        jump_s = (wall - previous[0]).total_seconds() - (mono - previous[1])
        if jump_s > SUSPEND_MIN_S:
            log.info("the machine was suspended for about %.0f s; it does not count", jump_s)
            # Stamped with the latest moment it can have begun (the previous check plus the
            # time awake since): a success between that check and the lid closing is
            # before it, one after waking is later.
            self._suspensions.append((wall - timedelta(seconds=jump_s), jump_s))
        bases = [self._last_success.get(j, self._since[j]) for j in self._expectations]
        oldest = min(bases, default=wall)
        self._suspensions = [s for s in self._suspensions if s[0] >= oldest]

    # -- decisions -----------------------------------------------------------------------
    async def check(self, now: datetime | None = None) -> tuple[str, ...]:
        """Refresh last successes from the store, publish overdue/recovered; return overdue."""
        now = self.clock.now() if now is None else now
        self._note_clocks()
        await self._load()
        changed = False
        for job_id in sorted(self._expectations):
            try:
                stats = await self.store.run_stats(job_id)
            except Exception as exc:
                log.warning("dead-man's switch cannot read runs of %s: %s", job_id, exc)
            else:
                self._note_success(job_id, stats.last_success)
            changed |= self._decide(job_id, now)
        if changed:
            await self._save()
        return self.overdue_jobs()

    def _note_success(self, job_id: str, at: datetime | None) -> None:
        if at is not None and (job_id not in self._last_success or at > self._last_success[job_id]):
            self._last_success[job_id] = at

    def _decide(self, job_id: str, now: datetime) -> bool:
        due = self.due(job_id)
        late = is_overdue(due, now)
        if late and job_id not in self._overdue:
            self._overdue.add(job_id)
            log.warning(
                "job %s is overdue: no success since %s (expected by %s)",
                job_id,
                self._last_success.get(job_id),
                due,
                extra={"event": JobOverdue.type, "job_id": job_id},
            )
            self.events.publish(
                JobOverdue(
                    at=now,
                    job_id=job_id,
                    last_success=self._last_success.get(job_id),
                    expected_by=due,
                )
            )
            return True
        if not late and job_id in self._overdue:
            self._overdue.discard(job_id)
            log.info("job %s recovered", job_id, extra={"event": JobRecovered.type})
            self.events.publish(JobRecovered(at=now, job_id=job_id))
            return True
        return False

    async def _on_success(self, event: Event) -> None:
        if not isinstance(event, RunSucceeded) or event.job_id not in self._expectations:
            return
        self._note_success(event.job_id, event.at)
        if self._decide(event.job_id, self.clock.now()):
            await self._save()

    async def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            raw = await self.store.get_state(STATE_KEY)
            stored = json.loads(raw) if raw else []
        except Exception as exc:
            log.warning("cannot read open dead-man incidents: %s", exc)
            return
        if isinstance(stored, list):
            self._overdue |= {j for j in stored if isinstance(j, str) and j in self._expectations}

    async def _save(self) -> None:
        try:
            await self.store.set_state(STATE_KEY, json.dumps(sorted(self._overdue)))
        except Exception as exc:
            log.warning("cannot store open dead-man incidents: %s", exc)

    # -- lifecycle -----------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dead-man's switch check failed")
            await self._wait()

    async def _wait(self) -> None:
        """Sleep `check_interval_s()`; when the jobs watched change meanwhile, sleep only
        what is left of the new (maybe shorter) interval since the last check."""
        started = self.clock.monotonic()
        while True:
            self._changed.clear()
            left = self.check_interval_s() - (self.clock.monotonic() - started)
            if left <= 0:
                return
            sleep = asyncio.ensure_future(self.clock.sleep(left))
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait({sleep, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleep.cancel()
                changed.cancel()
            if sleep.done() and not sleep.cancelled():
                return

    async def __aenter__(self) -> DeadMansSwitch:
        self._subscription = self.events.subscribe(self._on_success, types=[RunSucceeded.type])
        self._task = asyncio.get_running_loop().create_task(self.run(), name="agentcron-deadman")
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
        task, self._task = self._task, None
        await cancel_and_wait(task)


@dataclass(frozen=True, slots=True, kw_only=True)
class PingUrls:
    """URLs to call for one job; None = no ping for that moment."""

    start: str | None = None
    success: str | None = None
    failure: str | None = None

    @classmethod
    def healthchecks(cls, base: str) -> PingUrls:
        """healthchecks.io convention: `<base>/start`, `<base>`, `<base>/fail`."""
        base = base.rstrip("/")
        return cls(start=f"{base}/start", success=base, failure=f"{base}/fail")

    def __post_init__(self) -> None:
        for name in ("start", "success", "failure"):
            url = getattr(self, name)
            if url is not None and not url.startswith(("http://", "https://")):
                raise ValueError(f"ping URL for {name} must be http(s)://..., got {shown_url(url)}")


def _without(text: str, url: str) -> str:
    """`text` with `url` (and its parts that are secrets) replaced by what may be shown."""
    text = text.replace(url, shown_url(url))
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return text
    for secret in (parsed.password, parsed.path if parsed.path not in ("", "/") else None):
        if secret:
            text = text.replace(secret, "...")
    return text


class JobPinger:
    """Calls `PingUrls` per job on run events, in background tasks (see module docstring)."""

    def __init__(
        self,
        events: EventBus,
        urls: Mapping[str, PingUrls],
        *,
        timeout_s: float = 10.0,
        max_in_flight: int = 100,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.events = events
        self.urls = dict(urls)
        self.timeout_s = timeout_s
        self.max_in_flight = max_in_flight
        self._client = client
        self._own_client = client is None
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscription: Subscription | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def _on_event(self, event: Event) -> None:
        job_id = getattr(event, "job_id", None)
        urls = self.urls.get(job_id) if isinstance(job_id, str) else None
        if urls is None:
            return
        body = ""
        if isinstance(event, RunStarted):
            url = urls.start
        elif isinstance(event, RunSucceeded):
            url = urls.success
        elif isinstance(event, RunFailed):
            url, body = urls.failure, event.error
        elif isinstance(event, RunTimedOut):
            url, body = urls.failure, f"timed out after {event.timeout_s:g}s"
        else:
            return
        if url is None:
            return
        if len(self._tasks) >= self.max_in_flight:
            self.dropped += 1
            log.warning("too many pings in flight; dropped %s ping for %s", event.type, job_id)
            return
        task = asyncio.get_running_loop().create_task(
            self._ping(url, body[-10_000:]), name=f"agentcron-ping-{job_id}"
        )
        hold_while_running(self._tasks, task)

    async def _ping(self, url: str, body: str) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient()
        try:
            response = await self._client.post(
                url,
                content=body.encode(),
                headers={"content-type": "text/plain; charset=utf-8"},
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as exc:
            self.failed += 1
            # The URL's path is often the secret (a healthchecks.io UUID), its user info a
            # password: only scheme and host are shown, in the error's text too.
            log.warning("ping %s failed: %s", shown_url(url), _without(str(exc), url))
            return
        if response.is_success:
            self.sent += 1
        else:
            self.failed += 1
            log.warning("ping %s answered %d", shown_url(url), response.status_code)

    async def drain(self) -> None:
        """Wait for pings in flight (tests, shutdown)."""
        await self.events.drain()
        # Only pings still in flight: an ended one leaves `_tasks` a turn later (its done
        # callback), and awaiting ended tasks never yields that turn (`AlertManager.drain`).
        while pending := {task for task in self._tasks if not task.done()}:
            await asyncio.wait(pending)

    async def __aenter__(self) -> JobPinger:
        self._subscription = self.events.subscribe(
            self._on_event,
            types=[RunStarted.type, RunSucceeded.type, RunFailed.type, RunTimedOut.type],
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
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.timeout_s)
            for task in pending:
                task.cancel()
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None
