"""Real handlers for the agent loops the scheduler can do itself.

Each loop is a report function (`heartbeat`, `resource_monitor`, ...: an async callable
taking the `RunContext` and returning its report as JSON text) and the handler the preset
registers for it, `<name>_loop`, referenced as `"agentcron.presets.builtin:<name>_loop"`
so the job persists like any other. The handler records the report, bounded to
`REPORT_CHARS`, as the run's `output_tail` (the engine does not record return values).

They need the daemon's services (store, data dir, settings): `agentcron run` binds them
with `bind()`; in any other process (for example `agentcron jobs run loop-backup-check`) a
handler opens what it needs from the settings of the environment itself.

A loop fails — so alerts fire — when what it checks is wrong, with its report as the
failed run's `output_tail` where it has one; none of them ever fakes a success.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import logging.handlers
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from agentcron.config import Settings, load_settings
from agentcron.error_text import head_of
from agentcron.handlers.base import HandlerError, HandlerOutcome, RunContext
from agentcron.store.base import Store, open_store

__all__ = [
    "BUILTIN_HANDLERS",
    "REPORT_CHARS",
    "Services",
    "backup_check",
    "backup_check_loop",
    "bind",
    "context_cleanup",
    "context_cleanup_loop",
    "daily_maintenance",
    "daily_maintenance_loop",
    "heartbeat",
    "heartbeat_loop",
    "log_rotation",
    "log_rotation_loop",
    "not_configured",
    "resource_monitor",
    "resource_monitor_loop",
    "unbind",
]

log = logging.getLogger("agentcron.presets")

#: Resource thresholds of `resource_monitor` (percent).
CPU_LIMIT_PCT = 95.0
MEMORY_LIMIT_PCT = 90.0
DISK_LIMIT_PCT = 90.0
#: Rotated log files older than this are deleted by `log_rotation`.
LOG_KEEP_DAYS = 14
#: Bound on the report a loop records as its run's `output_tail` (characters).
REPORT_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Services:
    """What the built-in loops use; `agentcron run` binds its own."""

    store: Store
    settings: Settings

    @property
    def data_dir(self) -> Path:
        """The daemon's data directory."""
        return self.settings.data_dir

    @property
    def db_path(self) -> Path | None:
        """The SQLite database file, or None for a store without one (Redis)."""
        path = getattr(self.store, "path", None)
        return Path(path) if path is not None else None


_bound: Services | None = None


def bind(services: Services) -> None:
    """Make the daemon's services available to the built-in handlers."""
    global _bound
    _bound = services


def unbind() -> None:
    """Forget the services `bind()` gave: handlers open their own again."""
    global _bound
    _bound = None


@contextlib.asynccontextmanager
async def _services() -> AsyncIterator[Services]:
    if _bound is not None:
        yield _bound
        return
    settings = load_settings()
    store = open_store(settings.store_url)
    await store.open()
    try:
        yield Services(store=store, settings=settings)
    finally:
        await store.close()


def _report(data: dict[str, Any]) -> str:
    return json.dumps(data, default=str, sort_keys=True)


# -- loops ---------------------------------------------------------------------------
async def heartbeat(ctx: RunContext) -> str:
    """Judge every node's latest heartbeat; fail when a node is offline or unhealthy."""
    from agentcron.heartbeat.monitor import view_node

    async with _services() as services:
        heartbeats = await services.store.list_heartbeats()
    now = ctx.scheduled_for
    views = [view_node(hb, now) for hb in heartbeats if hb.interval_s > 0]
    summary = {v.node_id: {"status": v.status, "score": v.health_score} for v in views}
    bad = [v.node_id for v in views if v.status == "offline" or v.reported == "unhealthy"]
    if not views:
        raise HandlerError("no node has sent a heartbeat yet")
    if bad:
        raise HandlerError(
            f"nodes offline or unhealthy: {', '.join(sorted(bad))}", output_tail=_report(summary)
        )
    return _report(summary)


async def resource_monitor(ctx: RunContext) -> str:
    """Record CPU, memory and disk use; fail when one is over its threshold."""
    import psutil

    async with _services() as services:
        data_dir = services.data_dir
    cpu = await asyncio.to_thread(psutil.cpu_percent, 0.2)
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(data_dir if data_dir.exists() else Path.cwd()))
    rss_mb = psutil.Process().memory_info().rss / 2**20
    reading = {
        "cpu_pct": cpu,
        "memory_pct": memory.percent,
        "disk_pct": disk.percent,
        "rss_mb": round(rss_mb, 1),
    }
    over = [
        name
        for name, value, limit in (
            ("cpu", cpu, CPU_LIMIT_PCT),
            ("memory", memory.percent, MEMORY_LIMIT_PCT),
            ("disk", disk.percent, DISK_LIMIT_PCT),
        )
        if value >= limit
    ]
    if over:
        raise HandlerError(f"over threshold: {', '.join(over)}", output_tail=_report(reading))
    return _report(reading)


def _agentcron_log_handlers() -> list[logging.handlers.RotatingFileHandler]:
    return [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.handlers.RotatingFileHandler) and getattr(h, "_agentcron", False)
    ]


def _rotate_logs(logs_dir: Path, cutoff_ts: float) -> dict[str, list[str]]:
    rotated = []
    for handler in _agentcron_log_handlers():
        # Under the handler's lock: the loop's thread may be writing a record right now.
        handler.acquire()
        try:
            path = Path(handler.baseFilename)
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_size > 0:
                    handler.doRollover()
                    rotated.append(str(path))
        finally:
            handler.release()
    deleted = []
    if logs_dir.is_dir():
        for old in logs_dir.glob("*.log.*"):
            try:  # lstat: a dangling symlink, or a file deleted meanwhile, is no error
                if old.lstat().st_mtime < cutoff_ts:
                    old.unlink(missing_ok=True)
                    deleted.append(old.name)
            except FileNotFoundError:
                continue
    return {"rotated": rotated, "deleted": sorted(deleted)}


