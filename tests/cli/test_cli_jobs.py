"""`agentcron jobs ...` on real SQLite files in tmp_path, through typer's CliRunner and as a
real `python -m agentcron` subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from cli_helpers import (
    as_json,
    assert_bad_input,
    jobs,
    migrated_data_dir,
    ok,
    runner,
    store_call,
)

from agentcron.cli.main import build_app
from agentcron.control import JOBS_CHANGED_KEY, PID_FILE
from agentcron.cron import CronExpression
from agentcron.handlers import child_records
from agentcron.models import AuditEntry, RunQuery, RunRecord, RunStatus, StoredJob, new_run_id
from agentcron.store.sqlite import SqliteStore
from helpers.polling import wait_for

PY = sys.executable


def listed(data_dir: Path) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = as_json(jobs(data_dir, "list", "--json"))
    return result


def stored(data_dir: Path) -> list[dict[str, Any]]:
    """`listed` without `next_run`: for a job that never fired it is worked out from the
    clock at each listing, so two listings across a minute boundary differ (CI saw it)."""
    return [{k: v for k, v in job.items() if k != "next_run"} for job in listed(data_dir)]


def by_id(data_dir: Path) -> dict[str, dict[str, Any]]:
    return {job["id"]: job for job in listed(data_dir)}


def add(data_dir: Path, job_id: str, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = as_json(jobs(data_dir, "add", job_id, "--json", *args))
    return result


def add_script(data_dir: Path, job_id: str, code: str, *options: str) -> None:
    """A job running `python -c CODE` every hour."""
    ok(jobs(data_dir, "add", job_id, "--every", "1h", *options, "--", PY, "-c", code))


def audit(data_dir: Path, job_id: str) -> list[AuditEntry]:
    return list(store_call(data_dir, lambda s: s.list_audit(job_id)))


def changed_token(data_dir: Path) -> str | None:
    return store_call(data_dir, lambda s: s.get_state(JOBS_CHANGED_KEY))  # type: ignore[no-any-return]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return migrated_data_dir(tmp_path)


# == list ======================================================================================
def test_list_of_an_empty_store_is_an_empty_json_list(data: Path) -> None:
    assert listed(data) == []
    assert "no jobs" in ok(jobs(data, "list"))


def test_list_without_a_database_exits_two_and_creates_nothing(tmp_path: Path) -> None:
    assert_bad_input(jobs(tmp_path / "nowhere", "list"), "no database at")
    assert not (tmp_path / "nowhere").exists()


def test_list_json_gives_each_field_of_a_cron_job(data: Path) -> None:
    add(
        data,
        "backup",
        "--cron",
        "0 2 * * *",
        "--tz",
        "Europe/Berlin",
        "--name",
        "Nightly",
        "--command",
        "true",
    )
    before = datetime.now(UTC)
    (job,) = listed(data)
    assert set(job) == {
        "id",
        "name",
        "trigger",
        "timezone",
        "enabled",
        "paused",
        "status",
        "pause_note",
        "disabled_reason",
        "next_run",
        "tags",
    }
    assert job["id"] == "backup" and job["name"] == "Nightly"
    assert job["trigger"] == "0 2 * * *"
    assert job["timezone"] == "Europe/Berlin"
    assert (job["enabled"], job["paused"], job["pause_note"]) == (True, False, None)
    assert job["status"] == "active"
    assert job["disabled_reason"] is None and job["tags"] == []
    next_run = datetime.fromisoformat(job["next_run"])
    assert next_run.utcoffset() is not None
    assert next_run == CronExpression("0 2 * * *", tz="Europe/Berlin").next(before)


def test_list_json_writes_interval_date_and_reboot_triggers_as_in_the_toml_file(
    data: Path,
) -> None:
    add(data, "ping", "--every", "5m", "--command", "true")
    add(data, "once", "--at", "2099-01-02T03:04:05+01:00", "--command", "true")
    add(data, "boot", "--reboot", "--command", "true")
    found = by_id(data)
    assert found["ping"]["trigger"] == {"every": 300.0}
    assert found["once"]["trigger"] == {"at": "2099-01-02T02:04:05+00:00"}
    assert found["once"]["next_run"] == "2099-01-02T02:04:05+00:00"
    assert found["boot"]["trigger"] == "@reboot"
    assert found["boot"]["next_run"] is None


def test_list_table_shows_the_schedule_in_words_and_the_status(data: Path) -> None:
    add(data, "backup", "--cron", "0 2 * * *", "--command", "true")
    ok(jobs(data, "pause", "backup", "--note", "travelling"))
    out = ok(jobs(data, "list"))
    assert "backup" in out and "0 2 * * *" in out
    assert "At 02:00" in out
    assert "paused" in out and "travelling" in out


def test_list_filters_by_tag(data: Path) -> None:
    add(data, "a", "--every", "1m", "--tag", "mail", "--command", "true")
    add(data, "b", "--every", "1m", "--tag", "voice", "--command", "true")
    result = as_json(jobs(data, "list", "--json", "--tag", "voice"))
    assert [job["id"] for job in result] == ["b"]


def test_list_shows_the_reason_of_a_job_disabled_with_one(data: Path) -> None:
    add(data, "gmail", "--every", "2m", "--command", "true", "--disabled")
    stored = store_call(data, lambda s: s.get_job("gmail"))
    definition = {**stored.definition, "disabled_reason": "no handler configured"}
    store_call(
        data, lambda s: s.save_job(StoredJob(id="gmail", definition=definition), actor="preset")
    )
    (job,) = listed(data)
    assert job["enabled"] is False
    assert job["disabled_reason"] == "no handler configured"
    assert job["next_run"] is None
    assert "no handler configured" in ok(jobs(data, "list"))


def _record(data_dir: Path, job_id: str, status: RunStatus) -> None:
    now = datetime.now(UTC)
    run = RunRecord(
        run_id=new_run_id(),
        job_id=job_id,
        scheduled_for=now,
        status=status,
        started_at=now,
        finished_at=None if status == RunStatus.running else now,
        error="boom" if status == RunStatus.failed else None,
    )
    store_call(data_dir, lambda s: s.record_run(run))


def test_list_says_failing_and_running_as_the_dashboard_does(data: Path) -> None:
    for job_id in ("fine", "broken", "busy"):
        add(data, job_id, "--every", "1h", "--command", "true")
    _record(data, "fine", RunStatus.succeeded)
    for _ in range(3):  # a failure streak (an open circuit comes after one)
        _record(data, "broken", RunStatus.failed)
    _record(data, "busy", RunStatus.running)
    statuses = {job["id"]: job["status"] for job in listed(data)}
    assert statuses == {"fine": "active", "broken": "failing", "busy": "running"}
    rows = {line.split()[1]: line for line in ok(jobs(data, "list")).splitlines() if "│" in line}
    assert "failing" in rows["broken"] and "running" in rows["busy"]
    assert "active" in rows["fine"]
    assert as_json(jobs(data, "show", "broken", "--json"))["status"] == "failing"


def test_control_characters_in_stored_text_are_shown_escaped_and_kept_exact_in_json(
    data: Path,
) -> None:
    # An ESC in a name, note or error would recolour or clear the terminal of whoever lists.
    name = "\x1b[1mA"
    add(data, "a", "--every", "1h", "--name", name, "--description", "d\x07", "--command", "true")
    code = "import sys; sys.exit('boom\\x1b[2J')"
    add(data, "b", "--every", "1h", "--", PY, "-c", code)

    async def tag_from_code(store: SqliteStore) -> None:
        # `jobs add --tag` refuses control characters; the Python API and old stores do not.
        job = await store.get_job("b")
        assert job is not None
        tagged = job.evolve(definition={**job.definition, "tags": ["t\x1b[2J"]})
        await store.save_job(tagged, actor="code", conflict="replace")

    store_call(data, tag_from_code)
    ok(jobs(data, "pause", "b", "--note", "n\x9b1m"))
    failed = jobs(data, "run", "b")
    assert failed.exit_code == 1
    shown = [ok(jobs(data, "list")), ok(jobs(data, "show", "a")), ok(jobs(data, "show", "b"))]
    for out in [*shown, failed.stdout]:
        assert not any(c in out for c in "\x1b\x07\x9b"), out
    assert "\\x1b[1mA" in shown[0] and "\\x9b1m" in shown[0]
    assert "d\\x07" in shown[1]
    assert "t\\x1b[2J" in shown[2]
    assert "boom\\x1b[2J" in failed.stdout
    assert by_id(data)["a"]["name"] == name


# == add =======================================================================================
def test_add_takes_the_command_after_a_double_dash(data: Path) -> None:
    add(data, "echo", "--every", "1m", "--", PY, "-c", "print('a b')")
    shown = as_json(jobs(data, "show", "echo", "--json"))
    assert shown["definition"]["handler"]["argv"] == [PY, "-c", "print('a b')"]


def test_add_splits_a_command_string_like_a_shell(data: Path) -> None:
    add(data, "sync", "--every", "1m", "--command", "rsync -a 'my src/' dst/")
    shown = as_json(jobs(data, "show", "sync", "--json"))
    assert shown["definition"]["handler"]["argv"] == ["rsync", "-a", "my src/", "dst/"]


def test_add_an_http_job_with_method_and_headers(data: Path) -> None:
    add(
        data,
        "ping",
        "--every",
        "30s",
        "--http",
        "https://example.org/ping",
        "--method",
        "get",
        "--header",
        "X-Token: abc",
    )
    handler = as_json(jobs(data, "show", "ping", "--json"))["definition"]["handler"]
    assert handler["url"] == "https://example.org/ping"
    assert handler["method"] == "GET"
    assert handler["headers"] == {"X-Token": "abc"}


def test_add_a_callable_by_reference(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cli_jobs_sample.py").write_text("def work():\n    return 'done'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    add(data, "work", "--cron", "*/5 * * * *", "--callable", "cli_jobs_sample:work")
    shown = as_json(jobs(data, "show", "work", "--json"))
    assert shown["handler"] == "python cli_jobs_sample:work"


def test_add_takes_every_option_of_a_toml_jobs_table(data: Path) -> None:
    add(
        data,
        "full",
        "--cron",
        "0 9 * * MON-FRI",
        "--tz",
        "Europe/Berlin",
        "--name",
        "Full",
        "--description",
        "all options",
        "--timeout",
        "10m",
        "--jitter",
        "5s",
        "--overlap",
        '{ policy = "concurrent", max_concurrent = 3 }',
        "--retry-attempts",
        "3",
        "--retry-strategy",
        "exponential",
        "--retry-base-delay",
        "1s",
        "--retry-max-delay",
        "30s",
        "--misfire",
        '{ policy = "run_all", max_catchup = 10, catchup_window = "1d" }',
        "--circuit",
        "{ failure_threshold = 5 }",
        "--tag",
        "maintenance",
        "--tag",
        "nightly",
        "--queue",
        "reports",
        "--expect-every",
        "2h",
        "--max-runs",
        "100",
        "--disabled",
        "--command",
        "true",
    )
    shown = as_json(jobs(data, "show", "full", "--json"))
    definition = shown["definition"]
    assert definition["timeout_s"] == 600.0
    assert definition["jitter_s"] == 5.0
    assert definition["overlap"]["policy"] == "concurrent"
    assert definition["overlap"]["max_concurrent"] == 3
    assert definition["retry"]["max_attempts"] == 3
    assert definition["retry"]["max_delay"] == 30.0
    assert definition["misfire"]["policy"] == "run_all"
    assert definition["circuit"]["failure_threshold"] == 5
    assert definition["queue"] == "reports"
    assert definition["expect_every_s"] == 7200.0
    assert definition["max_runs"] == 100
    assert shown["tags"] == ["maintenance", "nightly"]
    assert shown["description"] == "all options"
    assert shown["enabled"] is False and shown["status"] == "disabled"
    assert shown["next_run"] is None
    assert shown["disabled_reason"] is None


def test_add_reads_times_without_an_offset_in_the_given_time_zone(data: Path) -> None:
    add(data, "once", "--at", "2099-07-01T09:00:00", "--tz", "Europe/Berlin", "--command", "true")
    assert by_id(data)["once"]["trigger"] == {"at": "2099-07-01T07:00:00+00:00"}
    add(
        data,
        "window",
        "--every",
        "1h",
        "--start",
        "2099-01-01T00:00",
        "--tz",
        "Asia/Tokyo",
        "--command",
        "true",
    )
    definition = as_json(jobs(data, "show", "window", "--json"))["definition"]
    assert definition["start"] == "2098-12-31T15:00:00+00:00"


def test_add_is_audited_as_the_cli_and_tells_daemons_to_reload(data: Path) -> None:
    add(data, "a", "--every", "1m", "--command", "true")
    first = changed_token(data)
    assert first is not None
    add(data, "b", "--every", "1m", "--command", "true")
    assert changed_token(data) not in (None, first)
    (entry,) = audit(data, "a")
    assert (entry.action, entry.actor) == ("added", "cli")


def test_add_refuses_an_existing_id_without_replace(data: Path) -> None:
    add(data, "a", "--every", "1m", "--command", "true")
    assert_bad_input(
        jobs(data, "add", "a", "--every", "2m", "--command", "true"), "already exists", "--replace"
    )
    assert by_id(data)["a"]["trigger"] == {"every": 60.0}


def test_add_with_replace_updates_the_job_and_keeps_its_history(data: Path) -> None:
    add_script(data, "a", "print(1)")
    ok(jobs(data, "run", "a"))
    result = add(data, "a", "--replace", "--every", "2m", "--", PY, "-c", "print(2)")
    assert result["replaced"] is True
    assert by_id(data)["a"]["trigger"] == {"every": 120.0}
    assert len(as_json(jobs(data, "history", "a", "--json"))) == 1


BAD_ADDS = [
    (["--cron", "61 * * * *", "--command", "true"], "minute field: 61 is out of range 0-59"),
    (["--cron", "0 0 * * * * * *", "--command", "true"], "trigger"),
    (["--every", "5x", "--command", "true"], "'5x' is not a duration"),
    (["--every", "1m", "--timeout", "soon", "--command", "true"], "timeout"),
    (["--every", "1m", "--retry-base-delay", "1y", "--command", "true"], "retry.base_delay"),
    (["--cron", "* * * * *", "--tz", "Mars/Base", "--command", "true"], "unknown time zone"),
    (["--at", "tomorrow", "--command", "true"], "not an ISO-8601 time"),
    (["--command", "true"], "give exactly one schedule"),
    (["--cron", "* * * * *", "--every", "1m", "--command", "true"], "--cron, --every"),
    (["--every", "1m"], "give exactly one handler"),
    (["--every", "1m", "--command", "true", "--http", "http://x"], "--command, --http"),
    (["--every", "1m", "--command", "echo 'unbalanced"], "--command"),
    (["--every", "1m", "--method", "GET", "--command", "true"], "--method"),
    (["--every", "1m", "--overlap", "sometimes", "--command", "true"], "overlap"),
    (["--every", "1m", "--overlap", "{ policy = ", "--command", "true"], "TOML inline table"),
    (["--every", "1m", "--misfire", "whenever", "--command", "true"], "misfire"),
    (["--every", "1m", "--retry-attempts", "0", "--command", "true"], "retry"),
    (["--every", "1m", "--retry-attempts", "many", "--command", "true"], "--retry-attempts"),
    (["--every", "1m", "--isolation", "vm", "--callable", "json:dumps"], "isolation"),
    (["--every", "1m", "--callable", "no_such_module_xyz:run"], "no_such_module_xyz"),
    (["--every", "1m", "--http", "ftp://example.org"], "http"),
    (["--every", "1m", "--env", "NOEQUALS", "--command", "true"], "--env"),
    (["--every", "1m", "--cwd", "/tmp", "--http", "http://x"], "--cwd"),
    (["--every", "1m", "--body", "{not json", "--http", "http://x"], "--body"),
    (
        ["--every", "1m", "--start", "2030-01-02T00:00+00:00", "--end", "2030-01-01T00:00+00:00"]
        + ["--command", "true"],
        "end: must be after start",
    ),
    (["--every", "1m", "--start", "someday", "--command", "true"], "--start 'someday'"),
    (
        ["--at", "9999-12-31T23:59:59", "--tz", "America/Los_Angeles", "--command", "true"],
        "trigger.at: 9999-12-31T23:59:59-08:00 is out of range once converted to UTC",
    ),
    (["--at", "9999-12-31T23:59:59-12:00", "--command", "true"], "out of range"),
    (
        ["--cron", "@daily", "--start", "9999-12-31T23:59:59-12:00", "--command", "true"],
        "start: 9999-12-31T23:59:59-12:00 is out of range once converted to UTC",
    ),
    (
        ["--cron", "@daily", "--end", "0001-01-01T00:00:00+05:00", "--command", "true"],
        "end: 0001-01-01T00:00:00+05:00 is out of range once converted to UTC",
    ),
    (
        ["--every", "1m", "--misfire", '{policy="run_all", max_catchup="a"}']
        + ["--command", "true"],
        "misfire.max_catchup: expected a whole number, got 'a'",
    ),
    (
        ["--every", "1m", "--overlap", '{policy="concurrent", max_concurrent="a"}']
        + ["--command", "true"],
        "overlap.max_concurrent: expected a whole number, got 'a'",
    ),
    (
        ["--every", "1m", "--circuit", '{failure_threshold="a"}', "--command", "true"],
        "circuit.failure_threshold: expected a whole number, got 'a'",
    ),
    (["--every", "1m", "--retry", "{bogus=1}", "--command", "true"], "retry.bogus: unknown key"),
]


@pytest.mark.parametrize(("args", "message"), BAD_ADDS)
def test_add_with_bad_input_exits_two_with_one_line_and_changes_nothing(
    data: Path, args: list[str], message: str
) -> None:
    add(data, "keep", "--every", "1m", "--command", "true")
    before = stored(data)
    assert_bad_input(jobs(data, "add", "new", *args), message)
    assert stored(data) == before


def test_add_into_an_unwritable_data_dir_exits_two(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    result = jobs(tmp_path / "a-file" / "data", "add", "x", "--every", "1m", "--command", "true")
    assert_bad_input(result, "cannot create the directory")


def test_a_corrupt_database_exits_two_and_is_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "data" / "scheduler.db"
    db.parent.mkdir()
    db.write_bytes(b"this is not sqlite at all")
    assert_bad_input(jobs(tmp_path / "data", "list"), "not an SQLite database")
    assert_bad_input(
        jobs(tmp_path / "data", "add", "x", "--every", "1m", "--command", "true"),
        "not an SQLite database",
    )
    assert db.read_bytes() == b"this is not sqlite at all"


def test_a_bad_store_url_exits_two(tmp_path: Path) -> None:
    result = runner.invoke(build_app(), ["jobs", "list", "--store", "mongo://x"])
    assert_bad_input(result, "unknown store scheme")


def test_store_url_points_the_commands_at_another_database(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'elsewhere.db').as_posix()}"
    app = build_app()
    result = runner.invoke(
        app, ["jobs", "add", "x", "--store", url, "--every", "1m", "--command", "true"]
    )
    ok(result)
    assert (tmp_path / "elsewhere.db").is_file()
    out = as_json(runner.invoke(app, ["jobs", "list", "--json", "--store", url]))
    assert [job["id"] for job in out] == ["x"]


# == show ======================================================================================
def test_show_gives_definition_state_next_five_fires_last_runs_and_stats(data: Path) -> None:
    add_script(data, "a", "print('hi')", "--tag", "t")
    ok(jobs(data, "run", "a"))
    shown = as_json(jobs(data, "show", "a", "--json"))
    assert shown["id"] == "a" and shown["status"] == "active"
    assert shown["definition"]["trigger"] == {"type": "interval", "seconds": 3600.0}
    fires = [datetime.fromisoformat(t) for t in shown["next_fires"]]
    assert len(fires) == 5
    assert all((b - a).total_seconds() == 3600 for a, b in zip(fires, fires[1:], strict=False))
    (run,) = shown["last_runs"]
    assert run["status"] == "succeeded" and run["output_tail"] == "hi\n"
    assert shown["stats"]["total"] == 1 and shown["stats"]["succeeded"] == 1
    text = ok(jobs(data, "show", "a"))
    assert "next fire times" in text and "succeeded" in text


def test_show_of_an_unknown_id_exits_two(data: Path) -> None:
    assert_bad_input(jobs(data, "show", "nope"), "no job with id 'nope'")


def test_show_without_an_id_exits_two_with_one_line(data: Path) -> None:
    assert_bad_input(jobs(data, "show"), "Missing argument")


# == remove / pause / resume ===================================================================
def test_remove_deletes_the_job_and_its_history(data: Path) -> None:
    add_script(data, "a", "print(1)")
    ok(jobs(data, "run", "a"))
    assert "removed job a" in ok(jobs(data, "remove", "a"))
    assert listed(data) == []
    assert store_call(data, lambda s: s.count_runs(RunQuery())) == 0
    assert audit(data, "a")[0].action == "removed"


def test_remove_of_an_unknown_id_exits_two(data: Path) -> None:
    assert_bad_input(jobs(data, "remove", "nope"), "no job with id")


def test_pause_with_a_note_then_resume(data: Path) -> None:
    add(data, "a", "--every", "1m", "--command", "true")
    token = changed_token(data)
    paused = as_json(jobs(data, "pause", "a", "--note", "travelling", "--json"))
    assert paused["paused"] is True and paused["pause_note"] == "travelling"
    job = by_id(data)["a"]
    assert (job["paused"], job["pause_note"], job["next_run"]) == (True, "travelling", None)
    assert changed_token(data) != token
    ok(jobs(data, "resume", "a"))
    job = by_id(data)["a"]
    assert (job["paused"], job["pause_note"]) == (False, None)
    assert job["next_run"] is not None
    assert [e.action for e in audit(data, "a")][:2] == ["resumed", "paused"]


@pytest.mark.parametrize("command", ["pause", "resume"])
def test_pause_and_resume_of_an_unknown_id_exit_two(data: Path, command: str) -> None:
    assert_bad_input(jobs(data, command, "nope"), "no job with id")


# == run =======================================================================================
def test_run_prints_the_finished_run_and_exits_zero_on_success(data: Path) -> None:
    add_script(data, "a", "print('hello')")
    out = ok(jobs(data, "run", "a"))
    assert "job a: succeeded" in out and "hello" in out


def test_run_exits_one_when_the_run_failed(data: Path) -> None:
    add_script(data, "bad", "import sys; print('oops'); sys.exit(3)")
    result = jobs(data, "run", "bad", "--json")
    assert result.exit_code == 1
    run = json.loads(result.stdout)
    assert run["status"] == "failed"
    assert "exit status 3" in run["error"]
    assert run["output_tail"] == "oops\n"
    assert set(run) >= {
        "job_id",
        "scheduled_for",
        "started_at",
        "finished_at",
        "duration",
        "status",
        "attempt",
        "error",
        "output_tail",
        "node_id",
    }


def test_run_goes_through_the_jobs_retry_policy(data: Path) -> None:
    add_script(
        data, "flaky", "import sys; sys.exit(1)", "--retry", "{ max_attempts = 2, base_delay = 0 }"
    )
    result = jobs(data, "run", "flaky", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["attempt"] == 2


def test_run_goes_through_the_jobs_timeout(data: Path) -> None:
    hung = "import time; time.sleep(60)"  # the child hangs (noqa: sleep-ok)
    add_script(data, "slow", hung, "--timeout", "200ms")
    result = jobs(data, "run", "slow", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "timed_out"


def test_run_runs_only_the_given_job(data: Path, tmp_path: Path) -> None:
    marker = tmp_path / "reboot-ran"
    code = f"open({str(marker)!r}, 'w').close()"
    ok(jobs(data, "add", "boot", "--reboot", "--", PY, "-c", code))
    add_script(data, "a", "print(1)")
    ok(jobs(data, "run", "a"))
    assert not marker.exists()
    assert as_json(jobs(data, "history", "boot", "--json")) == []


def test_run_of_a_paused_job_runs_it_and_leaves_it_paused(data: Path) -> None:
    add_script(data, "a", "print(1)")
    ok(jobs(data, "pause", "a"))
    ok(jobs(data, "run", "a"))
    assert by_id(data)["a"]["paused"] is True


def test_run_of_an_unknown_id_exits_two(data: Path) -> None:
    assert_bad_input(jobs(data, "run", "nope"), "no job with id 'nope'")


def test_run_of_a_job_disabled_with_a_reason_exits_two_without_running(data: Path) -> None:
    add(data, "gmail", "--every", "2m", "--command", "true", "--disabled")
    stored = store_call(data, lambda s: s.get_job("gmail"))
    definition = {**stored.definition, "disabled_reason": "no handler configured"}
    store_call(
        data, lambda s: s.save_job(StoredJob(id="gmail", definition=definition), actor="preset")
    )
    assert_bad_input(jobs(data, "run", "gmail"), "no handler configured")
    assert as_json(jobs(data, "history", "gmail", "--json")) == []


#: A job whose child starts a grandchild (its pid written to argv[1]) and waits for it.
_TREE_JOB = (
    "import pathlib, subprocess, sys\n"
    # (the grandchild only has to live while the test looks at it)
    "grandchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"  # noqa: sleep-ok
    "pathlib.Path(sys.argv[1]).write_text(str(grandchild.pid))\n"
    "grandchild.wait()\n"
)


def _start_jobs_run(
    data: Path, tmp_path: Path, *, env: dict[str, str] | None = None, piped: bool = False
) -> tuple[subprocess.Popen[str], int]:
    """`agentcron jobs run` of a job running `_TREE_JOB`, once its grandchild runs: the
    CLI's process (its output piped if `piped`) and the grandchild's pid."""
    pid_file = tmp_path / "grandchild.pid"
    ok(jobs(data, "add", "slow", "--every", "1h", "--", PY, "-c", _TREE_JOB, str(pid_file)))
    out = subprocess.PIPE if piped else subprocess.DEVNULL
    cli = subprocess.Popen(
        [PY, "-m", "agentcron", "jobs", "run", "slow", "--data-dir", str(data)],
        stdout=out, stderr=out, text=True, env=env,
    )  # fmt: skip
    started = lambda: pid_file.is_file() and pid_file.read_text() != ""  # noqa: E731
    wait_for(lambda: started() or cli.poll() is not None)
    if not started():
        out_text, err_text = cli.communicate(timeout=60)
        raise AssertionError(f"the job never started: {out_text} {err_text}")
    return cli, int(pid_file.read_text())


def _gone(pid: int) -> bool:
    """True when `pid` has exited (a zombie waiting for a reaper counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_jobs_run_kills_the_process_tree_and_records_the_run_cancelled(
    data: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    # QA: SIGTERM (`timeout 3 agentcron jobs run slow`) killed the CLI at once (rc -15),
    # orphaned the job's processes and left the run `running` until a daemon's lease check.
    cli, grandchild = _start_jobs_run(data, tmp_path, piped=True)
    with cli:
        cli.send_signal(sig)
        out, err = cli.communicate(timeout=60)
    assert cli.returncode == 1, (cli.returncode, out, err)
    assert "cancelled" in out and "Traceback" not in err
    wait_for(lambda: _gone(grandchild), timeout_s=10)
    (run,) = as_json(jobs(data, "history", "slow", "--json"))
    assert run["status"] == "cancelled"


def test_jobs_run_holds_its_lease_for_scheduler_lease_as_run_does(
    data: Path, tmp_path: Path
) -> None:
    # It held a 60 s lease whatever SCHEDULER_LEASE said: a killed `jobs run` was taken for
    # interrupted a minute later, not when the daemons' lease said.
    cli, _ = _start_jobs_run(data, tmp_path, env={**os.environ, "SCHEDULER_LEASE": "7000"})
    with cli:
        try:
            (run,) = asyncio.run(_runs_of(data, "slow"))
        finally:
            cli.send_signal(signal.SIGTERM)
            cli.wait(timeout=60)
    assert run.lease_expires_at is not None and run.started_at is not None
    assert (run.lease_expires_at - run.started_at).total_seconds() == 7.0


async def _runs_of(data: Path, job_id: str) -> list[RunRecord]:
    async with SqliteStore(data / "scheduler.db", read_only=True) as store:
        return await store.list_runs(RunQuery(job_id=job_id))


def _orphan_of_a_killed_jobs_run(data: Path, tmp_path: Path) -> int:
    """The pid of what `agentcron jobs run` SIGKILLed mid-run left running."""
    cli, grandchild = _start_jobs_run(data, tmp_path)
    with cli:
        try:
            wait_for(lambda: len(list((data / "children").glob("*.json"))) == 1)
        finally:
            cli.kill()
            cli.wait(timeout=60)
    assert not _gone(grandchild)
    return grandchild


def test_a_jobs_run_killed_with_sigkill_leaves_a_record_the_next_daemon_kills_by(
    data: Path, tmp_path: Path
) -> None:
    # Only `agentcron run` recorded its commands' process groups: the tree of a `jobs run`
    # SIGKILLed mid-run (no handler can run) lived on, and a retry could run beside it.
    grandchild = _orphan_of_a_killed_jobs_run(data, tmp_path)
    try:
        # What the next `agentcron run` on the data directory does first.
        [leftover] = asyncio.run(child_records.kill_leftovers(data / "children"))
        assert leftover.verdict == "killed" and leftover.job_id == "slow"
        wait_for(lambda: _gone(grandchild), timeout_s=10)
    finally:
        with contextlib.suppress(psutil.Error):
            psutil.Process(grandchild).kill()


def test_a_scheduled_worker_kills_what_a_dead_process_left_running_before_it_works(
    data: Path, tmp_path: Path
) -> None:
    # `agentcron worker --scheduled` runs stored commands too: it kept no records and
    # killed no leftovers, so what a killed worker (or `jobs run`) left ran on.
    grandchild = _orphan_of_a_killed_jobs_run(data, tmp_path)
    try:
        done = subprocess.run(
            [PY, "-m", "agentcron", "worker", "--queue", "q", "--scheduled", "--burst",
             "--data-dir", str(data)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        wait_for(lambda: _gone(grandchild), timeout_s=10)
        assert "of job slow" in done.stderr
    finally:
        with contextlib.suppress(psutil.Error):
            psutil.Process(grandchild).kill()


@pytest.mark.slow
def test_a_locked_database_is_reported_with_advice_the_user_can_follow(data: Path) -> None:
    # QA: "stop the other agentcron or raise busy_timeout_s", a knob no flag, setting or
    # page offers. The commands wait the store's busy timeout (10 s), so all run at once.
    add_script(data, "a", "print(1)")
    writer = sqlite3.connect(data / "scheduler.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        commands = [
            ["jobs", "pause", "a", "--data-dir", str(data)],
            ["jobs", "run", "a", "--data-dir", str(data)],
            ["db", "migrate", "--data-dir", str(data)],
        ]
        procs = [
            subprocess.Popen(
                [PY, "-m", "agentcron", *command],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for command in commands
        ]
        finished = [proc.communicate(timeout=60) for proc in procs]
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    for command, proc, (_, err) in zip(commands, procs, finished, strict=True):
        assert proc.returncode == 2, (command, err)
        assert err.startswith("agentcron: ") and err.count("\n") == 1, (command, err)
        assert "locked by another process" in err and "try again when it is done" in err, err
        assert "busy_timeout" not in err, err


def test_show_of_a_row_sqlite_cannot_decode_names_the_error_and_db_check(data: Path) -> None:
    # QA: "... see the SQLite error above", with nothing above.
    add_script(data, "a", "print(1)")
    conn = sqlite3.connect(data / "scheduler.db")
    conn.execute("UPDATE jobs SET definition = CAST(x'ff7b7d' AS TEXT)")
    conn.commit()
    conn.close()
    result = jobs(data, "show", "a")
    assert_bad_input(result, "Could not decode to UTF-8", "`agentcron db check`")
    assert "above" not in result.stderr


@pytest.mark.parametrize("option", ["--cron", "--every", "--at", "--command", "--http"])
def test_an_empty_schedule_or_handler_option_is_named_as_empty(data: Path, option: str) -> None:
    # QA: `--every ""` (an unset shell variable) said "got none".
    schedule = [] if option in ("--cron", "--every", "--at") else ["--every", "1h"]
    handler = [] if option in ("--command", "--http") else ["--command", "true"]
    result = jobs(data, "add", "a", *schedule, *handler, option, "")
    assert_bad_input(result, f"{option} is empty; give ")
    assert "none" not in result.stderr
    assert listed(data) == []


# == history ===================================================================================
def test_history_lists_runs_newest_first_with_iso_times(data: Path) -> None:
    add_script(data, "a", "print(1)")
    ok(jobs(data, "run", "a"))
    ok(jobs(data, "run", "a"))
    runs = as_json(jobs(data, "history", "a", "--json"))
    assert len(runs) == 2
    assert runs[0]["scheduled_for"] > runs[1]["scheduled_for"]
    for run in runs:
        assert datetime.fromisoformat(run["started_at"]).utcoffset() is not None
        assert run["job_id"] == "a" and run["status"] == "succeeded"
    assert len(as_json(jobs(data, "history", "a", "--json", "--limit", "1"))) == 1
    assert "succeeded" in ok(jobs(data, "history", "a"))


def test_history_filters_by_status(data: Path) -> None:
    add_script(data, "good", "print(1)")
    add_script(data, "bad", "import sys; sys.exit(1)")
    ok(jobs(data, "run", "good"))
    jobs(data, "run", "bad")
    assert as_json(jobs(data, "history", "good", "--json", "--status", "failed")) == []
    failed = as_json(jobs(data, "history", "bad", "--json", "--status", "failed"))
    assert [run["status"] for run in failed] == ["failed"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "no job with id"),
        (["a", "--status", "exploded"], "--status 'exploded'"),
        (["a", "--limit", "0"], "--limit"),
        (["a", "--limit", "lots"], "--limit"),
    ],
)
def test_history_with_bad_input_exits_two(data: Path, args: list[str], message: str) -> None:
    add(data, "a", "--every", "1m", "--command", "true")
    assert_bad_input(jobs(data, "history", *args), message)


# == export / import ===========================================================================
def test_the_reading_commands_answer_while_another_process_holds_the_write_lock(
    data: Path, tmp_path: Path
) -> None:
    # As during `agentcron run`'s daily VACUUM or a long prune: list, show, history and
    # export used to wait busy_timeout (10 s) for the lock, then fail with "locked".
    add_script(data, "a", "print(1)")
    ok(jobs(data, "run", "a"))
    writer = sqlite3.connect(data / "scheduler.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        results = {
            "list": jobs(data, "list", "--json"),
            "show": jobs(data, "show", "a", "--json"),
            "history": jobs(data, "history", "a", "--json"),
            "export": jobs(data, "export", str(tmp_path / "jobs.json")),
        }
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    for command, result in results.items():
        assert result.exit_code == 0, (command, result.stderr)
    assert [job["id"] for job in json.loads(results["list"].stdout)] == ["a"]
    assert [run["status"] for run in json.loads(results["history"].stdout)] == ["succeeded"]


def test_export_then_import_into_another_data_dir_gives_the_same_jobs(
    data: Path, tmp_path: Path
) -> None:
    add(data, "a", "--cron", "0 2 * * *", "--tz", "Europe/Berlin", "--command", "true")
    add(data, "b", "--every", "5m", "--http", "https://example.org")
    ok(jobs(data, "pause", "b", "--note", "later"))
    exported = as_json(jobs(data, "export"))
    assert [job["id"] for job in exported["jobs"]] == ["a", "b"]
    file = tmp_path / "jobs.json"
    ok(jobs(data, "export", str(file)))
    other = tmp_path / "other"
    result = as_json(jobs(other, "import", str(file), "--json"))
    assert result["added"] == ["a", "b"]
    assert stored(other) == stored(data)
    assert audit(other, "a")[0].actor == "cli"


def test_import_lists_every_problem_and_imports_nothing(data: Path, tmp_path: Path) -> None:
    add(data, "a", "--every", "1m", "--command", "true")
    add(data, "b", "--every", "1m", "--command", "true")
    exported = as_json(jobs(data, "export"))
    exported["jobs"][0]["definition"]["timout"] = 3
    exported["jobs"][1]["definition"]["trigger"] = {"type": "cron", "expr": "99 * * * *"}
    exported["jobs"].append({"id": "c", "definition": exported["jobs"][0]["definition"]})
    exported["jobs"][2]["definition"] = {"trigger": {"type": "reboot"}}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(exported))
    other = tmp_path / "other"
    result = jobs(other, "import", str(bad))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[-1] == f"agentcron: 3 problems in {bad}, nothing imported"
    assert any("jobs[0].definition: unknown field 'timout'" in line for line in lines)
    assert any("minute field: 99" in line for line in lines)
    assert any("jobs[2].definition: handler" in line for line in lines)
    assert not other.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"handler": {"kind": "evil"}}, "handler: unknown handler kind 'evil'"),
        ({"handler": {"argv": []}}, "the argument list is empty"),
        ({"handler": {"env": {"A": 1}}}, "env must map strings to strings"),
        ({"handler": {"ok_codes": "0"}}, "ok_codes must be a list of integers"),
        ({"handler": {"kill_grace_s": "x"}}, "kill_grace_s must be a finite number"),
        ({"handler": {"output_tail_bytes": -1}}, "output_tail_bytes must be a positive integer"),
        ({"handler": {"cwd": 5}}, "handler.cwd: expected a directory path (text), got 5"),
        ({"timeout_s": 1e400}, "timeout_s: inf is longer than 100 years"),
        ({"jitter_s": 1e400}, "jitter_s: inf is longer than 100 years"),
        ({"enabled": "no"}, "enabled must be true or false, got 'no'"),
        ({"start": "notadate"}, "start: expected an ISO-8601 time with an offset"),
        (
            {"misfire": {"policy": "run_all", "max_catchup": "a"}},
            "misfire.max_catchup: expected a whole number, got 'a'",
        ),
        ({"retry": {"bogus": 1}}, "retry.bogus: unknown key"),
        ({"tags": ["x"] * 51}, "tags: 51 tags (at most 50)"),
        ({"tags": ["a\nb"]}, "may not contain control characters"),
        ({"timezone": "localtime"}, "'localtime' is not an IANA time zone name"),
        (
            {"trigger": {"type": "date", "at": "9999-12-31T23:59:59-12:00"}},
            "is out of range once converted to UTC",
        ),
    ],
)
def test_import_refuses_a_definition_that_jobs_add_would_refuse(
    data: Path, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    add(data, "a", "--every", "1h", "--command", "true")
    exported = as_json(jobs(data, "export"))
    definition = exported["jobs"][0]["definition"]
    for key, value in change.items():
        if key == "handler":
            definition["handler"].update(value)
        else:
            definition[key] = value
    file = tmp_path / "edited.json"
    file.write_text(json.dumps(exported))
    other = tmp_path / "other"
    result = jobs(other, "import", str(file))
    assert_bad_input(result, f"1 problem in {file}, nothing imported: jobs[0].definition: ")
    assert message in result.stderr
    assert not other.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "the file must hold a JSON object, not []"),
        ('{"format": "x", "version": 1, "jobs": []}', "format: expected 'agentcron.jobs'"),
    ],
)
def test_an_import_with_one_problem_says_it_on_one_line(
    data: Path, tmp_path: Path, content: str, message: str
) -> None:
    file = tmp_path / "x.json"
    file.write_text(content)
    result = jobs(data, "import", str(file))
    assert_bad_input(result, f"agentcron: 1 problem in {file}, nothing imported: {message}")


