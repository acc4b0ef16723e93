"""Backups, restore and integrity checks of the SQLite database (DESIGN 2.5).

* `backup_database` copies the live database with SQLite's online-backup API (a consistent
  snapshot, writers are not blocked) to `<data>/backups/scheduler-<UTC stamp>.db`, verifies
  the copy with `PRAGMA integrity_check` before giving it its final name, and keeps the
  newest `keep` backups (default 24).
* `BackupScheduler` takes one on an interval (default hourly) using the injected clock;
  the time of the newest backup file is the schedule's memory, so a restart does not back
  up again at once. `backup_due(last, now, interval)` is the pure decision.
* `restore_database` refuses anything that is not an intact agentcron database with a schema
  this code understands, leaving the live database untouched; otherwise it keeps a copy of
  the replaced database beside it as `scheduler.db.replaced-<stamp>[-n]` (never over an
  older one) and copies the backup into the live file in one SQLite transaction, so a
  process that opens the database meanwhile sees the old content or the new, never a mix.

No SQL here is built from values: file names reach SQLite only as connection paths.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agentcron.clock import Clock
from agentcron.events import BackupFailed, EventBus
from agentcron.filelock import lock_or_none
from agentcron.store import migrations
from agentcron.store.base import StoreError
from agentcron.store.sqlite import describe_sqlite_error
from agentcron.store.sqlite_connect import is_busy

__all__ = [
    "DEFAULT_BACKUP_INTERVAL",
    "DEFAULT_BACKUP_KEEP",
    "BackupInfo",
    "BackupScheduler",
    "CheckReport",
    "RestoreResult",
    "backup_database",
    "backup_due",
    "check_database",
    "list_backups",
    "restore_database",
]

log = logging.getLogger(__name__)

DEFAULT_BACKUP_INTERVAL = timedelta(hours=1)
DEFAULT_BACKUP_KEEP = 24
#: A `<backup>.partial` untouched this long is the leftover of a backup whose process died
#: (a backup still being written or verified is newer): the next backup removes it.
STALE_PARTIAL_S = 3600.0
_STAMP = "%Y%m%dT%H%M%SZ"
_BACKUP_NAME = re.compile(r"^scheduler-(\d{8}T\d{6}Z)(?:-(\d+))?\.db$")
#: Phases reported to a `progress(phase, done, total)` callback.
PHASES = ("copy", "verify", "retention")
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """One backup file; `taken_at` comes from its name (UTC, second precision)."""

    path: Path
    taken_at: datetime
    size_bytes: int


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What `check_database` found in an intact agentcron database."""

    path: Path
    schema_version: int
    latest_version: int
    jobs: int
    runs: int
    size_bytes: int
    wal_bytes: int

    def to_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "integrity": "ok",
            "schema_version": self.schema_version,
            "latest_version": self.latest_version,
            "jobs": self.jobs,
            "runs": self.runs,
            "size_bytes": self.size_bytes,
            "wal_bytes": self.wal_bytes,
        }


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """Where the restored database is and where the one it replaced was kept (if any)."""

    database: Path
    replaced: Path | None
    schema_version: int


# -- the pure decisions ----------------------------------------------------------------------
def backup_due(last: datetime | None, now: datetime, interval: timedelta) -> bool:
    """True when no backup exists or the newest is `interval` old (or from the future,
    which means the wall clock was stepped back: take a fresh one)."""
    if last is None:
        return True
    return now - last >= interval or last > now + timedelta(minutes=5)


def backup_file_name(now: datetime, attempt: int = 1) -> str:
    stamp = now.astimezone(UTC).strftime(_STAMP)
    return f"scheduler-{stamp}.db" if attempt == 1 else f"scheduler-{stamp}-{attempt}.db"


def _parse_taken_at(name: str) -> datetime | None:
    match = _BACKUP_NAME.match(name)
    if match is None:
        return None
    return datetime.strptime(match.group(1), _STAMP).replace(tzinfo=UTC)


