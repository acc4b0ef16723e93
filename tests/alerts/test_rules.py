from __future__ import annotations

from datetime import timedelta

import pytest

from agentcron.alerts.config import load_alerting, parse_duration
from agentcron.alerts.rules import (
    RULE_KINDS,
    FailureStreaks,
    Rule,
    default_rules,
    in_cooldown,
    match,
)
from agentcron.alerts.sinks import CommandSink, WebhookSink
from agentcron.events import (
    BackupFailed,
    CircuitOpened,
    DiskSpaceLow,
    Event,
    JobOverdue,
    NodeOffline,
    NodeSuspect,
    RunFailed,
    RunSucceeded,
    RunTimedOut,
)
from agentcron.testing import VirtualClock

from .conftest import T0


def failed(job: str = "j", run: str = "r1", error: str = "boom") -> RunFailed:
    return RunFailed(at=T0, job_id=job, run_id=run, scheduled_for=T0, attempt=3, error=error)


@pytest.mark.parametrize(
    ("kind", "event", "key", "message"),
    [
        ("run_failed", failed(), "j", "job j failed after 3 attempt(s): boom"),
        (
            "run_failed",
            RunTimedOut(at=T0, job_id="j", run_id="r", scheduled_for=T0, timeout_s=30),
            "j",
            "job j timed out after 30s (attempt 1)",
        ),
        (
            "circuit_opened",
            CircuitOpened(at=T0, circuit="mail", job_id="j", failures=5),
            "mail",
            "circuit mail (job j) opened after 5 failures",
        ),
        ("job_overdue", JobOverdue(at=T0, job_id="j"), "j", "job j is overdue: last success never"),
        ("node_offline", NodeOffline(at=T0, node_id="n1"), "n1", "node n1 is offline"),
        (
            "backup_failed",
            BackupFailed(at=T0, path="/d/b.db", error="disk full"),
            "/d/b.db",
            "backup /d/b.db failed: disk full",
        ),
        (
            "disk_nearly_full",
            DiskSpaceLow(at=T0, path="/d", used_pct=93.4, free_mb=512, node_id="n1"),
            "n1:/d",
            "disk of n1:/d is 93% full, 512 MiB free",
        ),
    ],
)
def test_each_rule_kind_turns_its_event_into_an_alert(
    kind: str, event: Event, key: str, message: str
) -> None:
    alert = match(Rule(name=kind, kind=kind), event)
    assert alert is not None
    assert (alert.key, alert.message, alert.at) == (key, message, T0)
    assert alert.details["event"]["type"] == event.type


def test_a_node_that_stopped_cleanly_is_no_incident() -> None:
    rule = Rule(name="offline", kind="node_offline")
    assert match(rule, NodeOffline(at=T0, node_id="n1", stopped=True)) is None
    assert match(rule, NodeOffline(at=T0, node_id="n1", stopped=False)) is not None


def test_rules_ignore_events_of_other_kinds() -> None:
    assert match(Rule(name="x", kind="node_offline"), NodeSuspect(at=T0, node_id="n")) is None
    assert match(Rule(name="x", kind="run_failed"), NodeOffline(at=T0, node_id="n")) is None


def test_disk_alerts_respect_the_rule_threshold() -> None:
    event = DiskSpaceLow(at=T0, path="/d", used_pct=91)
    assert match(Rule(name="d", kind="disk_nearly_full"), event) is not None
    assert match(Rule(name="d", kind="disk_nearly_full", threshold=95), event) is None


def test_consecutive_failures_fire_at_the_threshold() -> None:
    rule = Rule(name="c", kind="consecutive_failures", threshold=3)
    assert match(rule, failed(), streak=2) is None
    alert = match(rule, failed(), streak=3)
    assert alert is not None and alert.message == "job j failed 3 times in a row"
    assert alert.severity == "critical"


def test_rules_can_be_limited_to_jobs_by_pattern() -> None:
    rule = Rule(name="b", kind="run_failed", jobs=("backup-*",))
    assert match(rule, failed(job="backup-db")) is not None
    assert match(rule, failed(job="digest")) is None


