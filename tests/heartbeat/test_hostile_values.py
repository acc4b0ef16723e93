"""Intervals and expectations that are not finite, and heartbeat rows no monitor can judge."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentcron.cli.main import build_app
from agentcron.events import EventBus
from agentcron.heartbeat.deadman import DeadMansSwitch, Expectation
from agentcron.heartbeat.monitor import missed_beats
from agentcron.heartbeat.sender import interval_from_env
from agentcron.models import NodeHeartbeat
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock

from .conftest import T0, Collector
from .test_cli_nodes import write


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "NaN", "1e400"])
def test_a_heartbeat_interval_that_is_not_a_finite_number_is_refused_naming_it(raw: str) -> None:
    with pytest.raises(ValueError, match="HEARTBEAT_INTERVAL"):
        interval_from_env({"HEARTBEAT_INTERVAL": raw})


@pytest.mark.parametrize("interval_s", [math.inf, math.nan])
def test_a_heartbeat_with_an_infinite_or_nan_interval_cannot_be_judged(interval_s: float) -> None:
    # an infinite interval used to keep a dead node "online" for ever
    with pytest.raises(ValueError, match="interval"):
        missed_beats(T0, interval_s, T0 + timedelta(days=365))


def _row(node_id: str, interval_s: float) -> NodeHeartbeat:
    return NodeHeartbeat(
        node_id=node_id,
        sequence=1,
        sent_at=datetime.now(UTC),
        host="box",
        pid=1,
        version="0.1.0",
        interval_s=interval_s,
    )


def test_agentcron_nodes_lists_the_good_nodes_and_skips_a_malformed_row(tmp_path: Path) -> None:
    write(tmp_path, _row("good", 30.0), _row("bad", 0.0))
    result = CliRunner().invoke(build_app(), ["nodes", "--json", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert [n["node_id"] for n in json.loads(result.stdout)] == ["good"]
    assert "bad" in result.stderr


def test_agentcron_health_of_a_node_with_a_malformed_heartbeat_is_unhealthy_not_a_crash(
    tmp_path: Path,
) -> None:
    write(tmp_path, _row("bad", 0.0))
    result = CliRunner().invoke(
        build_app(), ["health", "--json", "--data-dir", str(tmp_path), "--node-id", "bad"]
    )
    assert result.exit_code == 1, result.output
    verdict = json.loads(result.stdout)
    assert verdict["healthy"] is False
    assert "interval" in verdict["reason"]


@pytest.mark.parametrize("field", ["every_s", "grace_s"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_an_expectation_that_is_not_a_finite_duration_is_refused(field: str, value: float) -> None:
    values = {"every_s": 60.0, "grace_s": 0.0, field: value}
    with pytest.raises(ValueError, match="expect_every"):
        Expectation(job_id="j", **values)


async def test_one_job_expected_in_ten_thousand_years_does_not_silence_the_other_switches(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    switch = DeadMansSwitch(
        store,
        clock,
        bus,
        [Expectation(job_id="backup", every_s=60), Expectation(job_id="someday", every_s=3e11)],
    )
    await clock.advance(61)
    assert await switch.check() == ("backup",)
    assert await collector.types() == ["job.overdue"]
