from __future__ import annotations

import dataclasses
import json
import pickle
from datetime import UTC, datetime, timedelta

import pytest

from agentcron.handlers import Command, Http
from agentcron.jobs import (
    _OPTION_NAMES,
    Job,
    UnavailableHandler,
    build_job,
    job_from_definition,
    job_to_definition,
    next_nominal_fire,
    update_job,
)
from agentcron.policies import CircuitBreaker, JobConfigError, Retry
from agentcron.triggers import CronTrigger, Interval

T0 = datetime(2026, 4, 1, tzinfo=UTC)


def test_a_job_has_the_documented_defaults() -> None:
    job = build_job("j", trigger="* * * * *", handler=Command(["true"]))
    assert job.retry.max_attempts == 1
    assert job.overlap.policy == "skip"
    assert job.misfire.policy == "run_once"
    assert job.timeout_s is None and job.jitter_s == 0 and job.circuit is None
    assert job.timezone == "UTC" and job.enabled


def test_a_full_job_round_trips_through_its_json_definition() -> None:
    job = build_job(
        "nightly-backup",
        trigger="0 2 * * *",
        handler=Command(["rsync", "-a", "src/", "dst/"]),
        name="Nightly backup",
        timezone="Europe/Berlin",
        tags=["maintenance"],
        timeout=600,
        overlap={"policy": "concurrent", "max_concurrent": 3},
        retry=Retry(
            max_attempts=3,
            strategy="exponential",
            base_delay=1,
            max_delay=30,
            retry_on=(TimeoutError, "503"),
        ),
        misfire={"policy": "run_all", "max_catchup": 10, "catchup_window": 86400},
        circuit=CircuitBreaker(failure_threshold=3, reset_timeout=120, name="rsync"),
        jitter=30,
        queue="maintenance",
        start=T0,
        end=T0 + timedelta(days=365),
        max_runs=100,
        expect_every=timedelta(days=1),
    )
    definition = job_to_definition(job)
    again = job_from_definition("nightly-backup", json.loads(json.dumps(definition)))
    assert job_to_definition(again) == definition
    assert again.trigger == CronTrigger("0 2 * * *", "Europe/Berlin")
    assert again.handler.to_dict() == job.handler.to_dict()
    assert again.overlap == job.overlap and again.misfire == job.misfire
    assert again.circuit == job.circuit and again.retry.to_dict() == job.retry.to_dict()
    assert (again.start, again.end, again.max_runs) == (job.start, job.end, job.max_runs)
    assert again.expect_every_s == 86400 and again.queue == "maintenance"


def test_the_definition_omits_defaults_to_stay_small() -> None:
    job = build_job("j", trigger=Interval(seconds=5), handler=Http("http://127.0.0.1:9/x"))
    assert set(job_to_definition(job)) == {"trigger", "handler"}


def test_a_job_is_a_dataclass_whose_options_are_shared_between_equal_jobs() -> None:
    fields = [f.name for f in dataclasses.fields(Job)]
    assert fields[:3] == ["id", "trigger", "handler"]
    assert tuple(fields[3:]) == _OPTION_NAMES  # the options object mirrors the fields
    a = build_job("a", trigger="* * * * *", handler=Command(["true"]), timeout=5, tags=["x"])
    b = build_job("b", trigger="* * * * *", handler=Command(["true"]), timeout=5.0, tags=["x"])
    assert a._options is b._options and (b.timeout_s, b.tags) == (5.0, ("x",))
    c = Job(id="c", trigger=a.trigger, handler=a.handler, timeout_s=5, tags=("x",))
    assert type(c.timeout_s) is int and c._options is not a._options  # `5` stays `5`
    d = dataclasses.replace(a, name="D", jitter_s=2.0)
    assert (d.id, d.name, d.jitter_s, d.timeout_s, a.name) == ("a", "D", 2.0, 5.0, "")
    assert dataclasses.replace(a) == a and hash(dataclasses.replace(a)) == hash(a)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "changed"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(d)).name == "D"
    unhashable = Job(id="e", trigger=a.trigger, handler=a.handler, tags=["x"])  # type: ignore[arg-type]
    assert unhashable.tags == ["x"]


def test_plain_jobs_share_one_definition_and_options_never_leak_into_it() -> None:
    trigger, handler = CronTrigger("0 9 * * *"), Command(["true"])
    first = job_to_definition(build_job("a", trigger=trigger, handler=handler))
    second = job_to_definition(build_job("b", trigger=trigger, handler=handler))
    tagged = job_to_definition(build_job("c", trigger=trigger, handler=handler, tags=["x"]))
    assert second is first  # 100,000 plain jobs: one dict, not one each
    assert tagged is not first and tagged["tags"] == ["x"]
    assert set(first) == {"trigger", "handler"}
    assert job_to_definition(build_job("d", trigger="0 9 * * *", handler=handler)) == first


def test_a_handler_without_a_reference_is_stored_as_unavailable_and_comes_back_so() -> None:
    async def closure() -> None:
        return None

    job = build_job("j", trigger="* * * * *", handler=closure)
    definition = job_to_definition(job)
    assert definition["handler"]["type"] == "unavailable"
    again = job_from_definition("j", definition)
    assert isinstance(again.handler, UnavailableHandler)


