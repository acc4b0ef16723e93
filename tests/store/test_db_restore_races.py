"""`agentcron db backup|restore` against the things that happen to a database in real life:
a second restore in the same second, a process opening the database mid-restore, a killed
backup's leftovers, a read-only backup directory, and SIGKILL in the middle of either."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agentcron.models import StoredJob
from agentcron.store import backup as backups
from agentcron.store.backup import backup_database, list_backups, restore_database
from agentcron.store.base import StoreError
from agentcron.store.sqlite import SqliteStore
from helpers.polling import wait_for

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SRC = str(Path(backups.__file__).resolve().parents[2])


async def with_jobs(path: Path, *job_ids: str) -> None:
    store = SqliteStore(path)
    await store.open()
    for job_id in job_ids:
        await store.save_job(StoredJob(id=job_id, definition={"trigger": "@hourly"}), actor="t")
    await store.close()


def seen_by_another_process(path: Path) -> tuple[str, list[str]]:
    """`(integrity_check, job ids)` of `path`, read by a fresh process."""
    code = textwrap.dedent(
        """
        import sqlite3, sys
        conn = sqlite3.connect(sys.argv[1], timeout=10)
        print(conn.execute("PRAGMA integrity_check").fetchone()[0])
        print(",".join(r[0] for r in conn.execute("SELECT id FROM jobs ORDER BY id")))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    integrity, ids = out.stdout.splitlines()
    return integrity, [i for i in ids.split(",") if i]


def child(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


# A process that opens the store, saves a job, says so, and keeps its connections open until
# told to save one more job and exit.
WRITER = """
import asyncio, sys
from agentcron.models import StoredJob
from agentcron.store.sqlite import SqliteStore

async def main() -> None:
    store = SqliteStore(sys.argv[1], busy_timeout_s=30.0)
    await store.open()
    await store.save_job(StoredJob(id="late", definition={}), actor="t")
    print("saved", flush=True)
    sys.stdin.readline()
    await store.save_job(StoredJob(id="later", definition={}), actor="t")
    await store.close()
    print("done", flush=True)

asyncio.run(main())
"""


def test_two_restores_in_the_same_second_keep_both_replaced_databases(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    for name in ("original", "first", "second"):
        asyncio.run(with_jobs(tmp_path / f"{name}.db", name))
    shutil.copyfile(tmp_path / "original.db", db)
    one = restore_database(db, tmp_path / "first.db", now=T0)
    two = restore_database(db, tmp_path / "second.db", now=T0)
    assert one.replaced is not None and two.replaced is not None
    assert one.replaced != two.replaced
    assert seen_by_another_process(one.replaced) == ("ok", ["original"])
    assert seen_by_another_process(two.replaced) == ("ok", ["first"])
    assert seen_by_another_process(db) == ("ok", ["second"])


def test_a_process_opening_the_database_during_a_restore_neither_corrupts_nor_loses_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The restore checks that nobody uses the database, then swaps it. A process that opens
    # the database right between the two (a CLI command, a service restart) must not end up
    # writing into a file that is no longer the database, with its WAL beside the new one.
    db = tmp_path / "scheduler.db"
    asyncio.run(with_jobs(db, "current"))
    asyncio.run(with_jobs(tmp_path / "backup.db", "restored"))
    writer: list[subprocess.Popen[str]] = []
    real_check: Callable[[Path], bool] = backups._fold_wal

    def check_then_someone_opens(path: Path) -> bool:
        unused = real_check(path)
        if path == db and not writer:
            proc = child(WRITER, str(db))
            writer.append(proc)
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "saved", proc.stderr
        return unused

    monkeypatch.setattr(backups, "_fold_wal", check_then_someone_opens)
    try:
        result = restore_database(db, tmp_path / "backup.db", now=T0)
        assert writer, "the restore never checked the live database"
        assert seen_by_another_process(db) == ("ok", ["restored"])
        assert result.replaced is not None
        assert seen_by_another_process(result.replaced) == ("ok", ["current", "late"])
    finally:
        for proc in writer:
            out, err = proc.communicate("go\n", timeout=60)
    assert writer[0].returncode == 0, err
    assert seen_by_another_process(db) == ("ok", ["later", "restored"])


def test_a_leftover_of_a_killed_backup_does_not_stop_the_next_backup(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    asyncio.run(with_jobs(db, "digest"))
    backups_dir = tmp_path / "backups"
    backups_dir.mkdir()
    # What a backup killed while SQLite wrote its copy can leave behind (here: unremovable).
    (backups_dir / "scheduler-20260301T120000Z.db.partial").mkdir()
    info = backup_database(db, backups_dir, now=T0)
    assert [b.path for b in list_backups(backups_dir)] == [info.path]
    assert seen_by_another_process(info.path) == ("ok", ["digest"])


def _unshare_works() -> bool:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


# Under CI=true (Linux, as root) it must run: a missing namespace there is a failure.
needs_unshare = pytest.mark.skipif(
    os.environ.get("CI") != "true" and not _unshare_works(),
    reason="needs unprivileged user and mount namespaces (unshare -rm)",
)


@needs_unshare
def test_a_backup_into_a_read_only_directory_is_one_line_with_exit_2(tmp_path: Path) -> None:
    data = tmp_path / "data dir"
    asyncio.run(with_jobs(data / "scheduler.db", "digest"))
    (data / "backups").mkdir()
    # A private mount namespace: a read-only file system on backups/ for this command only.
    script = (
        'mount -t tmpfs -o size=1m tmpfs "$1/backups" && mount -o remount,ro "$1/backups" && '
        'exec "$2" -m agentcron db backup --data-dir "$1"'
    )
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "400"}
    out = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(data), sys.executable],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and lines[0].startswith("agentcron: "), out.stderr
    assert "backups" in lines[0]
    assert seen_by_another_process(data / "scheduler.db") == ("ok", ["digest"])


# A child that backs up or restores in a loop, printing each one it finished.
LOOPER = """
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from agentcron.store.backup import backup_database, restore_database

mode, db, other = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
t = datetime(2026, 3, 1, tzinfo=UTC)
for i in range(100000):
    now = t + timedelta(seconds=i)
    if mode == "backup":
        backup_database(db, other, now=now, keep=3)
    else:
        restore_database(db, other, now=now)
    print(i, flush=True)
"""


def kill_after(proc: subprocess.Popen[str], finished: int) -> None:
    assert proc.stdout is not None
    for _ in range(finished):
        if not proc.stdout.readline():
            break
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)


