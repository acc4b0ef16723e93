"""Probes behind a node's self-reported status: healthy, degraded or unhealthy.

Readings are gathered by `Probes.read()` (psutil, a measured event-loop lag, a store
round-trip, the engine's job counters) into a plain `Readings`; `assess(readings,
thresholds)` turns them into a status and the reasons for it. `assess` is pure.

A reading at or above its `*_degraded` threshold makes the node `degraded`; at or above its
`*_unhealthy` threshold, `unhealthy`. A threshold of None disables that check. An unreachable
store is always `unhealthy`: a scheduler that cannot record runs is not working.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, Literal

import psutil

from agentcron.clock import Clock
from agentcron.store.base import Store
from agentcron.tasks import cancel_and_wait

__all__ = [
    "Assessment",
    "HealthStatus",
    "JobCounts",
    "LoopLagProbe",
    "Probes",
    "Readings",
    "Thresholds",
    "assess",
]

log = logging.getLogger("agentcron.heartbeat.probes")

HealthStatus = Literal["healthy", "degraded", "unhealthy"]
_RANK: dict[HealthStatus, int] = {"healthy": 0, "degraded": 1, "unhealthy": 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    """Limits for `assess`; None disables a check. Memory in MiB, percentages 0-100."""

    rss_degraded_mb: float | None = 1024
    rss_unhealthy_mb: float | None = 4096
    memory_degraded_pct: float | None = 90
    memory_unhealthy_pct: float | None = 97
    cpu_degraded_pct: float | None = 95
    cpu_unhealthy_pct: float | None = None
    loop_lag_degraded_s: float | None = 0.5
    loop_lag_unhealthy_s: float | None = 5.0
    disk_degraded_pct: float | None = 90
    disk_unhealthy_pct: float | None = 98
    failing_degraded: int | None = 3
    failing_unhealthy: int | None = 10
    overdue_degraded: int | None = 1
    overdue_unhealthy: int | None = None

    def __post_init__(self) -> None:
        pairs = ("rss", "memory", "cpu", "loop_lag", "disk", "failing", "overdue")
        for name in pairs:
            low = getattr(self, f"{name}_degraded" + _suffix(name))
            high = getattr(self, f"{name}_unhealthy" + _suffix(name))
            for key, value in ((f"{name}_degraded", low), (f"{name}_unhealthy", high)):
                if value is not None and value < 0:
                    raise ValueError(f"heartbeat threshold {key}{_suffix(name)} must be >= 0")
            if low is not None and high is not None and high < low:
                raise ValueError(
                    f"heartbeat threshold {name}_unhealthy{_suffix(name)} ({high}) is below "
                    f"{name}_degraded{_suffix(name)} ({low})"
                )


def _suffix(name: str) -> str:
    return {"rss": "_mb", "memory": "_pct", "cpu": "_pct", "loop_lag": "_s", "disk": "_pct"}.get(
        name, ""
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobCounts:
    """What the engine knows about its jobs: the longest failure streak, overdue jobs."""

    max_consecutive_failures: int = 0
    failing_jobs: tuple[str, ...] = ()
    overdue_jobs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Readings:
    """One set of probe readings (None = not measured)."""

    rss_mb: float | None = None
    memory_pct: float | None = None
    cpu_pct: float | None = None
    loop_lag_s: float | None = None
    disk_pct: float | None = None
    disk_free_mb: float | None = None
    store_ok: bool = True
    store_error: str | None = None
    max_consecutive_failures: int = 0
    failing_jobs: tuple[str, ...] = ()
    overdue_jobs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failing_jobs"] = list(self.failing_jobs)
        data["overdue_jobs"] = list(self.overdue_jobs)
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class Assessment:
    status: HealthStatus
    reasons: tuple[str, ...] = field(default=())


def _level(value: float | None, degraded: float | None, unhealthy: float | None) -> HealthStatus:
    if value is None:
        return "healthy"
    if unhealthy is not None and value >= unhealthy:
        return "unhealthy"
    if degraded is not None and value >= degraded:
        return "degraded"
    return "healthy"


def assess(readings: Readings, thresholds: Thresholds) -> Assessment:
    """Status and reasons from `readings` (pure; see the module docstring)."""
    t = thresholds
    checks: list[tuple[HealthStatus, str]] = []

    def check(
        value: float | None, degraded: float | None, unhealthy: float | None, what: str
    ) -> None:
        level = _level(value, degraded, unhealthy)
        if level != "healthy":
            limit = unhealthy if level == "unhealthy" else degraded
            checks.append((level, f"{what} {value:g} >= {limit:g}"))

    check(readings.rss_mb, t.rss_degraded_mb, t.rss_unhealthy_mb, "rss_mb")
    check(readings.memory_pct, t.memory_degraded_pct, t.memory_unhealthy_pct, "memory_pct")
    check(readings.cpu_pct, t.cpu_degraded_pct, t.cpu_unhealthy_pct, "cpu_pct")
    check(readings.loop_lag_s, t.loop_lag_degraded_s, t.loop_lag_unhealthy_s, "loop_lag_s")
    check(readings.disk_pct, t.disk_degraded_pct, t.disk_unhealthy_pct, "disk_pct")
    check(
        float(readings.max_consecutive_failures),
        t.failing_degraded,
        t.failing_unhealthy,
        "consecutive_failures",
    )
    check(
        float(len(readings.overdue_jobs)), t.overdue_degraded, t.overdue_unhealthy, "overdue_jobs"
    )
    if not readings.store_ok:
        checks.append(("unhealthy", f"store unreachable: {readings.store_error or 'error'}"))
    status: HealthStatus = "healthy"
    for level, _ in checks:
        if _RANK[level] > _RANK[status]:
            status = level
    return Assessment(status=status, reasons=tuple(reason for _, reason in checks))


class LoopLagProbe:
    """Measures event-loop lag: a task sleeps `period_s` and records how late it wakes.

    `take()` returns the worst overshoot since the previous `take()` (so a short stall
    between two heartbeats is not lost) and resets it. Run it with `async with probe:`.
    """

    def __init__(self, clock: Clock, *, period_s: float = 0.5) -> None:
        if period_s <= 0:
            raise ValueError(f"loop lag period must be positive, got {period_s}")
        self.clock = clock
        self.period_s = period_s
        self.last_s: float | None = None
        self._worst: float | None = None
        self._task: asyncio.Task[None] | None = None

    def record(self, lag_s: float) -> None:
        lag_s = max(0.0, lag_s)
        self.last_s = lag_s
        self._worst = lag_s if self._worst is None else max(self._worst, lag_s)

    def take(self) -> float | None:
        worst, self._worst = self._worst, None
        return worst if worst is not None else self.last_s

    async def run(self) -> None:
        while True:
            start = self.clock.monotonic()
            await self.clock.sleep(self.period_s)
            self.record(self.clock.monotonic() - start - self.period_s)

    async def __aenter__(self) -> LoopLagProbe:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="agentcron-loop-lag")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)


JobCountsSource = Callable[[], Awaitable[JobCounts]]


async def job_counts_from_store(store: Store) -> JobCounts:
    """Failure streaks from the store's run statistics (used when the engine gives none)."""
    streaks: dict[str, int] = {}
    for job in await store.list_jobs():
        stats = await store.run_stats(job.id)
        if stats.consecutive_failures:
            streaks[job.id] = stats.consecutive_failures
    return JobCounts(
        max_consecutive_failures=max(streaks.values(), default=0),
        failing_jobs=tuple(sorted(streaks)),
    )


