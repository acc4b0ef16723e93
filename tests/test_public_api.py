"""The public surface of `import agentcron` (DESIGN 2.13)."""

from __future__ import annotations

import subprocess
import sys

import agentcron

EXPECTED = {
    "CircuitBreaker",
    "Clock",
    "Command",
    "CronTrigger",
    "Date",
    "EventBus",
    "Http",
    "Interval",
    "Job",
    "JobConfigError",
    "JobNotFoundError",
    "JobView",
    "Misfire",
    "Overlap",
    "Reboot",
    "Retry",
    "RunContext",
    "RunRecord",
    "RunStatus",
    "Scheduler",
    "SchedulerNotRunningError",
    "SkipReason",
    "SystemClock",
    "__version__",
}


def test_all_lists_exactly_the_public_names_and_each_resolves() -> None:
    assert set(agentcron.__all__) == EXPECTED
    for name in agentcron.__all__:
        assert getattr(agentcron, name) is not None


def test_the_design_example_imports_work() -> None:
    from agentcron import CircuitBreaker, Command, Retry, Scheduler

    sched = Scheduler()
    sched.add_job(
        "nightly-backup",
        trigger="0 2 * * *",
        handler=Command(["rsync", "-a", "src", "dst"]),
        timezone="Europe/Berlin",
        misfire="run_once",
        tags=["maintenance"],
        retry=Retry(max_attempts=3, strategy="exponential", base_delay=1.0, max_delay=30.0),
        circuit=CircuitBreaker(failure_threshold=3),
    )
    assert sched.job("nightly-backup").job.tags == ("maintenance",)


def test_config_errors_are_value_errors() -> None:
    assert issubclass(agentcron.JobConfigError, ValueError)
    assert issubclass(agentcron.JobNotFoundError, KeyError)


def test_unknown_attributes_raise_attribute_error() -> None:
    try:
        agentcron.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_agentcron_stays_light() -> None:
    code = (
        "import sys, agentcron; "
        "heavy = [m for m in ('fastapi', 'redis', 'psutil', 'httpx', 'uvicorn', 'typer') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
