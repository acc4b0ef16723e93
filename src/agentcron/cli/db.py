"""`agentcron db`: migrate, back up, restore, check and prune the SQLite database.

The database is `<data-dir>/scheduler.db` unless `--store sqlite:///path` names another,
found as `agentcron run` finds it (`--data-dir`/`--store`, then `SCHEDULER_DATA_DIR`/
`SCHEDULER_STORE` from the environment, then `./.env`; default `./data`); backups live in
`backups/` beside it. A bad option or a bad database prints one line and exits with code 2.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from agentcron.cli.common import (
    data_dir_option,
    fail,
    print_json,
    resolve_store,
    store_option,
)
from agentcron.store import backup as backups
from agentcron.store import migrations
from agentcron.store.base import StoreError
from agentcron.store.sqlite import SqliteStore

app = typer.Typer(
    name="db",
    help="Maintain the SQLite database: migrate, backup, restore, check, prune.",
    no_args_is_help=True,
)

_DATA_DIR = data_dir_option()
_STORE = store_option()
_BACKUP_FILE = typer.Argument(..., help="The backup file to restore.")
_JSON = typer.Option(False, "--json", help="Print JSON for scripts.")
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_MAX_SQLITE_INT = 2**63 - 1
_PHASE_TEXT = {
    "copy": "copying (SQLite online backup)",
    "verify": "verifying (PRAGMA integrity_check)",
    "retention": "applying retention",
}


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `45s`, `2w` -> timedelta; ValueError otherwise."""
    match = _AGE.match(text)
    if match is None:
        raise ValueError(
            f"--older-than {text!r}: expected a number with a unit s/m/h/d/w, e.g. 30d"
        )
    try:
        return timedelta(seconds=float(match.group(1)) * _UNITS_S[match.group(2)])
    except OverflowError:
        raise ValueError(f"--older-than {text!r}: too long ago") from None


def database_path(data_dir: Path | None, store: str | None) -> Path:
    """The SQLite file the command works on, resolved as every command resolves the store
    (`resolve_store`: the flags, the environment, `.env`); fails for other stores."""
    _, url = resolve_store(data_dir, store)
    if not url.startswith("sqlite:"):
        from agentcron.config import mask_url

        where = "--store" if store else "SCHEDULER_STORE"
        fail(
            f"{where} is {mask_url(url)!r}: agentcron db works on SQLite stores "
            "(pass --store sqlite:///path/file.db)"
        )
    try:
        return SqliteStore.from_url(url).path
    except ValueError as exc:
        fail(str(exc))


def _stderr() -> Console:
    return Console(stderr=True)


