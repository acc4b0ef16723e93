"""JSON export/import of job definitions, over every backend."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agentcron.models import RunQuery, RunRecord, RunStatus, StoredJob
from agentcron.store.base import Store
from agentcron.store.export import (
    ImportValidationError,
    export_jobs,
    import_jobs,
    load_export,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def document(*jobs: dict[str, Any]) -> dict[str, Any]:
    return {"format": "agentcron.jobs", "version": 1, "jobs": list(jobs)}


def job(job_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": job_id, "definition": {"trigger": "@daily", "handler": "m:f"}, **extra}


async def test_an_export_imports_into_an_empty_store_unchanged(
    store: Store, tmp_path: Path
) -> None:
    await store.save_job(StoredJob(id="b", definition={"trigger": "@hourly"}), actor="cli")
    await store.save_job(StoredJob(id="a", definition={"nested": {"x": [1, 2]}}), actor="cli")
    await store.set_paused("b", True, note="travelling", actor="cli")
    exported = await export_jobs(store, now=T0)
    assert exported["exported_at"] == "2026-03-01T12:00:00+00:00"
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(exported))
    for job_id in ("a", "b"):
        await store.delete_job(job_id, actor="cli")
    result = await import_jobs(store, load_export(path), actor="cli")
    assert result.added == ["a", "b"]
    again = await export_jobs(store, now=T0)
    assert again == exported


async def test_importing_over_existing_jobs_keeps_their_history(store: Store) -> None:
    await import_jobs(store, document(job("a"), job("b")))
    await store.record_run(
        RunRecord(run_id="r1", job_id="a", scheduled_for=T0, status=RunStatus.succeeded)
    )
    changed = job("a")
    changed["definition"]["trigger"] = "@hourly"
    result = await import_jobs(store, document(changed, job("b")), actor="config")
    assert (result.updated, result.unchanged) == (["a"], ["b"])
    assert (await store.get_job("a")).definition["trigger"] == "@hourly"  # type: ignore[union-attr]
    assert await store.count_runs(RunQuery(job_id="a")) == 1
    assert (await store.list_audit("a"))[0].actor == "config"


async def test_an_import_can_pause_and_resume(store: Store) -> None:
    await import_jobs(store, document(job("a")))
    result = await import_jobs(store, document(job("a", paused=True, pause_note="later")))
    assert result.updated == ["a"]
    stored = await store.get_job("a")
    assert stored is not None and stored.paused and stored.pause_note == "later"


async def test_every_problem_is_listed_and_nothing_is_imported(store: Store) -> None:
    bad = {
        "format": "agentcron.jobs",
        "version": 1,
        "colour": "blue",
        "jobs": [
            job("ok"),
            job("", paused="yes"),
            {"id": "x", "definition": [], "schedule": "* * * * *"},
            job("ok"),
            "not an object",
            job("n", pause_note=5),
        ],
    }
    with pytest.raises(ImportValidationError) as err:
        await import_jobs(store, bad, source="jobs.json")
    problems = err.value.errors
    assert problems == [
        "the file: unknown field 'colour' (expected one of: format, version, exported_at, jobs)",
        'jobs[1].id: expected a non-empty string of at most 200 characters, got ""',
        'jobs[1].paused: expected true or false, got "yes"',
        "jobs[2]: unknown field 'schedule' (expected one of: id, definition, paused, pause_note)",
        "jobs[2].definition: expected an object, got []",
        "jobs[3].id: 'ok' repeats jobs[0].id",
        'jobs[4]: expected an object, got "not an object"',
        "jobs[5].pause_note: expected a string or null, got 5",
    ]
    assert str(err.value).startswith("8 problems in jobs.json, nothing imported: ")
    assert await store.list_jobs() == []


async def test_the_engine_can_validate_definitions_during_import(store: Store) -> None:
    def validate(definition: dict[str, Any]) -> list[str]:
        return [] if definition.get("trigger") != "@never" else ["trigger: '@never' never fires"]

    never = job("b")
    never["definition"]["trigger"] = "@never"
    with pytest.raises(ImportValidationError, match="jobs\\[1\\].definition: trigger"):
        await import_jobs(store, document(job("a"), never), validate_definition=validate)
    assert await store.list_jobs() == []


async def test_conflict_error_refuses_the_whole_import(store: Store) -> None:
    await import_jobs(store, document(job("b")))
    with pytest.raises(ImportValidationError, match="'b' already exists"):
        await import_jobs(store, document(job("a"), job("b")), conflict="error")
    assert [j.id for j in await store.list_jobs()] == ["b"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must hold a JSON object"),
        ({"format": "other", "version": 1, "jobs": []}, "format: expected 'agentcron.jobs'"),
        ({"format": "agentcron.jobs", "version": 2, "jobs": []}, "newer than this agentcron"),
        ({"format": "agentcron.jobs", "version": 1, "jobs": {}}, "jobs: expected a list"),
    ],
)
async def test_a_document_of_the_wrong_shape_is_refused(
    store: Store, data: Any, message: str
) -> None:
    with pytest.raises(ImportValidationError, match=message):
        await import_jobs(store, data)


def test_a_file_that_is_not_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "jobs.json"
    path.write_text('{"format": "agentcron.jobs",\n  "jobs": [,]}')
    with pytest.raises(ImportValidationError, match="not JSON \\(line 2 column"):
        load_export(path)
    with pytest.raises(ImportValidationError, match="cannot read the file"):
        load_export(tmp_path / "missing.json")
