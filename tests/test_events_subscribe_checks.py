"""`EventBus.subscribe` refuses arguments that could never work, and a typed callback
type-checks (`mypy --strict` on a small program)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agentcron.events import EventBus, JobAdded, RunSucceeded

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def noop(event: object) -> None:
    pass


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"types": "run.failed"}, TypeError, r"^types: .*string 'run.failed'.*\['run.failed'\]"),
        ({"types": ["run.fail"]}, ValueError, r"^types: unknown event type 'run.fail'.*run.failed"),
        ({"types": [5]}, TypeError, r"^types: "),
        ({"types": 5}, TypeError, r"^types: "),
        ({"max_pending": 0}, ValueError, r"^max_pending: .*>= 1, got 0"),
        ({"max_pending": -1}, ValueError, r"^max_pending: .*got -1"),
        ({"max_pending": "5"}, ValueError, r"^max_pending: .*got '5'"),
        ({"max_pending": True}, ValueError, r"^max_pending: "),
    ],
)
def test_subscribe_refuses_arguments_that_could_never_work(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    bus = EventBus()
    with pytest.raises(error, match=match):
        bus.subscribe(noop, **kwargs)
    assert bus.subscriber_count == 0


def test_subscribe_refuses_a_callback_that_is_not_callable() -> None:
    bus = EventBus()
    with pytest.raises(TypeError, match=r"^callback: .*got 5"):
        bus.subscribe(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^max_pending: "):
        EventBus(max_pending=0)


def test_good_arguments_still_deliver() -> None:
    bus = EventBus()
    got: list[object] = []
    bus.subscribe(got.append, types=("job.added",), max_pending=1)
    bus.subscribe(got.append, types=iter([RunSucceeded.type]), max_pending=3)
    bus.publish(JobAdded(at=T0, job_id="a"))
    assert len(got) == 1


TYPED = """
from agentcron.engine import Scheduler
from agentcron.events import Event, RunFailed, RunSucceeded

sched = Scheduler()
missed: list[Event] = []

async def on_ok(e: RunSucceeded) -> None:
    print(e.job_id)

def on_failed(e: RunFailed) -> None:
    print(e.error)

def on_any(e: Event) -> None:
    print(e.type)

sched.events.subscribe(on_ok, types=["run.succeeded"])
sched.events.subscribe(on_failed, types=["run.failed"], in_thread=True)
sched.events.subscribe(on_any)
sched.events.subscribe(missed.append, types=["run.missed"])
"""


def test_a_typed_callback_type_checks_under_mypy_strict(tmp_path: Path) -> None:
    program = tmp_path / "typed_subscriber.py"
    program.write_text(textwrap.dedent(TYPED))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(program)],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