def list_backups(backups_dir: Path) -> list[BackupInfo]:
    """The backups in `backups_dir`, newest first (other files are ignored)."""
    if not backups_dir.is_dir():
        return []
    found = []
    for entry in backups_dir.iterdir():
        taken_at = _parse_taken_at(entry.name)
        if taken_at is not None and entry.is_file():
            found.append(BackupInfo(entry, taken_at, entry.stat().st_size))
    found.sort(key=lambda b: (b.taken_at, _suffix_number(b.path.name)), reverse=True)
    return found


def _suffix_number(name: str) -> int:
    match = _BACKUP_NAME.match(name)
    return int(match.group(2) or 1) if match else 0


# -- helpers ---------------------------------------------------------------------------------
def _connect_read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)


def _integrity_problems(conn: sqlite3.Connection, *, limit: int = 5) -> list[str]:
    rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
    return [] if rows == ["ok"] else rows[:limit]


def _require_agentcron(conn: sqlite3.Connection, label: str) -> migrations.DatabaseIdentity:
    identity = migrations.read_identity(conn)
    if identity.is_empty:
        raise StoreError(
            f"{label} holds no agentcron store schema (an empty SQLite database); "
            "it is not an agentcron database"
        )
    migrations.check_identity(identity, label)
    return identity


