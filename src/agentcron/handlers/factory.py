"""Turn what users give (functions, references, commands, URLs, dicts) into handlers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from agentcron.handlers.base import Handler
from agentcron.handlers.callable import CallableHandler, Isolation
from agentcron.handlers.command import Command
from agentcron.handlers.http import Http
from agentcron.handlers.references import HandlerReferenceError

__all__ = ["as_handler", "handler_from_dict"]

_FROM_DICT: dict[str, Callable[[Mapping[str, Any]], Handler]] = {
    "callable": CallableHandler.from_dict,
    "command": Command.from_dict,
    "http": Http.from_dict,
}


def as_handler(obj: object, *, isolation: Isolation = "thread") -> Handler:
    """The handler for `obj`, checked now so that bad input fails at `add_job` time.

    * a Handler (`Command`, `Http`, ...) is returned as is (`isolation` does not apply);
    * a `"package.module:attr"` string is imported now to check it, and again at each run;
    * an async callable runs on the loop; a sync one in a thread, or in a killable child
      process with `isolation="process"` (it must then be importable by reference).

    Raises HandlerReferenceError (a ValueError) for anything else, for references that do not
    import, and for callables that cannot take zero arguments or the run context.
    """
    if isinstance(obj, Handler) and not isinstance(obj, type):
        return obj
    if isinstance(obj, str) or callable(obj):
        return CallableHandler(obj, isolation=isolation)
    raise HandlerReferenceError(
        "a handler must be a callable, a 'package.module:attr' reference, a Command, an Http"
        f" or a Handler, got {type(obj).__name__} {obj!r}"
    )


def handler_from_dict(data: Mapping[str, Any]) -> Handler:
    """Rebuild a handler from `Handler.to_dict()` output.

    Raises HandlerReferenceError naming the unknown kind or fields, or the invalid value.
    """
    if not isinstance(data, Mapping):
        raise HandlerReferenceError(f"a handler definition must be a mapping, got {data!r}")
    kind = data.get("kind")
    build = _FROM_DICT.get(kind) if isinstance(kind, str) else None
    if build is None:
        raise HandlerReferenceError(
            f"unknown handler kind {kind!r} (expected one of: {', '.join(sorted(_FROM_DICT))})"
        )
    try:
        return build(data)
    except HandlerReferenceError:
        raise
    except (TypeError, ValueError) as exc:
        raise HandlerReferenceError(f"invalid {kind} handler definition: {exc}") from exc
