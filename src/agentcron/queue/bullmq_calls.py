"""BullMQ's script calls, built as the `bullmq` package builds them: key lists and arguments.

Each builder returns ``(script name, keys, args)`` for `RedisQueue` to run by ``EVALSHA``
(alone or pipelined); the scripts are the Lua files shipped in the ``bullmq`` package. Also
here: reading a claimed job's hash back into a `Job`.
"""

from __future__ import annotations

import json
from typing import Any, cast

import msgpack

from agentcron.queue.base import (
    Backoff,
    BulkJob,
    Job,
    Retention,
    encode_data,
    keep_count,
    validate_job,
)
from agentcron.queue.worker import Finished

__all__ = ["BullCalls", "Call"]

#: (script name, keys, args)
Call = tuple[str, list[Any], list[Any]]

_CLAIM_KEYS = (
    "wait",
    "active",
    "prioritized",
    "events",
    "stalled",
    "limiter",
    "delayed",
    "paused",
    "meta",
    "pc",
    "marker",
)
_FINISH_KEYS = (
    "wait",
    "active",
    "prioritized",
    "events",
    "stalled",
    "limiter",
    "delayed",
    "paused",
    "meta",
    "pc",
)
_STALLED_KEYS = (
    "stalled",
    "wait",
    "active",
    "failed",
    "stalled-check",
    "meta",
    "paused",
    "marker",
    "events",
)


def _bull_opts(job: BulkJob) -> dict[str, Any]:
    opts: dict[str, Any] = {"attempts": job.attempts, "delay": round(job.delay * 1000)}
    if job.priority:
        opts["priority"] = job.priority
    if job.job_id:
        opts["jobId"] = job.job_id
    if job.backoff is not None:
        opts["backoff"] = {"type": job.backoff.kind, "delay": round(job.backoff.delay_s * 1000)}
    if job.remove_on_complete is not False:
        opts["removeOnComplete"] = job.remove_on_complete
    if job.remove_on_fail is not False:
        opts["removeOnFail"] = job.remove_on_fail
    return opts


def _retention(value: Any) -> Retention:
    if isinstance(value, bool | int):
        return value
    if isinstance(value, dict) and isinstance(value.get("count"), int):
        return True if value["count"] == 0 else int(value["count"])
    return False


def _keep_jobs(keep: Retention) -> dict[str, int]:
    return {"count": keep_count(keep)}