def test_an_import_with_several_problems_prefixes_every_line(data: Path, tmp_path: Path) -> None:
    add(data, "a", "--every", "1h", "--command", "true")
    exported = as_json(jobs(data, "export"))
    exported["jobs"] = exported["jobs"] * 3
    file = tmp_path / "dup.json"
    file.write_text(json.dumps(exported))
    result = jobs(tmp_path / "other", "import", str(file))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"agentcron: {file}: jobs[1].id: 'a' repeats jobs[0].id",
        f"agentcron: {file}: jobs[2].id: 'a' repeats jobs[0].id",
        f"agentcron: 2 problems in {file}, nothing imported",
    ]


def test_import_stores_the_definition_as_the_engine_rebuilds_it(data: Path, tmp_path: Path) -> None:
    add(data, "a", "--every", "1h", "--command", "true")
    exported = as_json(jobs(data, "export"))
    exported["jobs"][0]["definition"]["handler"] = {"kind": "command", "argv": ["true"]}
    file = tmp_path / "edited.json"
    file.write_text(json.dumps(exported))
    other = tmp_path / "other"
    ok(jobs(other, "import", str(file)))
    assert as_json(jobs(other, "export"))["jobs"] == as_json(jobs(data, "export"))["jobs"]


def test_a_stored_infinity_is_refused_by_export_and_printed_as_text_by_show_json(
    data: Path,
) -> None:
    # Stored before import refused it: JSON has no Infinity, so printing it broke scripts.
    add(data, "a", "--every", "1h", "--command", "true")
    job = store_call(data, lambda s: s.get_job("a"))
    definition = {**job.definition, "timeout_s": float("inf")}
    store_call(data, lambda s: s.save_job(StoredJob(id="a", definition=definition), actor="t"))
    assert_bad_input(jobs(data, "export"), "job 'a' has a number that is not finite")

    def no_constants(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    shown = json.loads(ok(jobs(data, "show", "a", "--json")), parse_constant=no_constants)
    assert shown["definition"]["timeout_s"] == "inf"


def test_import_refuses_existing_ids_with_conflict_error(data: Path, tmp_path: Path) -> None:
    add(data, "a", "--every", "1m", "--command", "true")
    file = tmp_path / "jobs.json"
    ok(jobs(data, "export", str(file)))
    result = jobs(data, "import", str(file), "--conflict", "error")
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    kept = as_json(jobs(data, "import", str(file), "--conflict", "keep", "--json"))
    assert kept["unchanged"] == ["a"] and kept["added"] == []


def test_import_with_replace_keeps_the_history(data: Path, tmp_path: Path) -> None:
    add_script(data, "a", "print(1)")
    ok(jobs(data, "run", "a"))
    file = tmp_path / "jobs.json"
    ok(jobs(data, "export", str(file)))
    content = json.loads(file.read_text())
    content["jobs"][0]["definition"]["trigger"]["seconds"] = 120.0
    file.write_text(json.dumps(content))
    result = as_json(jobs(data, "import", str(file), "--json"))
    assert result["updated"] == ["a"]
    assert by_id(data)["a"]["trigger"] == {"every": 120.0}
    assert len(as_json(jobs(data, "history", "a", "--json"))) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('{"format": "something-else", "version": 1, "jobs": []}', "format"),
    ],
)
def test_import_of_a_file_that_is_not_an_export_exits_two(
    data: Path, tmp_path: Path, content: str, message: str
) -> None:
    file = tmp_path / "x.json"
    file.write_text(content)
    result = jobs(data, "import", str(file))
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_import_of_a_missing_file_or_with_a_bad_conflict_exits_two(
    data: Path, tmp_path: Path
) -> None:
    assert_bad_input(jobs(data, "import", str(tmp_path / "missing.json")), "cannot read")
    file = tmp_path / "jobs.json"
    ok(jobs(data, "export", str(file)))
    assert_bad_input(jobs(data, "import", str(file), "--conflict", "merge"), "--conflict")


