"""`agentcron jobs`: list, show, add, remove, run, pause, resume, history, export, import, reload.

    agentcron jobs list [--json] [--tag TAG]
    agentcron jobs show ID [--json]
    agentcron jobs add ID (--cron EXPR | --every 5m | --at ISO | --reboot)
                          (--command "prog args" | --callable pkg.mod:func | --http URL | -- PROG ARGS...)
                          [--name ...] [--tz ...] [--timeout ...] [--overlap ...] [--retry ...] ...
    agentcron jobs remove ID
    agentcron jobs run ID [--json]          exit 0 succeeded, 1 any other outcome, 2 bad input
    agentcron jobs pause ID [--note TEXT] / agentcron jobs resume ID
    agentcron jobs history ID [--limit N] [--status S] [--json]
    agentcron jobs export [FILE | -] / agentcron jobs import FILE [--conflict replace|keep|error]
    agentcron jobs reload [--wait SECONDS] [--json]
                                            exit 0 reloaded (or no answer), 2 file rejected,
                                            1 the daemon failed to apply it

Every command takes `--data-dir DIR` and `--store URL`; without them the store is found as
`agentcron run` finds it (`SCHEDULER_STORE`, `SCHEDULER_DATA_DIR` from the environment, then
`./.env`; default `sqlite:///./data/scheduler.db`), and `jobs add` takes its default time zone
from `SCHEDULER_TIMEZONE` the same way (`agentcron.cli.common.cli_settings`). The
commands talk to the store directly, so they work while the daemon is down; after changing
jobs they tell running daemons to reload (`agentcron.control.notify_jobs_changed`).

`jobs add` takes the options of an `agentcron.toml` `[[jobs]]` table and validates them
through the same code (`agentcron.jobfile.parse_job_file`), so the rules are one. Policy
options (`--overlap`, `--retry`, `--misfire`, `--circuit`) take a name, or a TOML inline
table exactly as in the file: `--overlap '{ policy = "concurrent", max_concurrent = 3 }'`.

In `--json` output a job's `trigger` is written as in the TOML file: the cron text for cron
triggers, `"@reboot"`, `{"every": <seconds>}` (plus `"start"` when anchored) or
`{"at": "<ISO-8601 with offset>"}`. Times are ISO-8601 with offsets.

Bad input (unknown ids, bad durations, bad cron, unknown time zones, an unwritable or corrupt
database ...) prints one line on stderr and exits with code 2, changing nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import shlex
import signal
import socket
import stat
import sys
import tempfile
import time
import tomllib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from agentcron.cli.common import (
    OneLineUsageErrors,
    cli_settings,
    data_dir_option,
    fail,
    opened_store,
    print_json,
    resolve_store,
    store_option,
    visible,
)
from agentcron.clock import utc
from agentcron.config_jobs import config_job_ids, config_job_problem
from agentcron.control import (
    ReloadRequest,
    ReloadVerdict,
    notify_jobs_changed,
    read_reload_verdict,
    request_reload,
)
from agentcron.durations import format_duration, parse_duration
from agentcron.handlers import child_records, handler_from_dict
from agentcron.jobfile import JobFileError, parse_job_file, policy_problems
from agentcron.jobs import (
    JOB_OPTIONS,
    Job,
    UnavailableHandler,
    build_job,
    job_from_definition,
    job_options,
    job_to_definition,
    next_nominal_fire,
    tags_problem,
)
from agentcron.models import RunQuery, RunRecord, RunStats, RunStatus, StoredJob
from agentcron.store.base import Store, StoreError
from agentcron.store.export import (
    ImportResult,
    ImportValidationError,
    export_jobs,
    import_jobs,
    load_export,
    validate_export,
)

if TYPE_CHECKING:
    from agentcron.config import Settings

__all__ = ["ACTOR", "app", "definition_problems", "job_summary", "trigger_json"]

#: The audit actor of every change made by these commands.
ACTOR = "cli"
#: How many jobs `jobs import` writes per progress step.
IMPORT_CHUNK = 50
EXIT_RUN_NOT_SUCCEEDED = 1
EXIT_RELOAD_FAILED = 1
#: How long `jobs reload` waits for a daemon's verdict by default, and how often it looks.
RELOAD_WAIT_S = 10.0
VERDICT_POLL_S = 0.1

T = TypeVar("T")

app = typer.Typer(
    name="jobs",
    help="List, add, run, pause and inspect jobs in the store (works while the daemon is down).",
    no_args_is_help=True,
    cls=OneLineUsageErrors,
)

_DATA_DIR = data_dir_option()
_STORE = store_option()
_JSON = typer.Option(False, "--json", help="Print JSON for scripts.")
_ID = typer.Argument(..., metavar="ID", help="The job id.")


# == helpers ===================================================================================
def _now() -> datetime:
    # The CLI is an edge: it reads the wall clock once per command.
    return datetime.now(UTC)


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def _with_store(
    url: str,
    action: Callable[[Store], Awaitable[T]],
    *,
    create: bool,
    read_only: bool = False,
) -> T:
    """Open the store at `url` (from `resolve_store`), run `action`, close it. Store
    problems: one line, exit 2. `read_only`: `action` only reads (see `opened_store`)."""

    async def main() -> T:
        async with opened_store(url, create=create, read_only=read_only) as opened:
            try:
                return await action(opened)
            except StoreError as exc:
                fail(str(exc))

    return asyncio.run(main())


async def _stored(store: Store, job_id: str) -> StoredJob:
    found = await store.get_job(job_id)
    if found is None:
        fail(f"no job with id {job_id!r}; `agentcron jobs list` shows the ids")
    return found


async def _refuse_file_job(store: Store, job_id: str, what: str) -> None:
    """Exit 2 for a job agentcron.toml defines: the daemon's next reload of the file would
    undo the change without a word. Pause and resume stay allowed, as in the HTTP API."""
    if job_id in await config_job_ids(store):
        fail(config_job_problem(job_id, what))


def _load_job(stored: StoredJob) -> tuple[Job | None, str | None]:
    """The engine's job for a stored definition, or None and why it is invalid."""
    try:
        return job_from_definition(stored.id, stored.definition), None
    except (ValueError, TypeError, KeyError) as exc:
        return None, str(exc)


def trigger_json(trigger: object) -> object:
    """A stored trigger dict in the TOML form (see the module docstring)."""
    if not isinstance(trigger, dict):
        return None
    kind = trigger.get("type")
    if kind == "cron":
        return trigger.get("expr")
    if kind == "reboot":
        return "@reboot"
    if kind == "interval":
        out: dict[str, Any] = {"every": trigger.get("seconds")}
        if trigger.get("start"):
            out["start"] = trigger["start"]
        return out
    if kind == "date":
        return {"at": trigger.get("at")}
    return trigger


