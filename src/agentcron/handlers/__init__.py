"""Handlers: the work a job does — a Python callable, a command, or an HTTP call.

`as_handler` turns what users give into a `Handler`; `handler_from_dict` rebuilds one from
its `to_dict()` (how jobs survive a restart). The contract with the engine is in
`agentcron.handlers.base`.
"""

from __future__ import annotations

from agentcron.handlers.base import (
    Handler,
    HandlerError,
    HandlerNotPersistableError,
    HandlerOutcome,
    RunContext,
)
from agentcron.handlers.callable import CallableHandler, Isolation
from agentcron.handlers.command import Command, CommandExitError
from agentcron.handlers.factory import as_handler, handler_from_dict
from agentcron.handlers.http import Http, HttpStatusError
from agentcron.handlers.isolated import IsolatedCallError
from agentcron.handlers.references import HandlerReferenceError

__all__ = [
    "CallableHandler",
    "Command",
    "CommandExitError",
    "Handler",
    "HandlerError",
    "HandlerNotPersistableError",
    "HandlerOutcome",
    "HandlerReferenceError",
    "Http",
    "HttpStatusError",
    "IsolatedCallError",
    "Isolation",
    "RunContext",
    "as_handler",
    "handler_from_dict",
]
