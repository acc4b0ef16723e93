"""How to call a user's function: on the loop or in a thread, with the context or without.

Decided once, when the handler is created, so that a function agentcron cannot call (it needs
two arguments, say) is rejected at `add_job` time rather than at fire time.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentcron.handlers.references import HandlerReferenceError

__all__ = ["CallShape"]

#: Names of an optional first parameter that still asks for the run context.
_CONTEXT_NAMES = frozenset({"ctx", "context", "run_context"})


@dataclass(frozen=True, slots=True)
class CallShape:
    """`is_async`: returns an awaitable to run on the loop; `takes_context`: gets the ctx."""

    is_async: bool
    takes_context: bool

    @classmethod
    def of(cls, func: Callable[..., Any], *, name: str) -> CallShape:
        """Inspect `func`; raise HandlerReferenceError (naming `name`) if it cannot be called.

        The context is passed when the first positional parameter is required (or `*args`),
        or is optional but named `ctx`/`context`/`run_context`; otherwise nothing is passed.
        """
        if _is_generator_function(func):
            raise HandlerReferenceError(
                f"handler {name} is a generator function (it has a 'yield'): a generator"
                " function cannot be a handler, calling it would never run its body"
            )
        is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            getattr(func, "__call__", None)  # noqa: B004 - async callable objects
        )
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):
            return cls(is_async=is_async, takes_context=False)  # builtins without a signature
        takes_context = _wants_context(signature)
        try:
            if takes_context:
                signature.bind(object())
            else:
                signature.bind()
        except TypeError as exc:
            raise HandlerReferenceError(
                f"handler {name} cannot be called with {'the run context' if takes_context else 'no arguments'}"
                f" only ({exc}); it must take zero arguments or one (the run context)"
            ) from exc
        return cls(is_async=is_async, takes_context=takes_context)


def _is_generator_function(func: Callable[..., Any]) -> bool:
    """A sync or async generator function (or a callable object whose `__call__` is one):
    calling it only creates a generator, so its body would never run."""
    call = getattr(func, "__call__", None)  # noqa: B004 - generator callable objects
    return any(
        inspect.isgeneratorfunction(f) or inspect.isasyncgenfunction(f) for f in (func, call)
    )


def _wants_context(signature: inspect.Signature) -> bool:
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return True
        if parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            return parameter.default is inspect.Parameter.empty or parameter.name in _CONTEXT_NAMES
        return False
    return False