class Probes:
    """Gathers `Readings` for this process.

    * memory: RSS of this process, system memory in use (psutil);
    * cpu: this process's CPU % since the previous read (psutil, non-blocking); None on
      the first read, which has no interval to measure over;
    * loop lag: from `loop_lag` (a running `LoopLagProbe`), when given;
    * disk: usage of the file system holding `disk_path`, when given;
    * store: a `get_state` round-trip bounded by `store_timeout_s`;
    * jobs: `job_counts()` from the engine, else the store's run statistics.

    Every probe failure is logged and leaves its reading None; `read` never raises.
    """

    def __init__(
        self,
        store: Store,
        *,
        loop_lag: LoopLagProbe | None = None,
        disk_path: str | os.PathLike[str] | None = None,
        job_counts: JobCountsSource | None = None,
        store_timeout_s: float = 5.0,
    ) -> None:
        self.store = store
        self.loop_lag = loop_lag
        self.disk_path = os.fspath(disk_path) if disk_path is not None else None
        self.job_counts = job_counts
        self.store_timeout_s = store_timeout_s
        self._process = psutil.Process()
        # psutil measures CPU % between two calls; a first reading taken moments after a
        # priming call spans a few ms and reads nonsense (840 % at start-up on 2 CPUs).
        # So the first read only starts the window (and reports no CPU figure).
        self._cpu_window_started = False

    async def read(self) -> Readings:
        rss_mb = memory_pct = cpu_pct = disk_pct = disk_free_mb = None
        try:
            rss_mb = self._process.memory_info().rss / 2**20
            memory_pct = float(psutil.virtual_memory().percent)
            cpu_now = float(self._process.cpu_percent(None))
            cpu_pct = cpu_now if self._cpu_window_started else None
            self._cpu_window_started = True
        except (psutil.Error, OSError) as exc:
            log.warning("memory/cpu probe failed: %s", exc)
        if self.disk_path is not None:
            try:
                usage = psutil.disk_usage(self.disk_path)
                disk_pct = float(usage.percent)
                disk_free_mb = usage.free / 2**20
            except OSError as exc:
                log.warning("disk probe of %s failed: %s", self.disk_path, exc)
        store_ok, store_error = await self._store_reachable()
        counts = JobCounts()
        if store_ok or self.job_counts is not None:
            try:
                source = self.job_counts
                async with asyncio.timeout(self.store_timeout_s):
                    counts = await (
                        source() if source is not None else job_counts_from_store(self.store)
                    )
            except Exception as exc:
                log.warning("job probe failed: %s", exc)
        return Readings(
            rss_mb=rss_mb,
            memory_pct=memory_pct,
            cpu_pct=cpu_pct,
            loop_lag_s=self.loop_lag.take() if self.loop_lag is not None else None,
            disk_pct=disk_pct,
            disk_free_mb=disk_free_mb,
            store_ok=store_ok,
            store_error=store_error,
            max_consecutive_failures=counts.max_consecutive_failures,
            failing_jobs=counts.failing_jobs,
            overdue_jobs=counts.overdue_jobs,
        )

    async def _store_reachable(self) -> tuple[bool, str | None]:
        try:
            async with asyncio.timeout(self.store_timeout_s):
                await self.store.get_state("heartbeat.probe")
        except TimeoutError:
            return False, f"no answer within {self.store_timeout_s:g}s"
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return True, None
