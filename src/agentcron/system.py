"""`agentcron run`: every part wired together around one `Scheduler`.

Start-up order (each step fails with a `StartupError` — one line, exit code 2 — before
anything runs, so a bad start never leaves half a system behind):

1. settings (already loaded by the CLI) and a writable data directory;
2. `agentcron.toml` and the preset, validated whole;
3. the store (opened, migrated);
4. jobs from the file and the presets written to the store (actor `config` / `preset`),
   those an earlier file or preset added and this start no longer defines removed;
   the commands a daemon that died on this data directory left running killed, and the
   process groups of this one's recorded from now on (`agentcron.handlers.child_records`);
   then the scheduler started: it re-creates every stored job and retries interrupted runs;
5. heartbeats, monitor, dead-man's switches, alerts and the systemd watchdog;
6. hourly verified backups (SQLite stores);
7. the dashboard (uvicorn in the same event loop);
8. the pid file, SIGHUP/`agentcron jobs reload` handling, and a watch on the store's
   `jobs.changed` key (so CLI changes reach the daemon on every platform); after each
   reload, its verdict in the store's `jobs.reloaded` key (see `agentcron.control`).

Stopping (SIGINT/SIGTERM or `request_stop()`) unwinds the same stack in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agentcron.clock import Clock, SystemClock
from agentcron.config import Settings
from agentcron.config_jobs import config_job_ids
from agentcron.control import (
    JOBS_CHANGED_KEY,
    VERDICT_ERROR_CHARS,
    ReloadOutcome,
    ReloadVerdict,
    remove_pid_file,
    write_pid_file,
    write_reload_verdict,
)
from agentcron.error_text import describe_error, head_of, storable
from agentcron.jobfile import JobEntry, JobFile, JobFileError, load_job_file
from agentcron.jobs import build_job, job_to_definition
from agentcron.models import CONFIG_JOBS_KEY, StoredJob
from agentcron.presets.agent_loops import AGENT_LOOPS, NO_HANDLER_REASON
from agentcron.presets.builtin import BUILTIN_HANDLERS
from agentcron.store.base import Store, StoreError, open_store

if TYPE_CHECKING:
    from agentcron.engine.scheduler import Scheduler

__all__ = [
    "PRESET_JOBS_KEY",
    "AgentcronSystem",
    "StartupError",
    "ensure_data_dir",
    "preset_entries",
    "preset_job_ids",
]

log = logging.getLogger("agentcron.system")

#: How often the daemon looks at the store's `jobs.changed` key (seconds).
JOBS_WATCH_S = 2.0

#: Store state key: the ids of the jobs the presets of the last start wrote (a JSON list),
#: as `CONFIG_JOBS_KEY` holds agentcron.toml's.
PRESET_JOBS_KEY = "preset.jobs"


class StartupError(RuntimeError):
    """`agentcron run` cannot start; the message says what and what to do."""


#: `_watch_jobs` before it could read the store's `jobs.changed` token once.
_UNREAD = object()


@dataclass(frozen=True)
class ReloadResult:
    """What one reload did: how many jobs changed, or why nothing was applied."""

    outcome: ReloadOutcome = "reloaded"
    changed: int = 0
    error: str | None = None


def ensure_data_dir(data_dir: Path) -> Path:
    """Create the data directory if needed and prove it is writable (StartupError if not)."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise StartupError(
            f"data directory {data_dir} is not writable ({exc.strerror or exc}); "
            "choose another with --data-dir or SCHEDULER_DATA_DIR"
        ) from None
    return data_dir


