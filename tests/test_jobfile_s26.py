"""Job options that were silently taken for something else (QA, sprint 26): an empty
`timezone`, a cron schedule whose years are past, an overlap or misfire setting of another
policy; and errors that were repeated (`ping`) or named undocumented keys (`grace_s`)."""

from __future__ import annotations

import logging
import tomllib
from datetime import UTC, datetime
from typing import Any

import pytest

from agentcron.engine import Scheduler
from agentcron.jobfile import JobFileError, parse_job_file
from agentcron.jobs import JobConfigError, build_job
from agentcron.policies.misfire import Misfire
from agentcron.policies.overlap import Overlap

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


async def handler(job: object) -> None:
    return None


def file_errors(
    extra: str, *, now: datetime | None = None, default_timezone: str = "UTC"
) -> list[str]:
    """The errors of a one-job file with `extra` lines (empty when it is accepted); checked
    at `now` when given (else the wall clock, for schedules that do not depend on it)."""
    text = f'[[jobs]]\nid = "a"\ncallable = "os:getcwd"\n{extra}\n'
    if "trigger" not in extra:
        text += 'trigger = "0 9 * * *"\n'
    at: dict[str, Any] = {} if now is None else {"now": now}
    try:
        parse_job_file(tomllib.loads(text), default_timezone=default_timezone, **at)
    except JobFileError as exc:
        return exc.errors
    return []


# -- 2. an empty timezone is no default -----------------------------------------------------
def test_an_empty_timezone_is_refused_by_add_job_instead_of_meaning_the_default() -> None:
    sched = Scheduler(timezone="Europe/Berlin")
    # Was accepted as Europe/Berlin, while "   " was refused.
    for empty in ("", "   "):
        with pytest.raises(JobConfigError, match="^timezone: ") as info:
            sched.add_job("a", trigger="0 9 * * *", handler=handler, timezone=empty)
        assert info.value.field == "timezone"
    assert sched.add_job("b", trigger="0 9 * * *", handler=handler).timezone == "Europe/Berlin"
    none = sched.add_job("c", trigger="0 9 * * *", handler=handler, timezone=None)
    assert none.timezone == "Europe/Berlin"  # None (left out) is the default


def test_an_empty_timezone_in_the_file_is_refused_naming_the_job_and_the_key() -> None:
    # Was silently the default zone, while SCHEDULER_TIMEZONE="" is refused.
    errors = file_errors('timezone = ""', default_timezone="Europe/Berlin")
    assert len(errors) == 1
    assert errors[0].startswith("jobs[0] ('a'): timezone: '' is empty")


@pytest.mark.parametrize("falsy", [0, False])
def test_another_falsy_timezone_is_refused_too(falsy: object) -> None:
    with pytest.raises(JobConfigError, match="^timezone: "):
        build_job("a", trigger="0 9 * * *", handler=handler, timezone=falsy)


# -- 3. a cron schedule whose years are past ------------------------------------------------
def test_a_cron_schedule_whose_years_are_past_is_accepted_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Was accepted silently (an active job with next_run null) while `cron validate` said
    # "never fires". Not refused: a file that was valid must not stop the next start (a
    # reboot in the following year) because one of its schedules ran out.
    with caplog.at_level(logging.WARNING, logger="agentcron.jobfile"):
        assert file_errors('trigger = "0 0 * * * * 2020"', now=NOW) == []
    assert [r.getMessage() for r in caplog.records] == [
        "jobs[0] ('a'): trigger '0 0 * * * * 2020' never fires after 2026-11-27T12:00:00+00:00:"
        " the years it allows are past; change its year field, or remove the job"
    ]
    assert "never fires" in file_errors('trigger = "0 0 30 2 *"', now=NOW)[0]  # always invalid


def test_the_file_is_checked_against_the_now_it_is_given_not_the_wall_clock(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A schedule for the rest of 2026 still fires on 27 November 2026, not on 1 January 2027.
    with caplog.at_level(logging.WARNING, logger="agentcron.jobfile"):
        assert file_errors('trigger = "0 0 12 * * * 2026"', now=NOW) == []
        assert not caplog.records
        assert (
            file_errors('trigger = "0 0 12 * * * 2026"', now=datetime(2027, 1, 1, tzinfo=UTC)) == []
        )
        assert len(caplog.records) == 1
    # A one-off date that passed stays accepted (a job that ran stays in the file).
    assert file_errors('trigger = { at = "2020-01-01T00:00:00+00:00" }', now=NOW) == []


# -- 4. a setting of another policy ---------------------------------------------------------
def test_max_concurrent_without_the_concurrent_policy_is_refused_naming_both() -> None:
    # Was silently `skip`, max_concurrent ignored.
    assert file_errors("overlap = { max_concurrent = 3 }") == [
        "jobs[0] ('a'): overlap.max_concurrent: only applies to the policy 'concurrent', not"
        " 'skip'; set policy to 'concurrent', or remove max_concurrent"
    ]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"max_concurrent": 3}, "overlap.max_concurrent"),
        ({"max_concurrent": 2}, "overlap.max_concurrent"),  # its default value is no skip
        ({"policy": "skip", "max_queue": 5}, "overlap.max_queue"),
        ({"policy": "queue", "delay": 5}, "overlap.delay"),
        ({"policy": "delay", "max_skips": 2}, "overlap.max_skips"),
        ({"policy": "allow", "max_concurrent": 9}, "overlap.max_concurrent"),
    ],
)
def test_an_overlap_setting_of_another_policy_is_refused(value: dict[str, Any], field: str) -> None:
    with pytest.raises(JobConfigError) as info:
        Overlap.from_value(value)
    assert info.value.field == field


