"""Run a callable, by reference, in a child Python process that can be killed.

A thread cannot be stopped, so a sync function that must obey timeouts runs here: a fresh
`python -c` child (the spawn model: nothing is inherited but the import path, the working
directory and the environment) resolves the reference, receives a plain-data copy of the
run context, and reports its return value or exception (see `agentcron.handlers.child`).
On cancel or timeout the child's whole process tree is terminated, then killed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from agentcron.handlers.base import HandlerError, HandlerOutcome, RunContext
from agentcron.handlers.child import BOOTSTRAP
from agentcron.handlers.command import describe_returncode

__all__ = ["IsolatedCallError", "run_isolated"]

#: Bound on the child's JSON report (its value is bounded to far less by `plain_value`).
_REPORT_LIMIT_BYTES = 1 << 20


class IsolatedCallError(HandlerError):
    """The function raised in its child process; the exception is described, not re-created.

    The message is `"<ExceptionType>: <message>"`, so retry rules that match exception names
    or message substrings work across the process boundary.
    """

    def __init__(
        self, message: str, *, type_name: str, remote_traceback: str, output_tail: str | None
    ) -> None:
        super().__init__(message, output_tail=output_tail)
        self.type_name = type_name
        self.remote_traceback = remote_traceback


async def run_isolated(
    ref: str, ctx: RunContext, *, kill_grace_s: float, output_tail_bytes: int
) -> HandlerOutcome:
    """Call `ref` in a child process for this attempt; raise on failure or death."""
    from agentcron.handlers.child_records import ChildLabel
    from agentcron.handlers.supervisor import run_child  # psutil: only when used

    payload = {"ref": ref, "sys_path": list(sys.path), "context": _plain_context(ctx)}
    result = await run_child(
        [sys.executable, "-c", BOOTSTRAP, json.dumps(payload)],
        output_limit_bytes=output_tail_bytes,
        separate_stdout_limit_bytes=_REPORT_LIMIT_BYTES,
        kill_grace_s=kill_grace_s,
        label=ChildLabel(job_id=ctx.job_id, run_id=ctx.run_id, what=f"python {ref}"),
    )
    tail = result.output.text() or None
    assert result.stdout is not None
    report = _parse_report(result.stdout.raw())
    if report is None:
        raise HandlerError(
            f"the child process running {ref} ended ({describe_returncode(result.returncode)})"
            " without reporting a result",
            output_tail=tail,
        )
    if report.get("ok") is True:
        return HandlerOutcome(output_tail=tail, value=report.get("value"))
    type_name = str(report.get("type", "Exception"))
    raise IsolatedCallError(
        f"{type_name}: {report.get('message', '')}",
        type_name=type_name,
        remote_traceback=str(report.get("traceback", "")),
        output_tail=tail,
    )


def _plain_context(ctx: RunContext) -> dict[str, Any]:
    return {
        "job_id": ctx.job_id,
        "run_id": ctx.run_id,
        "scheduled_for": ctx.scheduled_for.isoformat(),
        "attempt": ctx.attempt,
        "lateness_s": ctx.lateness_s,
        "node_id": ctx.node_id,
        "logger": ctx.logger.name,
    }


def _parse_report(raw: bytes) -> dict[str, Any] | None:
    try:
        report = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return report if isinstance(report, dict) else None
