"""`agentcron worker --queue NAME`: run a queue's jobs until stopped (or drained, --burst).

The handler is ``--handler package.module:function`` (sync or async, called with the job);
without it each job's *name* is taken as such a reference, so producers choose what runs.
With ``--scheduled`` the worker runs the fires the engine dispatched to the queue (jobs added
with ``queue="name"``), loading each job from ``--job-store`` and keeping its run record.
SIGINT/SIGTERM stop claiming and let running jobs finish (``--grace`` seconds, default 30)
and record them, then exit; a second signal, or the end of the grace, cancels them (their
jobs go back to waiting, or return through stalled-job recovery: `Worker`).

A missing SQLite database is refused with ``--burst`` (as `agentcron queue status` refuses
it: there is nothing to drain, and a mistyped --data-dir must not leave a database behind);
a long-running worker creates it, as documented, since it may start before any producer,
and says so on stderr so that a mistyped --data-dir shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from agentcron.cli.common import cli_settings, data_dir_option, fail, sqlite_path, store_url
from agentcron.cli.queue import ensure_database
from agentcron.handlers import child_records
from agentcron.handlers.child_records import DIRECTORY_NAME
from agentcron.handlers.references import HandlerReferenceError, resolve
from agentcron.queue import Job, QueueError, UnrecoverableError, open_queue
from agentcron.queue.base import MAX_DELAY_S, check_queue_name
from agentcron.queue.scheduled import ScheduledJobRunner
from agentcron.queue.worker import DEFAULT_GRACE_S, run_sync
from agentcron.store.base import Store, StoreError, open_store

log = logging.getLogger("agentcron.queue")

_DATA_DIR = data_dir_option()


def make_handler(reference: str | None) -> Callable[[Job], Any]:
    """The job handler: `reference` resolved once, or each job's name resolved per job."""
    if reference is not None:
        target = resolve(reference)

        async def fixed(job: Job) -> Any:
            return await _call(target, job)

        return fixed
    cache: dict[str, Callable[..., Any]] = {}

    async def by_name(job: Job) -> Any:
        target = cache.get(job.name)
        if target is None:
            try:
                target = cache[job.name] = resolve(job.name)
            except HandlerReferenceError as exc:
                raise UnrecoverableError(str(exc)) from None
        return await _call(target, job)

    return by_name


async def _call(target: Callable[..., Any], job: Job) -> Any:
    if inspect.iscoroutinefunction(target):
        return await target(job)
    # The worker's daemon threads, not asyncio's: a hung sync handler must not keep the
    # process from exiting once the worker stopped, and a forced stop must know it runs on.
    result = await run_sync(target, job)
    if inspect.isawaitable(result):
        return await result
    return result


def worker(
    queue: str = typer.Option(..., "--queue", "-q", help="The queue to work on."),
    concurrency: int = typer.Option(1, "--concurrency", "-c", min=1, help="Jobs run at once."),
    burst: bool = typer.Option(False, "--burst", help="Exit once nothing is waiting or delayed."),
    handler: str | None = typer.Option(
        None,
        "--handler",
        help="package.module:function to run for every job (default: the job's name).",
    ),
    scheduled: bool = typer.Option(
        False,
        "--scheduled",
        help="Run scheduled jobs the engine dispatched to this queue (queue=...).",
    ),
    job_store: str | None = typer.Option(
        None,
        "--job-store",
        help="Store holding the scheduled jobs (default: the queue's store, --store, where"
        " `agentcron run` keeps both; without --store, $SCHEDULER_STORE, then .env, or the data"
        " dir's database).",
    ),
    rate_limit: str | None = typer.Option(
        None, "--rate-limit", help="MAX/SECONDS: at most MAX job starts per SECONDS, queue-wide."
    ),
    lease: float = typer.Option(
        30.0, "--lease", min=0.1, help="Seconds a claimed job stays locked between renewals."
    ),
    stalled_interval: float = typer.Option(
        30.0, "--stalled-interval", min=0.1, help="Seconds between stalled-job checks."
    ),
    timeout: float | None = typer.Option(
        None,
        "--timeout",
        min=0.001,
        max=MAX_DELAY_S,
        help="Seconds an attempt may run; then it fails as timed out (and is retried while"
        " the job has attempts left). Default: no limit.",
    ),
    grace: float = typer.Option(
        DEFAULT_GRACE_S,
        "--grace",
        min=0,
        max=MAX_DELAY_S,
        help="Seconds running jobs get to finish after SIGINT/SIGTERM; then (or at a second"
        " signal) they are cancelled and go back to the queue.",
    ),
    store: str | None = typer.Option(
        None,
        "--store",
        help="Queue backend URL (sqlite:///path, redis://host:port/db; default: $SCHEDULER_STORE,"
        " then .env, or the data dir's database).",
    ),
    data_dir: Path | None = _DATA_DIR,
) -> None:
    """Run the jobs of a queue."""
    if scheduled and handler:
        fail("--scheduled and --handler are exclusive")
    try:
        job_handler = None if scheduled else make_handler(handler)
    except HandlerReferenceError as exc:
        fail(str(exc))
    limit = _parse_rate(rate_limit) if rate_limit else None
    try:
        check_queue_name(queue)
    except QueueError as exc:
        fail(str(exc))
    # As `agentcron run` resolves them (flags, environment, .env): the queue and the jobs
    # are where the daemon of this directory dispatches and keeps them.
    settings = cli_settings(data_dir=data_dir)
    url = store_url(settings.data_dir, store) if store else settings.store_url
    jobs_url = job_store or url  # `agentcron run` keeps its queues in its store
    _ensure_database(url, burst)
    try:
        heartbeat = (
            None
            if burst
            else _heartbeat_options(settings.data_dir, queue, settings.heartbeat_interval_s)
        )
        processed = asyncio.run(
            _work(
                url,
                queue,
                job_handler,
                jobs_url,
                concurrency,
                burst,
                limit,
                lease,
                stalled_interval,
                heartbeat,
                timeout_s=timeout,
                grace_s=grace,
                children=settings.data_dir / DIRECTORY_NAME if scheduled else None,
            )
        )
    except (QueueError, StoreError, ValueError) as exc:
        fail(str(exc))
    except sqlite3.Error as exc:  # a corrupt file the backend did not name
        fail(f"queue database {url}: {exc}; check it with `agentcron db check`")
    typer.echo(f"worker for queue {queue} stopped after {processed} job(s)", err=True)


