"""The child side of a process-isolated callable (started by `agentcron.handlers.isolated`).

Protocol: the parent passes one JSON argument (reference, context, `sys.path`). The child
keeps its original stdout as a private result channel, points fd 1 at stderr (so whatever the
function prints, at any level, becomes output for the run log), calls the function and writes
one JSON report to the result channel: `{"ok": true, "value": ...}` or
`{"ok": false, "type": ..., "message": ..., "traceback": ...}`. No report means the child
died (killed, `os._exit`, crash).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import sys
import traceback
from datetime import datetime
from typing import Any, TextIO

from agentcron.handlers.base import HandlerOutcome, RunContext
from agentcron.handlers.output import bound_text, plain_value
from agentcron.handlers.references import resolve
from agentcron.handlers.signature import CallShape

__all__ = ["BOOTSTRAP", "main"]

#: The `python -c` program: restore the parent's import path, then hand over to `main`.
BOOTSTRAP = (
    "import json, sys; payload = json.loads(sys.argv[1]); sys.path[:] = payload['sys_path']; "
    "from agentcron.handlers.child import main; main(payload)"
)

_MESSAGE_CHARS = 4_000
_TRACEBACK_CHARS = 16_000


def main(payload: dict[str, Any]) -> None:
    """Run the referenced function once and report; never returns (exits the process)."""
    results = _private_stdout()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    try:
        report = {"ok": True, "value": plain_value(_call(payload))}
    except BaseException as exc:  # SystemExit and KeyboardInterrupt are failures too
        report = _failure(exc)
        traceback.print_exc(file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    results.write(json.dumps(report))
    results.close()
    # os._exit: threads the function left running must not keep the child alive.
    os._exit(0)


def _private_stdout() -> TextIO:
    result_fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(result_fd, "w", encoding="utf-8")


def _call(payload: dict[str, Any]) -> Any:
    ref = payload["ref"]
    func = resolve(ref)
    shape = CallShape.of(func, name=ref)
    args = (_context(payload["context"]),) if shape.takes_context else ()
    result = func(*args)
    if inspect.isawaitable(result):
        result = asyncio.run(_awaited(result))
    if isinstance(result, HandlerOutcome):
        result = result.value
    return result


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _context(data: dict[str, Any]) -> RunContext:
    return RunContext(
        job_id=data["job_id"],
        run_id=data["run_id"],
        scheduled_for=datetime.fromisoformat(data["scheduled_for"]),
        attempt=data["attempt"],
        lateness_s=data["lateness_s"],
        node_id=data["node_id"],
        logger=logging.getLogger(data["logger"]),
    )


def _failure(exc: BaseException) -> dict[str, Any]:
    return {
        "ok": False,
        "type": type(exc).__qualname__,
        "message": bound_text(str(exc), _MESSAGE_CHARS),
        "traceback": bound_text(traceback.format_exc(), _TRACEBACK_CHARS),
    }