def _schedule_text(trigger: object) -> str:
    value = trigger_json(trigger)
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "every" in value:
        seconds = value["every"]
        return f"every {format_duration(float(seconds))}" if seconds else "every ?"
    if isinstance(value, dict) and "at" in value:
        return f"at {value['at']}"
    return "?"


def _schedule_words(job: Job | None, trigger: object) -> str:
    """The schedule in words (`At 02:00`, `every 5m`, `at start-up`)."""
    if isinstance(trigger, dict) and trigger.get("type") == "cron" and job is not None:
        from agentcron.cron import CronError, CronExpression

        try:
            return CronExpression(str(trigger.get("expr")), tz=job.timezone).describe()
        except (CronError, ValueError):
            return ""
    if isinstance(trigger, dict) and trigger.get("type") == "reboot":
        return "at start-up"
    if isinstance(trigger, dict) and trigger.get("type") == "date":
        return "once"
    return ""


def _disabled_reason(
    job: Job | None, definition: dict[str, Any], invalid: str | None
) -> str | None:
    """Why a job is disabled, when it says (None for a plain `enabled = false`).

    The reason is read from the definition's `disabled_reason` (how the agent-loops preset
    marks its integration loops "no handler configured"), else from a stored handler that
    was recorded as unavailable (registered from code that cannot be persisted). A stored
    definition the engine rejects is disabled with the validation error as its reason.
    """
    if invalid is not None:
        return f"invalid definition: {invalid}"
    if job is None or job.enabled:
        return None
    reason = definition.get("disabled_reason")
    if isinstance(reason, str) and reason:
        return reason
    handler = definition.get("handler")
    if isinstance(handler, dict) and handler.get("type") == "unavailable":
        return str(handler.get("reason") or "handler not available")
    return None


def _status(stored: StoredJob, job: Job | None) -> str:
    if job is None:
        return "invalid"
    if not job.enabled:
        return "disabled"
    if stored.paused:
        return "paused"
    return "active"


async def _next_run(
    store: Store, stored: StoredJob, job: Job | None, now: datetime
) -> datetime | None:
    if job is None or stored.paused or not job.enabled:
        return None
    if job.max_runs is not None:
        if await store.count_runs(RunQuery(job_id=job.id, limit=1)) >= job.max_runs:
            return None
    return next_nominal_fire(job, now)


async def _live_status(store: Store, stored: StoredJob, job: Job | None) -> str:
    """The status word the dashboard shows (`dashboard.views.job_status`, same order):
    disabled, paused, running (a run in progress), failing (its last run failed, so after
    an open circuit or a failure streak), else active; `invalid` when it cannot be built."""
    status = _status(stored, job)
    if status != "active":
        return status
    running = await store.count_runs(
        RunQuery(job_id=stored.id, statuses=(RunStatus.running,), limit=1)
    )
    if running:
        return "running"
    if (await store.run_stats(stored.id)).consecutive_failures:
        return "failing"
    return "active"


async def job_summary(store: Store, stored: StoredJob, now: datetime) -> dict[str, Any]:
    """What `jobs list --json` prints for one job."""
    job, invalid = _load_job(stored)
    definition = stored.definition
    timezone = job.timezone if job is not None else definition.get("timezone", "UTC")
    return {
        "id": stored.id,
        "name": job.display_name if job is not None else definition.get("name") or stored.id,
        "trigger": trigger_json(definition.get("trigger")),
        "timezone": timezone,
        "enabled": job.enabled if job is not None else False,
        "paused": stored.paused,
        "status": await _live_status(store, stored, job),
        "pause_note": stored.pause_note,
        "disabled_reason": _disabled_reason(job, definition, invalid),
        "next_run": _iso(await _next_run(store, stored, job, now)),
        "tags": list(job.tags) if job is not None else list(definition.get("tags", [])),
    }


def _stats_dict(stats: RunStats) -> dict[str, Any]:
    return {
        f.name: _iso(v) if isinstance(v, datetime) else v
        for f in dataclasses.fields(stats)
        if f.name != "job_id"
        for v in (getattr(stats, f.name),)
    }


def _next_fires(job: Job | None, now: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    if job is None:
        return out
    after = now
    while len(out) < count:
        fire = next_nominal_fire(job, after)
        if fire is None:
            break
        out.append(fire)
        after = fire
    return out


def _local(dt: datetime | None, tz: str) -> str:
    if dt is None:
        return "-"
    from agentcron.triggers import resolve_tz

    try:
        zone: tzinfo = resolve_tz(tz)
    except ValueError:
        zone = UTC
    return dt.astimezone(zone).isoformat(timespec="seconds")


#: Kept as they are in multi-line output (a run's error and output tail).
_LINES = "\n\t"


def _shown(value: object) -> str:
    """A stored value for a rich table: markup escaped, control characters made visible."""
    return escape(visible(str(value)))


def _console() -> Console:
    return Console(highlight=False)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.2f}s" if seconds < 60 else format_duration(seconds)


# == list / show ===============================================================================
@app.command("list")
def list_jobs(
    as_json: bool = _JSON,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Only jobs with this tag (repeat).")
    ] = None,
    data_dir: Path | None = _DATA_DIR,
    store: str | None = _STORE,
) -> None:
    """List the jobs: schedule (and in words), time zone, status, next run."""
    _, url = resolve_store(data_dir, store)
    now = _now()

    async def read(opened: Store) -> list[tuple[StoredJob, Job | None, dict[str, Any]]]:
        rows = []
        for stored in await opened.list_jobs():
            summary = await job_summary(opened, stored, now)
            if tag and not set(tag) & set(summary["tags"]):
                continue
            rows.append((stored, _load_job(stored)[0], summary))
        return rows

    rows = _with_store(url, read, create=False, read_only=True)
    if as_json:
        print_json([summary for _, _, summary in rows])
        return
    if not rows:
        typer.echo("no jobs; add one with `agentcron jobs add` or in agentcron.toml")
        return
    table = Table("id", "name", "schedule", "tz", "status")
    table.add_column("next run", no_wrap=True)
    for stored, job, summary in rows:
        trigger = stored.definition.get("trigger")
        words = _schedule_words(job, trigger)
        schedule = _shown(_schedule_text(trigger)) + (
            f"\n[dim]{_shown(words)}[/dim]" if words else ""
        )
        status = str(summary["status"])
        if summary["disabled_reason"]:
            status += f"\n[dim]{_shown(summary['disabled_reason'])}[/dim]"
        elif stored.paused and stored.pause_note:
            status += f"\n[dim]{_shown(stored.pause_note)}[/dim]"
        next_run = datetime.fromisoformat(summary["next_run"]) if summary["next_run"] else None
        table.add_row(
            _shown(stored.id),
            _shown(summary["name"]),
            schedule,
            _shown(summary["timezone"]),
            status,
            _local(next_run, str(summary["timezone"])),
        )
    _console().print(table)


