"""Pydantic request and response models of the HTTP API (kept apart from domain models)."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from agentcron.handlers.http import HEADER_NAME
from agentcron.jobs import MAX_TAG_LENGTH, MAX_TAGS, TAG_FORBIDDEN_CLASS, job_id_problem

__all__ = [
    "CleanRequest",
    "CleanResult",
    "CronValidateRequest",
    "CronValidateResult",
    "ErrorOut",
    "HealthOut",
    "HttpSpec",
    "JobCreate",
    "JobDetail",
    "JobPatch",
    "JobPage",
    "JobSummary",
    "NodeOut",
    "NodesOut",
    "OkOut",
    "PauseRequest",
    "QueueJobOut",
    "QueueJobPage",
    "QueueOut",
    "QueuesOut",
    "RunOut",
    "RunPage",
    "TimelineOut",
]

RunStatusName = Literal[
    "scheduled", "running", "succeeded", "failed", "timed_out", "cancelled", "skipped",
    "interrupted",
]  # fmt: skip


#: Limits of request bodies (the whole body is also capped: `DashboardSettings.max_body_bytes`).
MAX_ARGV_BYTES = 128 * 1024
MAX_HTTP_HEADERS = 100
#: Deepest nesting of the JSON an HTTP job sends (`{"a": [1]}` is 2 levels).
MAX_JSON_DEPTH = 64

_CONTROL = re.compile(TAG_FORBIDDEN_CLASS)
#: What no URL may hold: controls (a line break would reach the request line) and spaces.
_URL_FORBIDDEN_CLASS = r"[\x00-\x20\x7f-\x9f]"
_URL_FORBIDDEN = re.compile(_URL_FORBIDDEN_CLASS)


def _without(forbidden_class: str) -> dict[str, Any]:
    """The JSON-schema pattern of a string without any character of `forbidden_class`."""
    return {"pattern": f"^[^{forbidden_class[1:-1]}]*$"}


def _job_id(value: str) -> str:
    problem = job_id_problem(value)
    if problem is not None:
        raise ValueError(f"a job id {problem}")
    return value


def _tag(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("a tag may not contain control characters (newlines, tabs ...)")
    return value


def _header_name(value: str) -> str:
    if not HEADER_NAME.fullmatch(value):
        raise ValueError(
            "a header name is letters, digits and !#$%&'*+-.^_`|~ only"
            " (no spaces, colons or line breaks)"
        )
    return value


def _name(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("a name may not contain control characters (newlines, tabs ...)")
    return value


def _url(value: str) -> str:
    if _URL_FORBIDDEN.search(value):
        raise ValueError("a URL may not contain spaces or control characters (line breaks ...)")
    return value


def _header_value(value: str) -> str:
    if any(c in value for c in "\r\n\0"):
        raise ValueError("a header value may not contain line breaks or NUL")
    return value


def _whole_number(value: Any) -> Any:
    # JSON has one number type: 24.0 is the integer 24 (as JSON Schema says), while strict
    # validation refuses every float for an int; 24.5, "24" and true stay refused.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _plain_json(value: Any) -> Any:
    # JSON text may carry Infinity, NaN or 1e400; none of them can be sent on as JSON.
    # Nesting is capped too: the body parser allows about 1,000 levels, more than the
    # recursive code that stores and shows a job's definition can walk.
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("numbers must be finite (no Infinity or NaN)")
        if isinstance(item, dict | list) and depth >= MAX_JSON_DEPTH:
            raise ValueError(f"nested too deeply (at most {MAX_JSON_DEPTH} levels)")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return value


#: An integer in a request body (`_In` is strict: no strings or booleans).
JsonInt = Annotated[int, BeforeValidator(_whole_number)]
JobIdText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_job_id)]
Tag = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_TAG_LENGTH,
        json_schema_extra=_without(TAG_FORBIDDEN_CLASS),
    ),
    AfterValidator(_tag),
]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]
HeaderName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_header_name)]
JobName = Annotated[
    str,
    Field(max_length=500, json_schema_extra=_without(TAG_FORBIDDEN_CLASS)),
    AfterValidator(_name),
]
Url = Annotated[
    str,
    Field(min_length=1, max_length=8192, json_schema_extra=_without(_URL_FORBIDDEN_CLASS)),
    AfterValidator(_url),
]
HeaderValue = Annotated[str, Field(max_length=8192), AfterValidator(_header_value)]


class _In(BaseModel):
    """Request bodies: unknown fields, non-finite numbers and values of the wrong JSON type
    (`"5"` or `true` for a number, `"yes"` or `1` for a boolean) are refused (422)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(_Out):
    detail: Any = Field(description="What went wrong: a message, or a list of field errors")


