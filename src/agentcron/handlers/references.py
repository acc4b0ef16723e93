"""Import references: `"package.module:attr"` strings that name a callable.

A reference is how a Python handler survives a restart or crosses into a child process: the
store keeps the string, and `resolve` imports it again. `reference_of` goes the other way and
returns None for anything that would not resolve back to the same object (lambdas, closures,
bound methods, partials).
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from typing import Any

from agentcron.error_text import describe_error

__all__ = ["HandlerReferenceError", "parse_reference", "reference_of", "resolve"]

_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_REFERENCE = re.compile(rf"^(?P<module>{_DOTTED}):(?P<attr>{_DOTTED})$")


class HandlerReferenceError(ValueError):
    """A handler reference or a handler definition cannot be used.

    Raised when the handler is created (at `add_job` time), never at fire time: the message
    names the reference or field and, for imports, the underlying error.
    """


def _shown(ref: object) -> str:
    """`repr(ref)` cut to 100 characters, for error messages (a reference may be huge)."""
    try:
        text = repr(ref)
    except Exception:  # an object's own __repr__ may raise
        text = f"<{type(ref).__name__} object>"
    return text if len(text) <= 100 else f"{text[:97]}..."


def parse_reference(ref: str) -> tuple[str, str]:
    """Split `"pkg.mod:attr.sub"` into `("pkg.mod", "attr.sub")`, or raise HandlerReferenceError."""
    match = _REFERENCE.match(ref) if isinstance(ref, str) else None
    if match is None:
        raise HandlerReferenceError(
            f"handler reference {_shown(ref)} is not of the form 'package.module:attribute'"
        )
    return match["module"], match["attr"]


def resolve(ref: str) -> Callable[..., Any]:
    """Import the callable named by `ref`.

    Any failure (bad syntax, import error, error while importing the module, missing
    attribute, not callable) raises HandlerReferenceError naming `ref` and the cause.
    """
    module_name, attr_path = parse_reference(ref)
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # a broken module can raise anything at import time
        raise HandlerReferenceError(
            f"cannot import handler reference {_shown(ref)}: {describe_error(exc)}"
        ) from exc
    for name in attr_path.split("."):
        try:
            obj = getattr(obj, name)
        except AttributeError as exc:
            raise HandlerReferenceError(
                f"cannot resolve handler reference {_shown(ref)}: {exc}"
            ) from exc
    if not callable(obj):
        raise HandlerReferenceError(
            f"handler reference {_shown(ref)} names a {type(obj).__name__}, which is not callable"
        )
    return obj  # type: ignore[no-any-return]


def reference_of(func: object) -> str | None:
    """The `"module:qualname"` that resolves back to `func` itself, or None if there is none."""
    module_name = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not isinstance(module_name, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    importable_name = _main_module_name() if module_name == "__main__" else module_name
    ref = f"{importable_name}:{qualname}"
    if importable_name is None or _REFERENCE.match(ref) is None:
        return None
    obj: Any = sys.modules.get(module_name)
    for name in qualname.split("."):
        obj = getattr(obj, name, None)
    return ref if obj is func else None


def _main_module_name() -> str | None:
    # `python -m pkg.mod` keeps the real name in __spec__; a plain script has none, and a
    # function defined there cannot be imported by another process.
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", None)
    return name if isinstance(name, str) else None
