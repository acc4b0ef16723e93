"""`CallableHandler`: a Python function as a handler, on the loop, in a thread or a process.

* async functions run on the event loop; a timeout cancels them. On Python 3.12+ the tick
  starts a run as an eager task when it can (a job without a timeout, circuit breaker or
  concurrency group, whose last run has ended): the function's code up to its first `await`
  runs as soon as the fire is claimed, before the tick starts the next fire (as with any
  code on the loop, keep that part short).
* sync functions run in a worker thread (`agentcron.handlers.threads`). A thread cannot be
  killed: on timeout the attempt is abandoned and the thread finishes in the background
  (without holding up other jobs' threads), so functions that may hang should use
  `isolation="process"`, or poll `ctx.cancel_requested`.
* `isolation="process"` runs the function by reference in a child process that is killed on
  timeout or cancel (see `agentcron.handlers.isolated`).

A handler created from a `"package.module:attr"` string resolves it again at each run (so a
redeployed module is picked up), after checking at creation that it imports.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from types import CoroutineType
from typing import Any, Literal, get_args

from agentcron.handlers.base import HandlerNotPersistableError, HandlerOutcome, RunContext
from agentcron.handlers.checks import (
    checked_kill_grace_s,
    checked_tail_bytes,
)
from agentcron.handlers.isolated import run_isolated
from agentcron.handlers.output import bound_text, plain_value
from agentcron.handlers.persisted import checked_fields
from agentcron.handlers.references import HandlerReferenceError, reference_of, resolve
from agentcron.handlers.signature import CallShape
from agentcron.handlers.threads import SYNC_THREADS

__all__ = ["CallableHandler", "Isolation", "outcome_of"]

Isolation = Literal["thread", "process"]

_OPTIONAL_FIELDS = ("isolation", "kill_grace_s", "output_tail_bytes")
#: Bound on an `output_tail` a function returns itself in a `HandlerOutcome`.
_OUTPUT_TAIL_CHARS = 16_384


class CallableHandler:
    """Runs a Python callable (or the callable a `"module:attr"` reference names)."""

    def __init__(
        self,
        target: Callable[..., Any] | str,
        *,
        isolation: Isolation = "thread",
        kill_grace_s: float = 5.0,
        output_tail_bytes: int = 4096,
    ) -> None:
        if isolation not in get_args(Isolation):
            raise HandlerReferenceError(
                f"isolation must be 'thread' or 'process', got {isolation!r}"
            )
        self.isolation: Isolation = isolation
        self.kill_grace_s = checked_kill_grace_s(kill_grace_s, "kill_grace_s")
        self.output_tail_bytes = checked_tail_bytes(output_tail_bytes, "output_tail_bytes")
        self._by_reference = isinstance(target, str)
        if isinstance(target, str):
            self.ref: str | None = target
            self._func = resolve(target)
        elif callable(target):
            self.ref = reference_of(target)
            self._func = target
        else:
            raise HandlerReferenceError(f"handler target {target!r} is not callable")
        self._shape = CallShape.of(self._func, name=self.describe())
        #: The function itself when a run is only `await func(ctx)`: an `async def` function
        #: given directly (not by reference), taking the context, run on the loop. The
        #: engine then awaits it in the run's task without `run()` around it (once per
        #: fire) and turns what it returns into the run's outcome with `outcome_of`.
        self.direct: Callable[[RunContext], Awaitable[Any]] | None = None
        if (
            isolation == "thread"
            and not self._by_reference
            and self._shape.takes_context
            and inspect.iscoroutinefunction(self._func)
        ):
            self.direct = self._func
        if isolation == "process" and self.ref is None:
            raise HandlerNotPersistableError(
                f"{self.describe()} cannot run in a child process: it has no importable"
                " 'module:attr' reference (define it at module level, not as a lambda,"
                " closure or method)"
            )

    async def run(self, ctx: RunContext) -> HandlerOutcome:
        if self.isolation == "process":
            assert self.ref is not None
            return await run_isolated(
                self.ref,
                ctx,
                kill_grace_s=self.kill_grace_s,
                output_tail_bytes=self.output_tail_bytes,
            )
        if self._by_reference:
            func, shape = self._resolved_target()
        else:  # (no call: this runs at every fire)
            func, shape = self._func, self._shape
        if shape.is_async:
            result = func(ctx) if shape.takes_context else func()
            if type(result) is not CoroutineType and not inspect.isawaitable(result):
                return outcome_of(result)
            result = await result
            return _NO_OUTCOME if result is None else outcome_of(result)
        result = await SYNC_THREADS.run(func, *((ctx,) if shape.takes_context else ()))
        if inspect.isawaitable(result):
            result = await result
        return outcome_of(result)

    def to_dict(self) -> dict[str, Any]:
        if self.ref is None:
            raise HandlerNotPersistableError(
                f"{self.describe()} cannot be stored: it has no importable 'module:attr'"
                " reference (lambdas, closures, methods and partials have none)"
            )
        return {
            "kind": "callable",
            "ref": self.ref,
            "isolation": self.isolation,
            "kill_grace_s": self.kill_grace_s,
            "output_tail_bytes": self.output_tail_bytes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallableHandler:
        fields = checked_fields(data, kind="callable", required=("ref",), optional=_OPTIONAL_FIELDS)
        ref = fields.pop("ref")
        if not isinstance(ref, str):
            raise HandlerReferenceError(f"callable handler ref must be a string, got {ref!r}")
        return cls(ref, **fields)

    def describe(self) -> str:
        if self.ref is not None:
            return f"python {self.ref}"
        name = getattr(self._func, "__qualname__", None) or type(self._func).__qualname__
        return f"python {name}"

    def __repr__(self) -> str:
        return f"CallableHandler({self.ref or self._func!r}, isolation={self.isolation!r})"

    def _resolved_target(self) -> tuple[Callable[..., Any], CallShape]:
        """The function the reference names now (a reload may have replaced it)."""
        assert self.ref is not None
        func = resolve(self.ref)
        if func is self._func:
            return func, self._shape
        return func, CallShape.of(func, name=self.describe())


#: The outcome of a function that returned None (frozen, so one instance serves every run).
_NO_OUTCOME = HandlerOutcome()


def outcome_of(result: Any) -> HandlerOutcome:
    """The outcome of an attempt whose function returned `result`."""
    if result is None:
        return _NO_OUTCOME
    if isinstance(result, HandlerOutcome):
        tail = result.output_tail
        return HandlerOutcome(
            output_tail=None if tail is None else bound_text(tail, _OUTPUT_TAIL_CHARS),
            value=plain_value(result.value),
        )
    return HandlerOutcome(value=plain_value(result))
