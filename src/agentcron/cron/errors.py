"""The one exception type of `agentcron.cron`."""

from __future__ import annotations

__all__ = ["CronError", "shown"]


class CronError(ValueError):
    """An expression (or its time zone) cannot be parsed.

    The message is one line that names the field and the token, for example
    ``minute field: 61 is out of range 0-59``.
    """


def shown(text: str, limit: int = 24) -> str:
    """`text` as an error message repeats it: at most `limit` characters (then ``...``), with
    control characters, line breaks and other invisible ones written as escapes (``\\n``,
    ``\\x00``), so that a message stays one visible line whatever the input was."""
    cut = text if len(text) <= limit else text[:limit]
    if not cut.isprintable():
        cut = "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut)
    return cut if len(text) <= limit else cut + "..."
