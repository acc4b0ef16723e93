"""Hostile configuration and alert text: refused at load time, or delivered all the same."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from agentcron.alerts.config import load_alerting, parse_duration
from agentcron.alerts.rules import Rule
from agentcron.alerts.sinks import Alert, CommandSink, WebhookSink
from agentcron.testing import VirtualClock

from .conftest import T0, LocalHTTP


def an_alert(message: str) -> Alert:
    return Alert(
        rule="run_failed", kind="run_failed", key="job", severity="warning", message=message, at=T0
    )


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_duration_that_is_not_a_finite_number_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="cooldown"):
        parse_duration(value, "cooldown")


@pytest.mark.parametrize(
    ("text", "seconds"), [("1h30m", 5400.0), ("2d", 172800.0), ("250ms", 0.25)]
)
def test_alert_durations_are_read_as_every_other_duration_of_agentcron(
    text: str, seconds: float
) -> None:
    # The alerts had their own parser, without sums ("1h30m") or the 100-year cap.
    assert parse_duration(text, "cooldown") == seconds
    with pytest.raises(ValueError, match="longer than 100 years"):
        parse_duration("40000d", "cooldown")


def test_a_nan_cooldown_stops_start_up_naming_the_rule(clock: VirtualClock) -> None:
    with pytest.raises(ValueError, match=r"alerts\.rules\[0\] \('run_failed'\): cooldown"):
        load_alerting({"rules": [{"kind": "run_failed", "cooldown": math.nan}]}, clock)


@pytest.mark.parametrize("threshold", [math.inf, -math.inf, math.nan])
def test_a_threshold_that_is_not_finite_is_a_value_error_naming_the_rule(
    clock: VirtualClock, threshold: float
) -> None:
    config = {"rules": [{"kind": "consecutive_failures", "threshold": threshold}]}
    with pytest.raises(ValueError, match=r"alerts\.rules\[0\].*threshold"):
        load_alerting(config, clock)


def test_a_rule_built_in_python_refuses_a_nan_cooldown() -> None:
    with pytest.raises(ValueError, match="cooldown"):
        Rule(name="r", kind="run_failed", cooldown_s=math.nan)


@pytest.mark.parametrize(
    ("sink", "complaint"),
    [
        ({"url": "http://"}, "host"),
        ({"url": "http://127.0.0.1:9/a\r\nb"}, "url"),
        ({"url": "http://[::1/"}, "url"),
        ({"url": "http://127.0.0.1:9/", "headers": {"X-Team": "caf\u00e9"}}, "header"),
        ({"url": "http://127.0.0.1:9/", "headers": {"X-Team": "a\r\nX-Evil: 1"}}, "header"),
        ({"url": "http://127.0.0.1:9/", "headers": {"Bad Name": "x"}}, "header"),
        ({"url": "http://127.0.0.1:9/", "timeout": math.nan}, "timeout"),
    ],
)
def test_a_webhook_that_could_never_be_sent_stops_start_up_naming_the_sink(
    clock: VirtualClock, sink: dict[str, Any], complaint: str
) -> None:
    entry = {"name": "ops", "type": "webhook", **sink}
    with pytest.raises(ValueError, match=rf"alerts\.sinks\[0\] \('ops'\): .*{complaint}"):
        load_alerting({"sinks": [entry]}, clock)


async def test_a_webhook_delivers_an_alert_whose_text_is_not_valid_unicode(
    http: LocalHTTP, clock: VirtualClock
) -> None:
    text = "job \udcff failed: \ud800 \x00 end"
    await WebhookSink("ops", f"{http.url}/hook", clock, retries=0).send(an_alert(text))
    assert json.loads(http.requests[0].body)["message"] == text


@pytest.mark.parametrize(
    "message",
    ["stderr said a\x00b", "x" * 300_000, "broken \ud800 text", "bytes \udcff of a path"],
    ids=["nul", "huge", "lone-surrogate", "surrogate-escape"],
)
async def test_a_command_sink_delivers_alerts_whatever_their_message_text(
    tmp_path: Path, message: str
) -> None:
    out = tmp_path / "got.json"
    script = (
        "import json, os, sys; data = json.load(sys.stdin); "
        f"open({str(out)!r}, 'w').write(json.dumps("
        "{'len': len(data['message']), 'env': len(os.environ['AGENTCRON_ALERT_MESSAGE'])}))"
    )
    await CommandSink("page", [sys.executable, "-c", script]).send(an_alert(message))
    got = json.loads(out.read_text())
    assert got["len"] == len(message)  # stdin carries the whole alert
    assert 0 < got["env"] <= 4200  # the environment a readable, bounded summary
