"""The one exception type of `agentcron.cron`."""

from __future__ import annotations

__all__ = ["CronError"]


class CronError(ValueError):
    """An expression (or its time zone) cannot be parsed.

    The message is one line that names the field and the token, for example
    ``minute field: 61 is out of range 0-59``.
    """
