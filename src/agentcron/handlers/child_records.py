"""Records of the process groups that running commands lead, so a dead daemon's are found.

A command runs in a process group of its own, which the handler terminates when the run
ends, times out or is cancelled. When the daemon itself dies (SIGKILL, the OOM killer, a
crash), nobody does: the group is re-parented to init and runs on, and the restarted daemon,
finding the run's lease expired, would retry the same occurrence while the first attempt
still runs. So `agentcron run` keeps one small JSON file per running group in
`<data dir>/children/`, written right after the spawn and removed once the group is gone,
and at its next start, before the scheduler recovers (and retries) interrupted runs,
`kill_leftovers` kills every group a dead daemon left behind.

The seam: `install(ChildRecords(directory))` makes every command (and process-isolated
callable) this process starts afterwards record its group; it is one setting per process
(`agentcron run` installs it for as long as it runs, and puts back what was there). Nothing
is installed by default, so a `Scheduler` used from Python keeps no records, and other
handlers never look. POSIX only: on Windows nothing is recorded and nothing is found. A
daemon killed in the moment between a spawn and its record (the spawn returns once the
child's pipes are connected: milliseconds) leaves that command unrecorded.

Identity, not pids, because pids are reused. A record holds the leader's start time (on
Linux the ticks since boot from `/proc/<pid>/stat`, which a wall-clock step between the two
daemons does not change; elsewhere psutil's `create_time()`), the boot id and the host name,
and the same for the daemon that wrote it. A recorded group is killed only when that daemon
is gone, and then:

* if its leader still runs with the recorded start time: the whole group and the leader's
  descendants, SIGTERM then SIGKILL, as on a timeout (`terminate_tree`);
* if its leader is gone: only the processes still in the group that started no earlier than
  the leader. POSIX does not reuse a pid while a group of that id exists, so these are the
  group's own; others (which that rule says cannot exist) are left alone and logged;
* if the leader's pid now belongs to another process, the group is gone: nothing is killed.

Records of a daemon that still runs (a second `agentcron run` on the same data directory)
and of another host are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import psutil

__all__ = [
    "DIRECTORY_NAME",
    "LEFTOVER_GRACE_MAX_S",
    "ChildLabel",
    "ChildRecords",
    "Leftover",
    "install",
    "installed",
    "kill_leftovers",
    "process_start",
]

log = logging.getLogger(__name__)

#: The records' directory, under the data directory.
DIRECTORY_NAME = "children"
#: Longest grace a leftover group gets between SIGTERM and SIGKILL at start-up (its
#: command's `kill_grace_s` when shorter): the daemon waits for it before it starts.
LEFTOVER_GRACE_MAX_S = 5.0
_FORMAT = 1
#: An unreadable record younger than this may be one a live daemon is writing: kept.
_FRESH_S = 5.0
_WHAT_CHARS = 200

Verdict = Literal["killed", "gone", "left", "unreadable", "owner_alive", "other_host"]

#: What `install` set: where the commands this process starts record their groups.
_installed: ChildRecords | None = None


def install(records: ChildRecords | None) -> ChildRecords | None:
    """Make the commands started from now on record their groups in `records` (None: stop
    recording). Returns what was installed before, to put back when done."""
    global _installed
    previous, _installed = _installed, records
    return previous


def installed() -> ChildRecords | None:
    """Where commands record their groups now (None, the default: nowhere)."""
    return _installed


@dataclass(frozen=True, slots=True)
class ChildLabel:
    """The run a child serves, for its record and the warning that may name it one day."""

    job_id: str
    run_id: str
    #: What runs, for people: `Command.describe()`, `python <reference>`.
    what: str


@dataclass(frozen=True, slots=True)
class Leftover:
    """What `kill_leftovers` found in one record, and did.

    `verdict`: `killed` (the group, or its members, got SIGTERM then SIGKILL), `gone`
    (nothing of it runs any more), `left` (processes in the group that cannot be shown to be
    its own were left running), `unreadable` (a torn or foreign file: removed, unless
    written in the last few seconds), `owner_alive` (its daemon still runs: kept),
    `other_host` (kept).
    """

    path: Path
    verdict: Verdict
    pgid: int | None = None
    job_id: str | None = None
    run_id: str | None = None
    killed: tuple[int, ...] = ()


class ChildRecords:
    """One directory of records: `add` after a spawn, `release` when the run is over.

    Never raises for the file system: a directory that cannot be made or written is logged
    (once per `ChildRecords`) and the command runs unrecorded.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._warned = False
        self._owner: tuple[int, float | None] | None = None

    def add(self, pid: int, label: ChildLabel, *, kill_grace_s: float) -> Path | None:
        """Record the group that `pid` (just spawned as a group leader) leads. Returns the
        record's path, or None when nothing was recorded (Windows, the leader already gone,
        a file-system error)."""
        if sys.platform == "win32":
            return None
        start = process_start(pid)
        if start is None:  # exited and reaped already: there is nothing to find again
            return None
        owner_pid, owner_start = self._owner_identity()
        data = {
            "format": _FORMAT,
            "pgid": pid,
            "leader_start": start,
            "boot_id": _boot_id(),
            "host": socket.gethostname(),
            "owner_pid": owner_pid,
            "owner_start": owner_start,
            "job_id": label.job_id,
            "run_id": label.run_id,
            "what": label.what[:_WHAT_CHARS],
            "kill_grace_s": kill_grace_s,
        }
        path = self.directory / f"{pid}.json"
        try:
            _write(path, json.dumps(data).encode("utf-8"))
        except OSError as exc:
            self._warn_once(f"record the process group of run {label.run_id}", exc)
            return None
        return path

    def release(self, path: Path, pgid: int) -> None:
        """Remove the record of group `pgid` once none of it runs. A group that outlived its
        run's clean-up (a process SIGKILL could not stop) keeps its record: the next start
        tries again."""
        from agentcron.handlers.process_tree import leftover_group_members

        if leftover_group_members(pgid):
            log.warning(
                "process group %d outlived its run; its record %s stays for the next start",
                pgid,
                path,
            )
            return
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            self._warn_once(f"remove the record {path.name}", exc)

    def _owner_identity(self) -> tuple[int, float | None]:
        pid = os.getpid()
        if self._owner is None or self._owner[0] != pid:  # (a fork records as itself)
            self._owner = (pid, process_start(pid))
        return self._owner

    def _warn_once(self, action: str, exc: OSError) -> None:
        if self._warned:
            return
        self._warned = True
        log.warning(
            "cannot %s in %s (%s): commands run all the same, but one a dying daemon leaves"
            " running is not killed at its next start (not logged again)",
            action,
            self.directory,
            exc.strerror or exc,
        )


