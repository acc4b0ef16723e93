from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from agentcron.jobfile import JobFileError, load_job_file, parse_job_file
from agentcron.jobs import build_job

DESIGN_EXAMPLE = """
[[jobs]]
id = "nightly-backup"
name = "Nightly backup"
trigger = "0 2 * * *"
timezone = "Europe/Berlin"
command = ["rsync", "-a", "src/", "dst/"]
timeout = "10m"
overlap = "skip"
misfire = "run_once"
retry = { max_attempts = 3, strategy = "exponential", base_delay = "1s", max_delay = "30s" }
tags = ["maintenance"]

[[jobs]]
id = "poll"
trigger = { every = "5m" }
callable = "os.path:exists"
overlap = { policy = "concurrent", max_concurrent = 3 }
misfire = { policy = "run_all", max_catchup = 10, catchup_window = "1d" }

[[jobs]]
id = "once"
trigger = { at = "2026-12-01T09:00:00+01:00" }
http = { url = "http://127.0.0.1:9/hook", method = "POST", timeout = "5s" }

[[jobs]]
id = "boot"
trigger = "@reboot"
command = "echo started"
"""


def build(entry_id: str, text: str = DESIGN_EXAMPLE) -> object:
    parsed = parse_job_file(tomllib.loads(text))
    entry = next(e for e in parsed.jobs if e.id == entry_id)
    return build_job(entry.id, trigger=entry.trigger, handler=entry.handler, **entry.options)


def test_the_design_example_is_accepted_with_durations_in_seconds(tmp_path: Path) -> None:
    path = tmp_path / "agentcron.toml"
    path.write_text(DESIGN_EXAMPLE)
    parsed = load_job_file(path)
    assert [e.id for e in parsed.jobs] == ["nightly-backup", "poll", "once", "boot"]
    backup = parsed.jobs[0]
    assert backup.options["timeout"] == 600.0
    assert backup.options["retry"]["base_delay"] == 1.0
    assert backup.options["retry"]["max_delay"] == 30.0
    assert parsed.jobs[1].options["misfire"]["catchup_window"] == 86400.0


def test_jobs_from_the_file_build_like_jobs_from_the_api() -> None:
    job = build("nightly-backup")
    assert job.timeout_s == 600.0  # type: ignore[attr-defined]
    assert job.timezone == "Europe/Berlin"  # type: ignore[attr-defined]
    assert job.retry.max_attempts == 3  # type: ignore[attr-defined]
    assert build("boot").is_reboot  # type: ignore[attr-defined]


def test_every_error_in_the_file_is_listed_and_nothing_is_accepted() -> None:
    text = """
[[jobs]]
id = "a"
trigger = "61 * * * *"
command = ["true"]

[[jobs]]
id = "b"
trigger = "* * * * *"
timout = "5s"
command = ["true"]

[[jobs]]
id = "a"
trigger = "* * * * *"
command = ["true"]

[[jobs]]
id = "c"
trigger = "* * * * *"
callable = "no_such_module_xyz:run"

[[jobs]]
id = "d"
trigger = "* * * * *"
"""
    with pytest.raises(JobFileError) as info:
        parse_job_file(tomllib.loads(text), source="agentcron.toml")
    errors = info.value.errors
    assert any("jobs[0] ('a')" in e and "minute" in e and "61" in e for e in errors)
    assert any("timout: unknown key; did you mean 'timeout'?" in e for e in errors)
    assert any("duplicate id" in e for e in errors)
    assert any("no_such_module_xyz" in e for e in errors)
    assert any("jobs[4] ('d')" in e and "exactly one of" in e for e in errors)
    assert str(info.value).startswith("agentcron.toml: 5 error(s)")


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ('id = "x"\ntrigger = "* * * * *"\ncommand = ["true"]\ntimeout = "soon"', "timeout"),
        ('id = "x"\ntrigger = { every = "0s" }\ncommand = ["true"]', "greater than zero"),
        (
            'id = "x"\ntrigger = "* * * * *"\ncallable = "os:getcwd"\ncwd = "/tmp"',
            "only valid with command",
        ),
        (
            'id = "x"\ntrigger = "* * * * *"\ncommand = ["true"]\ntimezone = "Mars/Base"',
            "time zone",
        ),
        ('id = "x"\ntrigger = "* * * * *"\ncommand = ["true"]\noverlap = "sometimes"', "overlap"),
        ('id = "x"\ntrigger = "* * * * *"\nhttp = { url = "ftp://example" }', "http"),
        ('id = "x"\ntrigger = { at = "tomorrow" }\ncommand = ["true"]', "trigger.at"),
        ('trigger = "* * * * *"\ncommand = ["true"]', "id is required"),
        ('id = "x"\ntrigger = "0 0 30 2 *"\ncommand = ["true"]', "'0 0 30 2 *' never fires"),
        ('id = "x"\ntrigger = "0 0 31 4,6,9,11 *"\ncommand = ["true"]', "never fires"),
        ('id = "a/b"\ntrigger = "* * * * *"\ncommand = ["true"]', 'may not contain "/"'),
        ('id = "a\\nb"\ntrigger = "* * * * *"\ncommand = ["true"]', "control characters"),
        (f'id = "{"x" * 201}"\ntrigger = "* * * * *"\ncommand = ["true"]', "(at most 200)"),
    ],
)
def test_a_bad_job_is_rejected_naming_the_job_and_the_field(table: str, fragment: str) -> None:
    with pytest.raises(JobFileError) as info:
        parse_job_file(tomllib.loads("[[jobs]]\n" + table))
    assert fragment in str(info.value)