def _verify_file(path: Path, label: str) -> migrations.DatabaseIdentity:
    """Header, identity, schema version and `integrity_check` of a file (opened read-only)."""
    if not path.is_file():
        raise StoreError(f"{label} does not exist or is not a file")
    migrations.check_sqlite_header(path)
    try:
        conn = _connect_read_only(path)
        try:
            identity = _require_agentcron(conn, label)
            problems = _integrity_problems(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise describe_sqlite_error(exc, label, "check") from exc
    if problems:
        raise StoreError(f"{label} failed PRAGMA integrity_check: {'; '.join(problems)}")
    return identity


def _unlink_quietly(path: Path) -> None:
    # Cleanup after a failure: never let it hide the failure (a read-only file system
    # refuses even the unlink of a file that was never made).
    try:
        path.unlink()
    except OSError:
        pass


def _sync_dir(directory: Path) -> None:
    """Make renames and links in `directory` durable (POSIX; a no-op where unsupported)."""
    if os.name != "posix":  # pragma: no cover - Windows has no directory handles
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _reserve(directory: Path, name: Callable[[int], str]) -> Path:
    """Create the first free `name(1)`, `name(2)`, ... exclusively (empty) and return it:
    two processes never get the same file, and nothing existing is overwritten."""
    attempt = 1
    while True:
        path = directory / name(attempt)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except (FileExistsError, IsADirectoryError):
            attempt += 1
            continue
        except OSError as exc:
            raise StoreError(f"cannot create {path}: {exc}") from exc
        return path


# -- backup ----------------------------------------------------------------------------------
def backup_database(
    db_path: Path,
    backups_dir: Path,
    *,
    now: datetime,
    keep: int = DEFAULT_BACKUP_KEEP,
    progress: Progress | None = None,
) -> BackupInfo:
    """Copy `db_path` to `backups_dir/scheduler-<stamp>.db`, verify it, apply retention.

    Safe while agentcron runs (the copy is one consistent snapshot). Raises `StoreError`
    (the partial copy removed) when the source is not an agentcron database, the disk is
    full, or the copy fails its integrity check.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, not {keep}")
    if not db_path.is_file():
        raise StoreError(f"no database at {db_path}; nothing to back up")
    migrations.check_sqlite_header(db_path)
    try:
        backups_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the backup directory {backups_dir}: {exc}") from exc
    partial = _free_partial(backups_dir, now)
    try:
        _copy(db_path, partial, progress)
        _report(progress, "verify", 0)
        _verify_file(partial, f"the new backup {partial}")
        _report(progress, "verify", 1)
        target = _publish(partial, backups_dir, now)
    except BaseException:
        _remove_trio(partial)
        raise
    _sync_dir(backups_dir)
    _report(progress, "retention", 0)
    _apply_retention(backups_dir, keep)
    _remove_stale_partials(backups_dir, now)
    _report(progress, "retention", 1)
    return BackupInfo(target, _parse_taken_at(target.name) or now, target.stat().st_size)


def _report(progress: Progress | None, phase: str, done: int) -> None:
    if progress is not None:
        progress(phase, done, 1)


def _free_partial(backups_dir: Path, now: datetime) -> Path:
    """A fresh `<backup name>.partial` of this process alone: what is written there is
    never taken for a backup until it is verified and linked to its final name."""

    def name(attempt: int) -> str:
        while (backups_dir / backup_file_name(now, attempt)).exists():
            attempt += 1  # keeps partial and final names paired where it can
        return backup_file_name(now, attempt) + ".partial"

    return _reserve(backups_dir, name)


def _publish(partial: Path, backups_dir: Path, now: datetime) -> Path:
    """Give the verified `partial` the first free final name; never replaces a backup."""
    attempt = 1
    while True:
        target = backups_dir / backup_file_name(now, attempt)
        try:
            os.link(partial, target)
        except FileExistsError:
            attempt += 1
            continue
        except OSError:
            if target.exists():
                attempt += 1
                continue
            os.replace(partial, target)  # no hard links here: the name was free just now
            return target
        _unlink_quietly(partial)
        return target


def _copy(source: Path, target: Path, progress: Progress | None) -> None:
    _report(progress, "copy", 0)
    try:
        src = sqlite3.connect(source, isolation_level=None)
        try:
            _require_agentcron(src, str(source))
            dst = sqlite3.connect(target, isolation_level=None)
            try:
                # One step: a consistent snapshot that concurrent writers cannot restart.
                src.backup(dst, pages=-1)
                dst.execute("PRAGMA journal_mode = DELETE")  # a backup is one self-contained file
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise describe_sqlite_error(exc, target, "back up to") from exc
    _report(progress, "copy", 1)


def _remove_stale_partials(backups_dir: Path, now: datetime) -> None:
    """Remove the partial copies (with their journals) of backups whose process died
    before finishing: nothing else ever does, and each can be as large as the database."""
    cutoff = now.timestamp() - STALE_PARTIAL_S
    for partial in backups_dir.glob("*.partial"):
        try:
            if partial.stat().st_mtime < cutoff:
                _remove_trio(partial)
        except OSError:  # gone meanwhile, or not ours to read: left alone
            continue


def _apply_retention(backups_dir: Path, keep: int) -> list[Path]:
    doomed = [b.path for b in list_backups(backups_dir)[keep:]]
    for path in doomed:
        _unlink_quietly(path)
    return doomed


# -- check -----------------------------------------------------------------------------------
def check_database(db_path: Path) -> CheckReport:
    """Full `PRAGMA integrity_check` plus identity and counts; raises `StoreError` on any
    problem (missing, not SQLite, foreign, newer schema, corrupt)."""
    if not db_path.is_file():
        raise StoreError(f"no database at {db_path}; check --data-dir or --store")
    migrations.check_sqlite_header(db_path)
    try:
        conn = sqlite3.connect(db_path, isolation_level=None)
        try:
            identity = _require_agentcron(conn, str(db_path))
            problems = _integrity_problems(conn)
            if problems:
                raise StoreError(
                    f"{db_path} failed PRAGMA integrity_check: {'; '.join(problems)}; restore a "
                    "backup with `agentcron db restore FILE`"
                )
            jobs = int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])
            runs = int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise describe_sqlite_error(exc, db_path, "check") from exc
    wal = Path(f"{db_path}-wal")
    return CheckReport(
        path=db_path,
        schema_version=identity.user_version,
        latest_version=migrations.LATEST_VERSION,
        jobs=jobs,
        runs=runs,
        size_bytes=db_path.stat().st_size,
        wal_bytes=wal.stat().st_size if wal.exists() else 0,
    )


# -- restore ---------------------------------------------------------------------------------
def restore_database(
    db_path: Path, backup_file: Path, *, now: datetime, progress: Progress | None = None
) -> RestoreResult:
    """Replace `db_path` by a verified copy of `backup_file`; see the module docstring.

    Refused (`StoreError`, the live database untouched) when the file is not an intact
    agentcron database of a known schema, or when the live database is in use. The backup
    file is only read, byte for byte: all checks run on a private copy.
    """
    untouched = f"; {db_path} was not touched"
    if not backup_file.is_file():
        raise StoreError(
            f"refusing to restore: {backup_file} does not exist or is not a file{untouched}"
        )
    if backup_file.resolve() == db_path.resolve():
        raise StoreError(
            f"refusing to restore: {backup_file} is the live database itself{untouched}"
        )
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"refusing to restore: cannot create {db_path.parent}: {exc.strerror or exc}"
        ) from exc
    lock_path = restore_lock_path(db_path)
    try:
        lock = lock_or_none(lock_path, mode=0o644)  # (shared /tmp: other users lock it too)
    except OSError as exc:
        raise StoreError(f"refusing to restore: cannot open {lock_path}: {exc}{untouched}") from exc
    if lock is None:
        raise StoreError(
            f"refusing to restore: another restore of {db_path} is under way; wait for it to"
            f" end{untouched} by this one"
        )
    try:
        return _restore_locked(db_path, backup_file, now, progress)
    finally:
        os.close(lock)


def restore_lock_path(db_path: Path) -> Path:
    """The lock file that makes restores of `db_path` one at a time (two would share their
    `.restoring` copy, each writing over the other's): in the temporary directory, named by
    a hash of the database's resolved path, so that the database's directory holds nothing
    new after a refused restore."""
    digest = hashlib.sha256(str(db_path.resolve()).encode("utf-8", "surrogatepass"))
    return Path(tempfile.gettempdir()) / f"agentcron-restore-{digest.hexdigest()[:24]}.lock"


def _restore_locked(
    db_path: Path, backup_file: Path, now: datetime, progress: Progress | None
) -> RestoreResult:
    untouched = f"; {db_path} was not touched"
    incoming = db_path.with_name(db_path.name + ".restoring")
    try:
        migrations.check_sqlite_header(backup_file)
        _report(progress, "copy", 0)
        _remove_trio(incoming)
        _copy_trio(backup_file, incoming)
        _report(progress, "copy", 1)
        _report(progress, "verify", 0)
        identity = _verify_file(incoming, str(backup_file))
        if not _fold_wal(incoming):
            raise StoreError(f"{backup_file} cannot be made self-contained")
        _report(progress, "verify", 1)
    except StoreError as exc:
        _remove_trio(incoming)
        raise StoreError(f"refusing to restore: {exc}{untouched}") from exc
    except BaseException:
        _remove_trio(incoming)
        raise
    try:
        replaced = _swap_in(db_path, incoming, now)
    except _LeftMovedError as exc:
        _remove_trio(incoming)
        raise StoreError(f"restore failed: {exc}") from exc
    except StoreError as exc:
        _remove_trio(incoming)
        raise StoreError(f"refusing to restore: {exc}{untouched}") from exc
    except BaseException:
        _remove_trio(incoming)
        raise
    return RestoreResult(db_path, replaced, identity.user_version)


_TRIO = ("", "-wal", "-shm", "-journal")


def _copy_trio(source: Path, target: Path) -> None:
    # The WAL beside a database holds committed transactions; the shared memory is rebuilt.
    try:
        shutil.copyfile(source, target)
        wal = Path(f"{source}-wal")
        if wal.exists():
            shutil.copyfile(wal, Path(f"{target}-wal"))
    except OSError as exc:
        raise StoreError(f"cannot copy {source} to {target}: {exc}") from exc


def _remove_trio(path: Path) -> None:
    for suffix in _TRIO:
        _unlink_quietly(Path(f"{path}{suffix}"))


def _swap_in(db_path: Path, incoming: Path, now: datetime) -> Path | None:
    if not db_path.exists():
        try:
            os.link(incoming, db_path)  # atomic, and never over a database made meanwhile
        except FileExistsError:
            pass
        except OSError:
            os.replace(incoming, db_path)  # no hard links on this file system
            _sync_dir(db_path.parent)
            return None
        else:
            _remove_trio(incoming)
            _sync_dir(db_path.parent)
            return None
    unused_and_readable = _fold_wal(db_path)  # StoreError while another process uses it
    stamp = now.astimezone(UTC).strftime(_STAMP)
    replaced = _reserve(
        db_path.parent,
        lambda n: f"{db_path.name}.replaced-{stamp}" + ("" if n == 1 else f"-{n}"),
    )
    if unused_and_readable:
        try:
            _write_through_sqlite(db_path, incoming, replaced)
        except BaseException:
            _remove_trio(replaced)  # the live database is as it was
            raise
        _remove_trio(incoming)
    else:
        _move_damaged(db_path, incoming, replaced)
    _sync_dir(db_path.parent)
    return replaced


def _write_through_sqlite(db_path: Path, incoming: Path, replaced: Path) -> None:
    """Keep a copy of the live database at `replaced`, then copy `incoming` into it.

    Both copies go through SQLite's backup API, never by renaming files: a process that
    opened the live file after the in-use check finds the restored content under SQLite's
    own locks, instead of writing on into a file that is no longer the database (with a WAL
    named after the new one). A kill at any moment leaves the old database or the new one:
    the copy into it is one transaction.
    """
    label = f"the live database {db_path}"
    try:
        live = sqlite3.connect(db_path, timeout=30.0, isolation_level=None)
        try:
            kept = sqlite3.connect(replaced, isolation_level=None)
            try:
                live.backup(kept, pages=-1)
                kept.execute("PRAGMA journal_mode = DELETE")
            finally:
                kept.close()
            source = _connect_read_only(incoming)
            try:
                source.backup(live, pages=-1)
            finally:
                source.close()
        finally:
            live.close()
    except sqlite3.Error as exc:
        raise describe_sqlite_error(exc, label, "restore into") from exc


class _LeftMovedError(StoreError):
    """A failed swap that could not put every file of the live database back."""


def _move_damaged(db_path: Path, incoming: Path, replaced: Path) -> None:
    """Move the unreadable live database aside to `replaced` with its WAL, shared-memory
    and journal files, then `incoming` into its place.

    The files move together (SQLite finds `<name>-wal` beside `<name>`, so the kept copy
    stays complete); the companions go first, so the restored database never meets a
    stale WAL (SQLite would replay it into the new file). When a move fails (an immutable
    file, a name taken by a directory), what was moved is moved back before `StoreError`
    is raised: the live database is never left apart from its WAL, which may hold
    committed transactions.
    """
    moved: list[tuple[Path, Path]] = []
    step = (db_path, replaced)
    try:
        for suffix in reversed(_TRIO):
            step = (Path(f"{db_path}{suffix}"), Path(f"{replaced}{suffix}"))
            if step[0].exists():
                os.replace(*step)
                moved.append(step)
        step = (incoming, db_path)
        os.replace(*step)
    except OSError as exc:
        stuck = _move_back(moved)
        why = f"cannot move {step[0]} to {step[1]}: {exc.strerror or exc}"
        if stuck:
            raise _LeftMovedError(
                f"{why}; moving back failed too, so {', '.join(stuck)} are still at their "
                f"new names beside {db_path}: rename them back (drop the .replaced-... part) "
                "before starting agentcron"
            ) from exc
        _unlink_quietly(replaced)  # the empty file reserved for the kept copy
        raise StoreError(why) from exc


def _move_back(moved: list[tuple[Path, Path]]) -> list[str]:
    """Undo the moves in `moved` (newest first); the files that could not be moved back."""
    stuck = []
    for source, target in reversed(moved):
        try:
            os.replace(target, source)
        except OSError:
            stuck.append(str(target))
    return stuck


def _fold_wal(db_path: Path) -> bool:
    """Checkpoint the live database into one file; False if it is too damaged to try.

    Leaving WAL mode needs the only connection to the file, which is how a running
    agentcron is detected (it keeps connections open): then `StoreError`, nothing changed.
    """
    try:
        conn = sqlite3.connect(db_path, timeout=0.5, isolation_level=None)
        try:
            mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if is_busy(exc):
            raise StoreError(
                f"{db_path} is in use (is agentcron running?); stop it before restoring"
            ) from exc
        return False
    return str(mode).lower() == "delete"


# -- on an interval --------------------------------------------------------------------------
class BackupScheduler:
    """Takes a verified backup every `interval` (default hourly), keeping `keep` (24).

    The daemon runs `await scheduler.run()` as a side task; `run_pending()` does one check.
    Failures are logged and published as `BackupFailed`, then retried after `retry_after`.
    """

    def __init__(
        self,
        db_path: Path,
        *,
        clock: Clock,
        backups_dir: Path | None = None,
        interval: timedelta = DEFAULT_BACKUP_INTERVAL,
        keep: int = DEFAULT_BACKUP_KEEP,
        retry_after: timedelta = timedelta(minutes=5),
        bus: EventBus | None = None,
    ) -> None:
        if interval <= timedelta(0):
            raise ValueError(f"interval must be positive, not {interval}")
        self.db_path = db_path
        self.backups_dir = backups_dir if backups_dir is not None else db_path.parent / "backups"
        self.interval = interval
        self.keep = keep
        self.retry_after = min(retry_after, interval)
        self._clock = clock
        self._bus = bus
        self._last: datetime | None = None
        self._failed_at: datetime | None = None
        self.last_error: StoreError | None = None

    def last_backup(self) -> datetime | None:
        if self._last is None:
            newest = list_backups(self.backups_dir)[:1]
            self._last = newest[0].taken_at if newest else None
        return self._last

    def next_due(self) -> datetime:
        """When the next backup (or retry) is due, by the wall clock."""
        now = self._clock.now()
        if self._failed_at is not None:
            return self._failed_at + self.retry_after
        last = self.last_backup()
        return now if last is None or backup_due(last, now, self.interval) else last + self.interval

    async def run_pending(self) -> BackupInfo | None:
        """Take a backup if one is due; returns it, or None (not due, or failed)."""
        now = self._clock.now()
        if self._failed_at is not None and now < self._failed_at + self.retry_after:
            return None
        if self._failed_at is None and not backup_due(self.last_backup(), now, self.interval):
            return None
        try:
            info = await asyncio.to_thread(
                backup_database, self.db_path, self.backups_dir, now=now, keep=self.keep
            )
        except StoreError as exc:
            self._failed(exc, now)
            return None
        except (OSError, sqlite3.Error) as exc:  # the loop must outlive any one failure
            self._failed(StoreError(f"backup of {self.db_path} failed: {exc}"), now)
            return None
        self._last, self._failed_at, self.last_error = now, None, None
        log.info("backup written to %s (%d bytes)", info.path, info.size_bytes)
        return info

    def _failed(self, exc: StoreError, now: datetime) -> None:
        self._failed_at, self.last_error = now, exc
        log.warning("backup of %s failed: %s", self.db_path, exc)
        if self._bus is not None:
            self._bus.publish(BackupFailed(at=now, path=str(self.backups_dir), error=str(exc)))

    async def run(self) -> None:
        """Back up whenever due, forever (cancel the task to stop)."""
        while True:
            await self.run_pending()
            await self._clock.sleep_until(self.next_due())