def _ensure_database(url: str, burst: bool) -> None:
    """Refuse a missing SQLite database with `burst` (in the words of `agentcron queue
    status`), else create it (`ensure_database`) and say so."""
    path = sqlite_path(url)
    if path is None or path.is_file():
        return
    if burst:
        fail(
            f"no database at {path}; pass --data-dir or --store where agentcron keeps its "
            "data (`agentcron queue add` or `agentcron run` creates it)"
        )
    ensure_database(url)
    typer.echo(
        f"agentcron: no database at {path}: created it; the worker waits there for jobs"
        " (pass --data-dir or --store if they are added elsewhere)",
        err=True,
    )


def _heartbeat_options(data_dir: Path, queue: str, interval_s: float) -> tuple[str, float]:
    """The worker's node id (`<node>:worker:<queue>`, stable per host and data dir; the
    n-th worker of the queue running at once on this data dir: `...#n`) and its heartbeat
    interval (`HEARTBEAT_INTERVAL`, given in seconds)."""
    from agentcron.heartbeat.instance import instance_node_id
    from agentcron.heartbeat.sender import resolve_node_id

    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        role = f"worker:{queue}"
        return instance_node_id(f"{resolve_node_id(data_dir)}:{role}", data_dir, role), (interval_s)
    except (OSError, RuntimeError, ValueError) as exc:
        fail(str(exc))


def _parse_rate(text: str) -> tuple[int, float]:
    try:
        max_text, _, per_text = text.partition("/")
        return int(max_text), float(per_text)
    except ValueError:
        fail(f"--rate-limit must look like 100/1 (jobs/seconds), got {text!r}")


async def _work(
    url: str,
    name: str,
    handler: Callable[[Job], Any] | None,
    jobs_url: str,
    concurrency: int,
    burst: bool,
    rate_limit: tuple[int, float] | None,
    lease_s: float,
    stalled_interval_s: float,
    heartbeat: tuple[str, float] | None = None,
    *,
    timeout_s: float | None = None,
    grace_s: float | None = DEFAULT_GRACE_S,
    children: Path | None = None,
) -> int:
    """`children`: where the commands of scheduled jobs record their process groups (as
    `agentcron run` does): what a worker that died there left running is killed first."""
    q = open_queue(url, name)
    job_store: Store | None = None
    previous_records = child_records.installed()
    if children is not None:
        await child_records.kill_leftovers(children)
        child_records.install(child_records.ChildRecords(children))
    try:
        # Reach the backend once before working: a Redis that refuses the password or the
        # database index (or is not there) is a start-up error (exit 2), not a worker that
        # logs "retrying" forever (and never returns, even with --burst).
        await q.counts()
        options: dict[str, Any] = {"timeout_s": timeout_s, "grace_s": grace_s}
        if handler is None or heartbeat is not None:
            job_store = open_store(jobs_url)
            await job_store.open()
        if handler is None:
            assert job_store is not None
            runner = ScheduledJobRunner(job_store, lease_s=lease_s)
            handler, options["backoff_strategy"] = runner, runner.backoff_strategy
        w = q.worker(
            handler,
            concurrency=concurrency,
            rate_limit=rate_limit,
            lease_s=lease_s,
            stalled_interval_s=stalled_interval_s,
            **options,
        )
        closing: list[asyncio.Future[None]] = []

        def stop() -> None:
            # The first signal stops gracefully; the next one cancels the running jobs.
            closing.append(asyncio.ensure_future(w.close(force=bool(closing))))

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop)
        async with contextlib.AsyncExitStack() as stack:
            if heartbeat is not None and job_store is not None:
                from agentcron.clock import SystemClock
                from agentcron.heartbeat.sender import HeartbeatSender

                node_id, interval_s = heartbeat
                await stack.enter_async_context(
                    HeartbeatSender(
                        job_store, SystemClock(), node_id=node_id, interval_s=interval_s
                    )
                )
            await w.run(burst=burst)
        return w.processed
    finally:
        child_records.install(previous_records)
        await q.close()
        if job_store is not None:
            await job_store.close()
