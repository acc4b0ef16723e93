"""Alerting configuration from plain data (the `[alerts]` table of `agentcron.toml`).

```toml
[[alerts.sinks]]
name = "ops"                 # referenced by rules; "log" always exists
type = "webhook"             # log | webhook | command
url = "https://hooks.example.org/agentcron"
secret = "..."               # optional: X-Agentcron-Signature: sha256=<hmac>
timeout = "5s"
retries = 3
backoff = "1s"

[[alerts.sinks]]
name = "page"
type = "command"
command = ["notify-send", "agentcron"]   # argv list, never a shell string

[[alerts.rules]]
kind = "consecutive_failures"            # see agentcron.alerts.rules for the kinds
threshold = 3
sinks = ["ops", "log"]
cooldown = "1h"
jobs = ["backup-*"]                      # optional job id patterns
```

Any bad value raises `ValueError` naming the entry (`alerts.rules[2] ('x'): ...`), so a bad
rule stops start-up with a message that says which one. Without rules, every kind goes to
the log sink (`default_rules`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agentcron.alerts.rules import Rule, default_rules
from agentcron.alerts.sinks import CommandSink, LogSink, Sink, WebhookSink
from agentcron.clock import Clock
from agentcron.durations import parse_duration

__all__ = ["load_alerting", "parse_duration"]


def _strs(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"{what}: expected a list of strings, got {value!r}")


def _check_keys(entry: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _sink(entry: Any, index: int, clock: Clock) -> Sink:
    if not isinstance(entry, Mapping):
        raise ValueError(f"alerts.sinks[{index}]: expected a table, got {entry!r}")
    name = entry.get("name")
    where = f"alerts.sinks[{index}] ({name!r})"
    if not isinstance(name, str) or not name:
        raise ValueError(f"alerts.sinks[{index}]: needs a name")
    kind = entry.get("type")
    try:
        if kind == "log":
            _check_keys(entry, {"name", "type"}, where)
            return LogSink(name)
        if kind == "webhook":
            _check_keys(
                entry,
                {
                    "name",
                    "type",
                    "url",
                    "secret",
                    "timeout",
                    "retries",
                    "backoff",
                    "max_backoff",
                    "headers",
                },
                where,
            )
            url = entry.get("url")
            if not isinstance(url, str):
                raise ValueError("needs a url")
            retries = entry.get("retries", 3)
            if not isinstance(retries, int) or isinstance(retries, bool):
                raise ValueError(f"retries: {retries!r} is not a whole number")
            secret = entry.get("secret")
            if secret is not None and not isinstance(secret, str):
                raise ValueError("secret must be a string")
            headers = entry.get("headers", {})
            if not isinstance(headers, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
            ):
                raise ValueError("headers must be a table of strings")
            return WebhookSink(
                name,
                url,
                clock,
                secret=secret,
                timeout_s=parse_duration(entry.get("timeout", 5), "timeout"),
                retries=retries,
                backoff_s=parse_duration(entry.get("backoff", 1), "backoff"),
                max_backoff_s=parse_duration(entry.get("max_backoff", 60), "max_backoff"),
                headers=headers,
            )
        if kind == "command":
            _check_keys(entry, {"name", "type", "command", "timeout"}, where)
            command = entry.get("command")
            if not isinstance(command, list):
                raise ValueError("command must be a list of strings (argv), never a shell string")
            return CommandSink(
                name, command, timeout_s=parse_duration(entry.get("timeout", 30), "timeout")
            )
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    raise ValueError(f"{where}: unknown type {kind!r}; use log, webhook or command")


def _rule(entry: Any, index: int, sinks: Mapping[str, Sink]) -> Rule:
    if not isinstance(entry, Mapping):
        raise ValueError(f"alerts.rules[{index}]: expected a table, got {entry!r}")
    name = entry.get("name", entry.get("kind"))
    where = f"alerts.rules[{index}] ({name!r})"
    try:
        _check_keys(
            entry, {"name", "kind", "sinks", "cooldown", "threshold", "severity", "jobs"}, where
        )
        if not isinstance(name, str) or not name:
            raise ValueError("needs a kind")
        kind = entry.get("kind")
        if not isinstance(kind, str):
            raise ValueError("needs a kind")
        rule_sinks = _strs(entry.get("sinks", ["log"]), "sinks")
        for sink in rule_sinks:
            if sink not in sinks:
                raise ValueError(f"unknown sink {sink!r}; defined: {', '.join(sorted(sinks))}")
        threshold = entry.get("threshold")
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, int | float)
        ):
            raise ValueError(f"threshold: {threshold!r} is not a number")
        severity = entry.get("severity")
        if severity is not None and not isinstance(severity, str):
            raise ValueError(f"severity: {severity!r} is not a string")
        return Rule(
            name=name,
            kind=kind,
            sinks=rule_sinks,
            cooldown_s=parse_duration(entry.get("cooldown", 3600), "cooldown"),
            threshold=float(threshold) if threshold is not None else None,
            severity=severity,
            jobs=_strs(entry.get("jobs", ()), "jobs"),
        )
    except ValueError as exc:
        message = str(exc).replace(f"alert rule {name!r}: ", "")
        raise ValueError(f"{where}: {message}") from None


def load_alerting(
    config: Mapping[str, Any] | None, clock: Clock
) -> tuple[dict[str, Sink], list[Rule]]:
    """Sinks by name and rules from the `[alerts]` table; ValueError naming a bad entry."""
    config = config or {}
    if not isinstance(config, Mapping):
        raise ValueError(f"alerts: expected a table, got {config!r}")
    _check_keys(config, {"sinks", "rules"}, "alerts")
    sinks: dict[str, Sink] = {"log": LogSink("log")}
    raw_sinks = config.get("sinks", [])
    if not isinstance(raw_sinks, list):
        raise ValueError("alerts.sinks: expected a list of tables")
    for index, entry in enumerate(raw_sinks):
        sink = _sink(entry, index, clock)
        if sink.name in sinks and sink.name != "log":
            raise ValueError(f"alerts.sinks[{index}] ({sink.name!r}): duplicate name")
        sinks[sink.name] = sink
    raw_rules = config.get("rules")
    if raw_rules is None:
        return sinks, default_rules()
    if not isinstance(raw_rules, list):
        raise ValueError("alerts.rules: expected a list of tables")
    rules: list[Rule] = []
    for index, entry in enumerate(raw_rules):
        rule = _rule(entry, index, sinks)
        if any(r.name == rule.name for r in rules):
            raise ValueError(
                f"alerts.rules[{index}] ({rule.name!r}): duplicate name; give each rule a name"
            )
        rules.append(rule)
    return sinks, rules