def test_failure_streaks_count_each_run_once_and_reset_on_success() -> None:
    streaks = FailureStreaks()
    assert streaks.observe(failed(run="a")) == 1
    timed_out = RunTimedOut(at=T0, job_id="j", run_id="a", scheduled_for=T0)
    assert streaks.observe(timed_out) == 1  # the same run: not counted twice
    assert streaks.observe(failed(run="b")) == 2
    assert streaks.observe(RunSucceeded(at=T0, job_id="j", run_id="c", scheduled_for=T0)) == 0
    assert streaks.observe(NodeOffline(at=T0, node_id="n")) is None


def test_cooldown_holds_for_its_duration_only() -> None:
    assert in_cooldown(T0, 60, T0 + timedelta(seconds=59))
    assert not in_cooldown(T0, 60, T0 + timedelta(seconds=60))
    assert not in_cooldown(None, 60, T0)


def test_default_rules_cover_every_kind() -> None:
    assert [r.kind for r in default_rules()] == list(RULE_KINDS)


def test_parse_duration_accepts_numbers_and_units() -> None:
    assert parse_duration(90, "x") == 90.0
    assert parse_duration("500ms", "x") == 0.5
    assert parse_duration("2h", "x") == 7200.0
    with pytest.raises(ValueError, match="cooldown"):
        parse_duration("soon", "cooldown")


def test_a_full_alerting_config_builds_sinks_and_rules(clock: VirtualClock) -> None:
    sinks, rules = load_alerting(
        {
            "sinks": [
                {
                    "name": "ops",
                    "type": "webhook",
                    "url": "http://127.0.0.1:9/h",
                    "secret": "k",
                    "timeout": "2s",
                    "retries": 1,
                },
                {"name": "page", "type": "command", "command": ["true"]},
            ],
            "rules": [
                {
                    "kind": "consecutive_failures",
                    "threshold": 5,
                    "sinks": ["ops", "log"],
                    "cooldown": "10m",
                },
                {"name": "backups", "kind": "run_failed", "jobs": ["backup-*"], "sinks": "page"},
            ],
        },
        clock,
    )
    assert sorted(sinks) == ["log", "ops", "page"]
    assert isinstance(sinks["ops"], WebhookSink) and sinks["ops"].timeout_s == 2.0
    assert isinstance(sinks["page"], CommandSink)
    assert rules[0] == Rule(
        name="consecutive_failures",
        kind="consecutive_failures",
        sinks=("ops", "log"),
        cooldown_s=600,
        threshold=5,
    )
    assert rules[1].jobs == ("backup-*",) and rules[1].sinks == ("page",)


def test_no_rules_configured_means_every_kind_to_the_log(clock: VirtualClock) -> None:
    sinks, rules = load_alerting(None, clock)
    assert list(sinks) == ["log"] and len(rules) == len(RULE_KINDS)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"rules": [{"kind": "node_offline"}, {"kind": "typo"}]},
            r"alerts.rules\[1\] \('typo'\): unknown kind",
        ),
        (
            {"rules": [{"kind": "node_offline", "sinks": ["pager"]}]},
            r"alerts.rules\[0\] \('node_offline'\): unknown sink 'pager'",
        ),
        (
            {"rules": [{"kind": "node_offline", "cooldown": "often"}]},
            r"alerts.rules\[0\] .*cooldown",
        ),
        (
            {"rules": [{"kind": "consecutive_failures", "threshold": 0}]},
            r"alerts.rules\[0\] .*threshold",
        ),
        ({"rules": [{"kind": "node_offline", "threshold": 3}]}, r"takes no threshold"),
        ({"rules": [{"kind": "node_offline", "colour": "red"}]}, r"unknown key\(s\) colour"),
        (
            {"rules": [{"kind": "run_failed"}, {"kind": "run_failed"}]},
            r"alerts.rules\[1\] .*duplicate",
        ),
        ({"sinks": [{"name": "x", "type": "email"}]}, r"alerts.sinks\[0\] \('x'\): unknown type"),
        (
            {"sinks": [{"name": "x", "type": "command", "command": "rm -rf /"}]},
            r"alerts.sinks\[0\] .*argv",
        ),
        ({"sinks": [{"name": "x", "type": "webhook"}]}, r"alerts.sinks\[0\] .*url"),
        (
            {"sinks": [{"name": "x", "type": "webhook", "url": "http://h/", "retries": "3"}]},
            r"retries",
        ),
        ({"sinks": [{"type": "log"}]}, r"alerts.sinks\[0\]: needs a name"),
    ],
)
def test_a_bad_alerting_config_names_the_entry(
    clock: VirtualClock, config: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        load_alerting(config, clock)
