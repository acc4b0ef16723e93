"""What `agentcron jobs add/remove/import` refuse, in one line with exit 2: time zones that
are not IANA names, tags beyond the HTTP API's limits, and changes to jobs that
agentcron.toml defines (the next reload would undo them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import assert_bad_input, jobs, migrated_data_dir, ok, store_call
from typer.testing import Result

from agentcron.models import CONFIG_JOBS_KEY

FILE_JOB_ADVICE = "then reload (`agentcron jobs reload`); a change made here would be undone"


def add_hourly(data_dir: Path, job_id: str, *options: str) -> Result:
    return jobs(data_dir, "add", job_id, "--every", "1h", *options, "--command", "true")


def mark_as_file_jobs(data_dir: Path, *job_ids: str) -> None:
    """Record `job_ids` as agentcron.toml's jobs, as `agentcron run` does."""
    store_call(data_dir, lambda s: s.set_state(CONFIG_JOBS_KEY, json.dumps(sorted(job_ids))))


def definitions(data_dir: Path) -> dict[str, Any]:
    exported = json.loads(ok(jobs(data_dir, "export")))
    return {item["id"]: item["definition"] for item in exported["jobs"]}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return migrated_data_dir(tmp_path)


# == time zones ================================================================================
def test_add_refuses_the_machine_zone_localtime_naming_it(data: Path) -> None:
    result = add_hourly(data, "backup", "--tz", "localtime")
    assert_bad_input(result, "'localtime' is not an IANA time zone name", "'Europe/Paris'")
    assert definitions(data) == {}


# == tags ======================================================================================
@pytest.mark.parametrize(
    ("tags", "fragment"),
    [
        ([f"t{i}" for i in range(51)], "51 tags (at most 50)"),
        (["x" * 101], "is 101 characters long (at most 100)"),
        ([""], "a tag may not be empty"),
        (["a\tb"], "may not contain control characters"),
    ],
)
def test_add_refuses_tags_beyond_the_http_api_limits_naming_the_job_and_the_limit(
    data: Path, tags: list[str], fragment: str
) -> None:
    options = [arg for tag in tags for arg in ("--tag", tag)]
    result = add_hourly(data, "backup", *options)
    assert_bad_input(result, "job 'backup': --tag: ", fragment)
    assert definitions(data) == {}


def test_add_accepts_tags_up_to_the_http_api_limits(data: Path) -> None:
    tags = [f"{i:02d}" + "x" * 98 for i in range(50)]
    ok(add_hourly(data, "backup", *[arg for tag in tags for arg in ("--tag", tag)]))
    assert definitions(data)["backup"]["tags"] == tags


# == jobs that agentcron.toml defines ==========================================================
def test_add_replace_of_a_job_the_config_file_defines_is_refused_as_the_api_does(
    data: Path,
) -> None:
    ok(add_hourly(data, "backup"))
    mark_as_file_jobs(data, "backup")
    before = definitions(data)
    result = jobs(data, "add", "backup", "--every", "5m", "--command", "false", "--replace")
    assert_bad_input(
        result, "job 'backup' is defined in agentcron.toml: change it there, " + FILE_JOB_ADVICE
    )
    assert definitions(data) == before


def test_remove_of_a_job_the_config_file_defines_is_refused_as_the_api_does(data: Path) -> None:
    ok(add_hourly(data, "backup"))
    mark_as_file_jobs(data, "backup")
    result = jobs(data, "remove", "backup")
    assert_bad_input(
        result, "job 'backup' is defined in agentcron.toml: remove it there, " + FILE_JOB_ADVICE
    )
    assert "backup" in definitions(data)


def test_jobs_the_config_file_does_not_define_are_still_replaced_and_removed(data: Path) -> None:
    ok(add_hourly(data, "backup"))
    ok(add_hourly(data, "other"))
    mark_as_file_jobs(data, "other")
    ok(jobs(data, "add", "backup", "--every", "5m", "--command", "true", "--replace"))
    ok(jobs(data, "remove", "backup"))
    assert list(definitions(data)) == ["other"]


def test_pause_and_resume_of_a_job_the_config_file_defines_stay_allowed(data: Path) -> None:
    ok(add_hourly(data, "backup"))
    mark_as_file_jobs(data, "backup")
    ok(jobs(data, "pause", "backup"))
    ok(jobs(data, "resume", "backup"))


def test_import_replacing_jobs_the_config_file_defines_names_each_and_imports_nothing(
    data: Path, tmp_path: Path
) -> None:
    for job_id in ("a", "b", "c"):
        ok(add_hourly(data, job_id))
    mark_as_file_jobs(data, "a", "b")
    before = definitions(data)
    exported = json.loads(ok(jobs(data, "export")))
    for item in exported["jobs"]:
        item["definition"]["trigger"] = {"type": "interval", "seconds": 300.0}
    file = tmp_path / "edited.json"
    file.write_text(json.dumps(exported))
    result = jobs(data, "import", str(file))
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert lines[-1] == f"agentcron: 2 problems in {file}, nothing imported"
    assert any("jobs[0].id: job 'a' is defined in agentcron.toml" in line for line in lines)
    assert any("jobs[1].id: job 'b' is defined in agentcron.toml" in line for line in lines)
    assert not any("'c'" in line for line in lines)
    assert definitions(data) == before


def test_import_of_an_unchanged_export_passes_jobs_the_config_file_defines(
    data: Path, tmp_path: Path
) -> None:
    ok(add_hourly(data, "a", "--tag", "nightly"))
    mark_as_file_jobs(data, "a")
    file = tmp_path / "export.json"
    ok(jobs(data, "export", str(file)))
    result = json.loads(ok(jobs(data, "import", str(file), "--json")))
    assert result["unchanged"] == ["a"]


def test_import_keeping_stored_jobs_passes_jobs_the_config_file_defines(
    data: Path, tmp_path: Path
) -> None:
    ok(add_hourly(data, "a"))
    mark_as_file_jobs(data, "a")
    exported = json.loads(ok(jobs(data, "export")))
    exported["jobs"][0]["definition"]["trigger"] = {"type": "interval", "seconds": 300.0}
    file = tmp_path / "edited.json"
    file.write_text(json.dumps(exported))
    ok(jobs(data, "import", str(file), "--conflict", "keep"))
