"""Module-level functions the handler tests refer to by `"handler_samples:name"`.

They live in their own module so that child processes can import them by reference.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from agentcron.handlers import HandlerOutcome, RunContext

#: Child processes find the file to touch here (tests set it with monkeypatch.setenv).
READY_FILE_ENV = "HANDLER_SAMPLES_READY_FILE"


def answer() -> int:
    return 42


def context_summary(ctx: RunContext) -> dict[str, Any]:
    return {
        "job_id": ctx.job_id,
        "run_id": ctx.run_id,
        "attempt": ctx.attempt,
        "occurrence_key": ctx.occurrence_key,
        "scheduled_for": ctx.scheduled_for.isoformat(),
    }


async def async_answer() -> int:
    await asyncio.sleep(0)
    return 43


async def async_context_job_id(ctx: RunContext) -> str:
    await asyncio.sleep(0)
    return ctx.job_id


def optional_context(ctx: RunContext | None = None) -> bool:
    return ctx is not None


def optional_flag(verbose: bool = False) -> bool:
    return verbose


def two_arguments(a: int, b: int) -> int:
    return a + b


def raise_value_error() -> None:
    raise ValueError("the answer is not 42")


def print_and_return() -> str:
    print("hello from the child")
    return "done"


def return_garbage() -> Any:
    return {"handle": object(), "n": float("nan")}


def return_outcome() -> HandlerOutcome:
    return HandlerOutcome(output_tail="x" * 100_000, value={"set": {1, 2}})


def pid_of_process() -> int:
    return os.getpid()


def spin_forever() -> None:
    ready = Path(os.environ[READY_FILE_ENV])
    ready.with_suffix(".tmp").write_text(str(os.getpid()))
    ready.with_suffix(".tmp").replace(ready)  # atomic: the test never reads a half-written pid
    while True:
        pass


def exit_abruptly() -> None:
    print("about to vanish")
    os._exit(7)


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def call_sys_exit() -> None:
    raise SystemExit(3)


NOT_CALLABLE = 5
