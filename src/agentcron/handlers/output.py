"""Bounded output: the tail of a byte stream, and plain copies of returned values.

Whatever a handler prints or returns ends up in the run log, the store and the dashboard, so
it is bounded here: output keeps only its last bytes, and a returned value is kept only if it
is plain JSON of a reasonable size (else its truncated `repr`). A handler that returns garbage
therefore never breaks the engine or the store.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["MAX_VALUE_CHARS", "OutputTail", "bound_text", "plain_value"]

#: Serialised size above which a returned value is replaced by its truncated repr.
MAX_VALUE_CHARS = 65_536
#: Length of the repr kept for values that are not plain JSON.
MAX_REPR_CHARS = 1_000


class OutputTail:
    """The last `limit_bytes` bytes written to it, and a count of those dropped before."""

    __slots__ = ("_buffer", "dropped_bytes", "limit_bytes")

    def __init__(self, limit_bytes: int) -> None:
        if limit_bytes < 1:
            raise ValueError(f"output tail limit must be at least 1 byte, got {limit_bytes}")
        self.limit_bytes = limit_bytes
        self.dropped_bytes = 0
        self._buffer = bytearray()

    def write(self, data: bytes) -> None:
        if len(data) >= self.limit_bytes:
            self.dropped_bytes += len(self._buffer) + len(data) - self.limit_bytes
            self._buffer[:] = data[-self.limit_bytes :]
            return
        self._buffer += data
        excess = len(self._buffer) - self.limit_bytes
        if excess > 0:
            del self._buffer[:excess]
            self.dropped_bytes += excess

    def raw(self) -> bytes:
        return bytes(self._buffer)

    def text(self) -> str:
        """The tail decoded as UTF-8 (undecodable bytes replaced), marked if it was cut."""
        body = self._buffer.decode("utf-8", errors="replace")
        if self.dropped_bytes:
            return f"[... {self.dropped_bytes} earlier bytes omitted ...]\n{body}"
        return body


def bound_text(text: object, limit_chars: int) -> str:
    """`text` as a str of at most about `limit_chars` characters, keeping its end."""
    value = text if isinstance(text, str) else _safe_repr(text)
    if len(value) <= limit_chars:
        return value
    return (
        f"[... {len(value) - limit_chars} earlier characters omitted ...]\n{value[-limit_chars:]}"
    )


#: Strings up to this length are kept as they are: even fully escaped (6 characters per
#: character, plus quotes) they stay under `MAX_VALUE_CHARS`.
_PLAIN_STR_CHARS = (MAX_VALUE_CHARS - 2) // 6
_INT64 = 2**63


def plain_value(value: Any) -> Any:
    """A JSON-ready copy of `value`, or its truncated repr if it is not plain, finite JSON."""
    # Fast path for the common trivial results (None, bool, small int, short str, finite
    # float): they are their own JSON copy, so the encode/decode round trip is skipped.
    kind = type(value)
    if (
        value is None
        or kind is bool
        or (kind is int and -_INT64 <= value < _INT64)
        or (kind is str and len(value) <= _PLAIN_STR_CHARS)
        or (kind is float and math.isfinite(value))
    ):
        return value
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return _truncated_repr(value)
    if len(text) > MAX_VALUE_CHARS:
        return _truncated_repr(value)
    return json.loads(text)


def _truncated_repr(value: Any) -> str:
    text = _safe_repr(value)
    if len(text) > MAX_REPR_CHARS:
        return text[:MAX_REPR_CHARS] + "..."
    return text


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # a broken __repr__ must not fail the run
        return f"<{type(value).__name__} object (repr failed)>"