class BullCalls:
    """Builds the script calls of one queue from its BullMQ keys (``Scripts.keys``)."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys
        self._job_prefix = keys[""]
        self._claim_keys = [keys[k] for k in _CLAIM_KEYS]

    def _key(self, job_id: str) -> str:
        return f"{self._job_prefix}{job_id}"

    def add(self, job: BulkJob, now_ms: int) -> tuple[str, list[Any], list[Any]]:
        validate_job(
            name=job.name,
            priority=job.priority,
            delay=job.delay,
            attempts=job.attempts,
            job_id=job.job_id,
            remove_on_complete=job.remove_on_complete,
            remove_on_fail=job.remove_on_fail,
        )
        data = encode_data(job.data)
        opts = _bull_opts(job)
        packed_args = msgpack.packb(
            [self._job_prefix, job.job_id or "", job.name, now_ms, None, None, None, None],
            use_bin_type=True,
        )
        args = [packed_args, data, msgpack.packb(opts), now_ms]
        k = self.keys
        if job.delay > 0:
            keys = [k["marker"], k["meta"], k["id"], k["delayed"], k["completed"], k["events"]]
            return "addDelayedJob", keys, args
        if job.priority:
            keys = [
                k["marker"],
                k["meta"],
                k["id"],
                k["prioritized"],
                k["completed"],
                k["active"],
                k["events"],
                k["pc"],
            ]
            return "addPrioritizedJob", keys, args
        keys = [
            k["wait"],
            k["paused"],
            k["meta"],
            k["id"],
            k["completed"],
            k["active"],
            k["events"],
            k["marker"],
        ]
        return "addStandardJob", keys, args

    def claim(self, token: str, now_ms: int, lease_ms: int, limiter: dict[str, int] | None) -> Call:
        packed = msgpack.packb(
            {"token": token, "lockDuration": lease_ms, "limiter": limiter}, use_bin_type=True
        )
        return "moveToActive", self._claim_keys, [self._job_prefix, now_ms, packed]

    def extend(self, job: Job, lease_ms: int) -> Call:
        keys = [f"{self._key(job.id)}:lock", self.keys["stalled"]]
        return "extendLock", keys, [job.token, lease_ms, job.id]

    def stalled(self, max_stalled: int, now_ms: int, interval_ms: int) -> Call:
        keys = [self.keys[n] for n in _STALLED_KEYS]
        return "moveStalledJobsToWait", keys, [max_stalled, self._job_prefix, now_ms, interval_ms]

    def progress(self, job: Job, pct: float) -> Call:
        keys = [self._key(job.id), self.keys["events"], self.keys["meta"]]
        return "updateProgress", keys, [job.id, json.dumps(pct)]

    def claimed(
        self, results: list[Any], token: str, now_ms: int
    ) -> tuple[list[Job], float | None]:
        jobs: list[Job] = []
        hint: float | None = None
        for i, raw in enumerate(results):
            if isinstance(raw, Exception):
                raise raw
            data, job_id, limit_ms, delay_until = raw
            if data:
                jobs.append(self.job(job_id, data, f"{token}:{i}"))
            elif int(limit_ms) > 0:
                hint = int(limit_ms) / 1000
            elif int(delay_until) > 0:
                hint = max(int(delay_until) - now_ms, 0) / 1000
        return jobs, hint

    def job(self, job_id: str, flat: list[str], token: str) -> Job:
        raw = dict(zip(flat[::2], flat[1::2], strict=True))
        opts = json.loads(raw.get("opts", "{}"))
        backoff = opts.get("backoff")
        started = int(raw.get("ats") or 0)
        made = int(raw.get("atm") or 0)
        return Job(
            id=str(job_id),
            name=raw.get("name", ""),
            data=json.loads(raw.get("data", "null")),
            attempt=started or made + 1,
            attempts=int(opts.get("attempts") or 1),
            priority=int(raw.get("priority") or 0),
            backoff=_backoff(backoff),
            token=token,
            keep_completed=_retention(opts.get("removeOnComplete", False)),
            keep_failed=_retention(opts.get("removeOnFail", False)),
            raw=made,
        )

    def finish(
        self, f: Finished, now_ms: int, lease_ms: int, limiter: dict[str, int] | None
    ) -> tuple[str, list[Any], list[Any]]:
        job, k = f.job, self.keys
        job_key = self._key(job.id)
        if f.outcome == "retry" and f.delay_s > 0:
            keys = [
                k["marker"],
                k["active"],
                k["prioritized"],
                k["delayed"],
                job_key,
                k["events"],
                k["meta"],
                k["stalled"],
            ]
            return (
                "moveToDelayed",
                keys,
                [
                    self._job_prefix,
                    now_ms,
                    job.id,
                    job.token,
                    round(f.delay_s * 1000),
                    "0",
                    _fields(f.value),
                ],
            )
        if f.outcome == "retry":
            keys = [
                k["active"],
                k["wait"],
                k["paused"],
                job_key,
                k["meta"],
                k["events"],
                k["delayed"],
                k["prioritized"],
                k["pc"],
                k["marker"],
                k["stalled"],
            ]
            return (
                "retryJob",
                keys,
                [self._job_prefix, now_ms, "LPUSH", job.id, job.token, _fields(f.value)],
            )
        target = f.outcome
        keep = job.keep_completed if target == "completed" else job.keep_failed
        opts = msgpack.packb(
            {
                "token": job.token,
                "keepJobs": _keep_jobs(keep),
                "limiter": limiter,
                "lockDuration": lease_ms,
                "attempts": job.attempts,
                "attemptsMade": job.raw,
                "maxMetricsSize": "",
                "fpof": False,
                "cpof": False,
                "idof": False,
            },
            use_bin_type=True,
        )
        value = json.dumps(f.value, default=repr) if target == "completed" else str(f.value)
        prop = "returnvalue" if target == "completed" else "failedReason"
        keys = [self.keys[n] for n in _FINISH_KEYS] + [
            self.keys[target],
            job_key,
            f"{self._job_prefix}metrics:{target}",
            k["marker"],
        ]
        return (
            "moveToFinished",
            keys,
            [job.id, now_ms, prop, value, target, "", self._job_prefix, opts],
        )


def _fields(error: Any) -> bytes:
    return cast(bytes, msgpack.packb(["failedReason", str(error)], use_bin_type=True))


def _backoff(value: Any) -> Backoff | None:
    if not isinstance(value, dict):
        return Backoff("fixed", value / 1000) if isinstance(value, int) and value > 0 else None
    kind = value.get("type", "fixed")
    if kind not in ("fixed", "exponential"):
        kind = "custom"
    return Backoff(kind, float(value.get("delay") or 0) / 1000)