def test_max_catchup_without_run_all_is_refused_as_max_concurrent_without_concurrent() -> None:
    # Was silently ignored too (run_once).
    assert file_errors("misfire = { max_catchup = 5 }") == [
        "jobs[0] ('a'): misfire.max_catchup: only applies to the policy 'run_all', not"
        " 'run_once'; set policy to 'run_all', or remove max_catchup"
    ]
    with pytest.raises(JobConfigError, match=r"^misfire\.max_catchup: only applies"):
        Misfire.from_value({"policy": "skip", "max_catchup": 100})


def test_a_policy_object_built_with_a_setting_of_another_policy_is_refused_too() -> None:
    with pytest.raises(JobConfigError, match=r"^overlap\.max_concurrent: only applies"):
        Overlap("skip", max_concurrent=3)
    with pytest.raises(JobConfigError, match=r"^overlap\.delay: only applies"):
        Overlap("queue", delay_s=1)
    with pytest.raises(JobConfigError, match=r"^misfire\.max_catchup: only applies"):
        Misfire("run_once", max_catchup=3)


@pytest.mark.parametrize(
    "value",
    [
        {"policy": "concurrent", "max_concurrent": 3},
        {"policy": "queue", "max_queue": 5},
        {"policy": "delay", "delay": 2},
        {"policy": "timeout", "max_skips": 2},
    ],
)
def test_settings_of_the_policy_given_are_accepted_and_round_trip(value: dict[str, Any]) -> None:
    overlap = Overlap.from_value(value)
    assert Overlap.from_value(overlap.to_dict()) == overlap
    misfire = Misfire.from_value({"policy": "run_all", "max_catchup": 5, "grace": 2})
    assert Misfire.from_value(misfire.to_dict()) == misfire
    # grace and catchup_window apply to every misfire policy
    assert Misfire.from_value({"policy": "skip", "grace": 2, "catchup_window": 60}).grace_s == 2


# -- 5. a bad ping URL, once ----------------------------------------------------------------
def test_a_bad_ping_url_is_reported_once() -> None:
    # Was reported three times (for the start, success and failure URLs made from it).
    assert file_errors('ping = "ftp://hc.example/secret-uuid"') == [
        "jobs[0] ('a'): ping: 'ftp://hc.example/...' is not an http(s) URL"
    ]


def test_each_bad_url_of_a_ping_table_is_named_by_its_key() -> None:
    errors = file_errors('ping = { start = "https://ok.example/s", failure = "ftp://h.example/f" }')
    assert errors == ["jobs[0] ('a'): ping.failure: 'ftp://h.example/...' is not an http(s) URL"]


# -- 6. the documented misfire keys ---------------------------------------------------------
def test_the_misfire_unknown_key_error_names_the_documented_keys() -> None:
    # Was "use one of catchup_window, catchup_window_s, grace, grace_s, ..." in the file and
    # "use one of policy, grace_s, catchup_window_s, max_catchup" from the Python API.
    errors = file_errors('misfire = { policy = "run_all", grace_period = "1m" }')
    assert errors == [
        "jobs[0] ('a'): misfire.grace_period: unknown key; use one of catchup_window, grace,"
        " max_catchup, policy"
    ]
    with pytest.raises(JobConfigError) as info:
        Misfire.from_value({"grace_period": 60})
    assert str(info.value) == (
        "misfire.grace_period: unknown key; use one of policy, grace, catchup_window, max_catchup"
    )
    # both names stay accepted
    assert Misfire.from_value({"grace_s": 3, "catchup_window_s": 60}).grace_s == 3
    assert file_errors('misfire = { grace_s = 3, catchup_window = "1h" }') == []


def test_the_overlap_unknown_key_error_in_the_file_names_delay_not_delay_s() -> None:
    errors = file_errors('overlap = { policy = "delay", dleay = "5s" }')
    assert errors == [
        "jobs[0] ('a'): overlap.dleay: unknown key; use one of delay, max_concurrent,"
        " max_queue, max_skips, policy"
    ]
