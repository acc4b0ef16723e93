"""Command: real subprocesses, exit codes, bounded output, and whole-tree termination."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import psutil
import pytest
from handler_helpers import descendants, make_context, still_alive, wait_until

from agentcron.handlers import Command, CommandExitError, HandlerError, handler_from_dict

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell and signals")
PY = sys.executable


async def test_a_zero_exit_status_succeeds_with_the_output_tail() -> None:
    outcome = await Command(
        [PY, "-c", "print('hello'); import sys; print('err', file=sys.stderr)"]
    ).run(make_context())
    assert outcome.value == 0
    assert outcome.output_tail is not None
    assert "hello" in outcome.output_tail and "err" in outcome.output_tail


async def test_a_non_zero_exit_status_fails_with_the_status_and_output() -> None:
    with pytest.raises(CommandExitError) as caught:
        await Command([PY, "-c", "print('partial'); raise SystemExit(3)"]).run(make_context())
    assert str(caught.value) == "exit status 3"
    assert caught.value.returncode == 3
    assert caught.value.output_tail is not None and "partial" in caught.value.output_tail


async def test_ok_codes_decide_which_statuses_succeed() -> None:
    outcome = await Command([PY, "-c", "raise SystemExit(3)"], ok_codes=(0, 3)).run(make_context())
    assert outcome.value == 3


async def test_the_output_tail_keeps_only_the_last_bytes() -> None:
    program = "import sys\nfor i in range(100000): sys.stdout.write(f'line {i}\\n')"
    outcome = await Command([PY, "-c", program], output_tail_bytes=64).run(make_context())
    tail = outcome.output_tail
    assert tail is not None
    assert tail.endswith("line 99999\n")
    assert "earlier bytes omitted" in tail
    assert len(tail.split("\n", 1)[1]) <= 64


async def test_cwd_and_env_reach_the_child_and_env_is_merged_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HANDLER_TEST_INHERITED", "from-parent")
    program = (
        "import os, sys; print(os.path.samefile('.', sys.argv[1])); print(os.environ['HANDLER_TEST_OWN']);"
        " print(os.environ['HANDLER_TEST_INHERITED']); print(os.environ['AGENTCRON_OCCURRENCE_KEY'])"
    )
    command = Command(
        [PY, "-c", program, str(tmp_path)], cwd=tmp_path, env={"HANDLER_TEST_OWN": "own"}
    )
    outcome = await command.run(make_context(job_id="nightly"))
    assert outcome.output_tail is not None
    assert outcome.output_tail.splitlines() == [
        "True",
        "own",
        "from-parent",
        "nightly@2026-03-08T06:00:00+00:00",
    ]


@posix_only
async def test_a_string_command_is_split_like_a_shell_would_but_not_run_by_one() -> None:
    outcome = await Command("printf '%s|' 'two words' three").run(make_context())
    assert outcome.output_tail == "two words|three|"


@posix_only
async def test_a_hostile_string_does_not_run_a_second_command_without_shell(tmp_path: Path) -> None:
    outcome = await Command("echo hi; touch pwned", cwd=tmp_path).run(make_context())
    assert outcome.output_tail == "hi; touch pwned\n"
    assert not (tmp_path / "pwned").exists()


@posix_only
async def test_shell_true_runs_the_string_through_the_shell(tmp_path: Path) -> None:
    outcome = await Command("echo hi; touch made", cwd=tmp_path, shell=True).run(make_context())
    assert outcome.output_tail == "hi\n"
    assert (tmp_path / "made").exists()


async def test_a_missing_executable_fails_with_a_clear_message() -> None:
    with pytest.raises(HandlerError, match="program 'agentcron-no-such-program' not found"):
        await Command(["agentcron-no-such-program", "--flag"]).run(make_context())


@posix_only
async def test_a_file_that_is_not_executable_fails_with_a_clear_message(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("echo hi\n")
    with pytest.raises(HandlerError, match="is not executable"):
        await Command([str(script)]).run(make_context())


async def test_a_missing_working_directory_fails_with_a_clear_message(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(HandlerError, match="working directory .* does not exist"):
        await Command([PY, "-c", "pass"], cwd=missing).run(make_context())


@posix_only
async def test_a_child_killed_by_a_signal_is_reported_with_the_signal_name() -> None:
    program = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    with pytest.raises(CommandExitError, match=r"killed by signal SIGKILL \(9\)"):
        await Command([PY, "-c", program]).run(make_context())


@posix_only
async def test_cancelling_a_command_leaves_no_process_of_its_tree_alive() -> None:
    before = {proc.pid for proc in descendants()}
    task = asyncio.create_task(
        Command(["sh", "-c", "sleep 100 & sleep 100 & wait"]).run(make_context())
    )
    await wait_until(lambda: len(_new(before)) >= 3, "sh and its two sleeps")
    tree = _new(before)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert still_alive(tree) == []


@posix_only
async def test_cancelling_while_the_command_is_still_starting_leaves_nothing_behind() -> None:
    before = {proc.pid for proc in descendants()}
    for _ in range(5):
        task = asyncio.create_task(
            Command(["sh", "-c", "sleep 100 & sleep 100 & wait"]).run(make_context())
        )
        await asyncio.sleep(0)  # one loop turn: the child exists, its pipes are not connected
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert _new(before) == []


@posix_only
async def test_a_timeout_kills_grandchildren_that_left_the_process_group() -> None:
    before = {proc.pid for proc in descendants()}
    command = Command(["sh", "-c", "setsid sleep 100 & sleep 100 & wait"])
    task = asyncio.create_task(command.run(make_context()))
    await wait_until(lambda: len(_new(before)) >= 3, "sh, an escaped sleep and a sleep")
    tree = _new(before)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(task, 0)
    assert still_alive(tree) == []


@posix_only
async def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(
    tmp_path: Path,
) -> None:
    ready = tmp_path / "ready"
    program = (
        "import signal, time, pathlib, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " pathlib.Path(sys.argv[1]).write_text('ok'); time.sleep(100)"  # the hung or busy work of a child process (noqa: sleep-ok)
    )
    before = {proc.pid for proc in descendants()}
    task = asyncio.create_task(
        Command([PY, "-c", program, str(ready)], kill_grace_s=0.1).run(make_context())
    )
    await wait_until(ready.exists, "the child to ignore SIGTERM")
    tree = _new(before)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tree and still_alive(tree) == []


@posix_only
async def test_background_processes_left_behind_do_not_hold_the_run_open() -> None:
    before = {proc.pid for proc in descendants()}
    outcome = await asyncio.wait_for(
        Command(["sh", "-c", "sleep 100 & echo started"]).run(make_context()), 30
    )
    assert outcome.output_tail == "started\n"
    assert _new(before) == []


async def test_a_second_cancel_during_cleanup_does_not_leave_processes_behind() -> None:
    before = {proc.pid for proc in descendants()}
    program = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(100)']); time.sleep(100)"  # the hung or busy work of a child process (noqa: sleep-ok)
    task = asyncio.create_task(Command([PY, "-c", program]).run(make_context()))
    await wait_until(lambda: len(_new(before)) >= 2, "a child and a grandchild")
    tree = _new(before)
    task.cancel()
    await asyncio.sleep(0)  # one loop turn, so the clean-up has begun
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert still_alive(tree) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"argv": []}, "argument list is empty"),
        ({"argv": "   "}, "command string is empty"),
        ({"argv": ["ls", 3]}, "every argument must be a string"),
        ({"argv": "echo 'unbalanced"}, "cannot split command"),
        ({"argv": ["ls"], "kill_grace_s": -1}, "kill_grace_s"),
        ({"argv": ["ls"], "output_tail_bytes": 0}, "output_tail_bytes"),
        ({"argv": ["ls"], "ok_codes": []}, "ok_codes"),
        ({"argv": ["ls"], "env": {"A": 1}}, "env"),
        ({"argv": ["ls"], "shell": "yes"}, "shell"),
        ({"argv": ["ls"], "cwd": 5}, "cwd must be a directory path"),  # was os.fspath's TypeError
    ],
)
def test_bad_arguments_are_rejected_when_the_command_is_created(
    kwargs: dict[str, object], message: str
) -> None:
    argv = kwargs.pop("argv")
    with pytest.raises(ValueError, match=message):
        Command(argv, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argv", "kwargs", "message"),
    [
        ([""], {}, r"the program \(first argument\) is empty"),
        (["   ", "-l"], {}, r"the program \(first argument\) is empty"),
        ("'' -l", {}, r"the program \(first argument\) is empty"),  # split: ['', '-l']
        (["ls", "a\0b"], {}, r"argv\[1\]: contains a NUL character"),
        (["\0"], {}, r"argv\[0\]: contains a NUL character"),
        ("ls a\0b", {}, "the command string contains a NUL character"),
        ("echo a\0b", {"shell": True}, "the command string contains a NUL character"),
        (["ls"], {"cwd": "/tmp\0x"}, "cwd: the path contains a NUL character"),
        (["ls"], {"env": {"A": "x\0y"}}, "env: 'A' has a NUL character"),
    ],
)
def test_a_command_that_no_run_could_start_is_rejected_when_created(
    argv: list[str] | str, kwargs: dict[str, object], message: str
) -> None:
    # `Command([""])` used to be accepted, and every run then failed with "program '' is not
    # executable"; the HTTP API, `jobs import` and Python all build their commands here.
    with pytest.raises(ValueError, match=message) as caught:
        Command(argv, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)
    with pytest.raises(ValueError, match=message):
        handler_from_dict({"kind": "command", "argv": argv, **kwargs})


def test_describe_shows_the_command_line() -> None:
    assert Command(["rsync", "-a", "my dir/", "dst"]).describe() == "command rsync -a 'my dir/' dst"
    assert Command("echo hi", shell=True).describe() == "shell echo hi"


def _new(before: set[int]) -> list[psutil.Process]:
    return [proc for proc in descendants() if proc.pid not in before]


async def test_the_environment_is_read_when_the_command_runs_not_when_created(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    command = Command([PY, "-c", "import os; print(os.environ.get('HANDLER_LATE', 'unset'))"])
    monkeypatch.setenv("HANDLER_LATE", "late")
    outcome = await command.run(make_context())
    assert outcome.output_tail == "late\n"
