"""Alerts: rules turn events into alerts, sinks deliver them (`log`, `webhook`, `command`).

```python
sinks, rules = load_alerting(settings["alerts"], clock)      # ValueError names a bad entry
async with AlertManager(store, clock, events, rules, sinks):
    ...
```
See `rules` for the kinds, `sinks` for delivery and signing, `autodisable` for pausing jobs
that keep failing.
"""

from __future__ import annotations

from agentcron.alerts.autodisable import AutoDisable
from agentcron.alerts.config import load_alerting, parse_duration
from agentcron.alerts.manager import AlertManager
from agentcron.alerts.rules import RULE_KINDS, FailureStreaks, Rule, default_rules, match
from agentcron.alerts.sinks import (
    SIGNATURE_HEADER,
    Alert,
    CommandSink,
    LogSink,
    Sink,
    SinkError,
    WebhookSink,
    sign,
    verify_signature,
)

__all__ = [
    "RULE_KINDS",
    "SIGNATURE_HEADER",
    "Alert",
    "AlertManager",
    "AutoDisable",
    "CommandSink",
    "FailureStreaks",
    "LogSink",
    "Rule",
    "Sink",
    "SinkError",
    "WebhookSink",
    "default_rules",
    "load_alerting",
    "match",
    "parse_duration",
    "sign",
    "verify_signature",
]