def test_unknown_top_level_keys_and_presets_get_a_did_you_mean() -> None:
    text = '[[job]]\nid = "x"\n\n[presets.agent-loop.handlers]\nloop-gmail-sync = "m:f"\n'
    with pytest.raises(JobFileError) as info:
        parse_job_file(tomllib.loads(text))
    assert any("job: unknown key; did you mean 'jobs'?" in e for e in info.value.errors)
    assert any("did you mean 'agent-loops'?" in e for e in info.value.errors)


def test_preset_handlers_are_read_per_loop_id() -> None:
    # (Imported when the file is read, as a job's `callable` is: the module must exist.)
    text = '[presets.agent-loops.handlers]\nloop-gmail-sync = "os.path:exists"\n'
    parsed = parse_job_file(tomllib.loads(text))
    assert parsed.preset_handlers == {"agent-loops": {"loop-gmail-sync": "os.path:exists"}}


def test_a_syntax_error_or_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "agentcron.toml"
    bad.write_text("[[jobs]\nid = ")
    with pytest.raises(JobFileError, match="TOML syntax"):
        load_job_file(bad)
    with pytest.raises(JobFileError, match="cannot read the file"):
        load_job_file(tmp_path / "missing.toml")


def test_health_options_are_read_per_job() -> None:
    text = """
[[jobs]]
id = "digest"
trigger = "0 9 * * *"
callable = "os:getcwd"
auto_disable = 5
ping = "https://hc-ping.example/abc"
expect_every = "per_schedule"
expect_grace = "10m"

[[jobs]]
id = "plain"
trigger = "0 9 * * *"
callable = "os:getcwd"
expect_every = "1h"
"""
    parsed = parse_job_file(tomllib.loads(text))
    health = parsed.health["digest"]
    assert health.auto_disable == 5
    assert health.ping == {
        "start": "https://hc-ping.example/abc/start",
        "success": "https://hc-ping.example/abc",
        "failure": "https://hc-ping.example/abc/fail",
    }
    assert health.per_schedule_grace_s == 600.0
    assert "expect_every" not in parsed.jobs[0].options
    assert parsed.jobs[1].options["expect_every"] == 3600.0
    assert "plain" not in parsed.health


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ("auto_disable = 0", "auto_disable"),
        ('ping = "ftp://x"', "not an http(s) URL"),
        ('expect_grace = "5m"', "only with expect_every"),
        ('expect_every = "per_schedule"\nexpect_grace = "soon"', "expect_grace"),
    ],
)
def test_bad_health_options_are_rejected(extra: str, fragment: str) -> None:
    text = f'[[jobs]]\nid = "x"\ntrigger = "* * * * *"\ncallable = "os:getcwd"\n{extra}\n'
    with pytest.raises(JobFileError, match=re.escape(fragment)):
        parse_job_file(tomllib.loads(text))


def test_every_job_option_of_the_python_api_is_accepted_in_the_file() -> None:
    text = """
[[jobs]]
id = "all"
name = "All options"
description = "every option at once"
trigger = "*/5 * * * *"
callable = "os:getcwd"
timezone = "Europe/Berlin"
enabled = false
disabled_reason = "waiting for credentials"
tags = ["a", "b"]
timeout = "1m"
jitter = "2s"
expect_every = "1h"
queue = "emails"
start = "2026-01-01T00:00:00+00:00"
end = "2027-01-01T00:00:00+00:00"
max_runs = 10
isolation = "process"
overlap = { policy = "delay", delay = "30s" }
retry = { max_attempts = 2, strategy = "fixed", base_delay = "1s", max_delay = "1s" }
misfire = { policy = "run_all", grace = "5s", catchup_window = "1d", max_catchup = 5 }
circuit = { failure_threshold = 3, reset_timeout = "5m" }
"""
    entry = parse_job_file(tomllib.loads(text)).jobs[0]
    job = build_job(entry.id, trigger=entry.trigger, handler=entry.handler, **entry.options)
    assert job.disabled_reason == "waiting for credentials"
    assert (job.timeout_s, job.jitter_s, job.expect_every_s) == (60.0, 2.0, 3600.0)
    assert job.queue == "emails" and job.max_runs == 10
    assert job.overlap.delay_s == 30.0
    assert job.misfire.catchup_window_s == 86400.0
    assert job.circuit is not None and job.circuit.reset_timeout == 300.0


def test_ids_with_spaces_quotes_markup_and_non_ascii_are_accepted_as_written() -> None:
    ids = ["sp ace", "it's;$(touch x)", "<img src=x onerror=alert(1)>", "héllo-日本", "x" * 200]
    text = "".join(
        f'[[jobs]]\nid = "{i}"\ntrigger = "* * * * *"\ncommand = ["true"]\n' for i in ids
    )
    assert [entry.id for entry in parse_job_file(tomllib.loads(text)).jobs] == ids