@app.command()
def show(
    job_id: str = _ID,
    as_json: bool = _JSON,
    data_dir: Path | None = _DATA_DIR,
    store: str | None = _STORE,
) -> None:
    """Show a job: definition, state, the next 5 fire times, the last runs, statistics."""
    _, url = resolve_store(data_dir, store)
    now = _now()

    async def read(opened: Store) -> tuple[dict[str, Any], list[RunRecord], RunStats]:
        stored = await _stored(opened, job_id)
        job, invalid = _load_job(stored)
        summary = await job_summary(opened, stored, now)
        runs = await opened.list_runs(RunQuery(job_id=job_id, limit=5))
        stats = await opened.run_stats(job_id)
        summary.update(
            {
                "description": job.description if job is not None else "",
                "schedule_description": _schedule_words(job, stored.definition.get("trigger")),
                "handler": job.handler.describe() if job is not None else None,
                "invalid": invalid,
                "next_fires": [_iso(t) for t in _next_fires(job, now, 5)],
                "last_fire": _iso(stored.last_fire),
                "version": stored.version,
                "created_at": _iso(stored.created_at),
                "updated_at": _iso(stored.updated_at),
                "definition": stored.definition,
            }
        )
        return summary, runs, stats

    summary, runs, stats = _with_store(url, read, create=False, read_only=True)
    if as_json:
        print_json(
            {**summary, "last_runs": [r.to_dict() for r in runs], "stats": _stats_dict(stats)}
        )
        return
    _print_show(summary, runs, stats)


def _print_show(summary: dict[str, Any], runs: list[RunRecord], stats: RunStats) -> None:
    console = _console()
    tz = str(summary["timezone"])
    schedule = _schedule_text(summary["definition"].get("trigger"))
    if summary["schedule_description"]:
        schedule += f" ({summary['schedule_description']})"
    status = str(summary["status"])
    if summary["disabled_reason"]:
        status += f": {summary['disabled_reason']}"
    elif summary["paused"] and summary["pause_note"]:
        status += f": {summary['pause_note']}"
    fields = [
        ("id", summary["id"]),
        ("name", summary["name"]),
        ("schedule", schedule),
        ("time zone", tz),
        ("handler", summary["handler"] or "-"),
        ("status", status),
        ("tags", ", ".join(summary["tags"]) or "-"),
        ("last fire", summary["last_fire"] or "-"),
        ("version", str(summary["version"])),
    ]
    if summary["description"]:
        fields.insert(2, ("description", summary["description"]))
    info = Table.grid(padding=(0, 2))
    for key, value in fields:
        info.add_row(f"[bold]{key}[/bold]", _shown(value))
    console.print(info)
    console.print("[bold]definition[/bold]")
    console.print(escape(json.dumps(summary["definition"], indent=2, default=str)))
    fires = [datetime.fromisoformat(t) for t in summary["next_fires"]]
    console.print(
        "[bold]next fire times[/bold]"
        + (
            " (the schedule; the job is not firing)"
            if summary["next_run"] is None and fires
            else ""
        )
    )
    for fire in fires:
        console.print(f"  {_local(fire, tz)}")
    if not fires:
        console.print("  none")
    console.print(
        f"[bold]stats[/bold]  runs {stats.total}, succeeded {stats.succeeded}, failed "
        f"{stats.failed}, skipped {stats.skipped}, consecutive failures "
        f"{stats.consecutive_failures}, p50 {_duration(stats.p50_duration_s)}, "
        f"p95 {_duration(stats.p95_duration_s)}"
    )
    if runs:
        console.print("[bold]last runs[/bold]")
        console.print(_runs_table(runs, tz))
    else:
        console.print("[bold]last runs[/bold]  none yet")


def _runs_table(runs: Sequence[RunRecord], tz: str) -> Table:
    table = Table("scheduled for", "status", "attempt", "duration", "error")
    for run in runs:
        status = str(run.status) + (f" ({run.skip_reason})" if run.skip_reason else "")
        error = (run.error or "").splitlines()[0][:80] if run.error else ""
        table.add_row(
            _local(run.scheduled_for, tz),
            status,
            str(run.attempt),
            _duration(run.duration_s),
            _shown(error),
        )
    return table


# == add =======================================================================================
def _number_or_text(text: str) -> float | str:
    """`"30"` -> 30.0 seconds (as a TOML number would be); `"5m"` stays text."""
    try:
        return float(text)
    except ValueError:
        return text


def _policy_value(option: str, text: str) -> Any:
    """A policy option: a TOML inline table (`{ policy = "skip" }`), an integer, or a name."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            return tomllib.loads(f"value = {stripped}")["value"]
        except tomllib.TOMLDecodeError as exc:
            fail(f"{option} {text!r}: not a TOML inline table ({exc})")
    if stripped.isdigit():
        return int(stripped)
    return stripped


def _pairs(option: str, items: Sequence[str], sep: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, found, value = item.partition(sep)
        if not found or not key.strip():
            fail(f"{option} {item!r}: expected NAME{sep}VALUE")
        out[key.strip()] = value.strip() if sep == ":" else value
    return out


_EXAMPLES = {
    "--cron": "an expression such as '0 2 * * *' or @daily",
    "--every": "an interval such as 30s, 5m or 1h30m",
    "--at": "an ISO-8601 time such as 2026-12-01T09:00:00+01:00",
    "--command": "a command line such as 'rsync -a src/ dst/'",
    "--callable": "a reference such as pkg.mod:func",
    "--http": "a URL such as https://example.org/ping",
}


def _given(options: tuple[tuple[str, str | None], ...]) -> list[str]:
    """The options given (an empty value is given, and refused: `--every ""` from an unset
    shell variable must not read as "no schedule")."""
    for name, value in options:
        if value is not None and not value.strip():
            fail(f"{name} is empty; give {_EXAMPLES[name]}")
    return [name for name, value in options if value is not None]


def _trigger(cron: str | None, every: str | None, at: str | None, reboot: bool, tz: str) -> object:
    given = _given((("--cron", cron), ("--every", every), ("--at", at)))
    if reboot:
        given.append("--reboot")
    if len(given) != 1:
        fail(
            "give exactly one schedule: --cron EXPR, --every DURATION, --at ISO-TIME or "
            f"--reboot (got {', '.join(given) or 'none'})"
        )
    if cron:
        return cron
    if every:
        return {"every": _number_or_text(every)}
    if at:
        return {"at": _aware_iso("--at", at, tz)}
    return "@reboot"


def _aware_iso(option: str, text: str, tz: str) -> str:
    """An ISO-8601 time with its offset; a naive one is read in `tz`."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r}: not an ISO-8601 time (e.g. 2026-12-01T09:00:00+01:00)")
    if when.tzinfo is None:
        from agentcron.triggers import resolve_tz

        try:
            when = when.replace(tzinfo=resolve_tz(tz))
        except ValueError as exc:
            fail(str(exc))
    return when.isoformat()