def test_export_to_an_unwritable_place_exits_two(data: Path, tmp_path: Path) -> None:
    assert_bad_input(jobs(data, "export", str(tmp_path / "no" / "dir" / "x.json")), "cannot write")


# == reload ====================================================================================
def test_reload_without_a_daemon_says_so_and_sets_the_store_key(data: Path) -> None:
    assert changed_token(data) is None
    out = ok(jobs(data, "reload", "--wait", "0"))
    assert "no local daemon" in out
    assert changed_token(data) is not None


def test_reload_without_a_daemon_says_after_the_wait_that_none_answered(data: Path) -> None:
    began = time.monotonic()
    out = ok(jobs(data, "reload", "--wait", "0.5"))
    assert time.monotonic() - began >= 0.5
    assert out == (
        "reload requested in the store; no local daemon was signalled and no daemon answered "
        "within 0.5 s (daemons sharing the store apply it at their next poll)\n"
    )
    answer = as_json(jobs(data, "reload", "--wait", "0.2", "--json"))
    assert answer == {"daemon_signalled": False, "verdict": None}


@pytest.mark.parametrize(
    ("wait", "fragment"),
    [
        ("-1", "--wait -1: use a number of seconds, 0 or more (0: do not wait)"),
        ("-0.5", "--wait -0.5: use a number of seconds, 0 or more"),
        ("nan", "--wait nan: use a number of seconds, 0 or more"),
        ("inf", "--wait inf: use a number of seconds, 0 or more"),
        ("soon", "Invalid value for '--wait'"),
    ],
)
def test_reload_with_a_negative_or_non_numeric_wait_exits_two_and_requests_nothing(
    data: Path, wait: str, fragment: str
) -> None:
    assert_bad_input(jobs(data, "reload", "--wait", wait), fragment)
    assert changed_token(data) is None


