"""Pydantic request and response models of the HTTP API (kept apart from domain models)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CleanRequest",
    "CleanResult",
    "CronValidateRequest",
    "CronValidateResult",
    "ErrorOut",
    "HealthOut",
    "JobCreate",
    "JobDetail",
    "JobPatch",
    "JobPage",
    "JobSummary",
    "NodeOut",
    "NodesOut",
    "OkOut",
    "PauseRequest",
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
    consecutive_failures: int = 0
    queue: str | None = None
    unavailable: str | None = Field(
        default=None, description="Why the job cannot run (e.g. its handler cannot be imported)"
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


class JobCreate(BaseModel):
    """A new job (the fields of an `agentcron.toml` `[[jobs]]` table)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    name: str | None = Field(default=None, max_length=500)
    trigger: str = Field(min_length=1, max_length=500, description="Cron text or @reboot")
    timezone: str | None = Field(default=None, max_length=100)
    command: list[str] | None = Field(default=None, min_length=1)
    callable: str | None = Field(
        default=None, max_length=500, description='"package.module:function"'
    )
    http: dict[str, Any] | None = None
    tags: list[str] = Field(default_factory=list)
    timeout: float | None = Field(default=None, gt=0)
    overlap: str | None = None
    misfire: str | None = None
    enabled: bool = True


class JobPatch(BaseModel):
    """Fields to change; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=500)
    trigger: str | None = Field(default=None, min_length=1, max_length=500)
    timezone: str | None = Field(default=None, max_length=100)
    tags: list[str] | None = None
    timeout: float | None = Field(default=None, gt=0)
    overlap: str | None = None
    misfire: str | None = None
    enabled: bool | None = None


class PauseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

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


class CleanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace: float = Field(
        default=0.0, ge=0, allow_inf_nan=False, description="Only jobs older than this many seconds"
    )
    limit: int = Field(default=1000, ge=1, le=100_000)
    state: Literal["completed", "failed", "waiting", "delayed"] = "completed"


class CleanResult(_Out):
    queue: str
    state: str
    removed: int


class CronValidateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expression: str = Field(max_length=500)
    timezone: str = Field(default="UTC", max_length=100)
    count: int = Field(default=10, ge=1, le=50)


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
