"""How a CLI command tells a running daemon that jobs changed in the store.

Two channels, so it works everywhere:

* the store's system state key `JOBS_CHANGED_KEY` is set to a fresh token; every daemon
  sharing the store (SQLite file or Redis) watches it and reloads its jobs from the store
  when it changes — this works on Windows and across machines;
* on POSIX, the daemon writing `<data dir>/agentcron.pid` also gets a SIGHUP, so a local
  daemon reloads at once instead of at its next poll.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import uuid
from pathlib import Path

from agentcron.store.base import Store

__all__ = [
    "JOBS_CHANGED_KEY",
    "PID_FILE",
    "notify_jobs_changed",
    "read_daemon_pid",
    "remove_pid_file",
    "write_pid_file",
]

JOBS_CHANGED_KEY = "jobs.changed"
PID_FILE = "agentcron.pid"


def write_pid_file(data_dir: Path) -> Path:
    """Record this process as the daemon of `data_dir`."""
    path = data_dir / PID_FILE
    path.write_text(f"{os.getpid()}\n", encoding="ascii")
    return path


def remove_pid_file(data_dir: Path) -> None:
    """Remove the pid file if it is ours."""
    path = data_dir / PID_FILE
    if read_pid(path) == os.getpid():
        with contextlib.suppress(OSError):
            path.unlink()


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def read_daemon_pid(data_dir: Path) -> int | None:
    """The pid of the daemon running on `data_dir`, or None when none is alive."""
    pid = read_pid(data_dir / PID_FILE)
    if pid is None or pid == os.getpid():
        return None
    try:
        import psutil

        return pid if psutil.pid_exists(pid) else None
    except ImportError:  # pragma: no cover - psutil is a dependency
        return pid


async def notify_jobs_changed(store: Store, data_dir: Path | None = None) -> bool:
    """Tell running daemons to reload jobs; True when a local daemon was signalled."""
    await store.set_state(JOBS_CHANGED_KEY, uuid.uuid4().hex)
    if data_dir is None or sys.platform == "win32":
        return False
    pid = read_daemon_pid(data_dir)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError:
        return False
    return True