def only_error(text: str) -> str:
    """The one error of the job file `text` (it fails if there are none or several)."""
    with pytest.raises(JobFileError) as info:
        parse_job_file(tomllib.loads(text))
    assert len(info.value.errors) == 1
    return info.value.errors[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('enabled = "no"', "enabled must be true or false, got 'no'"),
        ("enabled = 0", "enabled must be true or false, got 0"),
        ("name = 5", "name: expected text, got 5"),
        ("cwd = 5", "cwd: expected a directory path (text), got 5"),
        (
            'misfire = { policy = "run_all", max_catchup = "a" }',
            "misfire.max_catchup: expected a whole number, got 'a'",
        ),
        (
            'overlap = { policy = "concurrent", max_concurrent = "a" }',
            "overlap.max_concurrent: expected a whole number, got 'a'",
        ),
        (
            'circuit = { failure_threshold = "a" }',
            "circuit.failure_threshold: expected a whole number, got 'a'",
        ),
        ("retry = { bogus = 1 }", "retry.bogus: unknown key; use one of base_delay,"),
    ],
)
def test_a_wrong_type_or_key_is_named_instead_of_a_python_error(extra: str, message: str) -> None:
    text = f'[[jobs]]\nid = "x"\ntrigger = "@daily"\ncommand = ["true"]\n{extra}\n'
    assert only_error(text).startswith(f"jobs[0] ('x'): {message}")


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        (
            'trigger = { at = "9999-12-31T23:59:59-12:00" }',
            "trigger.at: 9999-12-31T23:59:59-12:00 is out of range once converted to UTC",
        ),
        (
            'trigger = { every = "1h", start = "0001-01-01T00:00:00+05:00" }',
            "trigger.start: 0001-01-01T00:00:00+05:00 is out of range once converted to UTC",
        ),
        ("trigger = { at = 2030-12-01 }", "trigger.at: expected a date and time with an offset"),
        ('trigger = { at = "tomorrow" }', "trigger.at: 'tomorrow' is not an ISO-8601 time"),
        ('trigger = "@daily"\nstart = "9999-12-31T23:59:59-12:00"', "start: 9999-12-31T23:59:59"),
    ],
)
def test_a_trigger_time_that_cannot_be_used_is_one_clear_error(trigger: str, message: str) -> None:
    text = f'[[jobs]]\nid = "x"\n{trigger}\ncommand = ["true"]\n'
    assert only_error(text).startswith(f"jobs[0] ('x'): {message}")


def test_a_job_in_the_machine_zone_localtime_is_refused_naming_the_job_and_the_zone() -> None:
    data = tomllib.loads(
        '[[jobs]]\nid = "backup"\ntrigger = "0 2 * * *"\ncommand = ["true"]\ntimezone = "localtime"'
    )
    with pytest.raises(JobFileError) as info:
        parse_job_file(data)
    assert len(info.value.errors) == 1
    error = info.value.errors[0]
    assert "'backup'" in error and "'localtime' is not an IANA time zone name" in error


def _tagged(tags: list[str]) -> dict[str, object]:
    job = {"id": "backup", "trigger": "0 2 * * *", "command": ["true"], "tags": tags}
    return {"jobs": [job]}


@pytest.mark.parametrize(
    ("tags", "fragment"),
    [
        ([f"t{i}" for i in range(51)], "tags: 51 tags (at most 50)"),
        (["x" * 101], "is 101 characters long (at most 100)"),
        ([""], "tags: a tag may not be empty"),
        (["ok", "a\nb"], "may not contain control characters"),
        (["a\x85b"], "may not contain control characters"),
    ],
)
def test_tags_beyond_the_limits_of_the_http_api_are_refused_naming_the_job_and_the_limit(
    tags: list[str], fragment: str
) -> None:
    with pytest.raises(JobFileError) as info:
        parse_job_file(_tagged(tags))
    assert len(info.value.errors) == 1
    error = info.value.errors[0]
    assert error.startswith("jobs[0] ('backup'): tags: ") and fragment in error
    assert "\n" not in error


def test_tags_up_to_the_limits_of_the_http_api_are_accepted() -> None:
    tags = [f"{i:02d}" + "x" * 98 for i in range(50)]
    parsed = parse_job_file(_tagged(tags))
    assert parsed.jobs[0].options["tags"] == tags


def test_a_preset_handler_that_cannot_be_imported_is_rejected_naming_the_loop() -> None:
    # Accepted before: `agentcron run` then failed with a message naming no place, and a
    # reload wrote half of the file to the store before failing with a traceback.
    text = '[presets.agent-loops.handlers]\nloop-gmail-sync = "nosuch_module_xyz:sync"\n'
    with pytest.raises(JobFileError) as info:
        parse_job_file(tomllib.loads(text))
    (error,) = info.value.errors
    assert error.startswith("presets.agent-loops.handlers.loop-gmail-sync: ")
    assert "nosuch_module_xyz" in error
