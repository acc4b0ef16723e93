"""Repeatable jobs: pure helpers shared by the backends.

A repeatable is a (name, data, cron, tz) spec kept by the backend. Its next occurrence is
enqueued as a delayed job whose id is derived from the spec's key and the fire time, so any
number of workers ticking at once enqueue each occurrence exactly once.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from agentcron.queue.base import QueueInputError, validate_job

__all__ = [
    "next_fire_ms",
    "occurrence_id",
    "occurrence_prefix",
    "repeat_key",
    "validate_repeatable",
]


def repeat_key(name: str, cron: str, tz: str) -> str:
    """A stable key for a (name, cron, tz) spec (hex, no ``:``)."""
    return hashlib.sha1(f"{name}\x00{cron}\x00{tz}".encode()).hexdigest()[:16]


def occurrence_id(key: str, fire_ms: int) -> str:
    """The job id of the occurrence of `key` firing at `fire_ms` (epoch milliseconds).

    ``repeat:<key>:<millis>`` is BullMQ's own shape for repeated job ids (Node.js BullMQ
    accepts a custom id with ``:`` only in that three-part shape); a custom `key` with ``:``
    is turned into ``-``.
    """
    return f"{occurrence_prefix(key)}{fire_ms}"


def occurrence_prefix(key: str) -> str:
    """What the job id of every occurrence of `key` begins with (`occurrence_id`)."""
    return f"repeat:{key.replace(':', '-')}:"


def next_fire_ms(cron: str, tz: str, after_ms: int) -> int | None:
    """The first fire of `cron` in `tz` strictly after `after_ms`, or None when none is left.

    Raises `QueueInputError` for a bad expression or time zone.
    """
    from agentcron.cron import CronError, CronExpression

    try:
        expression = CronExpression(cron, tz=tz)
        fire = expression.next(datetime.fromtimestamp(after_ms / 1000, UTC))
    except (CronError, ValueError, KeyError) as exc:
        raise QueueInputError(f"bad repeatable schedule {cron!r} in {tz!r}: {exc}") from None
    return None if fire is None else int(fire.timestamp() * 1000)


def validate_repeatable(name: str) -> None:
    """Raise `QueueInputError` when `name` could not be enqueued (checked before the spec is
    written: a spec whose jobs are refused would make every later tick fail)."""
    validate_job(
        name=name,
        priority=0,
        delay=0.0,
        attempts=1,
        job_id=None,
        remove_on_complete=False,
        remove_on_fail=False,
    )
