from __future__ import annotations

import asyncio
import json
import threading
from datetime import timedelta

import pytest

from agentcron.alerts.autodisable import AutoDisable, disable_note, should_disable
from agentcron.alerts.manager import AlertManager
from agentcron.alerts.rules import Rule
from agentcron.alerts.sinks import Alert, LogSink, Sink, WebhookSink
from agentcron.events import (
    AlertSent,
    EventBus,
    JobOverdue,
    JobRecovered,
    JobResumed,
    NodeOffline,
    NodeRecovered,
    RunFailed,
    RunStarted,
    RunSucceeded,
)
from agentcron.heartbeat.deadman import JobPinger, PingUrls
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock

from .conftest import T0, Collector, LocalHTTP, Script


class Recording:
    def __init__(self, name: str = "rec") -> None:
        self.name = name
        self.alerts: list[Alert] = []

    async def send(self, alert: Alert) -> None:
        self.alerts.append(alert)


def failed(run: str, job: str = "j", error: str = "boom") -> RunFailed:
    return RunFailed(at=T0, job_id=job, run_id=run, scheduled_for=T0, error=error)


def manager(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, *rules: Rule, sink: Sink | None = None
) -> AlertManager:
    target = sink or Recording()
    return AlertManager(store, clock, bus, list(rules), {target.name: target, "log": LogSink()})


