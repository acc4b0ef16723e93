"""Job definitions (the data) and their codec to and from `StoredJob.definition`.

A `Job` is frozen and validated when built (`build_job`), so a bad option raises
`JobConfigError` naming the field at `add_job` time, never at fire time. The codec writes
only non-default options, and shares the dicts of shared triggers and handlers, so that
100,000 stored jobs stay small.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from agentcron.clock import utc
from agentcron.handlers import as_handler, handler_from_dict
from agentcron.handlers.base import (
    Handler,
    HandlerError,
    HandlerNotPersistableError,
    HandlerOutcome,
    RunContext,
)
from agentcron.policies.circuit import CircuitBreaker
from agentcron.policies.errors import (
    JobConfigError,
    non_negative,
    positive,
    require,
    shown,
    within_max_duration,
)
from agentcron.policies.misfire import Misfire
from agentcron.policies.overlap import Overlap
from agentcron.policies.retry import Retry
from agentcron.triggers import (
    CronTrigger,
    Reboot,
    Trigger,
    coerce_trigger,
    require_fires,
    resolve_tz,
    tz_name,
)

__all__ = [
    "JOB_OPTIONS",
    "MAX_ID_LENGTH",
    "MAX_TAGS",
    "MAX_TAG_LENGTH",
    "TAG_FORBIDDEN_CLASS",
    "Job",
    "JobConfigError",
    "UnavailableHandler",
    "build_job",
    "coerce_handler",
    "handler_to_dict",
    "job_from_definition",
    "job_id_problem",
    "job_to_definition",
    "next_nominal_fire",
    "tags_problem",
    "update_job",
]

#: The shared default policies (frozen, so every job can point at the same ones).
DEFAULT_OVERLAP = Overlap.from_value("skip")
NO_RETRY = Retry.from_value(None)
DEFAULT_MISFIRE = Misfire.from_value(None)

#: Options accepted by `add_job` / decorators besides id, trigger and handler.
JOB_OPTIONS = frozenset(
    {
        "name",
        "timezone",
        "enabled",
        "tags",
        "timeout",
        "overlap",
        "retry",
        "misfire",
        "circuit",
        "jitter",
        "queue",
        "start",
        "end",
        "max_runs",
        "expect_every",
        "isolation",
        "description",
        "disabled_reason",
        "concurrency_group",
    }
)


@dataclass(frozen=True, slots=True)
class _Options:
    # Everything of a `Job` but id, trigger and handler; shared by the jobs that agree.
    name: str = ""
    timezone: str = "UTC"
    enabled: bool = True
    tags: tuple[str, ...] = ()
    timeout_s: float | None = None
    overlap: Overlap = DEFAULT_OVERLAP
    retry: Retry = NO_RETRY
    misfire: Misfire = DEFAULT_MISFIRE
    circuit: CircuitBreaker | None = None
    jitter_s: float = 0.0
    queue: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    max_runs: int | None = None
    expect_every_s: float | None = None
    description: str = ""
    disabled_reason: str = ""
    concurrency_group: str | None = None


_OPTION_NAMES = tuple(f.name for f in dataclasses.fields(_Options))
_option_values = operator.attrgetter(*_OPTION_NAMES)
_SHARED_OPTIONS: dict[tuple[object, ...], _Options] = {}


def _shared_options(options: _Options) -> _Options:
    """One `_Options` per distinct set of options (the types are part of the key, so a
    job never gets `1` for its `1.0`)."""
    values = _option_values(options)
    key = (*values, *map(type, values))
    try:
        hit = _SHARED_OPTIONS.get(key)
    except TypeError:  # an unhashable value (e.g. tags as a list): not shared
        return options
    if hit is not None:
        return hit
    if len(_SHARED_OPTIONS) >= 4096:
        _SHARED_OPTIONS.clear()
    _SHARED_OPTIONS[key] = options
    return options


@dataclass(frozen=True, kw_only=True, init=False)
class Job:
    """One job: what to run, when, and under which policies (DESIGN 2.3)."""

    # Memory: a job holds four references; its options (every field after `handler`) are
    # one `_Options` shared by the jobs with equal options, read through properties.
    __slots__ = ("_options", "handler", "id", "trigger")
    if TYPE_CHECKING:  # not a dataclass field
        _options: _Options

    id: str
    trigger: Trigger
    handler: Handler
    name: str = ""
    timezone: str = "UTC"
    enabled: bool = True
    tags: tuple[str, ...] = ()
    timeout_s: float | None = None
    overlap: Overlap = field(default_factory=lambda: DEFAULT_OVERLAP)
    retry: Retry = field(default_factory=lambda: NO_RETRY)
    misfire: Misfire = field(default_factory=lambda: DEFAULT_MISFIRE)
    circuit: CircuitBreaker | None = None
    jitter_s: float = 0.0
    queue: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    max_runs: int | None = None
    expect_every_s: float | None = None
    description: str = ""
    #: Why the job is disabled (e.g. "no handler configured"); shown wherever jobs are listed.
    disabled_reason: str = ""
    #: Jobs sharing a group run at most `Scheduler(concurrency_limits={group: n})` at once.
    concurrency_group: str | None = None

    def __init__(
        self,
        *,
        id: str,
        trigger: Trigger,
        handler: Handler,
        name: str = "",
        timezone: str = "UTC",
        enabled: bool = True,
        tags: tuple[str, ...] = (),
        timeout_s: float | None = None,
        overlap: Overlap = DEFAULT_OVERLAP,
        retry: Retry = NO_RETRY,
        misfire: Misfire = DEFAULT_MISFIRE,
        circuit: CircuitBreaker | None = None,
        jitter_s: float = 0.0,
        queue: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        max_runs: int | None = None,
        expect_every_s: float | None = None,
        description: str = "",
        disabled_reason: str = "",
        concurrency_group: str | None = None,
    ) -> None:
        options = _Options(
            name=name,
            timezone=timezone,
            enabled=enabled,
            tags=tags,
            timeout_s=timeout_s,
            overlap=overlap,
            retry=retry,
            misfire=misfire,
            circuit=circuit,
            jitter_s=jitter_s,
            queue=queue,
            start=start,
            end=end,
            max_runs=max_runs,
            expect_every_s=expect_every_s,
            description=description,
            disabled_reason=disabled_reason,
            concurrency_group=concurrency_group,
        )
        _set_job(self, id, trigger, handler, _shared_options(options))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuilt_job, (self.id, self.trigger, self.handler, self._options))

    @property
    def display_name(self) -> str:
        return self.name or self.id

    @property
    def is_reboot(self) -> bool:
        return isinstance(self.trigger, Reboot)

    @property
    def circuit_name(self) -> str | None:
        if self.circuit is None:
            return None
        return self.circuit.name or f"job:{self.id}"


def _set_job(job: Job, job_id: str, trigger: Trigger, handler: Handler, options: _Options) -> None:
    # Job is frozen: its slots are set through their descriptors (`object.__setattr__`
    # would look each one up by name; this is on the path of every `add_job`).
    _SET_ID(job, job_id)
    _SET_TRIGGER(job, trigger)
    _SET_HANDLER(job, handler)
    _SET_OPTIONS(job, options)


_SET_ID, _SET_TRIGGER, _SET_HANDLER, _SET_OPTIONS = (
    getattr(Job, name).__set__ for name in ("id", "trigger", "handler", "_options")
)


def _rebuilt_job(job_id: str, trigger: Trigger, handler: Handler, options: _Options) -> Job:
    job = Job.__new__(Job)
    _set_job(job, job_id, trigger, handler, options)
    return job


def _plain_job(job_id: str, trigger: Trigger, handler: Handler, timezone: str) -> Job:
    """`Job(id=..., trigger=..., handler=..., timezone=...)`, without building options."""
    options = _PLAIN_OPTIONS.get(timezone)
    if options is None:
        options = _PLAIN_OPTIONS[timezone] = _shared_options(_Options(timezone=timezone))
    return _rebuilt_job(job_id, trigger, handler, options)


_DEFAULT_OPTIONS = _shared_options(_Options())
#: The options of `build_job` calls with no option but `timezone`, by zone.
_PLAIN_OPTIONS: dict[str, _Options] = {"UTC": _DEFAULT_OPTIONS}

for _name in _OPTION_NAMES:  # each option reads through to the shared `_Options`
    setattr(Job, _name, property(operator.attrgetter(f"_options.{_name}")))


def next_nominal_fire(job: Job, after: datetime) -> datetime | None:
    """The job's next fire strictly after `after`, within its `start`/`end` window
    (`max_runs` is counted by the engine)."""
    # Through `_options`, not the option properties: this runs at every fire, and a
    # property read costs about three slot reads.
    options = job._options
    start = options.start
    if start is not None and after < start:
        after = start - timedelta(microseconds=1)
    fire = job.trigger.next_fire(after)
    if fire is None:
        return None
    end = options.end
    if end is not None and fire > end:
        return None
    return fire


# -- handlers ------------------------------------------------------------------------
class UnavailableHandler:
    """Stands in for a stored handler that this process cannot rebuild (e.g. a closure
    registered from code): the job stays listed but is not scheduled until code registers
    it again."""

    def __init__(self, data: dict[str, Any], reason: str) -> None:
        self.data = data
        self.reason = reason

    async def run(self, ctx: RunContext) -> HandlerOutcome:
        raise HandlerError(f"handler not available in this process: {self.reason}")

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def describe(self) -> str:
        return str(self.data.get("description") or f"unavailable ({self.reason})")


def coerce_handler(obj: object, *, isolation: str | None = None) -> Handler:
    """Anything `agentcron.handlers.as_handler` accepts to a `Handler`; bad references raise
    `JobConfigError` (a ValueError) naming the `handler` field, at `add_job` time."""
    if isolation not in (None, "thread", "process"):  # (no message built on success)
        raise JobConfigError(
            "isolation", f"unknown isolation {isolation!r}; use 'thread' or 'process'"
        )
    key = (id(obj), isolation)
    hit = _HANDLER_CACHE.get(key)
    if hit is not None and hit[0] is obj:
        return hit[1]
    try:
        if isolation == "process":
            handler = as_handler(obj, isolation="process")
        else:
            handler = as_handler(obj)
    except ValueError as exc:
        raise JobConfigError("handler", str(exc)) from exc
    if len(_HANDLER_CACHE) >= 4096:
        _HANDLER_CACHE.clear()
    # Many jobs registered with one function share its (stateless) handler.
    _HANDLER_CACHE[key] = (obj, handler)
    return handler


_HANDLER_CACHE: dict[tuple[int, str | None], tuple[object, Handler]] = {}


def handler_to_dict(handler: Handler) -> dict[str, Any]:
    """The handler's persisted reference; a non-persistable one (lambda, closure) is stored
    as `{"type": "unavailable", ...}` and comes back as an `UnavailableHandler`."""
    try:
        return handler.to_dict()
    except HandlerNotPersistableError as exc:
        return {"type": "unavailable", "description": handler.describe(), "reason": str(exc)}


def handler_from_stored(data: dict[str, Any]) -> Handler:
    """Rebuild a stored handler; one this process cannot rebuild becomes an
    `UnavailableHandler` (the job is listed, not scheduled)."""
    if data.get("type") == "unavailable":
        return UnavailableHandler(data, str(data.get("reason", "registered from code")))
    try:
        return handler_from_dict(data)
    except (ValueError, ImportError) as exc:
        return UnavailableHandler(data, str(exc))


# -- building ------------------------------------------------------------------------
def _seconds(value: object, field_name: str) -> float | None:
    """Seconds from a number or a timedelta, finite and at most 100 years (longer ones
    overflow `datetime` arithmetic at fire time: `now + timedelta(seconds=1e300)`)."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an int such as 10**400
            seconds = math.inf
        if not math.isfinite(seconds):  # inf passed `positive` and meant "never"
            raise JobConfigError(
                field_name, f"expected a finite number of seconds, got {shown(value)}"
            )
    else:
        raise JobConfigError(
            field_name, f"expected seconds (number) or timedelta, got {shown(value)}"
        )
    within_max_duration(seconds, field_name)
    return seconds


