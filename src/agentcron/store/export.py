"""JSON export and import of job definitions (for `agentcron jobs export|import`).

The file format (version 1)::

    {"format": "agentcron.jobs", "version": 1, "exported_at": "2026-03-01T12:00:00+00:00",
     "jobs": [{"id": "digest", "definition": {...}, "paused": false, "pause_note": null}]}

`definition` is the engine's JSON form of a job (trigger, handler reference, policies ...),
stored as is. Import is all or nothing *before* writing: every problem in the file (unknown
fields, wrong types, duplicate ids, conflicts under `conflict="error"`, and whatever the
optional `validate_definition` hook reports) is collected and raised together as
`ImportValidationError`, and nothing is imported.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentcron.jobfile import _read_regular_file
from agentcron.jobs import job_id_problem
from agentcron.models import ConflictPolicy, StoredJob
from agentcron.store.base import Store

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "ImportResult",
    "ImportValidationError",
    "export_jobs",
    "import_jobs",
    "load_export",
    "validate_export",
]

EXPORT_FORMAT = "agentcron.jobs"
EXPORT_VERSION = 1
_TOP_FIELDS = ("format", "version", "exported_at", "jobs")
_JOB_FIELDS = ("id", "definition", "paused", "pause_note")
_MAX_ID_CHARS = 200
#: `validate_definition(definition) -> problems` (empty when valid); the engine's job codec.
DefinitionValidator = Callable[[dict[str, Any]], list[str]]


class ImportValidationError(ValueError):
    """The import file has problems; `errors` lists each one. Nothing was imported."""

    def __init__(self, errors: list[str], source: str = "the import") -> None:
        self.errors = errors
        count = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
        super().__init__(f"{count} in {source}, nothing imported: " + "; ".join(errors))


@dataclass(slots=True)
class ImportResult:
    """Ids by what happened to them."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged}