def test_a_stored_handler_that_no_longer_imports_comes_back_unavailable() -> None:
    definition = {
        "trigger": {"type": "interval", "seconds": 60},
        "handler": {"kind": "callable", "ref": "gone_module_xyz:run"},
    }
    job = job_from_definition("j", definition)
    assert isinstance(job.handler, UnavailableHandler)
    assert "gone_module_xyz" in job.handler.describe() or "gone_module_xyz" in job.handler.reason


def test_an_invalid_stored_definition_names_the_field() -> None:
    with pytest.raises(JobConfigError) as info:
        job_from_definition("j", {"handler": {"kind": "callable", "ref": "x:y"}})
    assert info.value.field == "trigger"


def test_update_changes_only_what_is_given() -> None:
    job = build_job("j", trigger="0 9 * * *", handler=Command(["true"]), tags=["a"])
    moved = update_job(job, timezone="Asia/Tokyo")
    assert moved.trigger == CronTrigger("0 9 * * *", "Asia/Tokyo")
    assert moved.tags == ("a",)
    with pytest.raises(JobConfigError):
        update_job(job, overlap="never")


def test_start_and_end_bound_the_next_fire() -> None:
    job = build_job(
        "j",
        trigger=Interval(hours=1),
        handler=Command(["true"]),
        start=T0 + timedelta(hours=5),
        end=T0 + timedelta(hours=7),
    )
    assert next_nominal_fire(job, T0) == T0 + timedelta(hours=5)
    assert next_nominal_fire(job, T0 + timedelta(hours=6)) == T0 + timedelta(hours=7)
    assert next_nominal_fire(job, T0 + timedelta(hours=7)) is None


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"start": datetime(2026, 1, 1)}, "start"),
        ({"start": T0, "end": T0}, "end"),
        ({"tags": "one"}, "tags"),
        ({"queue": ""}, "queue"),
        ({"isolation": "vm"}, "isolation"),
        ({"expect_every": 0}, "expect_every"),
        ({"timeout": "10m"}, "timeout"),
        # Accepted before: "no" enabled the job, an infinite timeout/jitter was stored.
        ({"enabled": "no"}, "enabled"),
        ({"enabled": 0}, "enabled"),
        ({"timeout": float("inf")}, "timeout"),
        ({"jitter": float("nan")}, "jitter"),
        ({"expect_every": float("inf")}, "expect_every"),
        # Accepted before: `max_runs = true` ran the job once; a single number as retry_on
        # was "'int' object is not iterable".
        ({"max_runs": True}, "max_runs"),
        ({"retry": {"retry_on": 5}}, "retry.retry_on"),
    ],
)
def test_bad_job_options_name_the_field(options: dict[str, object], field: str) -> None:
    with pytest.raises(JobConfigError) as info:
        build_job("j", trigger="* * * * *", handler=Command(["true"]), **options)
    assert info.value.field == field


def test_an_empty_id_is_rejected() -> None:
    with pytest.raises(JobConfigError) as info:
        build_job(" ", trigger="* * * * *", handler=Command(["true"]))
    assert info.value.field == "id"


def test_a_disabled_job_keeps_its_reason_through_the_codec_and_loses_it_when_enabled() -> None:
    from agentcron.jobs import build_job, job_from_definition, job_to_definition, update_job

    job = build_job(
        "gmail",
        trigger="*/2 * * * *",
        handler="os:getcwd",
        enabled=False,
        disabled_reason="no handler configured",
    )
    restored = job_from_definition("gmail", job_to_definition(job))
    assert restored.disabled_reason == "no handler configured"
    assert restored.enabled is False
    enabled = update_job(restored, enabled=True)
    assert enabled.enabled is True
    assert enabled.disabled_reason == ""


def test_a_disabled_reason_on_an_enabled_job_is_refused() -> None:
    import pytest

    from agentcron.jobs import JobConfigError, build_job

    with pytest.raises(JobConfigError, match="disabled_reason"):
        build_job("x", trigger="* * * * *", handler="os:getcwd", disabled_reason="why")


def test_ids_the_api_cannot_address_and_schedules_that_never_fire_are_refused() -> None:
    import pytest

    from agentcron.jobs import JobConfigError, build_job
    from agentcron.triggers import Interval

    for bad_id in ("a/b", "tab\there", "x" * 201):
        with pytest.raises(JobConfigError, match="^id: "):
            build_job(bad_id, trigger="* * * * *", handler="os:getcwd")
    with pytest.raises(JobConfigError, match="never fires"):
        build_job("feb30", trigger="0 0 30 2 *", handler="os:getcwd")
    with pytest.raises(JobConfigError, match="minimum"):
        build_job("flood", trigger=Interval(seconds=1e-6), handler="os:getcwd")
    assert build_job("past", trigger="0 0 0 1 1 * 2020", handler="os:getcwd").id == "past"


async def test_the_scheduler_refuses_a_never_firing_schedule_on_add_and_on_update() -> None:
    import pytest

    from agentcron.engine import Scheduler
    from agentcron.jobs import JobConfigError

    sched = Scheduler()
    with pytest.raises(JobConfigError, match="never fires"):
        sched.add_job("feb30", trigger="0 0 30 2 *", handler="os:getcwd")
    sched.add_job("ok", trigger="0 0 * * *", handler="os:getcwd")
    with pytest.raises(JobConfigError, match="never fires"):
        sched.update("ok", trigger="0 0 30 2 *")
    with pytest.raises(JobConfigError, match="^id: "):
        sched.add_job("a/b", trigger="0 0 * * *", handler="os:getcwd")