def _aware(value: object, field_name: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise JobConfigError(field_name, str(exc)) from exc
    if not isinstance(value, datetime):
        raise JobConfigError(field_name, f"expected an aware datetime, got {value!r}")
    try:
        return utc(value)
    except ValueError as exc:
        raise JobConfigError(field_name, str(exc)) from exc


#: The longest job name (as the HTTP API's), and description.
MAX_NAME_LENGTH = 500
MAX_DESCRIPTION_LENGTH = 10_000
#: The longest queue or concurrency group name.
MAX_LABEL_LENGTH = 200


def _text(options: dict[str, Any], key: str, limit: int, bounded: AbstractSet[str]) -> str:
    """The text option `key` ("" when left out): a str (not `str()` of whatever was given:
    `name=["x"]` was named "['x']"), of at most `limit` characters when `key` is in
    `bounded` (the options given now: a job stored before the limit still loads).
    Control characters are allowed: every listing shows them escaped."""
    value = options.get(key)
    if value is None:
        return ""
    require(isinstance(value, str), key, f"expected text, got {shown(value)}")
    require(
        key not in bounded or len(value) <= limit,
        key,
        f"{shown(value)} is {len(value)} characters long (at most {limit})",
    )
    return str(value)


def _label(options: dict[str, Any], key: str, what: str, bounded: AbstractSet[str]) -> str | None:
    """A queue or concurrency group name: None, or text that is not blank; when `key` is in
    `bounded`, of at most `MAX_LABEL_LENGTH` characters and without control characters
    (it is shown on one line in logs, events and the dashboard's filters)."""
    value = options.get(key)
    if value is None:
        return None
    require(
        isinstance(value, str) and value.strip() != "", key, f"expected {what}, got {shown(value)}"
    )
    if key in bounded:
        require(
            len(value) <= MAX_LABEL_LENGTH,
            key,
            f"{shown(value)} is {len(value)} characters long (at most {MAX_LABEL_LENGTH})",
        )
        require(
            _TAG_CONTROL.search(value) is None,
            key,
            f"{shown(value)} may not contain control characters (newlines, tabs ...)",
        )
    return str(value)


def _queue(options: dict[str, Any], bounded: AbstractSet[str]) -> str | None:
    """The queue name: None, or a name `queue_name_problem` (the rule of every queue entry
    point) accepts. A stored definition (queue not in `bounded`) is held only to the older
    rule (no ':', not '.' or '..'), so that a job stored before still loads."""
    from agentcron.queue.base import queue_name_problem

    queue = _label(options, "queue", "a queue name", frozenset())
    if queue is None:
        return None
    if "queue" in bounded:
        problem = queue_name_problem(queue)
        require(problem is None, "queue", f"{shown(queue)} {problem}")
    require(
        ":" not in queue and queue not in (".", ".."),
        "queue",
        f"a queue name may not contain ':' nor be '.' or '..', got {shown(queue)}",
    )
    return queue


def _tags(options: dict[str, Any], bounded: AbstractSet[str]) -> tuple[str, ...]:
    """The tags: strings, within `tags_problem`'s limits when "tags" is in `bounded`."""
    tags = options.get("tags") or ()
    require(
        isinstance(tags, list | tuple | set | frozenset) and all(isinstance(t, str) for t in tags),
        "tags",
        f"expected a list of strings, got {shown(tags)}",
    )
    if "tags" in bounded:
        problem = tags_problem(list(tags))
        require(problem is None, "tags", str(problem))
    return tuple(tags)


def _enabled(options: dict[str, Any]) -> bool:
    enabled = options.get("enabled", True)
    # Not `bool(...)`: `enabled="no"` would turn the job on.
    require(isinstance(enabled, bool), "enabled", f"must be True or False, got {enabled!r}")
    return bool(enabled)


def _disabled_reason(options: dict[str, Any]) -> str:
    reason = options.get("disabled_reason") or ""
    require(isinstance(reason, str), "disabled_reason", f"expected text, got {reason!r}")
    require(
        not reason or options.get("enabled", True) is False,
        "disabled_reason",
        "only makes sense with enabled=False",
    )
    return str(reason)


#: The longest job id: the HTTP API addresses jobs as /api/jobs/{id} with at most this many
#: characters, so a longer id would be listed by the dashboard but could not be opened.
MAX_ID_LENGTH = 200


def job_id_problem(job_id: str) -> str | None:
    """Why `job_id` cannot be a job id, or None. Ids appear in URL paths (/api/jobs/{id}),
    one-line CLI output and logs: no "/", no control characters, at most 200 characters."""
    if len(job_id) > MAX_ID_LENGTH:
        return f"is {len(job_id)} characters long (at most {MAX_ID_LENGTH})"
    if "/" in job_id:
        return 'may not contain "/" (the HTTP API addresses jobs as /api/jobs/{id})'
    if not job_id.isprintable():  # the rule of `agentcron jobs import`, so exports re-import
        return "may not contain control characters (newlines, tabs ...)"
    return None


#: Limits of a job's tags, one rule for the HTTP API, the job file and `agentcron jobs add`
#: (tags are listed in the dashboard's filter and on one line in the CLI).
MAX_TAGS = 50
MAX_TAG_LENGTH = 100
#: The characters no tag may hold (a regular-expression class): C0 and C1 controls.
TAG_FORBIDDEN_CLASS = r"[\x00-\x1f\x7f-\x9f]"
_TAG_CONTROL = re.compile(TAG_FORBIDDEN_CLASS)


def tags_problem(tags: Sequence[str]) -> str | None:
    """Why `tags` (strings) cannot be a job's tags, or None: at most `MAX_TAGS` tags of
    1 to `MAX_TAG_LENGTH` characters each, without control characters."""
    if len(tags) > MAX_TAGS:
        return f"{len(tags)} tags (at most {MAX_TAGS})"
    for tag in tags:
        if not tag:
            return f"a tag may not be empty (1 to {MAX_TAG_LENGTH} characters)"
        if len(tag) > MAX_TAG_LENGTH:
            return f"tag {tag[:20]!r}... is {len(tag)} characters long (at most {MAX_TAG_LENGTH})"
        if _TAG_CONTROL.search(tag):
            return f"tag {tag[:40]!r} may not contain control characters (newlines, tabs ...)"
    return None


def _trigger(value: object, tz: tzinfo) -> Trigger:
    """`coerce_trigger` + `require_fires`; cron text that passed once is looked up."""
    if type(value) is not str:
        trigger = coerce_trigger(value, tz)
        require_fires(trigger)  # an impossible schedule is an error, never a silent wait
        return trigger
    key = (value, tz)
    hit = _CHECKED_TEXT.get(key)
    if hit is not None:
        return hit
    trigger = coerce_trigger(value, tz)
    require_fires(trigger)
    if len(_CHECKED_TEXT) >= 4096:
        _CHECKED_TEXT.clear()
    _CHECKED_TEXT[key] = trigger
    return trigger


#: Trigger text (cron or "@reboot") and zone to its checked trigger (most jobs of a process
#: share a few schedules).
_CHECKED_TEXT: dict[tuple[str, tzinfo], Trigger] = {}


def build_job(
    job_id: str,
    *,
    trigger: object,
    handler: object,
    default_timezone: str | tzinfo = "UTC",
    bounded: AbstractSet[str] = JOB_OPTIONS,
    **options: Any,
) -> Job:
    """Validate everything and build a `Job`; raises `JobConfigError` naming the field.

    `bounded`: the text options (name, description, tags, queue, concurrency_group) held
    to their length and character limits; all by default, the changed ones on `update`,
    none for a stored definition (a job stored before a limit existed still loads)."""
    require(
        isinstance(job_id, str) and job_id.strip() != "", "id", "a non-empty string is required"
    )
    problem = job_id_problem(job_id)
    if problem is not None:
        raise JobConfigError("id", f"{job_id[:60]!r} {problem}")
    if options and not JOB_OPTIONS.issuperset(options):
        name = sorted(set(options) - JOB_OPTIONS)[0]
        raise JobConfigError(name, f"unknown job option; known: {', '.join(sorted(JOB_OPTIONS))}")
    zone = options.get("timezone")
    if zone is None:  # (None, not any falsy value: "" was taken for the default zone)
        zone = default_timezone
    elif type(zone) is str and not zone.strip():
        raise JobConfigError(
            "timezone",
            f"{zone!r} is empty; give an IANA name such as 'Europe/Berlin', or leave the "
            "option out for the default zone",
        )
    tz = resolve_tz(zone)
    trig = _trigger(trigger, tz)
    handler_obj = coerce_handler(handler, isolation=options.get("isolation"))
    if not options or (len(options) == 1 and "timezone" in options):  # nothing else to check
        return _plain_job(job_id, trig, handler_obj, tz_name(tz))
    timeout_s = _seconds(options.get("timeout"), "timeout")
    positive(timeout_s, "timeout")
    jitter_s = _seconds(options.get("jitter"), "jitter") or 0.0
    non_negative(jitter_s, "jitter")
    expect_every_s = _seconds(options.get("expect_every"), "expect_every")
    positive(expect_every_s, "expect_every")
    max_runs = options.get("max_runs")
    require(
        max_runs is None
        or (isinstance(max_runs, int) and not isinstance(max_runs, bool) and max_runs >= 1),
        "max_runs",
        f"must be an integer >= 1, got {max_runs!r}",
    )
    start = _aware(options.get("start"), "start")
    end = _aware(options.get("end"), "end")
    require(start is None or end is None or end > start, "end", "must be after start")
    tags = _tags(options, bounded)
    queue = _queue(options, bounded)
    return Job(
        id=job_id,
        trigger=trig,
        handler=handler_obj,
        name=_text(options, "name", MAX_NAME_LENGTH, bounded),
        timezone=tz_name(tz),
        enabled=_enabled(options),
        tags=tags,
        timeout_s=timeout_s,
        overlap=Overlap.from_value(options.get("overlap", "skip")),
        retry=Retry.from_value(options.get("retry")),
        misfire=Misfire.from_value(options.get("misfire")),
        circuit=CircuitBreaker.from_value(options.get("circuit")),
        jitter_s=jitter_s,
        queue=queue,
        start=start,
        end=end,
        max_runs=max_runs,
        expect_every_s=expect_every_s,
        description=_text(options, "description", MAX_DESCRIPTION_LENGTH, bounded),
        disabled_reason=_disabled_reason(options),
        concurrency_group=_label(options, "concurrency_group", "a group name", bounded),
    )


def update_job(job: Job, default_timezone: str | tzinfo = "UTC", **changes: Any) -> Job:
    """`job` with `changes` (same option names as `add_job`, plus trigger/handler)."""
    unknown = set(changes) - JOB_OPTIONS - {"trigger", "handler"}  # (not a hot path)
    require(not unknown, sorted(unknown)[0] if unknown else "", "unknown job option")
    current = job_options(job)
    current.update(changes)
    if changes.get("enabled") is True and "disabled_reason" not in changes:
        current["disabled_reason"] = ""  # enabling a job clears why it was disabled
    trigger = current.pop("trigger")
    handler = current.pop("handler")
    if (
        "timezone" in changes
        and "trigger" not in changes
        and isinstance(trigger, CronTrigger)
        and tz_name(trigger.tz) == job.timezone
    ):
        # Cron text in the job's zone: re-read in the new zone. A `CronTrigger(expr, tz)`
        # whose zone differs from the job's has a zone of its own and keeps it.
        trigger = trigger.expr
    return build_job(
        job.id,
        trigger=trigger,
        handler=handler,
        default_timezone=default_timezone,
        bounded=frozenset(changes),
        **current,
    )


def job_options(job: Job) -> dict[str, Any]:
    """The keyword options that rebuild `job` through `build_job`."""
    return {
        "trigger": job.trigger,
        "handler": job.handler,
        "name": job.name,
        "timezone": job.timezone,
        "enabled": job.enabled,
        "tags": job.tags,
        "timeout": job.timeout_s,
        "overlap": job.overlap,
        "retry": job.retry,
        "misfire": job.misfire,
        "circuit": job.circuit,
        "jitter": job.jitter_s,
        "queue": job.queue,
        "start": job.start,
        "end": job.end,
        "max_runs": job.max_runs,
        "expect_every": job.expect_every_s,
        "description": job.description,
        "disabled_reason": job.disabled_reason,
        "concurrency_group": job.concurrency_group,
    }


# -- codec ---------------------------------------------------------------------------
_OPTION_DEFAULTS = tuple(zip(_OPTION_NAMES, _option_values(_Options()), strict=True))
_SHARED: dict[int, tuple[object, dict[str, Any]]] = {}


def _shared_dict(obj: Trigger | Handler, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    # Jobs that share a trigger or handler object share its (never mutated) dict.
    hit = _SHARED.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    data = make()
    if len(_SHARED) > 10_000:
        _SHARED.clear()
    _SHARED[id(obj)] = (obj, data)
    return data


_PLAIN: dict[tuple[int, int], tuple[Trigger, Handler, dict[str, Any]]] = {}


def job_to_definition(job: Job) -> dict[str, Any]:
    """JSON-ready plain data for `StoredJob.definition` (defaults omitted). The result is
    shared (never mutate it): jobs with only a trigger and a handler, the same objects,
    get the same dict."""
    options: dict[str, Any] | None = None
    shared = job._options
    # (names and defaults in `_Options` order; none to compare for a job of all defaults)
    values = () if shared is _DEFAULT_OPTIONS else _option_values(shared)
    for (name, default), value in zip(_OPTION_DEFAULTS, values, strict=False):
        if value is default or value == default:
            continue
        if isinstance(value, (Overlap, Retry, Misfire, CircuitBreaker)):
            value = value.to_dict()
        elif isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        if options is None:
            options = {}
        options[name] = value
    trigger, handler = job.trigger, job.handler
    if options is None:
        # Most jobs: one dict per (trigger, handler) pair instead of ~180 bytes per job.
        hit = _PLAIN.get((id(trigger), id(handler)))
        if hit is not None and hit[0] is trigger and hit[1] is handler:
            return hit[2]
    out: dict[str, Any] = {
        "trigger": _shared_dict(trigger, trigger.to_dict),
        "handler": _shared_dict(handler, lambda: handler_to_dict(handler)),
    }
    if options is not None:
        out.update(options)
        return out
    if len(_PLAIN) > 10_000:
        _PLAIN.clear()
    _PLAIN[(id(trigger), id(handler))] = (trigger, handler, out)
    return out


_RENAMED = {"timeout_s": "timeout", "jitter_s": "jitter", "expect_every_s": "expect_every"}


def job_from_definition(job_id: str, definition: dict[str, Any]) -> Job:
    """Rebuild a `Job` from `job_to_definition` output. Raises `JobConfigError` when the
    definition is invalid; an unresolvable handler becomes an `UnavailableHandler`."""
    data = dict(definition)
    trigger = data.pop("trigger", None)
    handler_data = data.pop("handler", None)
    require(isinstance(trigger, dict), "trigger", "missing from the stored definition")
    require(isinstance(handler_data, dict), "handler", "missing from the stored definition")
    assert isinstance(handler_data, dict)
    options = {_RENAMED.get(k, k): v for k, v in data.items()}
    known: Iterable[str] = JOB_OPTIONS
    options = {k: v for k, v in options.items() if k in known}
    handler = handler_from_stored(handler_data)
    return build_job(job_id, trigger=trigger, handler=handler, bounded=frozenset(), **options)