async def kill_leftovers(
    directory: str | os.PathLike[str], *, grace_max_s: float = LEFTOVER_GRACE_MAX_S
) -> list[Leftover]:
    """Kill the groups that dead daemons recorded in `directory` (see the module docstring)
    and remove their records; returns what was found, one `Leftover` per record.

    All groups are handled at once; each gets SIGTERM, then SIGKILL after its command's
    `kill_grace_s` or `grace_max_s`, whichever is shorter. Never raises for the file system
    (a missing directory is simply empty)."""
    if sys.platform == "win32":
        return []
    paths = _record_paths(Path(directory))
    return list(await asyncio.gather(*(_settle(path, grace_max_s) for path in paths)))


def _record_paths(directory: Path) -> list[Path]:
    try:
        return sorted(directory.glob("*.json"))
    except OSError as exc:
        log.warning("cannot read the command records in %s: %s", directory, exc)
        return []


async def _settle(path: Path, grace_max_s: float) -> Leftover:
    record = _read(path)
    if record is None:
        if _age_s(path) < _FRESH_S:  # maybe being written by a live daemon: not yet
            return Leftover(path, "unreadable")
        log.warning("removed the unreadable command record %s", path)
        _unlink(path)
        return Leftover(path, "unreadable")
    pgid, job_id, run_id = record["pgid"], record["job_id"], record["run_id"]

    def found(verdict: Verdict, killed: tuple[int, ...] = ()) -> Leftover:
        return Leftover(path, verdict, pgid=pgid, job_id=job_id, run_id=run_id, killed=killed)

    if record["host"] != socket.gethostname():
        return found("other_host")
    recorded_boot, boot_id = record.get("boot_id"), _boot_id()
    if recorded_boot is not None and boot_id is not None and recorded_boot != boot_id:
        _unlink(path)  # written before a reboot: nothing of it runs
        return found("gone")
    if _same_process(record["owner_pid"], record.get("owner_start")):
        return found("owner_alive")
    if pgid == os.getpgrp():
        # This daemon was started from that command (say, a job that restarts it): killing
        # the group would kill the daemon itself.
        log.warning(
            "left the command of run %s of job %s (process group %d) running: this daemon"
            " runs in its process group",
            run_id,
            job_id,
            pgid,
        )
        _unlink(path)
        return found("left")
    grace_s = max(0.0, min(float(record["kill_grace_s"]), grace_max_s))
    killed = await _kill(pgid, record["leader_start"], grace_s, run_id, job_id)
    _unlink(path)
    if killed is None:
        return found("gone")
    if not killed:
        return found("left")
    log.warning(
        "killed the leftover command of run %s of job %s: its daemon died (%s, process group"
        " %d, daemon pid %d)",
        run_id,
        job_id,
        record["what"],
        pgid,
        record["owner_pid"],
    )
    return found("killed", killed)


