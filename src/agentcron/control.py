"""How a CLI command tells a running daemon that jobs changed in the store.

Two channels, so it works everywhere:

* the store's system state key `JOBS_CHANGED_KEY` is set to a fresh token; every daemon
  sharing the store (SQLite file or Redis) watches it and reloads its jobs from the store
  when it changes — this works on Windows and across machines;
* on POSIX, the daemon writing `<data dir>/agentcron.pid` also gets a SIGHUP, so a local
  daemon reloads at once instead of at its next poll (and re-reads its agentcron.toml).

After each reload it makes, a daemon writes its verdict to the state key
`JOBS_RELOADED_KEY` (a `ReloadVerdict` as JSON): the token it acted on, when, which node,
whether it worked, how many jobs changed and, when not, why. `agentcron jobs reload` waits
for the verdict carrying its own token. There is one such key, the latest verdict: with
several daemons sharing a store, the command shows the first one answering its token.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from agentcron.store.base import Store

__all__ = [
    "JOBS_CHANGED_KEY",
    "JOBS_RELOADED_KEY",
    "PID_FILE",
    "VERDICT_ERROR_CHARS",
    "ReloadOutcome",
    "ReloadRequest",
    "ReloadVerdict",
    "notify_jobs_changed",
    "read_daemon_pid",
    "read_reload_verdict",
    "remove_pid_file",
    "request_reload",
    "write_pid_file",
    "write_reload_verdict",
]

JOBS_CHANGED_KEY = "jobs.changed"
#: The latest reload verdict of a daemon (`ReloadVerdict` as JSON).
JOBS_RELOADED_KEY = "jobs.reloaded"
PID_FILE = "agentcron.pid"
#: The longest error text a verdict keeps (it is shown on one line).
VERDICT_ERROR_CHARS = 500

#: `reloaded`; `rejected`: agentcron.toml (or a job it defines) is invalid, nothing was
#: applied; `failed`: the store or the daemon failed while applying it.
ReloadOutcome = Literal["reloaded", "rejected", "failed"]
_OUTCOMES: tuple[ReloadOutcome, ...] = ("reloaded", "rejected", "failed")


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


@dataclass(frozen=True)
class ReloadRequest:
    """A reload asked for: the token written to `JOBS_CHANGED_KEY`, and whether the local
    daemon was signalled."""

    token: str
    daemon_signalled: bool


async def request_reload(store: Store, data_dir: Path | None = None) -> ReloadRequest:
    """Tell running daemons to reload jobs: a fresh token in the store, then a SIGHUP to the
    daemon of `data_dir` (in this order: the daemon reads the token when signalled)."""
    token = uuid.uuid4().hex
    await store.set_state(JOBS_CHANGED_KEY, token)
    return ReloadRequest(token=token, daemon_signalled=_signal_daemon(data_dir))


async def notify_jobs_changed(store: Store, data_dir: Path | None = None) -> bool:
    """Tell running daemons to reload jobs; True when a local daemon was signalled."""
    return (await request_reload(store, data_dir)).daemon_signalled


def _signal_daemon(data_dir: Path | None) -> bool:
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


@dataclass(frozen=True)
class ReloadVerdict:
    """What a daemon made of one reload, as it writes it to `JOBS_RELOADED_KEY`.

    `token` is the `JOBS_CHANGED_KEY` token read when the daemon acted (None when the key
    was never set); `at` comes from the daemon's clock; `via` is `signal` (a SIGHUP: its
    agentcron.toml was re-read) or `store` (the token changed: the store's jobs re-applied).
    `error` is one line of at most about `VERDICT_ERROR_CHARS` characters, None when ok.
    """

    token: str | None
    at: datetime
    node_id: str
    outcome: ReloadOutcome
    changed: int = 0
    error: str | None = None
    via: Literal["signal", "store"] = "store"

    @property
    def ok(self) -> bool:
        return self.outcome == "reloaded"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (`at` in ISO-8601, `ok` included)."""
        return {**asdict(self), "at": self.at.isoformat(), "ok": self.ok}

    @classmethod
    def from_dict(cls, data: object) -> ReloadVerdict | None:
        """The verdict `data` holds, or None when it is not one (written by another version)."""
        if not isinstance(data, dict):
            return None
        token, node_id, outcome = data.get("token"), data.get("node_id"), data.get("outcome")
        changed, error, via = data.get("changed"), data.get("error"), data.get("via")
        try:
            at = datetime.fromisoformat(data["at"])
        except (KeyError, TypeError, ValueError):
            return None
        if (
            not (token is None or isinstance(token, str))
            or not isinstance(node_id, str)
            or outcome not in _OUTCOMES
            or not isinstance(changed, int)
            or not (error is None or isinstance(error, str))
            or via not in ("signal", "store")
        ):
            return None
        return cls(token, at, node_id, outcome, changed, error, via)


async def write_reload_verdict(store: Store, verdict: ReloadVerdict) -> None:
    """Publish `verdict` as the latest (StoreError when the store cannot take it)."""
    await store.set_state(JOBS_RELOADED_KEY, json.dumps(verdict.to_dict(), ensure_ascii=False))


async def read_reload_verdict(store: Store) -> ReloadVerdict | None:
    """The latest verdict, or None when there is none (or it cannot be read as one)."""
    text = await store.get_state(JOBS_RELOADED_KEY)
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return ReloadVerdict.from_dict(data)