@pytest.mark.parametrize("finished", [1, 3])
def test_sigkill_during_backups_never_leaves_a_bad_backup_nor_touches_the_database(
    tmp_path: Path, finished: int
) -> None:
    db = tmp_path / "scheduler.db"
    asyncio.run(with_jobs(db, *(f"job-{i}" for i in range(200))))
    before = seen_by_another_process(db)
    kill_after(child(LOOPER, "backup", str(db), str(tmp_path / "backups")), finished)
    assert seen_by_another_process(db) == before
    found = list_backups(tmp_path / "backups")
    assert found
    for info in found:  # anything named like a backup is a complete, verified one
        assert seen_by_another_process(info.path) == before
    assert backup_database(db, tmp_path / "backups", now=T0).path.exists()


@pytest.mark.parametrize("finished", [1, 3])
def test_sigkill_during_restores_leaves_one_intact_database(tmp_path: Path, finished: int) -> None:
    db = tmp_path / "scheduler.db"
    asyncio.run(with_jobs(db, "current"))
    asyncio.run(with_jobs(tmp_path / "backup.db", *(f"job-{i}" for i in range(200))))
    restored = seen_by_another_process(tmp_path / "backup.db")
    kill_after(child(LOOPER, "restore", str(db), str(tmp_path / "backup.db")), finished)
    assert seen_by_another_process(db) == restored
    again = restore_database(db, tmp_path / "backup.db", now=T0)
    assert seen_by_another_process(db) == restored
    assert again.replaced is not None
    assert seen_by_another_process(again.replaced) == restored


TICK_JOB = """
[[jobs]]
id = "tick"
trigger = "* * * * * *"
command = ["sh", "-c", "echo tick"]
"""


def agentcron_process(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHEDULER_", "DASHBOARD_"))}
    env["PYTHONPATH"] = SRC
    return subprocess.Popen(
        [sys.executable, "-m", "agentcron", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def tick_runs(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def test_restore_while_agentcron_runs_is_refused_and_the_daemon_keeps_writing(
    tmp_path: Path,
) -> None:
    (tmp_path / "agentcron.toml").write_text(TICK_JOB)
    db = tmp_path / "data" / "scheduler.db"
    asyncio.run(with_jobs(tmp_path / "backup.db", "restored"))
    daemon = agentcron_process("run", "--no-dashboard", cwd=tmp_path)
    try:
        wait_for(lambda: tick_runs(db) >= 2)
        out = subprocess.run(
            [sys.executable, "-m", "agentcron", "db", "restore", str(tmp_path / "backup.db")],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": SRC, "COLUMNS": "400"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2, out.stderr
        assert len(lines) == 1 and "in use" in lines[0] and "not touched" in lines[0]
        assert not list(db.parent.glob("scheduler.db.replaced-*"))
        seen = tick_runs(db)
        wait_for(lambda: tick_runs(db) > seen)
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.communicate(timeout=60)
    integrity, ids = seen_by_another_process(db)
    assert integrity == "ok" and "restored" not in ids and "tick" in ids


def test_a_restore_while_another_is_under_way_is_refused_and_touches_nothing(
    tmp_path: Path,
) -> None:
    # Two restores at once shared `scheduler.db.restoring`, each copying over the other's
    # file while it was being checked: either could swap in a mix of the two backups.
    db = tmp_path / "scheduler.db"
    asyncio.run(with_jobs(db, "current"))
    asyncio.run(with_jobs(tmp_path / "backup.db", "restored"))
    holder = child(
        "import sys\n"
        "from agentcron.filelock import lock_or_none\n"
        "fd = lock_or_none(sys.argv[1])\n"
        "print('locked' if fd is not None else 'busy', flush=True)\n"
        "sys.stdin.readline()\n",
        str(backups.restore_lock_path(db)),
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match="another restore of .* is under way") as refused:
            restore_database(db, tmp_path / "backup.db", now=T0)
        assert "was not touched" in str(refused.value)
        assert seen_by_another_process(db) == ("ok", ["current"])
    finally:
        holder.communicate("\n", timeout=60)
    restore_database(db, tmp_path / "backup.db", now=T0)  # the lock went with its process
    assert seen_by_another_process(db) == ("ok", ["restored"])