def _handler_keys(
    command: str | None,
    argv: list[str] | None,
    callable_ref: str | None,
    http: str | None,
    method: str | None,
    headers: list[str] | None,
    body: str | None,
) -> dict[str, Any]:
    given = _given((("--command", command), ("--callable", callable_ref), ("--http", http)))
    if argv:
        given.insert(1, "-- PROGRAM ARGS")
    if len(given) != 1:
        fail(
            "give exactly one handler: --command 'PROGRAM ARGS', -- PROGRAM ARGS..., "
            f"--callable pkg.mod:func or --http URL (got {', '.join(given) or 'none'})"
        )
    if (method or headers or body) and not http:
        fail("--method, --header and --body go with --http URL")
    if command:
        try:
            split = shlex.split(command)
        except ValueError as exc:
            fail(f"--command {command!r}: {exc}")
        if not split:
            fail("--command: empty command")
        return {"command": split}
    if argv:
        return {"command": list(argv)}
    if callable_ref:
        return {"callable": callable_ref}
    spec: dict[str, Any] = {"url": http}
    if method:
        spec["method"] = method.upper()
    if headers:
        spec["headers"] = _pairs("--header", headers, ":")
    if body is not None:
        try:
            spec["json"] = json.loads(body)
        except json.JSONDecodeError as exc:
            fail(f"--body: not JSON ({exc.msg} at column {exc.colno})")
    return {"http": spec}


def build_table(
    job_id: str,
    *,
    trigger: object,
    handler: dict[str, Any],
    options: dict[str, Any],
) -> dict[str, Any]:
    """The `[[jobs]]` table equivalent to the command line (None options left out)."""
    table: dict[str, Any] = {"id": job_id, "trigger": trigger, **handler}
    table.update({k: v for k, v in options.items() if v is not None})
    return table


def validated_job(table: dict[str, Any], default_timezone: str) -> Job:
    """Validate `table` as a `[[jobs]]` table and build the job; one-line exit 2 if bad."""
    try:
        parsed = parse_job_file(
            {"jobs": [table]}, source="the job", default_timezone=default_timezone
        )
    except JobFileError as exc:
        prefix = f"jobs[0] ({table['id']!r}): "
        fail("; ".join(e.removeprefix(prefix).removeprefix("jobs[0]: ") for e in exc.errors))
    entry = parsed.jobs[0]
    try:
        return build_job(
            entry.id,
            trigger=entry.trigger,
            handler=entry.handler,
            default_timezone=default_timezone,
            **entry.options,
        )
    except ValueError as exc:  # pragma: no cover - parse_job_file validated the same
        fail(str(exc))


@app.command(
    epilog=(
        "Examples: agentcron jobs add backup --cron '0 2 * * *' --tz Europe/Berlin -- rsync -a "
        "src/ dst/ | agentcron jobs add ping --every 5m --http https://example.org/ping "
        "--method GET | agentcron jobs add digest --cron '0 9 * * *' --callable myagent.digest:send "
        "--retry-attempts 3"
    ),
)
def add(
    job_id: str = _ID,
    argv: Annotated[
        list[str] | None,
        typer.Argument(metavar="-- PROGRAM ARGS", help="The command to run, after `--`."),
    ] = None,
    cron: Annotated[
        str | None, typer.Option("--cron", help="Cron expression (5-7 fields or @daily ...).")
    ] = None,
    every: Annotated[
        str | None, typer.Option("--every", help="Interval: 30s, 5m, 1h30m, or seconds.")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Once, at an ISO-8601 time (without an offset: in --tz)."),
    ] = None,
    reboot: Annotated[
        bool, typer.Option("--reboot", help="Once each time the daemon starts.")
    ] = False,
    command: Annotated[
        str | None,
        typer.Option("--command", help="A command line, split like a shell (never run by one)."),
    ] = None,
    callable_ref: Annotated[
        str | None, typer.Option("--callable", help="A Python callable: pkg.mod:func.")
    ] = None,
    http: Annotated[str | None, typer.Option("--http", help="An HTTP request to this URL.")] = None,
    method: Annotated[
        str | None, typer.Option("--method", help="HTTP method (default POST).")
    ] = None,
    header: Annotated[
        list[str] | None, typer.Option("--header", help="HTTP header 'Name: value' (repeat).")
    ] = None,
    body: Annotated[str | None, typer.Option("--body", help="HTTP JSON body.")] = None,
    cwd: Annotated[
        str | None, typer.Option("--cwd", help="Working directory of the command.")
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", help="NAME=VALUE for the command (repeat).")
    ] = None,
    shell: Annotated[
        bool, typer.Option("--shell", help="Run the command through the shell.")
    ] = False,
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="What the job does.")
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option("--tz", help="IANA time zone (default $SCHEDULER_TIMEZONE or UTC)."),
    ] = None,
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="Run time limit: 10m, 30s ...")
    ] = None,
    jitter: Annotated[str | None, typer.Option("--jitter", help="Random delay up to this.")] = None,
    overlap: Annotated[
        str | None,
        typer.Option(
            "--overlap",
            help="skip|queue|buffer_one|delay|timeout|replace|concurrent|allow or a TOML inline table.",
        ),
    ] = None,
    retry: Annotated[
        str | None, typer.Option("--retry", help="Attempts (int) or a TOML inline table.")
    ] = None,
    retry_attempts: Annotated[
        int | None, typer.Option("--retry-attempts", help="retry.max_attempts.")
    ] = None,
    retry_strategy: Annotated[
        str | None, typer.Option("--retry-strategy", help="fixed|linear|exponential.")
    ] = None,
    retry_base_delay: Annotated[
        str | None, typer.Option("--retry-base-delay", help="retry.base_delay (1s).")
    ] = None,
    retry_max_delay: Annotated[
        str | None, typer.Option("--retry-max-delay", help="retry.max_delay (30s).")
    ] = None,
    misfire: Annotated[
        str | None, typer.Option("--misfire", help="run_once|skip|run_all or a TOML inline table.")
    ] = None,
    circuit: Annotated[
        str | None, typer.Option("--circuit", help="Circuit breaker as a TOML inline table.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeat).")] = None,
    queue: Annotated[
        str | None, typer.Option("--queue", help="Dispatch runs to this queue.")
    ] = None,
    expect_every: Annotated[
        str | None, typer.Option("--expect-every", help="Alert when no success within this.")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="Do not fire before this ISO time.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Do not fire after this ISO time.")
    ] = None,
    max_runs: Annotated[int | None, typer.Option("--max-runs", help="Stop after N fires.")] = None,
    isolation: Annotated[
        str | None, typer.Option("--isolation", help="thread|process (callables).")
    ] = None,
    disabled: Annotated[
        bool, typer.Option("--disabled", help="Store it disabled (enabled = false).")
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a job with the same id (history kept).")
    ] = False,
    as_json: bool = _JSON,
    data_dir: Path | None = _DATA_DIR,
    store: str | None = _STORE,
) -> None:
    """Add a job to the store, with the options of a jobs table in agentcron.toml."""
    settings = cli_settings(data_dir=data_dir, store=store)
    directory, url, default_tz = settings.data_dir, settings.store_url, settings.SCHEDULER_TIMEZONE
    if (cwd or env or shell) and not (command or argv):
        fail("--cwd, --env and --shell go with a command (--command or -- PROGRAM ARGS)")
    tag_problem = tags_problem(tag or [])
    if tag_problem is not None:
        fail(f"job {job_id!r}: --tag: {tag_problem}")
    trigger = _trigger(cron, every, at, reboot, tz or default_tz)
    handler = _handler_keys(command, argv, callable_ref, http, method, header, body)
    if "command" in handler:
        if cwd:
            handler["cwd"] = cwd
        if env:
            handler["env"] = _pairs("--env", env, "=")
        if shell:
            handler["shell"] = True
    retry_value: Any = _policy_value("--retry", retry) if retry is not None else None
    parts = {
        "max_attempts": retry_attempts,
        "strategy": retry_strategy,
        "base_delay": _number_or_text(retry_base_delay) if retry_base_delay else None,
        "max_delay": _number_or_text(retry_max_delay) if retry_max_delay else None,
    }
    if any(v is not None for v in parts.values()):
        if isinstance(retry_value, int):
            retry_value = {"max_attempts": retry_value}
        if retry_value is not None and not isinstance(retry_value, dict):
            fail(f"--retry {retry!r}: expected a number of attempts or a TOML inline table")
        retry_value = {**(retry_value or {}), **{k: v for k, v in parts.items() if v is not None}}
    options: dict[str, Any] = {
        "name": name,
        "description": description,
        "timezone": tz,
        "timeout": _number_or_text(timeout) if timeout else None,
        "jitter": _number_or_text(jitter) if jitter else None,
        "overlap": _policy_value("--overlap", overlap) if overlap else None,
        "retry": retry_value,
        "misfire": _policy_value("--misfire", misfire) if misfire else None,
        "circuit": _policy_value("--circuit", circuit) if circuit else None,
        "tags": list(tag) if tag else None,
        "queue": queue,
        "expect_every": _number_or_text(expect_every) if expect_every else None,
        "start": _aware_iso("--start", start, tz or default_tz) if start else None,
        "end": _aware_iso("--end", end, tz or default_tz) if end else None,
        "max_runs": max_runs,
        "isolation": isolation,
        "enabled": False if disabled else None,
    }
    table = build_table(job_id, trigger=trigger, handler=handler, options=options)
    job = validated_job(table, default_tz)
    definition = job_to_definition(job)
    now = _now()

    async def save(opened: Store) -> tuple[dict[str, Any], bool, bool]:
        await _refuse_file_job(opened, job_id, "change")
        existing = await opened.get_job(job_id)
        if existing is not None and not replace:
            fail(f"a job with id {job_id!r} already exists; pass --replace to replace it")
        saved = await opened.save_job(
            StoredJob(id=job_id, definition=definition), actor=ACTOR, conflict="replace"
        )
        signalled = await notify_jobs_changed(opened, directory)
        return await job_summary(opened, saved, now), existing is not None, signalled

    summary, replaced, signalled = _with_store(url, save, create=True)
    if as_json:
        print_json({**summary, "replaced": replaced, "daemon_signalled": signalled})
        return
    verb = "replaced" if replaced else "added"
    next_run = summary["next_run"] or "-"
    typer.echo(
        f"{verb} job {job_id} ({_schedule_text(definition['trigger'])}); next run {next_run}"
    )
    _echo_reload(signalled)