@dataclass
class AgentcronSystem:
    """The daemon. `await system.serve()` runs until `request_stop()` or a signal."""

    settings: Settings
    config_path: Path | None = None
    presets: Sequence[str] = ()
    clock: Clock = field(default_factory=SystemClock)
    dashboard: bool = True
    once: bool = False
    install_signals: bool = True
    #: Called once everything has started (the CLI prints where the dashboard is).
    on_ready: Callable[[AgentcronSystem], None] | None = None
    #: Filled during start-up.
    store: Store | None = None
    scheduler: Scheduler | None = None
    dashboard_url: str | None = None
    dashboard_token: str | None = None
    token_generated: bool = False
    _stop: asyncio.Event | None = None
    _reload: asyncio.Event | None = None
    _queues: QueueRegistry | None = None

    # -- start-up ------------------------------------------------------------------------
    def _load_job_file(self) -> JobFile:
        if self.config_path is None:
            return JobFile(source="(none)")
        try:
            job_file = load_job_file(
                self.config_path, default_timezone=self.settings.SCHEDULER_TIMEZONE
            )
        except JobFileError as exc:
            raise StartupError(str(exc)) from None
        # A preset's jobs are written after the file's: one with the same id would replace
        # the file's job without a word.
        preset_ids = {loop.id for loop in AGENT_LOOPS} if "agent-loops" in self.presets else set()
        for index, entry in enumerate(job_file.jobs):
            if entry.id in preset_ids:
                raise StartupError(
                    f"{job_file.source}: jobs[{index}] ({entry.id!r}): id is a job of the"
                    " agent-loops preset (--preset agent-loops); choose another id"
                )
        # Ignored, they would leave the loops the user meant to run unregistered (and a
        # start without the preset removes the loops an earlier one registered).
        for name, handlers in sorted(job_file.preset_handlers.items()):
            if handlers and name not in self.presets:
                raise StartupError(
                    f"{job_file.source}: [presets.{name}.handlers] sets handlers for the"
                    f" {name} preset, which is not enabled; start with --preset {name}"
                    " (or remove the table)"
                )
        return job_file

    def _job_defaults(self) -> dict[str, Any]:
        """Settings' RETRY_* and OVERLAP_*, for jobs that do not set their own (with
        `OVERLAP_STRATEGY=timeout`, `OVERLAP_TIMEOUT` is their `timeout`)."""
        s = self.settings
        return {
            "retry": {
                "max_attempts": s.RETRY_MAX_ATTEMPTS,
                "strategy": s.RETRY_STRATEGY,
                "base_delay": s.RETRY_BASE_DELAY / 1000,
                "max_delay": s.RETRY_MAX_DELAY / 1000,
            },
            **_overlap_defaults(s),
        }

    def _defaults(self, entry: JobEntry) -> dict[str, Any]:
        """The options of a job of the file, with `_job_defaults` for those it leaves out."""
        return {**self._job_defaults(), **entry.options}

    async def _open_store(self) -> Store:
        try:
            store = open_store(self.settings.store_url)
            await store.open()
        except (StoreError, ValueError, OSError) as exc:
            raise StartupError(str(exc)) from None
        return store

    async def _write_config_jobs(self, store: Store, job_file: JobFile) -> None:
        """Make the store hold exactly the file's jobs (those it added before and no
        longer lists are removed), audited as `config`.

        Only from a file that was read: without one (`agentcron run` started from another
        directory, a second process without `--config`) nothing is removed, since a job
        removed takes its history with it; the jobs an earlier file added are kept."""
        if self.config_path is None:
            kept = await config_job_ids(store)
            if kept:
                log.warning(
                    "no agentcron.toml here: the %d job(s) an earlier one added are kept as"
                    " they are (start from its directory or pass --config to change them)",
                    len(kept),
                )
            return
        wanted = {
            entry.id: self._stored(entry.id, entry.trigger, entry.handler, self._defaults(entry))
            for entry in job_file.jobs
        }
        previous = await config_job_ids(store)
        # Saved before the removals: a store that fails on the first write changes nothing.
        for stored in wanted.values():
            await store.save_job(stored, actor="config", conflict="replace")
        for job_id in sorted(previous):
            if job_id not in wanted:
                await store.delete_job(job_id, actor="config")
        await store.set_state(CONFIG_JOBS_KEY, json.dumps(sorted(wanted)))

    def _preset_jobs(self, job_file: JobFile) -> list[StoredJob]:
        return [
            self._stored(job_id, trigger, handler, options)
            for preset in self.presets
            for job_id, trigger, handler, options in preset_entries(
                self.settings, job_file.preset_handlers.get(preset, {})
            )
        ]

    async def _write_jobs(self, store: Store, job_file: JobFile) -> None:
        """Write the file's and the presets' jobs, every one validated before the first
        write (a preset job that cannot be built must not leave the file half applied)."""
        presets = self._preset_jobs(job_file)
        await self._write_config_jobs(store, job_file)
        await self._write_preset_jobs(store, presets)

    async def _write_preset_jobs(self, store: Store, jobs: list[StoredJob]) -> None:
        """Make the store hold exactly the enabled presets' jobs, audited as `preset`: the
        jobs of a preset an earlier start enabled and this one does not are removed, as a
        job dropped from agentcron.toml is (an id agentcron.toml now defines is kept)."""
        previous = await preset_job_ids(store)
        for stored in jobs:
            await store.save_job(stored, actor="preset", conflict="replace")
        wanted = {stored.id for stored in jobs}
        dropped = sorted(previous - wanted - await config_job_ids(store))
        for job_id in dropped:
            await store.delete_job(job_id, actor="preset")
        if dropped:
            log.warning(
                "removed the %d job(s) of a preset this start does not enable (%s ...);"
                " start with --preset agent-loops to keep them",
                len(dropped),
                ", ".join(dropped[:3]),
            )
        await store.set_state(PRESET_JOBS_KEY, json.dumps(sorted(wanted)))

    def _stored(
        self, job_id: str, trigger: object, handler: object, options: dict[str, Any]
    ) -> StoredJob:
        """Validate a job through the engine's builder and return its stored form."""
        job = build_job(
            job_id,
            trigger=trigger,
            handler=handler,
            default_timezone=self.settings.SCHEDULER_TIMEZONE,
            **options,
        )
        return StoredJob(id=job_id, definition=job_to_definition(job))

    # -- running -------------------------------------------------------------------------
    async def serve(self) -> None:
        """Start everything, run until stopped, stop everything (in reverse order)."""
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        data_dir = ensure_data_dir(self.settings.data_dir)
        job_file = self._load_job_file()
        store = await self._open_store()
        self.store = store
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(store.close)
            # Before anything starts: a SIGTERM while starting (the scheduler may already be
            # firing) stops gracefully once start-up is done, instead of killing the process.
            self._install_signal_handlers(stack)
            try:
                await self._write_jobs(store, job_file)
            except (StoreError, ValueError) as exc:
                raise StartupError(str(exc)) from None
            try:
                scheduler = self._build_scheduler(store, data_dir)
            except (OSError, RuntimeError) as exc:  # the node id could not be stored or locked
                raise StartupError(f"node id in {data_dir}: {exc}") from None
            self.scheduler = scheduler
            assert self._queues is not None
            self._queues.events = scheduler.events
            stack.push_async_callback(self._queues.close)
            from agentcron.presets import builtin

            builtin.bind(builtin.Services(store=store, settings=self.settings))
            stack.callback(builtin.unbind)
            if self.settings.store_url.startswith(("redis://", "rediss://")) and not self.once:
                # Several machines share this store: share their events too, so that the
                # dashboard on any node shows every node's runs (docs/multi-node.md).
                from agentcron.events_redis import RedisEventBridge

                bridge = RedisEventBridge(
                    scheduler.events,
                    self.settings.store_url,
                    node_id=scheduler.node_id,
                    prefix=str(getattr(store, "prefix", "agentcron")),
                )
                try:
                    await stack.enter_async_context(bridge)
                except StoreError as exc:
                    raise StartupError(str(exc)) from None
            # Before the scheduler starts, and so before it takes the dead daemon's runs for
            # interrupted and retries them.
            await self._own_children(stack, data_dir)
            await stack.enter_async_context(scheduler)
            await self._start_health(stack, scheduler, data_dir, job_file)
            if self.once:
                await wait_idle(scheduler, self.clock)
                return
            self._start_backups(stack, store)
            await self._start_retention(stack, store)
            if self.dashboard and self.settings.DASHBOARD_ENABLED:
                await self._start_dashboard(stack, scheduler, data_dir)
            write_pid_file(data_dir)
            stack.callback(remove_pid_file, data_dir)
            watcher = asyncio.create_task(self._watch_jobs(store), name="agentcron-jobs-watch")
            stack.callback(watcher.cancel)
            log.info(
                "agentcron is running (node %s, store %s)", scheduler.node_id, self.store_url_masked
            )
            if self.on_ready is not None:
                self.on_ready(self)
            await self._stop.wait()
            log.info("stopping: no new fires; running jobs get %.0fs", scheduler.stop_grace_s)

    @property
    def store_url_masked(self) -> str:
        from agentcron.config import mask_url

        return mask_url(self.settings.store_url)

    def request_stop(self) -> None:
        """Stop gracefully (what SIGINT/SIGTERM do); asked again while stopping, stop without
        waiting for running jobs (`Scheduler.end_grace`)."""
        if self._stop is not None:
            if self._stop.is_set() and self.scheduler is not None:
                self.scheduler.end_grace()
            self._stop.set()

    def request_reload(self) -> None:
        """Reload `agentcron.toml` and the store's jobs (what SIGHUP does)."""
        if self._reload is not None:
            self._reload.set()

    async def _own_children(self, stack: contextlib.AsyncExitStack, data_dir: Path) -> None:
        """Kill what the commands of a daemon that died on this data directory left running,
        then record the process groups of this daemon's commands in `<data dir>/children/`
        until it stops (`agentcron.handlers.child_records`)."""
        from agentcron.handlers import child_records

        directory = data_dir / child_records.DIRECTORY_NAME
        try:
            await child_records.kill_leftovers(directory)
        except Exception:  # a bug here must not keep the daemon from starting
            log.exception("could not check %s for commands a dead daemon left running", directory)
        previous = child_records.install(child_records.ChildRecords(directory))
        stack.callback(child_records.install, previous)

    def _build_scheduler(self, store: Store, data_dir: Path) -> Scheduler:
        from agentcron.engine.scheduler import Scheduler
        from agentcron.heartbeat.instance import instance_node_id
        from agentcron.heartbeat.sender import resolve_node_id

        # A second `agentcron run` on this data directory is another node (`#2`), not a
        # second voice for this one (`heartbeat.instance`).
        node_id = self.settings.SCHEDULER_NODE_ID or instance_node_id(
            resolve_node_id(data_dir), data_dir, "run"
        )
        self._queues = QueueRegistry(self.settings.store_url, self.clock)
        return Scheduler(
            store,
            clock=self.clock,
            node_id=node_id,
            timezone=self.settings.SCHEDULER_TIMEZONE,
            stop_grace_s=self.settings.SCHEDULER_SHUTDOWN_GRACE / 1000,
            lease_s=self.settings.SCHEDULER_LEASE / 1000,
            dispatch=self._queues.dispatch(),
            concurrency_limits={"agent-loops": self.settings.AGENT_LOOP_CONCURRENCY},
            job_defaults=self._job_defaults(),  # for jobs added through the dashboard's API
            watch_jobs_s=None,  # `_watch_jobs` here watches, and answers `jobs reload`
        )

    async def _start_health(
        self,
        stack: contextlib.AsyncExitStack,
        scheduler: Scheduler,
        data_dir: Path,
        job_file: JobFile,
    ) -> None:
        from agentcron.heartbeat.supervisor import HealthSupervisor

        # Suspect and offline follow one rule, the one `agentcron nodes`, `agentcron health`,
        # `/api/nodes` and `/metrics` use (`heartbeat.monitor.node_status`).
        interval_s = self.settings.heartbeat_interval_s
        try:
            from agentcron.heartbeat.deadman import PingUrls

            health = job_file.health
            supervisor = HealthSupervisor(
                scheduler,
                data_dir=data_dir,
                interval_s=interval_s,
                alerting=job_file.alerts,
                auto_disable={j: h.auto_disable for j, h in health.items() if h.auto_disable},
                pings={j: PingUrls(**h.ping) for j, h in health.items() if h.ping},
                per_schedule={
                    j: h.per_schedule_grace_s
                    for j, h in health.items()
                    if h.per_schedule_grace_s is not None
                },
            )
        except ValueError as exc:
            raise StartupError(f"{job_file.source}: {exc}") from None
        scheduler.on_tick = supervisor.progress
        scheduler.health_extra = supervisor.health
        watchdog = supervisor.watchdog
        if watchdog is not None and watchdog.stall_after_s is not None:
            scheduler.max_idle_s = watchdog.stall_after_s / 2
        await stack.enter_async_context(supervisor)

    def _start_backups(self, stack: contextlib.AsyncExitStack, store: Store) -> None:
        db_path = getattr(store, "path", None)
        if db_path is None:
            return
        from agentcron.store.backup import BackupScheduler

        assert self.scheduler is not None
        backups = BackupScheduler(
            Path(db_path),
            clock=self.clock,
            interval=timedelta(milliseconds=self.settings.BACKUP_INTERVAL),
            keep=self.settings.BACKUP_RETENTION,
            bus=self.scheduler.events,
        )
        task = asyncio.create_task(backups.run(), name="agentcron-backups")
        stack.callback(task.cancel)

    async def _start_retention(self, stack: contextlib.AsyncExitStack, store: Store) -> None:
        """Prune old runs by age and count per job (DESIGN 2.5), at start then hourly."""
        from agentcron.retention import RunRetention

        await stack.enter_async_context(
            RunRetention(
                store,
                self.clock,
                max_age_days=self.settings.SCHEDULER_RUN_RETENTION_DAYS,
                keep_per_job=self.settings.SCHEDULER_RUNS_PER_JOB,
            )
        )

    async def _start_dashboard(
        self, stack: contextlib.AsyncExitStack, scheduler: Scheduler, data_dir: Path
    ) -> None:
        from agentcron.dashboard.auth import ensure_token
        from agentcron.dashboard.queues import QueueSet
        from agentcron.dashboard.server import DashboardServer, exposure_warning
        from agentcron.dashboard.settings import DashboardSettings

        s = self.settings
        configured = s.DASHBOARD_AUTH_TOKEN.get_secret_value() if s.DASHBOARD_AUTH_TOKEN else None
        try:
            token, generated = ensure_token(data_dir, configured)
        except (ValueError, OSError) as exc:
            raise StartupError(f"dashboard token: {exc}") from None
        warning = exposure_warning(s.DASHBOARD_HOST, configured is not None)
        if warning:
            log.warning("%s", warning)
        settings = DashboardSettings(
            auth_token=token, host=s.DASHBOARD_HOST, port=s.DASHBOARD_PORT, data_dir=data_dir
        )
        queues = QueueSet(s.store_url, scheduler=scheduler)
        server = DashboardServer(scheduler, settings, queues=queues)
        try:
            await server.start()
        except OSError as exc:
            raise StartupError(str(exc)) from None
        stack.push_async_callback(server.stop)
        self.dashboard_url = server.url
        self.dashboard_token, self.token_generated = token, generated

    def _install_signal_handlers(self, stack: contextlib.AsyncExitStack) -> None:
        if not self.install_signals:
            return
        loop = asyncio.get_running_loop()
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
                sig = getattr(signal, name, None)
                if sig is not None:
                    signal.signal(sig, lambda *_: loop.call_soon_threadsafe(self.request_stop))
            return
        handlers = {
            signal.SIGINT: self.request_stop,
            signal.SIGTERM: self.request_stop,
            signal.SIGHUP: self.request_reload,
        }
        for sig, callback in handlers.items():
            loop.add_signal_handler(sig, callback)
            stack.callback(loop.remove_signal_handler, sig)

    async def _watch_jobs(self, store: Store) -> None:
        """Reload on SIGHUP, and whenever the store's `jobs.changed` key changes; after each
        reload, write its verdict (`_answer_reload`)."""
        assert self._reload is not None
        seen: str | None | object = _UNREAD  # the token last acted on (or found at start)
        with contextlib.suppress(Exception):  # the store is down: read at the first poll
            seen = await store.get_state(JOBS_CHANGED_KEY)
        signalled = False
        unreadable = False  # (logged once per outage, not at every poll)
        while True:
            await self._next_poll()
            # Cleared before the token is read: `agentcron jobs reload` writes its token, then
            # signals, so the token read after a SIGHUP is the signalling command's (or newer).
            signalled = signalled or self._reload.is_set()
            self._reload.clear()
            try:
                current = await store.get_state(JOBS_CHANGED_KEY)
            except StoreError as exc:
                if not unreadable:
                    log.warning("cannot watch the store for job changes: %s", exc)
                unreadable = True
                continue  # a SIGHUP stays pending for the next poll
            except Exception:
                log.exception("cannot watch the store for job changes")
                continue
            if unreadable:
                log.info("watching the store for job changes again")
                unreadable = False
            if seen is _UNREAD:
                seen = current  # (the store was down at start: this is the baseline)
            if not signalled and current == seen:
                continue
            via: Literal["signal", "store"] = "signal" if signalled else "store"
            signalled = False
            result = await self._answer_reload(store, current, via=via)
            if result.outcome != "failed":
                seen = current
            elif via == "signal":
                # Tried again at the next poll as it was asked: re-reading agentcron.toml
                # (as a store-token reload it would apply only the store's jobs).
                signalled = True

    async def _next_poll(self) -> None:
        """Wait until a reload is requested, or for `JOBS_WATCH_S` on the clock."""
        assert self._reload is not None
        asked = asyncio.ensure_future(self._reload.wait())
        timer = asyncio.ensure_future(self.clock.sleep(JOBS_WATCH_S))
        try:
            await asyncio.wait({asked, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            asked.cancel()
            timer.cancel()

    async def _answer_reload(
        self, store: Store, token: str | None, *, via: Literal["signal", "store"]
    ) -> ReloadResult:
        """Reload (re-reading agentcron.toml after a SIGHUP), then write the verdict for
        `agentcron jobs reload`: `token` is the `jobs.changed` token read just before.
        Neither a failed reload nor a verdict the store refuses ends the caller's loop."""
        try:
            result = await self._reload_jobs(reread_file=via == "signal")
        except StoreError as exc:
            log.warning("reload failed, the running schedule is kept: %s", exc)
            result = ReloadResult("failed", error=str(exc))
        except Exception as exc:
            log.exception("reload failed; the running schedule is kept")
            result = ReloadResult("failed", error=describe_error(exc))
        assert self.scheduler is not None
        verdict = ReloadVerdict(
            token=token,
            at=self.clock.now(),
            node_id=self.scheduler.node_id,
            outcome=result.outcome,
            changed=result.changed,
            error=_one_line(result.error),
            via=via,
        )
        try:
            await write_reload_verdict(store, verdict)
        except StoreError as exc:
            log.warning("cannot write the reload verdict to the store: %s", exc)
        except Exception:
            log.exception("cannot write the reload verdict to the store")
        return result

    async def reload(self, *, reread_file: bool = True) -> bool:
        """Re-read `agentcron.toml` (when asked) and apply the store's jobs to the running
        scheduler. A file with errors is rejected whole and the running schedule is kept.
        Returns False when the file was rejected or could not be written to the store."""
        return (await self._reload_jobs(reread_file=reread_file)).outcome == "reloaded"

    async def _reload_jobs(self, *, reread_file: bool) -> ReloadResult:
        """`reload`, saying how many jobs changed or why the file was not applied."""
        assert self.store is not None and self.scheduler is not None
        if reread_file and self.config_path is not None:
            try:
                job_file = self._load_job_file()
            except StartupError as exc:
                log.error("reload rejected, the running schedule is kept: %s", exc)
                return ReloadResult("rejected", error=str(exc))
            try:
                await self._write_jobs(self.store, job_file)
            except (StoreError, ValueError) as exc:
                log.error("reload failed, the running schedule is kept: %s", exc)
                outcome: ReloadOutcome = "failed" if isinstance(exc, StoreError) else "rejected"
                return ReloadResult(outcome, error=str(exc))
        changed = await sync_jobs_from_store(self.scheduler, self.store)
        log.info("jobs reloaded from the store (%d changed)", changed)
        return ReloadResult("reloaded", changed=changed)


def _one_line(error: str | None) -> str | None:
    """An error for a verdict: one line, at most about `VERDICT_ERROR_CHARS` characters."""
    if error is None:
        return None
    return storable(head_of(" ".join(error.split()), VERDICT_ERROR_CHARS))


async def wait_idle(scheduler: Scheduler, clock: Clock, *, settle_s: float = 0.05) -> None:
    """Wait until the scheduler has no active run and no fire waiting (for `--once`).

    The start-up catch-up (missed fires per misfire policy) and fires due now are dispatched
    by the scheduler's first ticks; this waits for them and their retries to finish.
    """
    quiet = 0
    while quiet < 3:
        await clock.sleep(settle_s)
        busy = any(v.active_runs or v.pending_fires for v in scheduler.jobs())
        quiet = 0 if busy else quiet + 1


async def sync_jobs_from_store(scheduler: Scheduler, store: Store) -> int:
    """Apply the store's job definitions and pause states to a running scheduler (jobs the
    CLI, the API or another node added, changed, paused or removed). Returns how many jobs
    changed. `store` is the scheduler's own (`Scheduler.reload_jobs`)."""
    assert store is scheduler.store
    return await scheduler.reload_jobs()


class QueueRegistry:
    """The queues that jobs with `queue=` dispatch to, opened on first use on the store's
    database (or Redis) and closed when the daemon stops."""

    def __init__(self, url: str, clock: Clock) -> None:
        self.url = url
        self.clock = clock
        self.events: Any = None
        self._open: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        from agentcron.queue import open_queue

        if name not in self._open:
            self._open[name] = open_queue(self.url, name, clock=self.clock, events=self.events)
        return self._open[name]

    def dispatch(self) -> Any:
        """The engine's dispatch seam over these queues (`agentcron.queue.scheduled`)."""
        from agentcron.queue.scheduled import queue_dispatch

        return queue_dispatch(self.get)

    async def close(self) -> None:
        for queue in self._open.values():
            with contextlib.suppress(Exception):
                await queue.close()
        self._open.clear()


def _overlap_defaults(s: Settings) -> dict[str, Any]:
    """`OVERLAP_STRATEGY` and `OVERLAP_TIMEOUT` as job options.

    `OVERLAP_TIMEOUT` is the delay of the `delay` policy; with `timeout` it is the run's
    timeout, as in the spec, whose `timeout` strategy races each run against it: the
    overlap policy itself has no duration, only `max_skips` (fires skipped before the
    hung run is replaced). Other policies take no duration and ignore it."""
    if s.OVERLAP_STRATEGY == "delay":
        return {"overlap": {"policy": "delay", "delay": s.OVERLAP_TIMEOUT / 1000}}
    if s.OVERLAP_STRATEGY == "timeout":
        return {"overlap": "timeout", "timeout": s.OVERLAP_TIMEOUT / 1000}
    return {"overlap": s.OVERLAP_STRATEGY}


async def preset_job_ids(store: Store) -> frozenset[str]:
    """The ids recorded under `PRESET_JOBS_KEY`. A store written before that key existed:
    the agent loops in it that carry the preset's tag and concurrency group."""
    text = await store.get_state(PRESET_JOBS_KEY)
    if text is None:
        loop_ids = {loop.id for loop in AGENT_LOOPS}
        return frozenset(
            job.id
            for job in await store.list_jobs()
            if job.id in loop_ids
            and job.definition.get("concurrency_group") == "agent-loops"
            and "agent-loop" in (job.definition.get("tags") or ())
        )
    try:
        listed = json.loads(text)
    except ValueError:
        return frozenset()
    if not isinstance(listed, list):
        return frozenset()
    return frozenset(item for item in listed if isinstance(item, str))


def preset_entries(
    settings: Settings, handlers: dict[str, str]
) -> list[tuple[str, str, object, dict[str, Any]]]:
    """The agent-loops preset as `(id, trigger, handler, options)` for `build_job`.

    Policies: skip on overlap, timeout `AGENT_LOOP_TIMEOUT`, `AGENT_LOOP_RETRY_ATTEMPTS`
    attempts with the `RETRY_*` strategy, at most `AGENT_LOOP_CONCURRENCY` loops at once
    (concurrency group `agent-loops`). Integration loops without a configured handler are
    disabled with the reason "no handler configured".
    """
    out: list[tuple[str, str, object, dict[str, Any]]] = []
    for loop in AGENT_LOOPS:
        options: dict[str, Any] = {
            "name": loop.name,
            "description": loop.description,
            "tags": ["agent-loop", *loop.tags],
            "overlap": "skip",
            "concurrency_group": "agent-loops",
            "timeout": settings.agent_loop_timeout_s,
            "retry": {
                "max_attempts": settings.AGENT_LOOP_RETRY_ATTEMPTS,
                "strategy": settings.RETRY_STRATEGY,
                "base_delay": settings.RETRY_BASE_DELAY / 1000,
                "max_delay": settings.RETRY_MAX_DELAY / 1000,
            },
        }
        handler: object
        if loop.id in handlers:
            handler = handlers[loop.id]
        elif loop.builtin is not None:
            handler = BUILTIN_HANDLERS[loop.builtin]
        else:
            handler = "agentcron.presets.builtin:not_configured"
            options["enabled"] = False
            options["disabled_reason"] = NO_HANDLER_REASON
        out.append((loop.id, loop.schedule, handler, options))
    return out