class OkOut(_Out):
    ok: bool = True
    message: str = ""


class RunOut(_Out):
    run_id: str
    job_id: str
    scheduled_for: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: float | None = Field(default=None, description="Seconds from start to finish")
    status: RunStatusName
    attempt: int = 1
    error: str | None = None
    output_tail: str | None = None
    node_id: str | None = None
    skip_reason: str | None = None
    lateness: float | None = Field(default=None, description="Seconds between schedule and start")


class RunPage(_Out):
    items: list[RunOut]
    total: int | None = Field(description="Every matching run (only with count=true)")
    has_more: bool = Field(description="Whether a next page exists")
    limit: int
    offset: int


class LastResult(_Out):
    status: RunStatusName
    at: datetime
    duration: float | None = None
    error: str | None = None


class JobSummary(_Out):
    id: str
    name: str
    schedule: str = Field(description="The trigger as written (cron text, interval, date)")
    description: str = Field(description="The schedule in words")
    timezone: str
    status: Literal["active", "paused", "running", "failing", "disabled"]
    enabled: bool
    paused: bool
    pause_note: str | None = None
    tags: list[str]
    next_run: datetime | None = None
    last_result: LastResult | None = None
    running: int = 0
    progress: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Progress in percent of the job's newest running run that reported any"
        " (`ctx.progress(pct)`); null while none did, once the run ended, and on a read-only"
        " dashboard",
    )
    consecutive_failures: int = 0
    queue: str | None = None
    unavailable: str | None = Field(
        default=None, description="Why the job cannot run (e.g. its handler cannot be imported)"
    )
    disabled_reason: str | None = Field(
        default=None,
        description="Why a disabled job is disabled, when it says (e.g. the agent-loops"
        " preset's `no handler configured`); null for a plain `enabled = false`",
    )


class JobPage(_Out):
    items: list[JobSummary]
    total: int
    limit: int
    offset: int
    tags: list[str] = Field(description="Every tag used by any job (for the tag filter)")


class JobStats(_Out):
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    p50_duration: float | None = None
    p95_duration: float | None = None
    last_success: datetime | None = None
    last_failure: datetime | None = None


class JobDetail(JobSummary):
    definition: dict[str, Any] = Field(description="The job's definition as the engine stores it")
    next_runs: list[datetime] = Field(description="The next fire times (up to 10)")
    stats: JobStats
    recent_runs: list[RunOut]


class HttpSpec(_In):
    """An HTTP handler (`agentcron.Http`): a request made for each attempt."""

    url: Url
    method: str | None = Field(default=None, max_length=20, description="Default POST")
    headers: dict[HeaderName, HeaderValue] | None = Field(default=None, max_length=MAX_HTTP_HEADERS)
    json_: Any = Field(default=None, alias="json", description="Sent as JSON")
    body: str | None = Field(default=None, description="Sent as is (not with json)")
    timeout_s: float | None = Field(default=None, gt=0, description="Default 30")
    ok_statuses: list[JsonInt] | None = Field(default=None, min_length=1, max_length=500)
    output_tail_bytes: JsonInt | None = Field(default=None, ge=1, le=1_048_576)

    _plain = field_validator("json_")(_plain_json)


class JobCreate(_In):
    """A new job (the fields of an `agentcron.toml` `[[jobs]]` table)."""

    id: JobIdText = Field(
        description="Any text up to 200 characters without / or control characters"
    )
    name: JobName | None = None
    trigger: str = Field(min_length=1, max_length=500, description="Cron text or @reboot")
    timezone: str | None = Field(default=None, max_length=100)
    command: list[str] | None = Field(
        default=None, min_length=1, description="argv; at most 128 KiB in all"
    )
    callable: str | None = Field(
        default=None, max_length=500, description='"package.module:function"'
    )
    http: HttpSpec | None = None
    tags: Tags = Field(default_factory=list)
    timeout: float | None = Field(default=None, gt=0)
    overlap: str | None = Field(default=None, max_length=100)
    misfire: str | None = Field(default=None, max_length=100)
    enabled: bool = True

    @field_validator("command")
    @classmethod
    def _argv(cls, argv: list[str] | None) -> list[str] | None:
        if argv is None:
            return None
        if any("\0" in arg for arg in argv):
            raise ValueError("a command argument may not contain NUL")
        size = sum(len(arg.encode("utf-8", "surrogatepass")) + 1 for arg in argv)
        if size > MAX_ARGV_BYTES:
            raise ValueError(
                f"the command is {size} bytes long (at most {MAX_ARGV_BYTES // 1024} KiB)"
            )
        return argv