def _echo_reload(signalled: bool) -> None:
    if signalled:
        typer.echo("the running daemon was told to reload its jobs")


# == remove / pause / resume ===================================================================
@app.command()
def remove(
    job_id: str = _ID,
    as_json: bool = _JSON,
    data_dir: Path | None = _DATA_DIR,
    store: str | None = _STORE,
) -> None:
    """Remove a job and its run history."""
    directory, url = resolve_store(data_dir, store)

    async def delete(opened: Store) -> bool:
        await _stored(opened, job_id)
        await _refuse_file_job(opened, job_id, "remove")
        await opened.delete_job(job_id, actor=ACTOR)
        return await notify_jobs_changed(opened, directory)

    signalled = _with_store(url, delete, create=False)
    if as_json:
        print_json({"id": job_id, "removed": True, "daemon_signalled": signalled})
        return
    typer.echo(f"removed job {job_id} and its history")
    _echo_reload(signalled)


def _set_paused(
    job_id: str,
    paused: bool,
    note: str | None,
    as_json: bool,
    data_dir: Path | None,
    store: str | None,
) -> None:
    directory, url = resolve_store(data_dir, store)

    async def change(opened: Store) -> tuple[StoredJob, bool]:
        await _stored(opened, job_id)
        saved = await opened.set_paused(job_id, paused, note=note, actor=ACTOR)
        if saved is None:
            fail(f"no job with id {job_id!r}; `agentcron jobs list` shows the ids")
        return saved, await notify_jobs_changed(opened, directory)

    saved, signalled = _with_store(url, change, create=False)
    if as_json:
        print_json(
            {
                "id": job_id,
                "paused": saved.paused,
                "pause_note": saved.pause_note,
                "daemon_signalled": signalled,
            }
        )
        return
    if paused:
        typer.echo(visible(f"paused job {job_id}" + (f" ({note})" if note else "")))
    else:
        typer.echo(f"resumed job {job_id}; it fires again from its next scheduled time")
    _echo_reload(signalled)


@app.command()
def pause(
    job_id: str = _ID,
    note: Annotated[str | None, typer.Option("--note", help="Why (shown in lists).")] = None,
    as_json: bool = _JSON,
    data_dir: Path | None = _DATA_DIR,
    store: str | None = _STORE,
) -> None:
    """Stop firing a job (a run in progress finishes)."""
    _set_paused(job_id, True, note, as_json, data_dir, store)


@app.command()
def resume(
    job_id: str = _ID,
    as_json: bool = _JSON,
    data_dir: Path | None = _DATA_DIR,
    store: str | None = _STORE,
) -> None:
    """Fire a paused job again (fires missed while paused are not run)."""
    _set_paused(job_id, False, None, as_json, data_dir, store)