@contextmanager
def _phases(title: str, quiet: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress display on stderr fed by `(phase, done, total)` callbacks."""
    if quiet or not _stderr().is_terminal:
        yield lambda _phase, _done, _total: None
        return
    columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn())
    with Progress(*columns, console=_stderr(), transient=True) as progress:
        task = progress.add_task(title, total=len(backups.PHASES) * 2)
        steps = 0

        def update(phase: str, done: int, _total: int) -> None:
            nonlocal steps
            steps += 1
            text = f"{title}: {_PHASE_TEXT.get(phase, phase)}"
            progress.update(task, completed=steps, description=text)

        yield update


@contextmanager
def _spinner(text: str, quiet: bool) -> Iterator[None]:
    if quiet or not _stderr().is_terminal:
        yield
        return
    with _stderr().status(text):
        yield


def _size(n_bytes: int) -> str:
    if n_bytes < 1024:
        return f"{n_bytes} B"
    value = float(n_bytes)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def _needs_migration(path: Path) -> bool:
    """True for an existing agentcron database below the current schema (read-only look)."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            identity = migrations.read_identity(conn)
        finally:
            conn.close()
    except sqlite3.Error:
        return False  # opening the store reports what is wrong with the file
    return identity.application_id == migrations.APPLICATION_ID and (
        identity.user_version < migrations.LATEST_VERSION
    )


async def _open(path: Path) -> tuple[int, int]:
    store = SqliteStore(path)
    try:
        await store.open()
        assert store.migrated is not None
        return store.migrated
    finally:
        await store.close()


@app.command()
def migrate(
    data_dir: Path | None = _DATA_DIR, store: str | None = _STORE, json: bool = _JSON
) -> None:
    """Create the database or bring its schema up to date (backed up first if it changes)."""
    path = database_path(data_dir, store)
    try:
        taken = None
        if _needs_migration(path):
            taken = backups.backup_database(path, path.parent / "backups", now=_now())
        before, after = asyncio.run(_open(path))
    except StoreError as exc:
        fail(str(exc))
    if json:
        print_json(
            {
                "path": str(path),
                "from_version": before,
                "to_version": after,
                "backup": str(taken.path) if taken else None,
            }
        )
        return
    change = "already current" if before == after else f"migrated from {before}"
    typer.echo(f"{path}: schema version {after} ({change})")


@app.command()
def backup(
    data_dir: Path | None = _DATA_DIR,
    store: str | None = _STORE,
    keep: int = typer.Option(backups.DEFAULT_BACKUP_KEEP, "--keep", min=1, help="Backups kept."),
    json: bool = _JSON,
) -> None:
    """Write a verified backup to backups/scheduler-<UTC stamp>.db and apply retention."""
    path = database_path(data_dir, store)
    try:
        with _phases("backup", quiet=json) as progress:
            info = backups.backup_database(
                path, path.parent / "backups", now=_now(), keep=keep, progress=progress
            )
    except StoreError as exc:
        fail(str(exc))
    if json:
        print_json(_backup_dict(info))
        return
    typer.echo(f"backup written and verified: {info.path} ({_size(info.size_bytes)})")


@app.command("backups")
def list_backups(
    data_dir: Path | None = _DATA_DIR, store: str | None = _STORE, json: bool = _JSON
) -> None:
    """List the backups, newest first."""
    path = database_path(data_dir, store)
    found = backups.list_backups(path.parent / "backups")
    if json:
        print_json([_backup_dict(b) for b in found])
        return
    if not found:
        typer.echo(f"no backups in {path.parent / 'backups'}")
        return
    table = Table("taken at (UTC)", "size", "file")
    for info in found:
        table.add_row(info.taken_at.isoformat(), _size(info.size_bytes), str(info.path))
    Console().print(table)


@app.command()
def restore(
    file: Path = _BACKUP_FILE,
    data_dir: Path | None = _DATA_DIR,
    store: str | None = _STORE,
    json: bool = _JSON,
) -> None:
    """Check FILE, then swap it in; the replaced database is kept beside it.

    Stop agentcron first: a database in use is refused.
    """
    path = database_path(data_dir, store)
    try:
        with _phases("restore", quiet=json) as progress:
            result = backups.restore_database(path, file, now=_now(), progress=progress)
    except StoreError as exc:
        fail(str(exc))
    replaced = str(result.replaced) if result.replaced else None
    if json:
        print_json(
            {"database": str(path), "restored_from": str(file), "replaced_kept_at": replaced}
        )
        return
    typer.echo(f"restored {file} into {path} (schema version {result.schema_version})")
    if replaced:
        typer.echo(f"the replaced database is kept at {replaced}")


@app.command()
def check(
    data_dir: Path | None = _DATA_DIR, store: str | None = _STORE, json: bool = _JSON
) -> None:
    """Run PRAGMA integrity_check and report the schema version and counts."""
    path = database_path(data_dir, store)
    try:
        report = backups.check_database(path)
    except StoreError as exc:
        fail(str(exc))
    if json:
        print_json(report.to_dict())
        return
    typer.echo(
        f"{path}: ok (integrity_check), schema {report.schema_version}/{report.latest_version}, "
        f"{report.jobs} jobs, {report.runs} runs, {_size(report.size_bytes)} "
        f"+ {_size(report.wal_bytes)} WAL"
    )


@app.command()
def prune(
    older_than: str | None = typer.Option(
        None, "--older-than", help="Delete finished runs scheduled longer ago (e.g. 30d)."
    ),
    keep_per_job: int | None = typer.Option(
        None, "--keep-per-job", min=0, help="Keep only the newest N finished runs of each job."
    ),
    data_dir: Path | None = _DATA_DIR,
    store: str | None = _STORE,
    json: bool = _JSON,
) -> None:
    """Delete old finished runs (default: older than 30d); running runs are never deleted."""
    path = database_path(data_dir, store)
    if not path.is_file():
        fail(f"no database at {path}; check --data-dir or --store")
    try:
        age = parse_age(older_than) if older_than is not None else None
        if age is None and keep_per_job is None:
            age = timedelta(days=30)
        cutoff = _now() - age if age is not None else None
    except ValueError as exc:
        fail(str(exc))
    except OverflowError:
        fail(f"--older-than {older_than!r}: too long ago (before year 1)")
    # Keeping more runs than SQLite can count keeps them all (the store takes 64-bit ints).
    keep = None if keep_per_job is None else min(keep_per_job, _MAX_SQLITE_INT)
    try:
        with _spinner(f"pruning runs in {path}", quiet=json):
            deleted = asyncio.run(_prune(path, cutoff, keep))
    except StoreError as exc:
        fail(str(exc))
    if json:
        print_json(
            {
                "deleted": deleted,
                "older_than": cutoff.isoformat() if cutoff else None,
                "keep_per_job": keep_per_job,
            }
        )
        return
    typer.echo(f"deleted {deleted} runs from {path}")


async def _prune(path: Path, cutoff: datetime | None, keep_per_job: int | None) -> int:
    store = SqliteStore(path)
    try:
        await store.open()
        return await store.prune_runs(older_than=cutoff, keep_per_job=keep_per_job)
    finally:
        await store.close()


def _backup_dict(info: backups.BackupInfo) -> dict[str, Any]:
    return {
        "path": str(info.path),
        "taken_at": info.taken_at.isoformat(),
        "size_bytes": info.size_bytes,
    }


def _now() -> datetime:
    # The CLI is an edge: it reads the wall clock once per command.
    return datetime.now(UTC)
