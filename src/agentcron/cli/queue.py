"""`agentcron queue`: add jobs to a queue, look at them (status, jobs, show) and manage it
(pause, resume, clean, retry-failed).

The queue lives in the store's database unless told otherwise: ``--store URL``
(``sqlite:///path`` or ``redis://host:port/db``), else where `agentcron run` keeps its store
(``SCHEDULER_STORE``, ``SCHEDULER_DATA_DIR`` from the environment, then ``./.env``; default
``./data/scheduler.db``). ``add`` creates a missing SQLite database; the other commands refuse
one. A queue name follows `agentcron.queue.base.queue_name_problem`. Bad input prints one line
and exits with code 2. Job names, data and errors are shown with their control characters
escaped (`agentcron.cli.common.visible`); ``--json`` prints them exactly.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentcron.cli.common import (
    data_dir_option,
    fail,
    opened_store,
    print_json,
    resolve_store,
    sqlite_path,
    store_option,
    visible,
)
from agentcron.queue import JobInfo, Queue, QueueError, open_queue
from agentcron.queue.base import (
    MAX_COUNT,
    MAX_JOBS_LIMIT,
    STATES,
    QueueInputError,
    check_queue_name,
    validate_job,
)
from agentcron.queue.sqlite import SqliteQueue

app = typer.Typer(
    name="queue",
    help=(
        "Add jobs to a queue, look at them and manage it: add, status, jobs, show, pause,"
        " resume, clean, retry-failed."
    ),
    no_args_is_help=True,
)

T = TypeVar("T")

_NAME = typer.Argument(..., help="The queue's name.")
_DATA_DIR = data_dir_option()
_STORE = store_option()
_JSON = typer.Option(False, "--json", help="Print JSON for scripts.")
_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def queue_url(store: str | None, data_dir: Path | None) -> str:
    """The queue backend URL the options name, resolved as every command resolves the
    store (the flags, the environment, `.env`: `agentcron.cli.common.cli_settings`)."""
    return resolve_store(data_dir, store)[1]


def parse_duration_s(text: str) -> float:
    """`"90"`, `"500ms"`, `"30s"`, `"10m"`, `"2h"`, `"1d"` -> seconds; ValueError otherwise."""
    value = text.strip().lower()
    for unit in sorted(_UNITS_S, key=len, reverse=True):
        if value.endswith(unit):
            number = float(value[: -len(unit)])
            break
    else:
        number, unit = float(value), "s"
    if number < 0:
        raise ValueError(f"duration must be >= 0, got {text!r}")
    return number * _UNITS_S[unit]


def with_queue(
    url: str, name: str, action: Callable[[Queue], Awaitable[T]], *, create: bool = False
) -> T:
    """Open the queue, run `action` on it, close it; queue errors exit with one line.

    A missing SQLite database is refused (one line, exit 2) unless `create`: a mistyped
    --data-dir must not leave a database behind and report an empty queue. With `create`
    (`queue add`, as `jobs add`) a missing database is made a complete agentcron database
    first, so that every other command can open it too."""
    try:
        check_queue_name(name)
    except QueueError as exc:
        fail(str(exc))
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        if not create:
            fail(
                f"no database at {path}; pass --data-dir or --store where agentcron keeps its "
                "data (`agentcron queue add` or `agentcron run` creates it)"
            )
        ensure_database(url)

    async def run() -> T:
        queue = open_queue(url, name)
        try:
            if isinstance(queue, SqliteQueue):
                # A damaged page the command does not happen to touch would let it
                # "succeed" on a corrupt file; a worker's next claim would then fail.
                await queue.check_integrity()
            return await action(queue)
        finally:
            await queue.close()

    try:
        return asyncio.run(run())
    except (QueueError, sqlite3.Error) as exc:
        # SqliteQueue's driver errors already name the file and what to do.
        fail(str(exc))


def ensure_database(url: str) -> None:
    """Create a missing SQLite database of `url` as a complete agentcron database (as
    `jobs add` does), not one holding only the queue's tables that the other commands
    would ask to `db migrate`. Problems: one line, exit 2."""
    path = sqlite_path(url)
    if path is None or path.is_file():
        return

    async def create() -> None:
        async with opened_store(url, create=True):
            pass

    asyncio.run(create())


@app.command("add")
def add(
    name: str = _NAME,
    job_name: str = typer.Argument(..., help="The job's name (what the worker's handler sees)."),
    data: str = typer.Option("null", "--data", help="The job's data as JSON."),
    priority: int = typer.Option(0, "--priority", help="0 (first) .. 2097152 (last)."),
    delay: str = typer.Option("0", "--delay", help="Wait before it may run: 30s, 10m, ..."),
    attempts: int = typer.Option(1, "--attempts", help="Attempts before it is dead-lettered."),
    job_id: str | None = typer.Option(None, "--job-id", help="Custom id (de-duplicates)."),
    store: str | None = _STORE,
    data_dir: Path | None = _DATA_DIR,
    as_json: bool = _JSON,
) -> None:
    """Add one job to queue NAME and print its id."""
    try:
        payload = json.loads(data)
        delay_s = parse_duration_s(delay)
    except (ValueError, RecursionError) as exc:
        fail(f"bad --data or --delay: {exc}")
    try:
        # Before a missing database is made for it.
        validate_job(
            name=job_name,
            priority=priority,
            delay=delay_s,
            attempts=attempts,
            job_id=job_id,
            remove_on_complete=False,
            remove_on_fail=False,
        )
    except QueueInputError as exc:
        fail(str(exc))
    added = with_queue(
        queue_url(store, data_dir),
        name,
        lambda q: q.add(
            job_name, payload, priority=priority, delay=delay_s, attempts=attempts, job_id=job_id
        ),
        create=True,
    )
    if as_json:
        print_json({"queue": name, "job_id": added})
    else:
        typer.echo(added)


@app.command("status")
def status(
    name: str = _NAME,
    store: str | None = _STORE,
    data_dir: Path | None = _DATA_DIR,
    as_json: bool = _JSON,
) -> None:
    """Show how many jobs of queue NAME are in each state, and whether it is paused."""

    async def read(q: Queue) -> dict[str, Any]:
        return {"queue": name, "paused": await q.is_paused(), "counts": await q.counts()}

    report = with_queue(queue_url(store, data_dir), name, read)
    if as_json:
        print_json(report)
        return
    table = Table(title=f"queue {escape(name)}" + (" (paused)" if report["paused"] else ""))
    for state in (*STATES, "paused"):
        table.add_column(state, justify="right")
    table.add_row(*(str(report["counts"][state]) for state in (*STATES, "paused")))
    Console().print(table)


@app.command("jobs")
def jobs(
    name: str = _NAME,
    state: str = typer.Option(
        "waiting", "--state", help="waiting, delayed, active, completed or failed."
    ),
    limit: int = typer.Option(50, "--limit", help=f"At most this many (1 to {MAX_JOBS_LIMIT})."),
    offset: int = typer.Option(0, "--offset", help="Skip this many first (to page on)."),
    store: str | None = _STORE,
    data_dir: Path | None = _DATA_DIR,
    as_json: bool = _JSON,
) -> None:
    """List the jobs of queue NAME in one state: waiting in the order they will run, delayed
    by due time, active by start, completed and failed newest first."""
    if state not in STATES:
        fail(f"--state must be one of {', '.join(STATES)}, got {state!r}")
    if not 1 <= limit <= MAX_JOBS_LIMIT:
        fail(f"--limit must be from 1 to {MAX_JOBS_LIMIT}, got {limit}")
    if not 0 <= offset <= MAX_COUNT:
        fail(f"--offset must be from 0 to {MAX_COUNT}, got {offset}")
    listed = with_queue(
        queue_url(store, data_dir),
        name,
        lambda q: q.jobs(state, offset=offset, limit=limit),
    )
    if as_json:
        print_json([info.to_dict() for info in listed])
        return
    if not listed:
        more = f" from offset {offset}" if offset else ""
        typer.echo(f"no {state} jobs in queue {name}{more}")
        return
    finished = state in ("completed", "failed")
    table = Table(title=f"{state} jobs of queue {escape(name)}")
    for column in ("id", "name", "state", "attempts", "priority"):
        table.add_column(column, overflow="fold")
    table.add_column("finished (UTC)" if finished else "added (UTC)", no_wrap=True)
    table.add_column("error", overflow="fold")
    for info in listed:
        table.add_row(
            _shown(info.id),
            _shown(info.name),
            info.state,
            f"{info.attempts_made}/{info.attempts}",
            str(info.priority),
            _time(info.finished_at if finished else info.created_at),
            _shown(_first_line(info.error)),
        )
    console = Console(highlight=False)
    console.print(table)
    if len(listed) == limit:
        console.print(f"more may follow: --offset {offset + limit}")


@app.command("show")
def show(
    name: str = _NAME,
    job_id: str = typer.Argument(..., help="The job's id (`agentcron queue jobs` lists them)."),
    store: str | None = _STORE,
    data_dir: Path | None = _DATA_DIR,
    as_json: bool = _JSON,
) -> None:
    """Show one job of queue NAME: state, attempts, progress, data, result and full error."""
    info = with_queue(queue_url(store, data_dir), name, lambda q: q.get(job_id))
    if info is None:
        fail(f"no job with id {job_id!r} in queue {name}; `agentcron queue jobs {name}` lists them")
    if as_json:
        print_json(info.to_dict())
        return
    _print_job(info)


def _print_job(info: JobInfo) -> None:
    console = Console(highlight=False)
    grid = Table.grid(padding=(0, 2))
    for key, value in (
        ("id", info.id),
        ("name", info.name),
        ("state", info.state),
        ("priority", str(info.priority)),
        ("attempts", f"{info.attempts_made} made of {info.attempts}"),
        ("progress", f"{info.progress:g}%"),
        ("added", _time(info.created_at, " UTC")),
        ("finished", _time(info.finished_at, " UTC")),
    ):
        grid.add_row(f"[bold]{key}[/bold]", _shown(value))
    console.print(grid)
    for key, value in (("data", info.data), ("result", info.result)):
        console.print(f"[bold]{key}[/bold]")
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
        console.print(escape(visible(text, keep="\n")))
    console.print("[bold]error[/bold]")
    console.print(escape(visible(info.error, keep="\n")) if info.error else "-")


def _shown(value: object) -> str:
    """A stored value for a rich table: control characters made visible, markup escaped."""
    return escape(visible(str(value)))


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    first = lines[0] if lines else ""
    return first if len(first) <= 80 else first[:79] + "…"


def _time(at: datetime | None, suffix: str = "") -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + suffix if at else "-"


@app.command("pause")
def pause(
    name: str = _NAME,
    store: str | None = _STORE,
    data_dir: Path | None = _DATA_DIR,
    as_json: bool = _JSON,
) -> None:
    """Stop handing out jobs of queue NAME (running ones finish)."""
    with_queue(queue_url(store, data_dir), name, lambda q: q.pause())
    _done(as_json, {"queue": name, "paused": True}, f"queue {name} paused")


@app.command("resume")
def resume(
    name: str = _NAME,
    store: str | None = _STORE,
    data_dir: Path | None = _DATA_DIR,
    as_json: bool = _JSON,
) -> None:
    """Hand out jobs of queue NAME again."""
    with_queue(queue_url(store, data_dir), name, lambda q: q.resume())
    _done(as_json, {"queue": name, "paused": False}, f"queue {name} resumed")


@app.command("clean")
def clean(
    name: str = _NAME,
    grace: str = typer.Option("0", "--grace", help="Keep jobs younger than this: 1h, 7d, ..."),
    limit: int = typer.Option(0, "--limit", help="Remove at most this many (0 = all)."),
    state: str = typer.Option(
        "completed", "--state", help="completed, failed, waiting or delayed."
    ),
    store: str | None = _STORE,
    data_dir: Path | None = _DATA_DIR,
    as_json: bool = _JSON,
) -> None:
    """Remove old jobs of queue NAME in one state."""
    if state not in ("completed", "failed", "waiting", "delayed"):
        fail(f"--state must be completed, failed, waiting or delayed, got {state!r}")
    try:
        grace_s = parse_duration_s(grace)
    except ValueError as exc:
        fail(f"bad --grace: {exc}")
    removed = with_queue(
        queue_url(store, data_dir),
        name,
        lambda q: q.clean(grace_s, limit, state),  # type: ignore[arg-type]
    )
    _done(
        as_json,
        {"queue": name, "state": state, "removed": removed},
        f"removed {len(removed)} {state} job(s) from {name}",
    )


@app.command("retry-failed")
def retry_failed(
    name: str = _NAME,
    store: str | None = _STORE,
    data_dir: Path | None = _DATA_DIR,
    as_json: bool = _JSON,
) -> None:
    """Move every failed (dead-letter) job of queue NAME back to waiting."""
    count = with_queue(queue_url(store, data_dir), name, lambda q: q.retry_failed())
    _done(as_json, {"queue": name, "retried": count}, f"retried {count} failed job(s) of {name}")


def _done(as_json: bool, report: dict[str, Any], text: str) -> None:
    if as_json:
        print_json(report)
    else:
        typer.echo(text)