# == run =======================================================================================
class _OneJobStore:
    """The store as `jobs run` shows it to the engine.

    Only the job to run is listed, and listed paused, so the engine started for this one
    manual run never schedules it (nor an `@reboot` job, nor any other job) by itself: a
    manual run ignores the pause. Expired leases of other nodes are left to the daemons.
    Everything else goes to the real store.
    """

    def __init__(self, inner: Store, job_id: str) -> None:
        self._inner = inner
        self._job_id = job_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def list_jobs(self) -> list[StoredJob]:
        found = await self._inner.get_job(self._job_id)
        return [] if found is None else [found.evolve(paused=True)]

    async def interrupt_expired(self, now: datetime) -> list[RunRecord]:
        return []


async def run_job_now(
    store: Store, job_id: str, *, lease_s: float = 60.0, settings: Settings | None = None
) -> RunRecord:
    """Run `job_id` once now through its policies (retries, timeout) and return the run,
    holding its lease for `lease_s` (`SCHEDULER_LEASE`, as `agentcron run` does).

    With `settings` (the command's: `--data-dir`, `--store`), the built-in loops
    (`agentcron.presets.builtin`) use `store` and those settings, as under `agentcron run`,
    instead of settings read again from the current directory."""
    from agentcron.engine.scheduler import Scheduler
    from agentcron.presets import builtin

    stored = await _stored(store, job_id)
    job, invalid = _load_job(stored)
    if job is None:
        fail(f"job {job_id!r} cannot run: its stored definition is invalid: {invalid}")
    reason = _disabled_reason(job, stored.definition, None)
    if reason:
        fail(f"job {job_id!r} cannot run: {reason}")
    if isinstance(job.handler, UnavailableHandler):
        fail(f"job {job_id!r} cannot run in this process: {job.handler.reason}")
    node_id = f"{socket.gethostname()}-cli-{os.getpid()}"
    scheduler = Scheduler(
        store=cast(Store, _OneJobStore(store, job_id)), node_id=node_id, lease_s=lease_s
    )
    if settings is not None:
        builtin.bind(builtin.Services(store=store, settings=settings))
    try:
        async with scheduler:
            return await scheduler.run_now(job_id)
    finally:
        if settings is not None:
            builtin.unbind()


@app.command()
def run(
    job_id: str = _ID,
    as_json: bool = _JSON,
    data_dir: Path | None = _DATA_DIR,
    store: str | None = _STORE,
) -> None:
    """Run a job now, through its policies, and print the finished run.

    Exit 0 when the run succeeded, 1 for any other outcome (failed, timed out, skipped),
    2 for bad input. This is what exported OS timers call.
    """
    settings = cli_settings(data_dir=data_dir, store=store)
    data, url = settings.data_dir, settings.store_url
    # The command's process group is recorded as `agentcron run` records its own: if this
    # CLI is SIGKILLed mid-run, the next `agentcron run` on the data directory kills what
    # it left running before retrying the run.
    records = child_records.install(child_records.ChildRecords(data / child_records.DIRECTORY_NAME))
    try:
        lease_s = settings.SCHEDULER_LEASE / 1000
        record = _with_store(
            url,
            lambda s: _stoppable(run_job_now(s, job_id, lease_s=lease_s, settings=settings)),
            create=False,
        )
    except asyncio.CancelledError:  # SIGTERM before the run started: nothing was recorded
        fail(f"stopped by SIGTERM before job {job_id!r} started", code=EXIT_RUN_NOT_SUCCEEDED)
    finally:
        child_records.install(records)
    if as_json:
        print_json(record.to_dict())
    else:
        _print_run(record)
    if record.status != RunStatus.succeeded:
        raise typer.Exit(EXIT_RUN_NOT_SUCCEEDED)


async def _stoppable(work: Awaitable[T]) -> T:
    """`await work`, with SIGTERM handled as asyncio handles SIGINT (Ctrl+C): it cancels
    the command, so the run in progress is cancelled through the engine (its process tree
    killed, the run recorded cancelled) instead of the CLI dying at once and leaving both
    behind (the run `running` until a daemon's lease check)."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    except (NotImplementedError, RuntimeError, ValueError):  # Windows; not the main thread
        return await work
    try:
        return await work
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _print_run(record: RunRecord) -> None:
    status = str(record.status) + (f" ({record.skip_reason})" if record.skip_reason else "")
    typer.echo(
        visible(
            f"job {record.job_id}: {status} in {_duration(record.duration_s)} "
            f"(attempt {record.attempt}, run {record.run_id})"
        )
    )
    if record.error:
        typer.echo(f"error: {visible(record.error, keep=_LINES)}")
    if record.output_tail:
        typer.echo("output (tail):")
        typer.echo(visible(record.output_tail.rstrip("\n"), keep=_LINES))


# == history ===================================================================================
@app.command()
def history(
    job_id: str = _ID,
    limit: Annotated[int, typer.Option("--limit", help="How many runs (1-10000).")] = 20,
    status: Annotated[
        list[str] | None, typer.Option("--status", help="Only runs with this status (repeat).")
    ] = None,
    as_json: bool = _JSON,
    data_dir: Path | None = _DATA_DIR,
    store: str | None = _STORE,
) -> None:
    """A job's runs, newest first (--json: the run fields with ISO-8601 times)."""
    _, url = resolve_store(data_dir, store)
    if not 1 <= limit <= 10_000:
        fail(f"--limit {limit}: use a number from 1 to 10000")
    statuses: list[RunStatus] = []
    for text in status or ():
        try:
            statuses.append(RunStatus(text))
        except ValueError:
            fail(f"--status {text!r}: use one of {', '.join(s.value for s in RunStatus)}")

    async def read(opened: Store) -> tuple[list[RunRecord], str]:
        stored = await _stored(opened, job_id)
        job, _ = _load_job(stored)
        query = RunQuery(job_id=job_id, statuses=tuple(statuses), limit=limit)
        return await opened.list_runs(query), job.timezone if job is not None else "UTC"

    runs, tz = _with_store(url, read, create=False, read_only=True)
    if as_json:
        print_json([r.to_dict() for r in runs])
        return
    if not runs:
        typer.echo(f"no runs of {job_id} yet")
        return
    _console().print(_runs_table(runs, tz))


# == export / import / reload ==================================================================
@app.command("export")
def export_command(
    file: Annotated[Path | None, typer.Argument(help="Write here; `-` or nothing: stdout.")] = None,
    data_dir: Path | None = _DATA_DIR,
    store: str | None = _STORE,
) -> None:
    """Export every job definition as JSON (for `agentcron jobs import`).

    FILE is replaced whole (a reader never sees half an export) and keeps its mode; a
    symlink is written through to its target. A FIFO, device, socket or directory is
    refused: use `-` (stdout) and a shell redirection for those.
    """
    _, url = resolve_store(data_dir, store)
    data = _with_store(url, export_jobs, create=False, read_only=True)
    for item in data["jobs"]:
        try:
            json.dumps(item["definition"], allow_nan=False)
        except ValueError:
            fail(
                f"job {item['id']!r} has a number that is not finite (Infinity or NaN) in its "
                "definition, which JSON cannot hold; fix it with `agentcron jobs add "
                f"{shlex.quote(item['id'])} --replace ...`, then export again"
            )
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if file is None or str(file) == "-":
        try:
            _write_stdout(text)
        except OSError as exc:
            fail(f"cannot write the export to stdout: {exc.strerror or exc}")
        return
    _write_export_file(file, text)
    count = len(data["jobs"])
    typer.echo(f"exported {count} job{'s' if count != 1 else ''} to {file}", err=True)


