"""The `Queue` protocol, the values it moves, and `open_queue`.

A queue holds jobs in one of five states, as in BullMQ:

* ``waiting``: ready to run, taken in order of priority (0 first, then 1 before 2 ... up to
  ``MAX_PRIORITY``), then of the time it became ready (FIFO within a priority);
* ``delayed``: waiting for its time (a ``delay`` at ``add`` or a retry backoff);
* ``active``: claimed by a worker that holds a *lease* (a lock with an expiry). The worker
  renews the lease while the handler runs; a job whose lease expired (its worker died) is
  *stalled* and goes back to ``waiting`` with the stalled attempt counted;
* ``completed``: the handler returned (kept per ``remove_on_complete``);
* ``failed``: every attempt failed, or it stalled more than ``max_stalled`` times: the dead
  letter, kept for inspection (per ``remove_on_fail``) and put back with ``retry_failed``.

A paused queue accepts jobs but hands none out; ``counts()["paused"]`` then reports the jobs
that would be waiting (BullMQ's convention).

Invariants every backend keeps (``tests/queue/test_contract.py`` checks them):

* ``add`` validates before it writes: bad input raises `QueueInputError` and enqueues nothing.
  When it returns, the job is durable (SQLite: committed; Redis: acknowledged).
* A job id is unique in its queue: adding an existing id adds nothing and returns that id.
* A job is active with at most one live lease; a worker whose lease was taken over cannot
  complete or fail the job any more (fencing by lease token).
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from urllib.parse import parse_qs, urlsplit

from agentcron.clock import Clock
from agentcron.events import EventBus

if TYPE_CHECKING:
    from agentcron.queue.worker import Worker

__all__ = [
    "MAX_COUNT",
    "MAX_DELAY_S",
    "MAX_JOBS_LIMIT",
    "MAX_JOB_ID_LENGTH",
    "MAX_JOB_NAME_LENGTH",
    "MAX_PRIORITY",
    "MAX_QUEUE_NAME_LENGTH",
    "STATES",
    "Backoff",
    "BulkJob",
    "Job",
    "JobInfo",
    "Queue",
    "QueueConnectionError",
    "QueueError",
    "QueueInputError",
    "Retention",
    "check_jobs_page",
    "check_queue_name",
    "open_queue",
    "queue_name_problem",
]

#: BullMQ's highest priority number (2**21); 0 means "no priority" and runs first.
MAX_PRIORITY = 2**21
#: The job states, in the order `counts()` reports them (plus "paused").
STATES = ("waiting", "active", "completed", "failed", "delayed")
CleanState = Literal["completed", "failed", "waiting", "delayed"]

#: The longest delay, backoff or worker timing a queue takes: 100 years. Longer ones
#: overflow the backends' millisecond integers (SQLite's and msgpack's 64 bits), so `add`
#: refuses them and retry delays are capped at it.
MAX_DELAY_S = 100 * 365 * 86_400
#: The longest grace `clean` takes as given: more than any job's age (a longer one removes
#: the same jobs, none).
MAX_CLEAN_GRACE_S = MAX_DELAY_S
#: The largest count (`attempts`, a retention count) a job takes.
MAX_COUNT = 2**31 - 1
#: The largest `limit` `clean` takes (SQLite's 64-bit integers).
MAX_CLEAN_LIMIT = 2**63 - 1


def clean_grace_ms(grace: float, limit: int, state: str) -> int:
    """Check the arguments of `Queue.clean` (QueueInputError) and return `grace` in whole
    milliseconds, capped at `MAX_CLEAN_GRACE_S`."""
    if state not in ("completed", "failed", "waiting", "delayed"):
        raise QueueInputError(
            f"clean state must be completed, failed, waiting or delayed, got {state!r}"
        )
    if isinstance(grace, bool) or not isinstance(grace, int | float):
        raise QueueInputError(
            f"clean grace must be a number of seconds >= 0, got {type(grace).__name__} {grace!r}"
        )
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise QueueInputError(
            f"clean limit must be an integer from 0 to {MAX_CLEAN_LIMIT} (0 = all),"
            f" got {type(limit).__name__} {limit!r}"
        )
    if not (grace >= 0 and math.isfinite(grace)) or not 0 <= limit <= MAX_CLEAN_LIMIT:
        raise QueueInputError(
            f"clean needs a finite grace >= 0 seconds and a limit from 0 to {MAX_CLEAN_LIMIT},"
            f" got {grace!r} and {limit!r}"
        )
    return round(min(grace, MAX_CLEAN_GRACE_S) * 1000)


#: `True` removes the job when it finishes; an int keeps that many most recent ones;
#: `False` keeps all (BullMQ's default).
Retention = bool | int


class QueueError(Exception):
    """A queue cannot do what was asked (the message says why)."""


class QueueInputError(QueueError, ValueError):
    """Bad input to a queue call (unserialisable data, priority out of range, bad URL, ...)."""


# -- queue names -----------------------------------------------------------------------------
#: The longest queue name (a job's `queue` option has the same limit).
MAX_QUEUE_NAME_LENGTH = 200


def queue_name_problem(name: object) -> str | None:
    """Why `name` cannot name a queue, or None. The one rule of every entry point: the
    `agentcron queue` commands, `agentcron worker`, a job's `queue` option (`jobs add
    --queue`, agentcron.toml, the HTTP API), `open_queue` and the queue classes.

    A name is 1 to 200 printable characters, not blank, without ':' (BullMQ's key
    separator), without '/' and not '.' or '..' (the dashboard addresses a queue as
    /api/queues/{name}), and without control characters (it is printed on terminals and
    on one line in logs: an ESC or a newline there could rewrite the screen or forge a
    line).
    """
    if not isinstance(name, str) or not name.strip():
        return "must be a non-empty text"
    if len(name) > MAX_QUEUE_NAME_LENGTH:
        return f"is {len(name)} characters long (at most {MAX_QUEUE_NAME_LENGTH})"
    if not name.isprintable():
        return "may not contain control or invisible characters (newlines, tabs, escapes ...)"
    if ":" in name or "/" in name:
        return "may not contain ':' or '/'"
    if name in (".", ".."):
        return "may not be '.' or '..'"
    return None


def check_queue_name(name: object) -> str:
    """`name`, or `QueueInputError` saying what is wrong with it (`queue_name_problem`)."""
    problem = queue_name_problem(name)
    if problem is not None:
        shown = repr(name) if not isinstance(name, str) or len(name) <= 60 else repr(name[:57])
        raise QueueInputError(f"queue name {shown} {problem}")
    return str(name)


class QueueConnectionError(QueueError):
    """The queue's backend cannot be reached or refused us (Redis down, auth refused, ...)."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before retrying a failed attempt.

    ``fixed``: ``delay_s`` every time. ``exponential``: ``delay_s * 2**(n-1)`` after the n-th
    failed attempt (BullMQ's formula). ``custom``: the worker's ``backoff_strategy(attempt,
    error, job)`` decides (seconds; negative = give up now, i.e. dead letter).
    """

    kind: Literal["fixed", "exponential", "custom"] = "fixed"
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "exponential", "custom"):
            raise QueueInputError(
                f"unknown backoff kind {self.kind!r} (fixed, exponential, custom)"
            )
        if not is_seconds(self.delay_s) or self.delay_s < 0:
            raise QueueInputError(
                f"backoff delay must be from 0 to {MAX_DELAY_S} seconds, got {self.delay_s!r}"
            )

    def delay_after(self, failed_attempts: int) -> float:
        """Seconds to wait after `failed_attempts` attempts failed (fixed/exponential only),
        at most `MAX_DELAY_S`."""
        if self.kind == "exponential":
            # 2.0**n overflows from n = 1024 on: the exponent stops at 1023, min() caps the rest.
            factor = 2.0 ** min(max(failed_attempts - 1, 0), 1023)
            return min(self.delay_s * factor, MAX_DELAY_S) if self.delay_s else 0.0
        return self.delay_s


@dataclass(frozen=True, slots=True)
class BulkJob:
    """One job for `Queue.add_bulk`; the fields mean what `Queue.add`'s arguments mean."""

    name: str
    data: Any = None
    priority: int = 0
    delay: float = 0.0
    attempts: int = 1
    backoff: Backoff | None = None
    job_id: str | None = None
    remove_on_complete: Retention = False
    remove_on_fail: Retention = False


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A snapshot of one job, as `Queue.get` returns it."""

    id: str
    name: str
    data: Any
    state: str
    priority: int = 0
    attempts: int = 1
    attempts_made: int = 0
    progress: float = 0.0
    result: Any = None
    error: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (times as ISO-8601)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


ProgressSink = Callable[["Job", float], Awaitable[None]]


class Job:
    """A claimed job as a handler sees it: ``id``, ``name``, ``data``, ``attempt`` (from 1).

    ``await job.progress(pct)`` records progress (0-100) and publishes `QueueJobProgress`.
    The other attributes are for the worker and backends.
    """

    __slots__ = (
        "attempt",
        "attempts",
        "backoff",
        "data",
        "id",
        "keep_completed",
        "keep_failed",
        "name",
        "priority",
        "raw",
        "token",
        "_sink",
    )

    def __init__(
        self,
        *,
        id: str,
        name: str,
        data: Any,
        attempt: int,
        attempts: int = 1,
        priority: int = 0,
        backoff: Backoff | None = None,
        token: str = "",
        keep_completed: Retention = False,
        keep_failed: Retention = False,
        raw: Any = None,
    ) -> None:
        self.id = id
        self.name = name
        self.data = data
        self.attempt = attempt
        self.attempts = attempts
        self.priority = priority
        self.backoff = backoff
        self.token = token
        self.keep_completed = keep_completed
        self.keep_failed = keep_failed
        self.raw = raw  # backend-specific handle (row id, BullMQ job hash, ...)
        self._sink: ProgressSink | None = None

    async def progress(self, pct: float) -> None:
        """Record this job's progress, a number from 0 to 100."""
        if not isinstance(pct, int | float) or not 0 <= pct <= 100:
            raise QueueInputError(f"progress must be a number from 0 to 100, got {pct!r}")
        if self._sink is not None:
            await self._sink(self, float(pct))

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, name={self.name!r}, attempt={self.attempt})"


Handler = Callable[[Job], Awaitable[Any]]


@runtime_checkable
class Queue(Protocol):
    """One named queue on one backend. Every I/O method is a coroutine function."""

    name: str
    url: str

    async def add(
        self,
        name: str,
        data: Any = None,
        *,
        priority: int = 0,
        delay: float = 0.0,
        attempts: int = 1,
        backoff: Backoff | None = None,
        job_id: str | None = None,
        remove_on_complete: Retention = False,
        remove_on_fail: Retention = False,
    ) -> str:
        """Enqueue one job and return its id (the existing id when `job_id` is taken).

        ``data`` must be JSON-serialisable. ``delay`` is in seconds (>= 0). ``attempts`` >= 1.
        """
        ...

    async def add_bulk(self, jobs: Sequence[BulkJob]) -> list[str]:
        """Enqueue several jobs atomically (all or none) and return their ids in order."""
        ...

    async def get(self, job_id: str) -> JobInfo | None:
        """The job's snapshot, or None when no such job is kept."""
        ...

    async def counts(self) -> dict[str, int]:
        """``{"waiting", "active", "completed", "failed", "delayed", "paused"}`` counts."""
        ...

    async def jobs(self, state: str, *, offset: int = 0, limit: int = 50) -> list[JobInfo]:
        """Up to `limit` (1 to `MAX_JOBS_LIMIT`) jobs in `state` (one of `STATES`), skipping
        the first `offset`, as `get` would return them. The order:

        * ``waiting``: the order they will run (priority, then FIFO). While the queue is
          paused its waiting jobs are listed here too, with state ``paused`` (as `get`);
        * ``delayed``: by due time, soonest first;
        * ``active``: by start, oldest first (SQLite orders by lease expiry, which is the
          start order while leases are of one length and not yet renewed);
        * ``completed``, ``failed``: newest first (by finish time).

        A snapshot, like BullMQ's ``getJobs``: jobs that change state between two pages
        may be skipped or shown twice. Bad arguments raise `QueueInputError`.
        """
        ...

    async def pause(self) -> None:
        """Stop handing out jobs (running ones finish); publishes `QueuePaused`."""
        ...

    async def resume(self) -> None:
        """Hand out jobs again; publishes `QueueResumed`."""
        ...

    async def is_paused(self) -> bool: ...

    async def clean(
        self, grace: float, limit: int = 0, state: CleanState = "completed"
    ) -> list[str]:
        """Remove up to `limit` (0 = all) jobs in `state` older than `grace` seconds; their ids."""
        ...

    async def retry_failed(self) -> int:
        """Move every failed (dead-letter) job back to waiting with fresh attempts; how many."""
        ...

    async def add_repeatable(
        self, name: str, data: Any = None, *, cron: str, tz: str = "UTC", key: str | None = None
    ) -> str:
        """Enqueue `name` at every fire time of `cron` in `tz`; returns the repeat key.

        The next occurrence is always enqueued (delayed) with a deterministic job id, so
        several workers never enqueue one occurrence twice.
        """
        ...

    async def remove_repeatable(self, key: str) -> bool: ...

    def worker(
        self,
        handler: Handler,
        *,
        concurrency: int = 1,
        rate_limit: tuple[int, float] | None = None,
        **options: Any,
    ) -> Worker:
        """A `Worker` running `handler(job)` for this queue's jobs (see `agentcron.queue.worker`)."""
        ...

    async def close(self) -> None: ...


# -- validation shared by the backends --------------------------------------------------
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def encode_data(data: Any) -> str:
    """Data as compact JSON; `QueueInputError` when it cannot be serialised."""
    try:
        return _ENCODE(data)
    except (TypeError, ValueError, RecursionError) as exc:
        raise QueueInputError(f"job data must be JSON-serialisable: {exc}") from None


def is_seconds(value: Any) -> bool:
    """True for a number of seconds a backend can store: finite, at most `MAX_DELAY_S`."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value <= MAX_DELAY_S
    )


def is_count(value: Any, least: int) -> bool:
    """True for an integer (not a bool) from `least` to `MAX_COUNT`."""
    return isinstance(value, int) and not isinstance(value, bool) and least <= value <= MAX_COUNT


#: The most jobs one `Queue.jobs` call returns (a page: page on with `offset`).
MAX_JOBS_LIMIT = 1000


def check_jobs_page(state: object, offset: object, limit: object) -> str:
    """Check the arguments of `Queue.jobs` (`QueueInputError` naming the bad one) and
    return `state`."""
    if not isinstance(state, str) or state not in STATES:
        raise QueueInputError(f"state must be one of {', '.join(STATES)}, got {state!r}")
    if not is_count(offset, 0):
        raise QueueInputError(f"offset must be an integer from 0 to {MAX_COUNT}, got {offset!r}")
    if not is_count(limit, 1) or int(limit) > MAX_JOBS_LIMIT:  # type: ignore[call-overload]
        raise QueueInputError(f"limit must be an integer from 1 to {MAX_JOBS_LIMIT}, got {limit!r}")
    return state


def json_safe(value: Any) -> Any:
    """`value` when it is JSON, else its repr (a handler's result is stored as JSON)."""
    try:
        _ENCODE(value)
    except (TypeError, ValueError, RecursionError):
        try:
            return repr(value)
        except Exception:
            return f"<{type(value).__name__} object>"
    return value


#: The longest job name: the store's longest job name (a scheduled job's fires are named
#: after its id; a handler reference `package.module:function` fits).
MAX_JOB_NAME_LENGTH = 500
#: The longest custom job id: a scheduled fire's occurrence key (a job id of up to 200
#: characters, '@' and the fire time) and a repeatable's occurrence id fit.
MAX_JOB_ID_LENGTH = 300
#: The longest custom repeat key (as the store's job ids).
MAX_REPEAT_KEY_LENGTH = 200


def check_text(value: object, field: str, max_length: int) -> str:
    """`value` when it is a non-empty string of at most `max_length` characters that UTF-8
    can encode, else `QueueInputError` naming `field`. A lone surrogate (what Python makes of
    bytes that are not UTF-8 in a command line or a file name, such as ``"\\udcff"``) can be
    neither stored nor sent."""
    if not isinstance(value, str) or not value:
        raise QueueInputError(f"{field} must be a non-empty string, got {value!r}")
    if len(value) > max_length:
        raise QueueInputError(
            f"{field} is {len(value)} characters long (at most {max_length}): {value[:40]!r}..."
        )
    check_utf8(value, field)
    return value


def check_utf8(value: str, field: str) -> None:
    """`QueueInputError` naming `field` when `value` is not text UTF-8 can encode."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise QueueInputError(
            f"{field} must be valid UTF-8 text, got {value[:60]!r} (character"
            f" {value[exc.start]!r} at position {exc.start}: bytes that are not UTF-8?)"
        ) from None


def validate_job(
    *,
    name: str,
    priority: int,
    delay: float,
    attempts: int,
    job_id: str | None,
    remove_on_complete: Retention,
    remove_on_fail: Retention,
) -> None:
    """Raise `QueueInputError` for anything `add` must refuse (before writing anything)."""
    check_text(name, "job name", MAX_JOB_NAME_LENGTH)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise QueueInputError(f"priority must be an integer, got {priority!r}")
    if not 0 <= priority <= MAX_PRIORITY:
        raise QueueInputError(f"priority must be between 0 and {MAX_PRIORITY}, got {priority}")
    if not is_seconds(delay) or delay < 0:
        raise QueueInputError(
            f"delay must be a number of seconds from 0 to {MAX_DELAY_S}, got {delay!r}"
        )
    if not is_count(attempts, 1):
        raise QueueInputError(
            f"attempts must be an integer from 1 to {MAX_COUNT}, got {attempts!r}"
        )
    if job_id is not None:
        check_text(job_id, "job_id", MAX_JOB_ID_LENGTH)
    if job_id is not None and job_id.isdigit():
        # BullMQ reserves integer ids for its own counter.
        raise QueueInputError(f"job_id must not be an integer string, got {job_id!r}")
    for label, keep in (
        ("remove_on_complete", remove_on_complete),
        ("remove_on_fail", remove_on_fail),
    ):
        if not isinstance(keep, bool) and not is_count(keep, 0):
            raise QueueInputError(
                f"{label} must be True, False or a count from 0 to {MAX_COUNT}, got {keep!r}"
            )


def keep_count(keep: Retention) -> int:
    """Retention as a count of jobs to keep: -1 = all, 0 = none, N = the N most recent."""
    if keep is True:
        return 0
    if keep is False:
        return -1
    return int(keep)


def retention_from_count(count: int | None) -> Retention:
    if count is None or count < 0:
        return False
    return True if count == 0 else count


# -- open_queue -------------------------------------------------------------------------
def open_queue(
    url: str,
    name: str,
    *,
    clock: Clock | None = None,
    events: EventBus | None = None,
    **options: Any,
) -> Queue:
    """Open queue `name` on the backend named by `url`.

    * ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (query option
      ``synchronous=NORMAL|FULL``, as the store's URL; `SqliteQueue`'s ``busy_timeout_ms``
      is an `options` keyword);
    * ``redis://[:password@]host:port/db`` or ``rediss://...`` (extra ``redis``);
    * ``memory://`` (one process, for tests and experiments).

    Nothing connects until the first call; a malformed URL raises `QueueInputError` here.
    """
    check_queue_name(name)
    scheme = urlsplit(url).scheme.lower() if isinstance(url, str) else ""
    if scheme == "sqlite":
        from agentcron.queue.sqlite import SqliteQueue

        path, query = sqlite_path(url)
        return SqliteQueue(path, name, clock=clock, events=events, **query, **options)
    if scheme in ("redis", "rediss"):
        from agentcron.queue.redis import RedisQueue

        return RedisQueue(url, name, events=events, **options)
    if scheme == "memory":
        from agentcron.queue.sqlite import SqliteQueue

        return SqliteQueue(":memory:", name, clock=clock, events=events, **options)
    raise QueueInputError(
        f"unknown queue URL {url!r}: use sqlite:///path, redis://host:port/db or memory://"
    )


def sqlite_path(url: str) -> tuple[str, dict[str, Any]]:
    """The file path and options of a ``sqlite:///...`` URL."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise QueueInputError(f"sqlite URL must look like sqlite:///path/to.db, got {url!r}")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise QueueInputError(f"sqlite URL has no file path: {url!r}")
    query: dict[str, Any] = {}
    # The URL is the store's too (`--store`, SCHEDULER_STORE): an option the store refuses
    # would work here and fail there, so only the store's options are taken.
    for key, values in parse_qs(parts.query, keep_blank_values=True).items():
        if key == "synchronous" and values[-1].upper() in ("NORMAL", "FULL"):
            query["synchronous"] = values[-1].upper()
        elif key == "synchronous":
            raise QueueInputError(
                f"sqlite option synchronous must be NORMAL or FULL, got {values[-1]!r}"
            )
        else:
            raise QueueInputError(
                f"unknown sqlite queue option {key!r} in {url!r}: the only one is"
                " ?synchronous=NORMAL|FULL (in Python, pass busy_timeout_ms= to open_queue)"
            )
    return path, query


@dataclass(slots=True)
class RateLimit:
    """At most `max_jobs` jobs start per `per_s` seconds, queue-wide (fixed window)."""

    max_jobs: int
    per_s: float

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_jobs, bool)
            or not isinstance(self.max_jobs, int)
            or self.max_jobs < 1
        ):
            raise QueueInputError(f"rate limit needs max >= 1 jobs, got {self.max_jobs!r}")
        if not is_seconds(self.per_s) or not self.per_s > 0:
            raise QueueInputError(
                f"rate limit needs a period > 0 and <= {MAX_DELAY_S} seconds, got {self.per_s!r}"
            )
