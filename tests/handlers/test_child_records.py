"""Records of running commands' process groups: a daemon that dies (SIGKILL) leaves its
commands running; its next start kills them, and nothing else. Real processes throughout."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import handler_samples
import psutil
import pytest
from handler_helpers import make_context, still_alive, wait_until

from agentcron.handlers import Command, as_handler, child_records
from agentcron.handlers.child_records import ChildLabel, ChildRecords, kill_leftovers, process_start

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")
PY = sys.executable

#: A stand-in for `agentcron run`: the real command handler, with records installed, running
#: `sh` with a background `sleep` in its group; both pids go to argv[2] once they run.
DAEMON = textwrap.dedent(
    """
    import asyncio, logging, sys
    from datetime import UTC, datetime
    from agentcron.handlers import Command, RunContext, child_records

    async def main(directory, pid_file):
        child_records.install(child_records.ChildRecords(directory))
        ctx = RunContext(
            job_id="nightly", run_id="run-7", scheduled_for=datetime(2026, 3, 8, tzinfo=UTC),
            attempt=1, lateness_s=0.0, node_id="n", logger=logging.getLogger("daemon"),
        )
        script = 'sleep 1000 & echo "$$ $!" > "$0.tmp" && mv "$0.tmp" "$0"; wait'
        await Command(["sh", "-c", script, pid_file]).run(ctx)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


@pytest.fixture
def records(tmp_path: Path) -> Iterator[ChildRecords]:
    """Records installed in `tmp_path/children` for the test, as `agentcron run` does."""
    installed = ChildRecords(tmp_path / "children")
    previous = child_records.install(installed)
    try:
        yield installed
    finally:
        child_records.install(previous)