def _write_stdout(text: str) -> None:
    """`text` on stdout as UTF-8 (what JSON is), unbuffered when stdout is a real file
    descriptor: a write error (a full disk) is raised here, not again when the interpreter
    flushes stdout at exit (which would print a traceback-like notice and exit 120)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests, embedding)
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    sys.stdout.flush()
    view = memoryview(text.encode("utf-8"))
    while view:
        view = view[os.write(fd, view) :]


def _write_export_file(file: Path, text: str) -> None:
    """Replace the regular file at `file` (through symlinks) with `text`, atomically.

    Only a regular file (or nothing) is replaced: a rename over a FIFO or a device node
    (as root, `/dev/null`) would put a regular file in its place. A new file gets the
    mode a shell redirection would give it; an existing one keeps its mode."""
    try:  # (the kernel follows the links: `/dev/stdout` is a terminal or a pipe, refused)
        info: os.stat_result | None = os.stat(file)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        fail(f"cannot write {file}: {exc.strerror or exc}")
    if info is not None and stat.S_ISDIR(info.st_mode):
        fail(f"cannot write {file}: it is a directory; name a file in it")
    if info is not None and not stat.S_ISREG(info.st_mode):
        fail(
            f"cannot write {file}: not a regular file (a FIFO, socket or device); name a "
            "regular file, or use `-` for stdout and redirect it"
        )
    if info is not None:
        mode = stat.S_IMODE(info.st_mode)
    else:
        umask = os.umask(0o022)
        os.umask(umask)
        mode = 0o666 & ~umask
    target = Path(os.path.realpath(file))
    temporary: str | None = None
    try:
        fd, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".partial"
        )
        with os.fdopen(fd, "wb") as out:
            out.write(text.encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except OSError as exc:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        fail(f"cannot write {file}: {exc.strerror or exc}")


_KNOWN_DEFINITION_KEYS = frozenset(
    {"trigger", "handler", "disabled_reason"}
    | {f.name for f in dataclasses.fields(Job) if f.name != "id"}
    | JOB_OPTIONS
)


#: Stored duration fields (seconds), bounded as the file format bounds them.
_DEFINITION_DURATIONS = ("timeout_s", "jitter_s", "expect_every_s")
_DEFINITION_TEXTS = ("name", "description", "disabled_reason")


def definition_problems(definition: dict[str, Any]) -> list[str]:
    """Why a stored definition is not one `jobs add` or agentcron.toml could have made
    (empty when it is valid): the checks of the file format, then the engine's builder with
    the handler rebuilt strictly (an unknown kind or a bad field is an error here, where
    loading a stored job would only mark its handler unavailable)."""
    problems = [
        f"unknown field {key!r}" for key in sorted(definition) if key not in _KNOWN_DEFINITION_KEYS
    ]
    if "enabled" in definition and not isinstance(definition["enabled"], bool):
        problems.append(f"enabled must be true or false, got {definition['enabled']!r}")
    problems.extend(
        f"{key}: expected text, got {definition[key]!r}"
        for key in _DEFINITION_TEXTS
        if definition.get(key) is not None and not isinstance(definition[key], str)
    )
    for key in _DEFINITION_DURATIONS:
        if definition.get(key) is not None:
            try:
                parse_duration(definition[key], key)
            except ValueError as exc:
                problems.append(str(exc))
    for key in ("start", "end"):
        if definition.get(key) is not None:
            problems.extend(_time_problems(key, definition[key]))
    for key in ("retry", "overlap", "misfire", "circuit"):
        problems.extend(policy_problems(key, definition.get(key)))
    tags = definition.get("tags")
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        if (problem := tags_problem(tags)) is not None:
            problems.append(f"tags: {problem}")
    problems.extend(_handler_problems(definition.get("handler")))
    if problems:
        return problems
    try:
        json.dumps(definition, allow_nan=False)
    except ValueError:
        return ["numbers must be finite (Infinity and NaN are not JSON)"]
    try:
        job = job_from_definition("import-check", definition)
        # Rebuilt with the text limits (name, description, tags, queue ...) that `jobs add`
        # and agentcron.toml apply; loading a stored definition skips them.
        build_job(job.id, **job_options(job))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        problems.append(str(exc) or type(exc).__name__)
    return problems


def _time_problems(key: str, value: object) -> list[str]:
    example = "e.g. 2026-12-01T09:00:00+01:00"
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        return [f"{key}: expected an ISO-8601 time with an offset ({example}), got {value!r}"]
    try:
        utc(when)
    except ValueError as exc:
        return [f"{key}: {exc}"]
    return []


def _handler_problems(handler: object) -> list[str]:
    """A stored handler that `handler_from_dict` rejects (the job could never run)."""
    if not isinstance(handler, dict) or handler.get("type") == "unavailable":
        return []  # a missing handler is reported by the builder; a code-registered one is kept
    if handler.get("kind") == "command" and handler.get("cwd") is not None:
        if not isinstance(handler["cwd"], str):
            return [f"handler.cwd: expected a directory path (text), got {handler['cwd']!r}"]
    try:
        handler_from_dict(handler)
    except (ValueError, ImportError) as exc:
        return [f"handler: {exc}"]
    return []


def _canonical(item: dict[str, Any]) -> dict[str, Any]:
    """An import item with its definition rebuilt by the engine (as `jobs add` stores it)."""
    job = job_from_definition(item["id"], item["definition"])
    return {**item, "definition": job_to_definition(job)}


def _import_progress(enabled: bool) -> Progress | None:
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        return None
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    )


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="A file written by `agentcron jobs export`.")],
    conflict: Annotated[
        str,
        typer.Option(
            "--conflict", help="Ids already stored: replace (history kept), keep, or error."
        ),
    ] = "replace",
    as_json: bool = _JSON,
    data_dir: Path | None = _DATA_DIR,
    store: str | None = _STORE,
) -> None:
    """Import job definitions; nothing is imported if anything in the file is wrong."""
    directory, url = resolve_store(data_dir, store)
    if conflict not in ("replace", "keep", "error"):
        fail(f"--conflict {conflict!r}: use replace, keep or error")
    try:
        data = load_export(file)
    except ImportValidationError as exc:
        fail(str(exc))
    errors = validate_export(data, validate_definition=definition_problems)
    if errors:
        _fail_listing(errors, str(file))
    data = {**data, "jobs": [_canonical(item) for item in data["jobs"]]}

    async def write(opened: Store) -> tuple[ImportResult, bool]:
        jobs = data["jobs"]
        if conflict == "error":
            taken = [
                f"jobs[{i}].id: a job with id {item['id']!r} already exists"
                for i, item in enumerate(jobs)
                if await opened.get_job(item["id"]) is not None
            ]
            if taken:
                _fail_listing(taken, str(file))
        if conflict == "replace":
            refused = await _file_jobs_changed(opened, jobs)
            if refused:
                _fail_listing(refused, str(file))
        total = ImportResult()
        progress = _import_progress(not as_json)
        task = progress.add_task(f"importing {file.name}", total=len(jobs)) if progress else None
        try:
            if progress is not None:
                progress.start()
            for first in range(0, len(jobs), IMPORT_CHUNK):
                chunk = {**data, "jobs": jobs[first : first + IMPORT_CHUNK]}
                result = await import_jobs(
                    opened, chunk, actor=ACTOR, conflict=cast(Any, conflict), source=str(file)
                )
                total.added += result.added
                total.updated += result.updated
                total.unchanged += result.unchanged
                if progress is not None and task is not None:
                    progress.advance(task, len(chunk["jobs"]))
        finally:
            if progress is not None:
                progress.stop()
        signalled = (
            await notify_jobs_changed(opened, directory) if total.added or total.updated else False
        )
        return total, signalled

    try:
        result, signalled = _with_store(url, write, create=True)
    except ImportValidationError as exc:  # pragma: no cover - validated above
        fail(str(exc))
    if as_json:
        print_json({**result.to_dict(), "daemon_signalled": signalled})
        return
    typer.echo(
        f"imported {file}: {len(result.added)} added, {len(result.updated)} updated, "
        f"{len(result.unchanged)} unchanged"
    )
    _echo_reload(signalled)


async def _file_jobs_changed(store: Store, jobs: list[dict[str, Any]]) -> list[str]:
    """A problem for each import item that would change a job agentcron.toml defines (an
    unchanged one passes, so an export of the same store imports back)."""
    file_jobs = await config_job_ids(store)
    problems = []
    for index, item in enumerate(jobs):
        if item["id"] not in file_jobs:
            continue
        stored = await store.get_job(item["id"])
        if stored is None or _json_text(stored.definition) != _json_text(item["definition"]):
            problems.append(f"jobs[{index}].id: {config_job_problem(item['id'], 'change')}")
    return problems


def _json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _fail_listing(errors: list[str], source: str) -> NoReturn:
    """Each problem on its own `agentcron: ` line on stderr, then the summary; exit 2.
    A single problem is one line."""
    count = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
    if len(errors) == 1:
        fail(f"{count} in {source}, nothing imported: {errors[0]}")
    for error in errors:
        typer.echo(visible(f"agentcron: {source}: {' '.join(error.split())}"), err=True)
    fail(f"{count} in {source}, nothing imported")


@app.command()
def reload(
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            metavar="SECONDS",
            help="How long to wait for a daemon's verdict (0: do not wait).",
        ),
    ] = RELOAD_WAIT_S,
    as_json: bool = _JSON,
    data_dir: Path | None = _DATA_DIR,
    store: str | None = _STORE,
) -> None:
    """Tell running daemons to reload their jobs (and agentcron.toml); wait for the verdict.

    The local daemon (of --data-dir) is signalled: it re-reads agentcron.toml.
    Daemons sharing the store apply the store's jobs at their next poll.

    The first daemon to answer decides the exit code:
    0 reloaded (how many jobs changed is printed);
    2 the file was rejected (one line naming the problem; the schedule is kept);
    1 the daemon failed to apply it (e.g. the store failed).
    No answer within --wait seconds is exit 0 with a note (maybe no daemon runs).

    --json prints {"daemon_signalled": true|false, "verdict": {...}|null}.
    """
    directory, url = resolve_store(data_dir, store)
    if not (math.isfinite(wait) and wait >= 0):
        fail(f"--wait {wait:g}: use a number of seconds, 0 or more (0: do not wait)")

    async def ask(opened: Store) -> tuple[ReloadRequest, ReloadVerdict | None]:
        request = await request_reload(opened, directory)
        return request, await _await_verdict(opened, request, wait)

    request, verdict = _with_store(url, ask, create=False)
    if as_json:
        print_json(
            {
                "daemon_signalled": request.daemon_signalled,
                "verdict": verdict.to_dict() if verdict is not None else None,
            }
        )
    if verdict is None:
        if not as_json:
            typer.echo(_no_verdict_text(request.daemon_signalled, wait))
        return
    node = verdict.node_id
    if verdict.outcome == "rejected":
        fail(f"reload rejected by {node}, the running schedule is kept: {verdict.error}")
    if verdict.outcome == "failed":
        fail(f"reload failed on {node}: {verdict.error}", code=EXIT_RELOAD_FAILED)
    if not as_json:
        count = verdict.changed
        typer.echo(visible(f"reloaded by {node}: {count} job{'s' if count != 1 else ''} changed"))


async def _await_verdict(
    store: Store, request: ReloadRequest, wait_s: float
) -> ReloadVerdict | None:
    """The verdict answering `request`, read every `VERDICT_POLL_S` for up to `wait_s`
    seconds of real time (the CLI is an edge), or None.

    A daemon that was signalled re-reads agentcron.toml, so its answer is a verdict with
    `via="signal"`. One for the same token from the store path (that daemon's poll saw the
    token before the signal arrived, or another daemon sharing the store answered first)
    is the answer only when no signalled one comes in time. `wait_s` 0: None at once."""
    if wait_s == 0:
        return None
    deadline = time.monotonic() + wait_s
    fallback: ReloadVerdict | None = None
    while True:
        verdict = await read_reload_verdict(store)
        if verdict is not None and verdict.token == request.token:
            if not request.daemon_signalled or verdict.via == "signal":
                return verdict
            fallback = verdict
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return fallback
        await asyncio.sleep(min(VERDICT_POLL_S, remaining))


def _no_verdict_text(signalled: bool, wait_s: float) -> str:
    if wait_s == 0:
        if signalled:
            return "reload requested; the local daemon was signalled (SIGHUP)"
        return (
            "reload requested in the store; no local daemon answered the signal, so daemons "
            "sharing the store reload at their next poll"
        )
    asked = (
        "reload requested; the local daemon was signalled (SIGHUP) but"
        if signalled
        else "reload requested in the store; no local daemon was signalled and"
    )
    return (
        f"{asked} no daemon answered within {wait_s:g} s (daemons sharing the store apply it "
        "at their next poll)"
    )