async def export_jobs(store: Store, *, now: datetime | None = None) -> dict[str, Any]:
    """Every job definition of `store`, ordered by id, as a JSON-ready dict."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": stamp,
        "jobs": [
            {
                "id": job.id,
                "definition": job.definition,
                "paused": job.paused,
                "pause_note": job.pause_note,
            }
            for job in await store.list_jobs()
        ],
    }


def load_export(path: Path) -> Any:
    """Parse an export file; anything but a readable JSON document raises
    `ImportValidationError` with one problem: a missing file, one that is not a regular file
    (a FIFO would block, a device never end) or is over `MAX_FILE_BYTES` (the limit of
    agentcron.toml), text that is not UTF-8 or not JSON, a number of more digits than
    Python converts (`sys.get_int_max_str_digits()`), or arrays nested too deeply."""
    try:
        raw = _read_regular_file(path)
    except IsADirectoryError:
        raise ImportValidationError(
            [
                "cannot read the file: it is a directory; name a file written by "
                "`agentcron jobs export`"
            ],
            str(path),
        ) from None
    except OSError as exc:
        raise ImportValidationError(
            [f"cannot read the file: {exc.strerror or exc}"], str(path)
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportValidationError(
            [f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8"], str(path)
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise ImportValidationError([f"not JSON ({where}: {exc.msg})"], str(path)) from None
    except ValueError:  # int("1" * 5000): Python's guard against slow conversions
        limit = sys.get_int_max_str_digits()
        raise ImportValidationError(
            [f"a number has more than {limit} digits; no job option needs one that long"],
            str(path),
        ) from None
    except RecursionError:
        raise ImportValidationError(
            ["arrays or objects are nested too deeply"], str(path)
        ) from None


def _describe(value: Any) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= 40 else text[:37] + "..."


def _unknown(where: str, data: dict[str, Any], known: tuple[str, ...]) -> list[str]:
    expected = ", ".join(known)
    return [
        f"{where}: unknown field {key!r} (expected one of: {expected})"
        for key in data
        if key not in known
    ]


def _check_top(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return [f"the file must hold a JSON object, not {_describe(data)}"]
    errors = _unknown("the file", data, _TOP_FIELDS)
    if data.get("format") != EXPORT_FORMAT:
        errors.append(f"format: expected {EXPORT_FORMAT!r}, got {_describe(data.get('format'))}")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version:
        errors.append(f"version: expected a positive integer, got {_describe(version)}")
    elif version > EXPORT_VERSION:
        errors.append(
            f"version: {version} is newer than this agentcron reads ({EXPORT_VERSION}); "
            "upgrade agentcron"
        )
    if not isinstance(data.get("jobs"), list):
        errors.append(f"jobs: expected a list, got {_describe(data.get('jobs'))}")
    return errors


def _check_job(where: str, item: Any, validate: DefinitionValidator | None) -> list[str]:
    if not isinstance(item, dict):
        return [f"{where}: expected an object, got {_describe(item)}"]
    errors = _unknown(where, item, _JOB_FIELDS)
    job_id = item.get("id")
    if not isinstance(job_id, str) or not job_id.strip() or len(job_id) > _MAX_ID_CHARS:
        errors.append(
            f"{where}.id: expected a non-empty string of at most {_MAX_ID_CHARS} characters, "
            f"got {_describe(job_id)}"
        )
    elif (problem := job_id_problem(job_id)) is not None:
        errors.append(f"{where}.id: {_describe(job_id)} {problem}")
    definition = item.get("definition")
    if not isinstance(definition, dict):
        errors.append(f"{where}.definition: expected an object, got {_describe(definition)}")
    elif validate is not None:
        errors.extend(f"{where}.definition: {problem}" for problem in validate(definition))
    if "paused" in item and not isinstance(item["paused"], bool):
        errors.append(f"{where}.paused: expected true or false, got {_describe(item['paused'])}")
    note = item.get("pause_note")
    if note is not None and not isinstance(note, str):
        errors.append(f"{where}.pause_note: expected a string or null, got {_describe(note)}")
    return errors


def validate_export(
    data: Any, *, validate_definition: DefinitionValidator | None = None
) -> list[str]:
    """Every problem of an export document (empty when it can be imported)."""
    errors = _check_top(data)
    jobs = data.get("jobs") if isinstance(data, dict) else None
    if not isinstance(jobs, list):
        return errors
    seen: dict[str, int] = {}
    for index, item in enumerate(jobs):
        where = f"jobs[{index}]"
        errors.extend(_check_job(where, item, validate_definition))
        job_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(job_id, str):
            if job_id in seen:
                errors.append(f"{where}.id: {job_id!r} repeats jobs[{seen[job_id]}].id")
            seen.setdefault(job_id, index)
    return errors


async def import_jobs(
    store: Store,
    data: Any,
    *,
    actor: str = "import",
    conflict: ConflictPolicy = "replace",
    validate_definition: DefinitionValidator | None = None,
    source: str = "the import",
) -> ImportResult:
    """Validate all of `data`, then save each job (audited as `actor`).

    `conflict` applies to ids already stored: `replace` updates definitions (history kept),
    `keep` leaves them, `error` refuses the whole import when any id exists.
    `paused`/`pause_note`, when present, are applied too.
    """
    errors = validate_export(data, validate_definition=validate_definition)
    if not errors and conflict == "error":
        for index, item in enumerate(data["jobs"]):
            if await store.get_job(item["id"]) is not None:
                errors.append(f"jobs[{index}].id: a job with id {item['id']!r} already exists")
    if errors:
        raise ImportValidationError(errors, source)
    result = ImportResult()
    for item in data["jobs"]:
        await _import_one(store, item, actor=actor, conflict=conflict, result=result)
    return result


async def _import_one(
    store: Store,
    item: dict[str, Any],
    *,
    actor: str,
    conflict: ConflictPolicy,
    result: ImportResult,
) -> None:
    before = await store.get_job(item["id"])
    job = StoredJob(
        id=item["id"],
        definition=item["definition"],
        paused=bool(item.get("paused", False)),
        pause_note=item.get("pause_note") if item.get("paused") else None,
    )
    saved = await store.save_job(job, actor=actor, conflict=conflict)
    if before is None:
        result.added.append(job.id)
        return
    changed = saved.version != before.version
    if conflict == "replace" and "paused" in item and _pause_differs(saved, job):
        await store.set_paused(job.id, job.paused, note=job.pause_note, actor=actor)
        changed = True
    (result.updated if changed else result.unchanged).append(job.id)


def _pause_differs(stored: StoredJob, wanted: StoredJob) -> bool:
    return (stored.paused, stored.pause_note) != (wanted.paused, wanted.pause_note)
