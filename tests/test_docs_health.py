"""docs/health.md: its TOML examples are valid files, and its numbers are the code's."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from agentcron.alerts.config import load_alerting
from agentcron.alerts.rules import RULE_KINDS
from agentcron.heartbeat import monitor
from agentcron.heartbeat.probes import Thresholds
from agentcron.jobfile import parse_job_file
from agentcron.testing import VirtualClock

DOC = (Path(__file__).resolve().parents[1] / "docs" / "health.md").read_text(encoding="utf-8")


def toml_blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", DOC, re.S)


def test_the_per_job_example_is_a_valid_job_file_with_every_health_option() -> None:
    parsed = parse_job_file(tomllib.loads(toml_blocks()[0]))
    [entry] = parsed.jobs
    assert entry.id == "nightly-backup"
    assert parsed.health["nightly-backup"].auto_disable == 5
    assert parsed.health["nightly-backup"].ping == {
        "start": "https://hc-ping.com/your-uuid/start",
        "success": "https://hc-ping.com/your-uuid",
        "failure": "https://hc-ping.com/your-uuid/fail",
    }


def test_the_alerts_example_builds_its_sinks_and_rules() -> None:
    from datetime import UTC, datetime

    alerts = tomllib.loads(toml_blocks()[1])["alerts"]
    load_alerting(alerts, VirtualClock(datetime(2026, 1, 1, tzinfo=UTC)))


def test_every_rule_kind_is_in_the_table() -> None:
    for kind in RULE_KINDS:
        assert f"| `{kind}` |" in DOC


def test_the_thresholds_and_score_deductions_are_the_codes() -> None:
    t = Thresholds()
    assert (
        f"| event-loop lag (measured) | {t.loop_lag_degraded_s} s | {t.loop_lag_unhealthy_s:g} s |"
        in DOC
    )
    assert (
        f"| a job failing in a row | {t.failing_degraded} failures | {t.failing_unhealthy} failures |"
        in DOC
    )
    assert f"- {monitor.MISSED_BEAT_PENALTY} per missed beat" in DOC
    assert (
        f"- {monitor.DEGRADED_PENALTY} when the node reports itself degraded, "
        f"{monitor.UNHEALTHY_PENALTY} when unhealthy"
    ) in DOC
    assert f"`missed_threshold` ({monitor.DEFAULT_MISSED_THRESHOLD})" in DOC