async def log_rotation(ctx: RunContext) -> str:
    """Roll agentcron's own log files over and delete rotated files past `LOG_KEEP_DAYS`."""
    async with _services() as services:
        logs_dir = services.data_dir / "logs"
    cutoff_ts = ctx.scheduled_for.timestamp() - LOG_KEEP_DAYS * 86400
    return _report(await asyncio.to_thread(_rotate_logs, logs_dir, cutoff_ts))


async def backup_check(ctx: RunContext) -> str:
    """Verify the newest backup: it exists, is recent (2 x BACKUP_INTERVAL) and is intact."""
    from agentcron.store.backup import check_database, list_backups

    async with _services() as services:
        backups_dir = services.data_dir / "backups"
        interval_s = services.settings.BACKUP_INTERVAL / 1000
    backups = list_backups(backups_dir)
    if not backups:
        raise HandlerError(f"no backup in {backups_dir}")
    newest = backups[0]
    age_s = (ctx.scheduled_for - newest.taken_at).total_seconds()
    if age_s > 2 * interval_s:
        raise HandlerError(
            f"newest backup {newest.path.name} is {age_s / 3600:.1f} h old "
            f"(expected one every {interval_s / 3600:.1f} h)"
        )
    report = await asyncio.to_thread(check_database, newest.path)
    return _report({"backup": newest.path.name, "age_s": round(age_s), **report.to_dict()})


async def context_cleanup(ctx: RunContext) -> str:
    """Prune runs past the retention: older than `SCHEDULER_RUN_RETENTION_DAYS`, and
    beyond `SCHEDULER_RUNS_PER_JOB` per job."""
    async with _services() as services:
        settings = services.settings
        older_than = ctx.scheduled_for - timedelta(days=settings.SCHEDULER_RUN_RETENTION_DAYS)
        pruned = await services.store.prune_runs(
            older_than=older_than, keep_per_job=settings.SCHEDULER_RUNS_PER_JOB
        )
    return _report({"runs_pruned": pruned, "older_than": older_than.isoformat()})


def _vacuum(db_path: Path) -> dict[str, Any]:
    before = db_path.stat().st_size
    conn = sqlite3.connect(db_path, timeout=60, isolation_level=None)
    try:
        conn.execute("PRAGMA optimize")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return {"size_before": before, "size_after": db_path.stat().st_size}


async def daily_maintenance(ctx: RunContext) -> str:
    """Backup, integrity check, prune, then VACUUM and `PRAGMA optimize` (SQLite stores)."""
    from agentcron.store.backup import backup_database, check_database

    async with _services() as services:
        settings = services.settings
        report: dict[str, Any] = {}
        db_path = services.db_path
        if db_path is not None:
            info = await asyncio.to_thread(
                backup_database,
                db_path,
                services.data_dir / "backups",
                now=ctx.scheduled_for,
                keep=settings.BACKUP_RETENTION,
            )
            report["backup"] = info.path.name
            report["check"] = (await asyncio.to_thread(check_database, db_path)).to_dict()
        report["runs_pruned"] = await services.store.prune_runs(
            older_than=ctx.scheduled_for - timedelta(days=settings.SCHEDULER_RUN_RETENTION_DAYS),
            keep_per_job=settings.SCHEDULER_RUNS_PER_JOB,
        )
        if db_path is not None:
            report["vacuum"] = await asyncio.to_thread(_vacuum, db_path)
    return _report(report)


async def not_configured(ctx: RunContext) -> str:
    """Stands in for an integration loop that has no handler yet: always fails, honestly."""
    raise HandlerError(
        f"no handler configured for {ctx.job_id}; set it in agentcron.toml under "
        f'[presets.agent-loops.handlers] as {ctx.job_id} = "yourpackage.module:function"'
    )


def _bounded(report: str) -> str:
    return head_of(report, REPORT_CHARS)


def _recorded(
    report: Callable[[RunContext], Awaitable[str]],
) -> Callable[[RunContext], Awaitable[HandlerOutcome]]:
    """The handler of a loop: runs `report` and records what it returns, bounded, as the
    run's `output_tail` (a failure's report is bounded the same way)."""

    async def loop(ctx: RunContext) -> HandlerOutcome:
        try:
            text = await report(ctx)
        except HandlerError as exc:
            if exc.output_tail is not None:
                exc.output_tail = _bounded(exc.output_tail)
            raise
        return HandlerOutcome(output_tail=_bounded(text))

    loop.__name__ = loop.__qualname__ = f"{report.__name__}_loop"
    loop.__doc__ = f"`{report.__name__}`, its report recorded as the run's output."
    return loop


heartbeat_loop = _recorded(heartbeat)
resource_monitor_loop = _recorded(resource_monitor)
log_rotation_loop = _recorded(log_rotation)
backup_check_loop = _recorded(backup_check)
context_cleanup_loop = _recorded(context_cleanup)
daily_maintenance_loop = _recorded(daily_maintenance)

#: Built-in loop name (as in `LoopSpec.builtin`) -> handler reference.
BUILTIN_HANDLERS: dict[str, str] = {
    name: f"agentcron.presets.builtin:{name}_loop"
    for name in (
        "heartbeat",
        "resource_monitor",
        "log_rotation",
        "backup_check",
        "context_cleanup",
        "daily_maintenance",
    )
}