class JobPatch(_In):
    """Fields to change; absent fields stay as they are."""

    name: JobName | None = None
    trigger: str | None = Field(default=None, min_length=1, max_length=500)
    timezone: str | None = Field(default=None, max_length=100)
    tags: Tags | None = None
    timeout: float | None = Field(default=None, gt=0)
    overlap: str | None = Field(default=None, max_length=100)
    misfire: str | None = Field(default=None, max_length=100)
    enabled: bool | None = None


class PauseRequest(_In):
    note: str | None = Field(default=None, max_length=1000)


class HealthOut(_Out):
    status: Literal["healthy", "degraded", "unhealthy"]
    reasons: list[str] = Field(description="Why the status is not healthy (empty when healthy)")
    jobs: int
    running: int
    failing: int
    paused: int
    nodes_online: int
    nodes_total: int
    now: datetime
    engine: dict[str, Any] = Field(description="What `Scheduler.health()` reported")


class NodeOut(_Out):
    node_id: str
    status: Literal["online", "suspect", "offline"]
    reported: str = Field(description="What the node said about itself (healthy, degraded, ...)")
    health_score: int | None = None
    last_seen: datetime
    age: float = Field(description="Seconds since the last heartbeat")
    sequence: int
    host: str = ""
    pid: int = 0
    version: str = ""
    platform: str = ""
    started_at: datetime | None = None
    interval: float


class NodesOut(_Out):
    items: list[NodeOut]
    online: int
    total: int


class QueueOut(_Out):
    name: str
    counts: dict[str, int]
    paused: bool


class QueuesOut(_Out):
    available: bool = Field(description="False while no queue backend is wired in")
    items: list[QueueOut]


QueueJobState = Literal["waiting", "delayed", "active", "completed", "failed"]


class QueueJobOut(_Out):
    """One job of a queue (`agentcron.queue.JobInfo`)."""

    id: str
    name: str
    state: str = Field(description="waiting, delayed, active, completed, failed or paused")
    priority: int
    attempts: int = Field(description="Attempts it may take")
    attempts_made: int
    progress: float
    data: Any
    result: Any
    error: str | None = Field(description="The last attempt's error (failed jobs: why)")
    created_at: datetime | None
    finished_at: datetime | None


class QueueJobPage(_Out):
    queue: str
    state: QueueJobState
    items: list[QueueJobOut]
    has_more: bool = Field(description="Whether a next page exists")
    limit: int
    offset: int


class CleanRequest(_In):
    grace: float = Field(
        default=0.0, ge=0, allow_inf_nan=False, description="Only jobs older than this many seconds"
    )
    limit: JsonInt = Field(default=1000, ge=1, le=100_000)
    state: Literal["completed", "failed", "waiting", "delayed"] = "completed"


class CleanResult(_Out):
    queue: str
    state: str
    removed: int


class CronValidateRequest(_In):
    expression: str = Field(max_length=500)
    timezone: str = Field(default="UTC", max_length=100)
    count: JsonInt = Field(default=10, ge=1, le=50)


class CronValidateResult(_Out):
    valid: bool
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)
    description: str | None = None
    next_runs: list[datetime] = Field(default_factory=list)


class TimelineEntry(_Out):
    job_id: str
    name: str
    at: datetime
    kind: Literal["run", "planned"]
    status: str = Field(description="Worst status of the runs in this bucket, or scheduled")
    count: int = Field(description="Runs in this bucket (1 for a planned fire)")
    duration: float | None = Field(default=None, description="Longest run in this bucket")


class TimelineRow(_Out):
    job_id: str
    name: str


class TimelineOut(_Out):
    start: datetime
    now: datetime
    end: datetime
    bucket_seconds: float
    rows: list[TimelineRow] = Field(description="The jobs drawn, top to bottom")
    total_jobs: int
    entries: list[TimelineEntry]


class RunNowOut(_Out):
    job_id: str
    accepted: bool
    run: RunOut | None = Field(default=None, description="The finished run (only with wait=true)")
