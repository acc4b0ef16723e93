"""Callables isolated in a child process: results, errors, deaths, and killing on cancel."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import handler_samples
import psutil
import pytest
from handler_helpers import make_context, wait_until

from agentcron.handlers import (
    HandlerError,
    HandlerNotPersistableError,
    IsolatedCallError,
    as_handler,
)


async def test_a_sync_function_runs_in_another_process() -> None:
    outcome = await as_handler(handler_samples.pid_of_process, isolation="process").run(
        make_context()
    )
    assert isinstance(outcome.value, int) and outcome.value != os.getpid()


async def test_the_child_receives_a_plain_copy_of_the_context() -> None:
    handler = as_handler("handler_samples:context_summary", isolation="process")
    outcome = await handler.run(make_context("isolated", attempt=3))
    assert outcome.value == {
        "job_id": "isolated",
        "run_id": "run-1",
        "attempt": 3,
        "occurrence_key": "isolated@2026-03-08T06:00:00+00:00",
        "scheduled_for": "2026-03-08T06:00:00+00:00",
    }


async def test_an_async_function_can_be_isolated_too() -> None:
    handler = as_handler(handler_samples.async_context_job_id, isolation="process")
    assert (await handler.run(make_context("async-child"))).value == "async-child"


async def test_what_the_function_prints_becomes_the_output_tail() -> None:
    outcome = await as_handler(handler_samples.print_and_return, isolation="process").run(
        make_context()
    )
    assert outcome.value == "done"
    assert outcome.output_tail == "hello from the child\n"


async def test_an_exception_in_the_child_fails_with_its_type_and_message() -> None:
    handler = as_handler(handler_samples.raise_value_error, isolation="process")
    with pytest.raises(IsolatedCallError) as caught:
        await handler.run(make_context())
    assert str(caught.value) == "ValueError: the answer is not 42"
    assert caught.value.type_name == "ValueError"
    assert "raise_value_error" in caught.value.remote_traceback
    assert caught.value.output_tail is not None and "Traceback" in caught.value.output_tail


async def test_sys_exit_in_the_child_is_a_failure() -> None:
    handler = as_handler(handler_samples.call_sys_exit, isolation="process")
    with pytest.raises(IsolatedCallError, match="SystemExit: 3"):
        await handler.run(make_context())


async def test_garbage_returned_by_the_child_becomes_a_repr() -> None:
    outcome = await as_handler(handler_samples.return_garbage, isolation="process").run(
        make_context()
    )
    assert isinstance(outcome.value, str) and "object object" in outcome.value


async def test_a_child_that_exits_abruptly_is_a_handler_error_not_a_crash() -> None:
    handler = as_handler(handler_samples.exit_abruptly, isolation="process")
    with pytest.raises(HandlerError, match=r"exit status 7\) without reporting a result") as caught:
        await handler.run(make_context())
    assert caught.value.output_tail == "about to vanish\n"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
async def test_a_child_that_kills_itself_is_a_handler_error_not_a_crash() -> None:
    handler = as_handler(handler_samples.kill_self, isolation="process")
    with pytest.raises(HandlerError, match="killed by signal SIGKILL"):
        await handler.run(make_context())


async def test_a_child_that_loops_forever_is_killed_on_cancel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready = tmp_path / "ready"
    monkeypatch.setenv(handler_samples.READY_FILE_ENV, str(ready))
    handler = as_handler(handler_samples.spin_forever, isolation="process")
    task = asyncio.create_task(handler.run(make_context()))
    await wait_until(ready.exists, "the child to start spinning")
    child = psutil.Process(int(ready.read_text()))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


async def test_a_timeout_kills_the_spinning_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready = tmp_path / "ready"
    monkeypatch.setenv(handler_samples.READY_FILE_ENV, str(ready))
    handler = as_handler("handler_samples:spin_forever", isolation="process")
    task = asyncio.create_task(handler.run(make_context()))
    await wait_until(ready.exists, "the child to start spinning")
    child = psutil.Process(int(ready.read_text()))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(task, 0)
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_only_importable_functions_can_be_isolated() -> None:
    with pytest.raises(HandlerNotPersistableError, match="cannot run in a child process"):
        as_handler(lambda: None, isolation="process")


def test_an_isolated_handler_round_trips_with_its_isolation() -> None:
    handler = as_handler(handler_samples.answer, isolation="process")
    assert handler.to_dict() == {
        "kind": "callable",
        "ref": "handler_samples:answer",
        "isolation": "process",
        "kill_grace_s": 5.0,
        "output_tail_bytes": 4096,
    }