async def _kill(
    pgid: int, leader_start: float, grace_s: float, run_id: str, job_id: str
) -> tuple[int, ...] | None:
    """Kill what is left of a dead daemon's group: the pids signalled (None: nothing of the
    group runs; empty: only processes that cannot be shown to be its own)."""
    now_start = process_start(pgid)
    if now_start == leader_start:
        return await _kill_group(pgid, leader_start, grace_s)
    if now_start is None:
        return await _kill_members(pgid, leader_start, grace_s, run_id, job_id)
    log.info(
        "command of run %s of job %s (process group %d) is gone: its pid now belongs to"
        " another process, which is left alone",
        run_id,
        job_id,
        pgid,
    )
    return None


async def _kill_group(pgid: int, leader_start: float, grace_s: float) -> tuple[int, ...] | None:
    """The leader runs, recognised: terminate its group and descendants (None: it just
    ended, and took its identity with it)."""
    import psutil

    from agentcron.handlers.process_tree import terminate_tree, tree_of

    try:
        leader = psutil.Process(pgid)
    except psutil.Error:
        return None
    if process_start(pgid) != leader_start:  # (reused between the two looks)
        return None
    pids = tuple(sorted(proc.pid for proc in tree_of(leader)))
    await terminate_tree(leader, grace_s=grace_s)
    return pids


async def _kill_members(
    pgid: int, leader_start: float, grace_s: float, run_id: str, job_id: str
) -> tuple[int, ...] | None:
    """The leader is gone: terminate the processes still in its group that started no
    earlier than it did (None: the group is gone too; empty: only strangers were found)."""
    from agentcron.handlers.process_tree import leftover_group_members, terminate_processes

    members = leftover_group_members(pgid)
    if not members:
        return None
    ours: list[psutil.Process] = []
    strangers: list[psutil.Process] = []
    for proc in members:
        started = process_start(proc.pid)
        (ours if started is not None and started >= leader_start else strangers).append(proc)
    if strangers:
        log.warning(
            "left %d process(es) of process group %d (run %s of job %s) running: they cannot"
            " be shown to belong to it (pids %s)",
            len(strangers),
            pgid,
            run_id,
            job_id,
            ", ".join(str(proc.pid) for proc in strangers),
        )
    if ours:
        await terminate_processes(ours, grace_s=grace_s)
    return tuple(sorted(proc.pid for proc in ours))


def process_start(pid: int) -> float | None:
    """When process `pid` started, to tell it from a later process given the same pid; None
    if there is no such process (or it cannot be read).

    Linux: seconds since boot, from `/proc/<pid>/stat` (a wall-clock step does not move
    it). Elsewhere: psutil's `create_time()`. Only compared with values from this function
    on the same host and boot."""
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat_file:
                stat = stat_file.read()
            # Fields after the command name (in parentheses, and it may hold anything):
            # state is field 3, start time field 22, in clock ticks.
            ticks = int(stat[stat.rindex(b")") + 2 :].split()[19])
        except (OSError, ValueError, IndexError):
            return None
        return ticks / os.sysconf("SC_CLK_TCK")
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def _same_process(pid: int, start: object) -> bool:
    """True if `pid` still runs as the process that started at `start` (or, with no start
    recorded, if any process has that pid: in doubt, the daemon counts as alive)."""
    if start is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # it exists, as another user
        return True
    return process_start(pid) == start


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as boot_file:
            return boot_file.read().strip() or None
    except OSError:
        return None


def _write(path: Path, payload: bytes) -> None:
    # One small write: a daemon killed meanwhile leaves the record whole, or empty (then
    # `kill_leftovers` removes it as unreadable).
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except FileNotFoundError:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, payload)
    finally:
        os.close(fd)


def _read(path: Path) -> dict[str, Any] | None:
    """The record at `path`, checked, or None if it is not one."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return None
    ints = ("pgid", "owner_pid")
    numbers = ("leader_start", "kill_grace_s")
    texts = ("host", "job_id", "run_id", "what")
    if not (
        all(type(data.get(key)) is int and data[key] > 1 for key in ints)
        and all(type(data.get(key)) in (int, float) for key in numbers)
        and all(isinstance(data.get(key), str) for key in texts)
        and (data.get("boot_id") is None or isinstance(data["boot_id"], str))
        and (data.get("owner_start") is None or type(data["owner_start"]) in (int, float))
    ):
        return None
    return data


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