@contextlib.contextmanager
def fake_daemon(data_dir: Path, code: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """`python -c CODE ARGS...` recorded as the daemon of `data_dir` once it printed `ready`."""
    with subprocess.Popen([PY, "-c", code, *args], stdout=subprocess.PIPE, text=True) as daemon:
        try:
            assert daemon.stdout is not None
            assert daemon.stdout.readline() == "ready\n"
            (data_dir / PID_FILE).write_text(f"{daemon.pid}\n")
            yield daemon
        finally:
            if daemon.poll() is None:
                daemon.kill()


#: Exits on SIGHUP without a verdict (a daemon of an older version, or one that is stuck).
SILENT_DAEMON = (
    "import signal, sys\n"
    "signal.signal(signal.SIGHUP, lambda *a: (print('reloaded', flush=True), sys.exit(0)))\n"
    "print('ready', flush=True)\n"
    "while True: signal.pause()\n"
)

#: On SIGHUP, writes the verdict `outcome` (with the error `error`) for the token it reads.
ANSWERING_DAEMON = """
import asyncio, signal, sys
from datetime import UTC, datetime
from agentcron.control import JOBS_CHANGED_KEY, ReloadVerdict, write_reload_verdict
from agentcron.store.sqlite import SqliteStore

async def main():
    db, outcome, error = sys.argv[1:]
    hup = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, hup.set)
    print("ready", flush=True)
    await hup.wait()
    async with SqliteStore(db) as store:
        token = await store.get_state(JOBS_CHANGED_KEY)
        at = datetime.now(UTC)
        verdict = ReloadVerdict(token, at, "fake-node", outcome, error=error, via="signal")
        await write_reload_verdict(store, verdict)

asyncio.run(main())
"""


def test_reload_signals_the_daemon_of_the_data_dir(data: Path) -> None:
    with fake_daemon(data, SILENT_DAEMON) as daemon:
        answer = as_json(jobs(data, "reload", "--json", "--wait", "0"))
        assert answer == {"daemon_signalled": True, "verdict": None}
        assert daemon.wait(timeout=30) == 0
        assert daemon.stdout is not None and daemon.stdout.read() == "reloaded\n"


def test_reload_of_a_signalled_daemon_that_never_answers_says_so_after_the_wait(
    data: Path,
) -> None:
    with fake_daemon(data, SILENT_DAEMON) as daemon:
        out = ok(jobs(data, "reload", "--wait", "0.5"))
        assert daemon.wait(timeout=30) == 0
    assert out == (
        "reload requested; the local daemon was signalled (SIGHUP) but no daemon answered "
        "within 0.5 s (daemons sharing the store apply it at their next poll)\n"
    )


def test_reload_a_daemon_failed_to_apply_exits_one_naming_the_node_and_the_error(
    data: Path,
) -> None:
    args = (str(data / "scheduler.db"), "failed", "StoreError: database or disk is full")
    with fake_daemon(data, ANSWERING_DAEMON, *args) as daemon:
        result = jobs(data, "reload", "--wait", "30")
        assert daemon.wait(timeout=30) == 0
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr == (
        "agentcron: reload failed on fake-node: StoreError: database or disk is full\n"
    )


def test_reload_json_prints_the_verdict_of_the_daemon_and_exits_with_its_code(
    data: Path,
) -> None:
    args = (str(data / "scheduler.db"), "rejected", "agentcron.toml: jobs[0]: bad minute")
    with fake_daemon(data, ANSWERING_DAEMON, *args) as daemon:
        result = jobs(data, "reload", "--json")
        assert daemon.wait(timeout=30) == 0
    assert result.exit_code == 2, (result.stdout, result.stderr)
    answer = json.loads(result.stdout)
    assert answer["daemon_signalled"] is True
    verdict = answer["verdict"]
    assert verdict["token"] == changed_token(data)
    assert (verdict["node_id"], verdict["outcome"], verdict["ok"]) == (
        "fake-node",
        "rejected",
        False,
    )
    assert verdict["error"] == "agentcron.toml: jobs[0]: bad minute"
    assert result.stderr == (
        "agentcron: reload rejected by fake-node, the running schedule is kept: "
        "agentcron.toml: jobs[0]: bad minute\n"
    )


def test_reload_without_a_database_exits_two(tmp_path: Path) -> None:
    assert_bad_input(jobs(tmp_path / "none", "reload"), "no database at")


# == the console entry =========================================================================
def test_the_jobs_commands_work_as_a_real_subprocess(tmp_path: Path) -> None:
    def agentcron(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PY, "-m", "agentcron", "jobs", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )

    added = agentcron(
        "add", "hello", "--data-dir", "d", "--every", "1h", "--", PY, "-c", "print(42)"
    )
    assert added.returncode == 0, added.stderr
    run = agentcron("run", "hello", "--data-dir", "d", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["output_tail"] == "42\n"
    bad = agentcron("run", "nope", "--data-dir", "d")
    assert bad.returncode == 2
    assert bad.stderr == "agentcron: no job with id 'nope'; `agentcron jobs list` shows the ids\n"
    listed_out = agentcron("list", "--json", "--data-dir", "d")
    assert [job["id"] for job in json.loads(listed_out.stdout)] == ["hello"]


def test_a_stored_definition_the_engine_rejects_is_listed_invalid_and_not_run(data: Path) -> None:
    bad = {"trigger": {"type": "cron", "expr": "77 * * * *"}, "handler": {"kind": "command"}}
    store_call(data, lambda s: s.save_job(StoredJob(id="broken", definition=bad), actor="api"))
    (job,) = listed(data)
    assert job["enabled"] is False and job["next_run"] is None
    assert job["disabled_reason"].startswith("invalid definition: ")
    assert "invalid" in ok(jobs(data, "list"))
    assert as_json(jobs(data, "show", "broken", "--json"))["status"] == "invalid"
    assert_bad_input(jobs(data, "run", "broken"), "stored definition is invalid")


@pytest.mark.parametrize("zone", ["America", "x" * 10240])
def test_add_with_a_zone_folder_or_a_huge_zone_name_exits_two(data: Path, zone: str) -> None:
    assert_bad_input(
        jobs(data, "add", "tz", "--every", "5m", "--tz", zone, "--", "true"), "time zone"
    )
    assert listed(data) == []


def test_add_of_a_schedule_that_never_fires_exits_two_and_adds_nothing(data: Path) -> None:
    assert_bad_input(
        jobs(data, "add", "feb30", "--cron", "0 0 30 2 *", "--", "true"), "never fires"
    )
    assert listed(data) == []


@pytest.mark.parametrize("job_id", ["a/b", "line\nbreak", "line\u2028separator", "x" * 10240])
def test_add_refuses_an_id_the_http_api_could_not_address(data: Path, job_id: str) -> None:
    assert_bad_input(jobs(data, "add", job_id, "--every", "5m", "--", "true"), "id ")
    assert listed(data) == []