def spawn(argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """Start a real process (synchronously: it only forks)."""
    return subprocess.Popen(argv, **options)


def record_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json")) if directory.exists() else []


def readable_records(directory: Path) -> list[dict[str, Any]]:
    """The records in `directory` that are whole (one may be being written)."""
    found = []
    for path in record_files(directory):
        try:
            found.append(json.loads(path.read_text()))
        except ValueError:
            continue
    return found


def kill_all(procs: list[psutil.Process]) -> None:
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            continue


def dead_owner() -> tuple[int, float]:
    """The pid and start time of a process that has ended."""
    done = subprocess.Popen([PY, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    start = process_start(done.pid)
    assert done.stdin is not None and start is not None
    done.stdin.close()
    done.wait()
    return done.pid, start


def forge(path: Path, **changes: Any) -> None:
    """Change fields of a real record (written by `ChildRecords.add`)."""
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def record_for(directory: Path, pid: int, *, owner_dead: bool = True) -> Path:
    """A record of the group `pid` leads, as a daemon writes it; by default one whose daemon
    has died since."""
    path = ChildRecords(directory).add(
        pid, ChildLabel(job_id="job-x", run_id="run-x", what="sh"), kill_grace_s=5.0
    )
    assert path is not None
    if owner_dead:
        owner_pid, owner_start = dead_owner()
        forge(path, owner_pid=owner_pid, owner_start=owner_start)
    return path


async def test_a_command_left_running_by_a_killed_daemon_is_killed_at_the_next_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory, pid_file = tmp_path / "children", tmp_path / "pids"
    daemon = spawn([PY, "-c", DAEMON, str(directory), str(pid_file)])
    tree: list[psutil.Process] = []
    try:
        await wait_until(pid_file.exists, "the command and its background sleep")
        tree = [psutil.Process(int(pid)) for pid in pid_file.read_text().split()]
        assert len(tree) == 2
        # Recorded just after the spawn returns (the command may be quicker than that).
        await wait_until(lambda: len(readable_records(directory)) == 1, "the record")
        daemon.kill()  # SIGKILL: no clean-up of any kind
        daemon.wait()
        assert still_alive(tree) == tree  # the defect: the run's processes live on

        caplog.set_level(logging.WARNING, logger="agentcron.handlers.child_records")
        found = await kill_leftovers(directory)

        assert [(f.verdict, f.job_id, f.run_id) for f in found] == [("killed", "nightly", "run-7")]
        assert set(found[0].killed) == {p.pid for p in tree}
        assert still_alive(tree) == []
        assert record_files(directory) == []
        assert "killed the leftover command of run run-7 of job nightly: its daemon died" in (
            caplog.text
        )
    finally:
        daemon.kill()
        daemon.wait()
        kill_all(tree)


@pytest.mark.parametrize("own_group", [True, False], ids=["group-leader", "not-a-leader"])
async def test_a_record_whose_pid_now_belongs_to_another_process_kills_nothing(
    tmp_path: Path, own_group: bool
) -> None:
    directory = tmp_path / "children"
    other = spawn(["sleep", "1000"], start_new_session=own_group)
    try:
        path = record_for(directory, other.pid)
        start = process_start(other.pid)
        assert start is not None
        forge(path, leader_start=start - 50)  # the recorded leader: an earlier process

        found = await kill_leftovers(directory)

        assert [f.verdict for f in found] == ["gone"]
        assert other.poll() is None
        assert record_files(directory) == []
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("start_known", [True, False], ids=["start-known", "start-unknown"])
async def test_the_group_of_a_daemon_that_still_runs_is_left_alone(
    tmp_path: Path, start_known: bool
) -> None:
    # A second `agentcron run` on the same data directory starts while the first runs.
    directory = tmp_path / "children"
    command = spawn(["sleep", "1000"], start_new_session=True)
    try:
        path = record_for(directory, command.pid, owner_dead=False)  # this (live) process's
        if not start_known:
            forge(path, owner_start=None)  # in doubt, a daemon with that pid counts as alive

        found = await kill_leftovers(directory)

        assert [f.verdict for f in found] == ["owner_alive"]
        assert command.poll() is None
        assert len(record_files(directory)) == 1
    finally:
        command.kill()
        command.wait()


async def leader_gone(tmp_path: Path) -> tuple[int, psutil.Process]:
    """A group whose leader (`sh`, recorded) has exited, leaving a `sleep` in the group."""
    pid_file = tmp_path / "member"
    leader = spawn(
        ["sh", "-c", 'sleep 1000 & echo $! > "$0.tmp" && mv "$0.tmp" "$0"; read x', str(pid_file)],
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    record_for(tmp_path / "children", leader.pid)
    await wait_until(pid_file.exists, "the background sleep")
    member = psutil.Process(int(pid_file.read_text()))
    assert leader.stdin is not None
    leader.stdin.close()
    leader.wait()
    assert os.getpgid(member.pid) == leader.pid
    return leader.pid, member


async def test_the_members_of_a_group_whose_leader_is_gone_are_killed(tmp_path: Path) -> None:
    pgid, member = await leader_gone(tmp_path)
    try:
        found = await kill_leftovers(tmp_path / "children")

        assert [(f.verdict, f.pgid, f.killed) for f in found] == [("killed", pgid, (member.pid,))]
        assert still_alive([member]) == []
    finally:
        kill_all([member])


async def test_members_that_started_before_the_recorded_leader_are_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pgid, member = await leader_gone(tmp_path)
    try:
        (path,) = record_files(tmp_path / "children")
        start = process_start(member.pid)
        assert start is not None
        forge(path, leader_start=start + 50)

        found = await kill_leftovers(tmp_path / "children")

        assert [f.verdict for f in found] == ["left"]
        assert still_alive([member]) == [member]
        assert f"left 1 process(es) of process group {pgid}" in caplog.text
    finally:
        kill_all([member])


async def test_a_finished_command_removes_its_record(records: ChildRecords) -> None:
    # The command prints the records that exist while it runs: its own (written just after
    # the spawn, so the command may have to wait for it a moment).
    wait = 'for i in $(seq 1000); do [ -n "$(ls "$0" 2>/dev/null)" ] && break; sleep 0.01; done'  # polls a file, bounded (noqa: sleep-ok)
    command = Command(["sh", "-c", f'{wait}; cat "$0"/*.json', str(records.directory)])

    outcome = await command.run(make_context(job_id="listing"))

    assert outcome.output_tail is not None
    seen = json.loads(outcome.output_tail)
    assert (seen["job_id"], seen["run_id"], seen["what"]) == (
        "listing",
        "run-1",
        command.describe(),
    )
    assert record_files(records.directory) == []


async def test_a_command_killed_on_timeout_removes_its_record(records: ChildRecords) -> None:
    task = asyncio.create_task(Command(["sh", "-c", "sleep 1000"]).run(make_context()))
    await wait_until(lambda: bool(record_files(records.directory)), "the command's record")
    pgid = json.loads(record_files(records.directory)[0].read_text())["pgid"]
    leader = psutil.Process(pgid)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(task, 0)

    assert still_alive([leader]) == []
    assert record_files(records.directory) == []


async def test_a_process_isolated_callable_records_its_child_too(
    records: ChildRecords, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready = tmp_path / "ready"
    monkeypatch.setenv(handler_samples.READY_FILE_ENV, str(ready))
    handler = as_handler("handler_samples:spin_forever", isolation="process")
    task = asyncio.create_task(handler.run(make_context(job_id="crunch")))
    await wait_until(ready.exists, "the child to start spinning")
    (path,) = record_files(records.directory)
    data = json.loads(path.read_text())
    assert (data["pgid"], data["job_id"], data["what"]) == (
        int(ready.read_text()),
        "crunch",
        "python handler_samples:spin_forever",
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert record_files(records.directory) == []


async def test_an_unwritable_records_directory_does_not_break_runs_and_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("not a directory")
    previous = child_records.install(ChildRecords(tmp_path / "file" / "children"))
    # Two at once, each running long enough to be recorded (a command that has already
    # ended when its spawn returns has nothing to record).
    command = Command(["sh", "-c", "sleep 0.5; echo ok"])  # (noqa: sleep-ok)
    try:
        outcomes = await asyncio.gather(*(command.run(make_context()) for _ in range(2)))
        assert [outcome.output_tail for outcome in outcomes] == ["ok\n", "ok\n"]
    finally:
        child_records.install(previous)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "cannot record the process group of run run-1" in warnings[0]


async def test_a_missing_records_directory_is_created_and_an_absent_one_has_nothing(
    tmp_path: Path,
) -> None:
    assert await kill_leftovers(tmp_path / "nowhere") == []
    deep = ChildRecords(tmp_path / "data" / "children")
    command = spawn(["sleep", "1000"], start_new_session=True)
    try:
        path = deep.add(command.pid, ChildLabel("j", "r", "sleep"), kill_grace_s=1.0)
        assert path is not None and path.exists()
    finally:
        command.kill()
        command.wait()


async def test_unreadable_records_are_removed_once_they_are_not_new(tmp_path: Path) -> None:
    directory = tmp_path / "children"
    directory.mkdir()
    torn, fresh = directory / "123.json", directory / "456.json"
    torn.write_text("")  # a daemon killed between creating the file and writing it
    fresh.write_text("")  # one a live daemon is writing right now
    os.utime(torn, (0, 0))

    found = await kill_leftovers(directory)

    assert [f.verdict for f in found] == ["unreadable", "unreadable"]
    assert record_files(directory) == [fresh]


async def test_records_of_another_host_are_left_alone(tmp_path: Path) -> None:
    directory = tmp_path / "children"
    command = spawn(["sleep", "1000"], start_new_session=True)
    try:
        forge(record_for(directory, command.pid), host="another-machine")

        found = await kill_leftovers(directory)

        assert [f.verdict for f in found] == ["other_host"]
        assert command.poll() is None
        assert len(record_files(directory)) == 1
    finally:
        command.kill()
        command.wait()


def test_a_process_start_tells_a_process_from_a_later_one() -> None:
    me = process_start(os.getpid())
    assert me is not None and process_start(os.getpid()) == me
    pid, start = dead_owner()
    assert process_start(pid) != start  # gone (None), or the pid of a newer process