async def test_an_incident_alerts_once_within_its_cooldown_and_again_after_it(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    sink = Recording()
    rule = Rule(name="failures", kind="run_failed", sinks=("rec",), cooldown_s=600)
    async with manager(store, clock, bus, rule, sink=sink) as alerts:
        bus.publish(failed("r1"))
        bus.publish(failed("r2"))
        await alerts.drain()
        assert [a.key for a in sink.alerts] == ["j"]
        await clock.advance(599)
        bus.publish(failed("r3"))
        await alerts.drain()
        assert len(sink.alerts) == 1
        await clock.advance(1)
        bus.publish(failed("r4"))
        bus.publish(failed("r5", job="other"))
        await alerts.drain()
        assert [a.key for a in sink.alerts] == ["j", "j", "other"]
    assert (await collector.types()).count("alert.sent") == 3


async def test_cooldowns_and_history_survive_a_restart(
    store: MemoryStore, clock: VirtualClock, bus: EventBus
) -> None:
    rule = Rule(name="offline", kind="node_offline", sinks=("rec",))
    first = Recording()
    async with manager(store, clock, bus, rule, sink=first) as alerts:
        bus.publish(NodeOffline(at=T0, node_id="n1"))
        await alerts.drain()
    again = Recording()
    async with manager(store, clock, bus, rule, sink=again) as alerts:
        bus.publish(NodeOffline(at=T0, node_id="n1"))
        await alerts.drain()
        history = await alerts.history()
    assert (len(first.alerts), len(again.alerts)) == (1, 0)
    assert [(h["key"], h["sinks"]) for h in history] == [("n1", {"rec": "sent"})]
    assert json.loads(await store.get_state("alerts.history") or "[]")[0]["rule"] == "offline"


async def test_n_consecutive_failures_raise_one_critical_alert(
    store: MemoryStore, clock: VirtualClock, bus: EventBus
) -> None:
    sink = Recording()
    rule = Rule(name="streak", kind="consecutive_failures", threshold=3, sinks=("rec",))
    async with manager(store, clock, bus, rule, sink=sink) as alerts:
        for run in ("a", "b"):
            bus.publish(failed(run))
        bus.publish(RunSucceeded(at=T0, job_id="j", run_id="c", scheduled_for=T0))
        for run in ("d", "e", "f", "g"):
            bus.publish(failed(run))
        await alerts.drain()
    assert [(a.message, a.severity) for a in sink.alerts] == [
        ("job j failed 3 times in a row", "critical")
    ]


async def test_a_webhook_alert_is_delivered_in_the_background_and_never_blocks(
    http: LocalHTTP, store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    release = threading.Event()
    http.script = Script(hold=release)
    hook = WebhookSink("ops", http.url, clock, secret="k")
    rule = Rule(name="offline", kind="node_offline", sinks=("ops", "log"))
    alerts = manager(store, clock, bus, rule, sink=hook)
    raised = await alerts.handle(NodeOffline(at=T0, node_id="n9"))
    assert [a.key for a in raised] == ["n9"]  # returned while the server still holds the reply
    assert alerts._tasks
    release.set()
    await alerts.drain()
    sent = [e.to_dict()["sink"] for e in collector.events if e.type == "alert.sent"]
    assert sorted(sent) == ["log", "ops"]
    assert json.loads(http.requests[0].body)["key"] == "n9"


async def test_a_failing_sink_is_recorded_in_the_history_and_does_not_crash(
    closed_port: int, store: MemoryStore, clock: VirtualClock, bus: EventBus
) -> None:
    hook = WebhookSink("ops", f"http://127.0.0.1:{closed_port}/", clock, retries=0)
    rule = Rule(name="offline", kind="node_offline", sinks=("ops",))
    async with manager(store, clock, bus, rule, sink=hook) as alerts:
        bus.publish(NodeOffline(at=T0, node_id="n1"))
        await alerts.drain()
        [entry] = await alerts.history()
    assert entry["sinks"]["ops"].startswith("failed: webhook 'ops'")


def test_rules_must_name_existing_sinks(
    store: MemoryStore, clock: VirtualClock, bus: EventBus
) -> None:
    with pytest.raises(ValueError, match="'offline': unknown sink"):
        AlertManager(
            store, clock, bus, [Rule(name="offline", kind="node_offline", sinks=("x",))], {}
        )


def test_auto_disable_decisions_are_pure() -> None:
    assert should_disable(3, 3, False)
    assert not should_disable(2, 3, False)
    assert not should_disable(5, 3, True)
    assert not should_disable(9, None, False)
    assert disable_note(3, "Traceback\nValueError") == (
        "auto-disabled after 3 consecutive failures (last error: Traceback)"
    )


async def test_auto_disable_pauses_a_job_after_n_failures_with_a_note_and_alerts(
    store: MemoryStore, clock: VirtualClock, bus: EventBus
) -> None:
    sink = Recording()
    rule = Rule(name="disabled", kind="job_auto_disabled", sinks=("rec",))
    paused: list[tuple[str, str]] = []

    async def pause(job_id: str, note: str) -> None:
        paused.append((job_id, note))

    alerts = manager(store, clock, bus, rule, sink=sink)
    async with AutoDisable(bus, pause, {"flaky": 3}, alerts=alerts):
        for run in ("a", "b"):
            bus.publish(failed(run, job="flaky"))
        bus.publish(failed("x", job="other"))
        await alerts.drain()
        assert paused == []
        bus.publish(failed("c", job="flaky", error="HTTP 503"))
        bus.publish(failed("d", job="flaky"))  # already paused: not paused again
        await alerts.drain()
        assert paused == [
            ("flaky", "auto-disabled after 3 consecutive failures (last error: HTTP 503)")
        ]
        assert [a.message for a in sink.alerts] == [f"job flaky was paused: {paused[0][1]}"]

        bus.publish(JobResumed(at=T0, job_id="flaky"))  # a person resumes it: a fresh budget
        bus.publish(failed("e", job="flaky"))
        await alerts.drain()
        assert len(paused) == 1
        await clock.advance(timedelta(hours=2))
        for run in ("f", "g"):
            bus.publish(failed(run, job="flaky"))
        await alerts.drain()
        assert len(paused) == 2 and len(sink.alerts) == 2


def test_auto_disable_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="'j'"):
        AutoDisable(EventBus(), lambda j, n: None, {"j": 0})


async def test_job_pings_go_to_healthchecks_style_urls(http: LocalHTTP, bus: EventBus) -> None:
    urls = {"backup": PingUrls.healthchecks(f"{http.url}/ping/abc/")}
    async with JobPinger(bus, urls, timeout_s=5) as pinger:
        bus.publish(RunStarted(at=T0, job_id="backup", run_id="r", scheduled_for=T0))
        bus.publish(RunSucceeded(at=T0, job_id="backup", run_id="r", scheduled_for=T0))
        bus.publish(failed("s", job="backup", error="rsync: exit 23"))
        bus.publish(RunStarted(at=T0, job_id="unwatched", run_id="u", scheduled_for=T0))
        await pinger.drain()
    paths = sorted((r.path, r.body) for r in http.requests)
    assert paths == [
        ("/ping/abc", b""),
        ("/ping/abc/fail", b"rsync: exit 23"),
        ("/ping/abc/start", b""),
    ]
    assert (pinger.sent, pinger.failed) == (3, 0)


async def test_an_unreachable_ping_url_is_logged_not_raised(
    closed_port: int, bus: EventBus
) -> None:
    urls = {"j": PingUrls(success=f"http://127.0.0.1:{closed_port}/")}
    async with JobPinger(bus, urls) as pinger:
        bus.publish(RunSucceeded(at=T0, job_id="j", run_id="r", scheduled_for=T0))
        await pinger.drain()
    assert pinger.failed == 1


def test_ping_urls_must_be_http() -> None:
    with pytest.raises(ValueError, match="ping URL"):
        PingUrls(start="file:///etc/passwd")


async def test_two_managers_sharing_a_store_alert_once_for_one_incident(
    store: MemoryStore, clock: VirtualClock
) -> None:
    rule = Rule(name="offline", kind="node_offline", sinks=("rec",))
    first, second = Recording(), Recording()
    node_a = manager(store, clock, EventBus(), rule, sink=first)
    node_b = manager(store, clock, EventBus(), rule, sink=second)
    await node_a.handle(NodeOffline(at=T0, node_id="n3"))
    await node_b.handle(NodeOffline(at=T0, node_id="n3"))
    await node_a.drain()
    await node_b.drain()
    assert (len(first.alerts), len(second.alerts)) == (1, 0)


def webhook_alerts(http: LocalHTTP) -> list[tuple[str, str, bool]]:
    return [
        (b["kind"], b["key"], b["resolved"]) for b in (json.loads(r.body) for r in http.requests)
    ]


async def test_an_undelivered_alert_starts_no_cooldown_and_is_sent_again_until_delivered(
    http: LocalHTTP, store: MemoryStore, clock: VirtualClock, bus: EventBus
) -> None:
    http.script = Script(statuses=[503, 503])  # the receiver is down, then back
    hook = WebhookSink("ops", http.url, clock, retries=0)
    rule = Rule(name="overdue", kind="job_overdue", sinks=("ops",))
    async with manager(store, clock, bus, rule, sink=hook) as alerts:
        bus.publish(JobOverdue(at=T0, job_id="backup"))
        await alerts.drain()
        assert json.loads(await store.get_state("alerts.cooldown") or "{}") == {}
        bus.publish(JobOverdue(at=T0, job_id="backup"))  # pending: not a second delivery
        await alerts.drain()
        assert len(http.requests) == 1
        await clock.advance(60)  # the first retry, still refused
        await alerts.drain()
        assert len(http.requests) == 2
        await clock.advance(60)  # backing off: the next one is 120 s after that
        await alerts.drain()
        assert len(http.requests) == 2
        await clock.advance(60)
        await alerts.drain()
        assert len(http.requests) == 3
        await clock.advance(3600)
        await alerts.drain()
    assert webhook_alerts(http) == [("job_overdue", "backup", False)] * 3
    assert "overdue|backup" in json.loads(await store.get_state("alerts.cooldown") or "{}")


async def test_a_recovery_ends_the_incident_so_the_next_one_alerts_within_the_cooldown(
    http: LocalHTTP, store: MemoryStore, clock: VirtualClock, bus: EventBus
) -> None:
    hook = WebhookSink("ops", http.url, clock, retries=0)
    rules = (
        Rule(name="overdue", kind="job_overdue", sinks=("ops",)),
        Rule(name="offline", kind="node_offline", sinks=("ops",)),
        Rule(name="streak", kind="consecutive_failures", threshold=2, sinks=("ops",)),
    )
    async with manager(store, clock, bus, *rules, sink=hook) as alerts:
        for _ in range(2):
            bus.publish(JobOverdue(at=T0, job_id="j"))
            bus.publish(JobOverdue(at=T0, job_id="j"))  # the same incident: once
            bus.publish(NodeOffline(at=T0, node_id="n1"))
            await alerts.drain()
            await clock.advance(600)
            bus.publish(JobRecovered(at=T0, job_id="j"))
            bus.publish(NodeRecovered(at=T0, node_id="n1"))
            await alerts.drain()
            await clock.advance(600)
        for run in ("a", "b", "c"):
            bus.publish(failed(run))
        bus.publish(RunSucceeded(at=T0, job_id="j", run_id="d", scheduled_for=T0))
        for run in ("e", "f"):
            bus.publish(failed(run))
        await alerts.drain()
    assert sorted(webhook_alerts(http)) == sorted(
        [
            ("job_overdue", "j", False),
            ("node_offline", "n1", False),
            ("job_overdue", "j", True),
            ("node_offline", "n1", True),
        ]
        * 2
        + [
            ("consecutive_failures", "j", False),
            ("consecutive_failures", "j", True),
            ("consecutive_failures", "j", False),
        ]
    )
    resolves = [json.loads(r.body) for r in http.requests if json.loads(r.body)["resolved"]]
    assert {r["message"] for r in resolves} == {
        "job j is no longer overdue",
        "node n1 is online again",
        "job j succeeded again",
    }


async def test_the_alert_sent_events_say_which_delivery_resolved_the_incident(
    store: MemoryStore, clock: VirtualClock, bus: EventBus, collector: Collector
) -> None:
    rule = Rule(name="offline", kind="node_offline", sinks=("rec",))
    async with manager(store, clock, bus, rule) as alerts:
        bus.publish(NodeOffline(at=T0, node_id="n1"))
        await alerts.drain()
        bus.publish(NodeRecovered(at=T0, node_id="n1"))
        await alerts.drain()
    await collector.types()
    sent = [e for e in collector.events if isinstance(e, AlertSent)]
    assert [(e.key, e.resolved) for e in sent] == [("n1", False), ("n1", True)]


async def test_no_resolve_is_sent_for_an_incident_that_was_never_alerted(
    http: LocalHTTP, store: MemoryStore, clock: VirtualClock, bus: EventBus
) -> None:
    http.script = Script(statuses=[503])
    hook = WebhookSink("ops", http.url, clock, retries=0)
    rule = Rule(name="offline", kind="node_offline", sinks=("ops",))
    async with manager(store, clock, bus, rule, sink=hook) as alerts:
        bus.publish(NodeRecovered(at=T0, node_id="n0"))  # never offline
        bus.publish(NodeOffline(at=T0, node_id="n1"))  # not delivered ...
        await alerts.drain()
        bus.publish(NodeRecovered(at=T0, node_id="n1"))  # ... and over before its retry
        await alerts.drain()
        await clock.advance(3600)
        await alerts.drain()
    assert webhook_alerts(http) == [("node_offline", "n1", False)]


async def test_drain_returns_while_an_ended_delivery_has_not_left_its_set_yet(
    store: MemoryStore, clock: VirtualClock, bus: EventBus
) -> None:
    # A delivery task leaves `_tasks` through its done callback, a turn of the loop after
    # it ended; `drain()` looped until the set was empty, awaiting tasks that had ended,
    # which never yields a turn: it spun for ever (CI, with eager tasks on Python 3.13).
    rule = Rule(name="overdue", kind="job_overdue", sinks=("rec",))
    async with manager(store, clock, bus, rule) as alerts:

        async def delivered() -> None:
            return None

        ended = asyncio.get_running_loop().create_task(delivered())
        await asyncio.wait({ended})
        alerts._tasks.add(ended)  # as it is between its end and its done callback
        await alerts.drain()  # returns (before: never, and nothing could time it out)
        alerts._tasks.discard(ended)
