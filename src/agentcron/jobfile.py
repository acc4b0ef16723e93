"""`agentcron.toml`: jobs, preset handlers and alerting as a file (DESIGN 2.10).

```toml
[[jobs]]
id = "nightly-backup"                 # stable id, required
name = "Nightly backup"
trigger = "0 2 * * *"                 # cron | "@reboot" | { every = "5m" } | { at = "2026-12-01T09:00:00+01:00" }
timezone = "Europe/Berlin"
command = ["rsync", "-a", "src/", "dst/"]   # or callable = "pkg.mod:func" | http = { url = "...", method = "POST" }
timeout = "10m"
overlap = "skip"                      # or { policy = "concurrent", max_concurrent = 3 }
misfire = "run_once"                  # or { policy = "run_all", max_catchup = 10, catchup_window = "1d" }
retry = { max_attempts = 3, strategy = "exponential", base_delay = "1s", max_delay = "30s" }
tags = ["maintenance"]

[presets.agent-loops.handlers]
loop-gmail-sync = "myagent.gmail:sync"
```

A file is accepted or rejected whole: `load_job_file` validates every job (through the same
`build_job` the Python API uses, so the rules are one) and raises `JobFileError` listing
*every* problem with its location (`jobs[2] ('backup'): timeout: ...`). Unknown keys are
errors with a "did you mean" — a misspelt `timout` must not silently run without a timeout.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from agentcron.clock import utc
from agentcron.durations import parse_duration
from agentcron.error_text import shown_url
from agentcron.jobs import JOB_OPTIONS, build_job, coerce_handler, job_id_problem, tags_problem
from agentcron.policies.circuit import CircuitBreaker
from agentcron.policies.errors import setting_problem
from agentcron.policies.misfire import Misfire
from agentcron.policies.overlap import Overlap
from agentcron.policies.retry import Retry
from agentcron.triggers import CronTrigger, Date, Interval

log = logging.getLogger("agentcron.jobfile")

__all__ = [
    "JobEntry",
    "JobFile",
    "JobFileError",
    "JobHealth",
    "load_job_file",
    "parse_job_file",
    "policy_problems",
]

_TOP_LEVEL = {"jobs", "presets", "alerts"}
_HANDLER_KEYS = ("callable", "command", "http")
_COMMAND_KEYS = {"cwd", "env", "shell", "kill_grace", "ok_codes"}
_HEALTH_KEYS = {"auto_disable", "ping", "expect_grace"}
#: Every key a `[[jobs]]` table may hold: the job options of the Python API, plus the
#: handler and health keys of the file format.
_JOB_KEYS = {"id", "trigger", *JOB_OPTIONS, *_HANDLER_KEYS, *_COMMAND_KEYS, *_HEALTH_KEYS}

_DURATION_KEYS = ("timeout", "jitter", "expect_every")
#: Job options passed to `build_job` as written in the file.
_PLAIN_KEYS = tuple(
    sorted(JOB_OPTIONS - {*_DURATION_KEYS, "retry", "overlap", "misfire", "circuit"})
)
_HTTP_KEYS = {"url", "method", "headers", "json", "body", "timeout"}
#: Duration-valued keys inside policy tables, converted to seconds before validation.
_NESTED_DURATIONS = {
    "retry": ("base_delay", "max_delay"),
    "overlap": ("delay",),
    "misfire": ("grace", "catchup_window"),
    "circuit": ("reset_timeout",),
}
#: The largest job file read (a job file is a few kilobytes; this stops a runaway one).
MAX_FILE_BYTES = 16 * 1024 * 1024
#: The longest command argument: Linux refuses longer ones (MAX_ARG_STRLEN, 128 KiB) with
#: E2BIG at every run, so the file is refused instead.
MAX_ARG_BYTES = 128 * 1024
#: The longest error line (a 1 MB value must not become a 1 MB message).
_MAX_ERROR_CHARS = 300
#: `scheme://user:password@` and `?password=`/`token=`/`secret=` ... in messages.
_URL_PASSWORD = re.compile(r"(://[^/\s:@'\"]*):[^@\s'\"]*@")
_SECRET_QUERY = re.compile(
    r"([?&](?:password|passwd|pwd|pass|secret|token|auth|api_?key)=)[^&#\s'\"]*", re.IGNORECASE
)


def _safe_line(error: str) -> str:
    """One error as a short line with URL credentials hidden."""
    error = _SECRET_QUERY.sub(r"\1********", _URL_PASSWORD.sub(r"\1:********@", error))
    if len(error) > _MAX_ERROR_CHARS:
        error = f"{error[: _MAX_ERROR_CHARS - 30]}... ({len(error)} characters)"
    return error


class JobFileError(ValueError):
    """The file was rejected; `errors` lists every problem, one line each."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors = [_safe_line(e) for e in errors]
        listed = "; ".join(errors[:5]) + (
            f"; ... and {len(errors) - 5} more" if len(errors) > 5 else ""
        )
        super().__init__(f"{source}: {len(errors)} error(s): {listed}")


@dataclass(frozen=True, slots=True)
class JobEntry:
    """One validated `[[jobs]]` table, as arguments for `Scheduler.add_job`."""

    id: str
    trigger: object
    handler: object
    options: dict[str, Any]


@dataclass(frozen=True, slots=True)
class JobHealth:
    """Health options of one job, handed to `HealthSupervisor` by `agentcron run`.

    `auto_disable`: pause after this many consecutive failures. `ping`: healthchecks.io-style
    URLs called on start, success and failure. `per_schedule_grace_s`: with
    `expect_every = "per_schedule"`, the fire after the last success must succeed within this.
    """

    auto_disable: int | None = None
    ping: dict[str, str] | None = None
    per_schedule_grace_s: float | None = None


@dataclass(frozen=True, slots=True)
class JobFile:
    """A parsed, fully validated `agentcron.toml`."""

    source: str
    jobs: tuple[JobEntry, ...] = ()
    preset_handlers: dict[str, dict[str, str]] = field(default_factory=dict)
    alerts: dict[str, Any] | None = None
    health: dict[str, JobHealth] = field(default_factory=dict)


def load_job_file(
    path: Path | str, *, default_timezone: str = "UTC", now: datetime | None = None
) -> JobFile:
    """Read and validate `path`; raises `JobFileError` (all problems listed). `now`: see
    `parse_job_file`."""
    path = Path(path)
    try:
        raw = _read_regular_file(path)
    except OSError as exc:
        raise JobFileError(str(path), [f"cannot read the file: {exc.strerror or exc}"]) from None
    try:
        # utf-8-sig: a BOM (Windows Notepad writes one) is not a TOML syntax error.
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise JobFileError(
            str(path), [f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8"]
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise JobFileError(str(path), [f"TOML syntax: {exc}"]) from None
    except RecursionError:
        raise JobFileError(str(path), ["arrays or tables are nested too deeply"]) from None
    try:
        return parse_job_file(data, source=str(path), default_timezone=default_timezone, now=now)
    except RecursionError:
        raise JobFileError(str(path), ["arrays or tables are nested too deeply"]) from None


def _read_regular_file(path: Path) -> bytes:
    """The bytes of `path`; OSError unless it is a regular file of at most MAX_FILE_BYTES.

    A FIFO or a device would block `agentcron run` (and a SIGHUP reload, inside the event
    loop) forever, or never end."""
    return read_regular_file(path, what="job file", inside="the agentcron.toml file")


def read_regular_file(path: Path, *, what: str, inside: str) -> bytes:
    """The bytes of `path`, read without blocking; OSError (with a `strerror` fit for a
    message) unless it is a regular file of at most MAX_FILE_BYTES. `what` names such a
    file (`job file`, `settings file`) and `inside` what to name in a directory given
    instead. The one reader of `agentcron.toml` and `.env`, so both refuse the same things."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(0, f"it is a directory; name {inside} in it")
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file (a FIFO, socket or device)")
        if info.st_size > MAX_FILE_BYTES:
            raise OSError(0, f"{info.st_size} bytes; a {what} is at most {MAX_FILE_BYTES}")
        return file.read(MAX_FILE_BYTES + 1)


def parse_job_file(
    data: Mapping[str, Any],
    *,
    source: str = "agentcron.toml",
    default_timezone: str = "UTC",
    now: datetime | None = None,
) -> JobFile:
    """Validate already-parsed TOML data (see `load_job_file`).

    `now` (default: the wall clock; a caller with a clock passes its time): a cron
    trigger must fire after it, so `0 0 * * * * 2020` is refused as `0 0 30 2 *` is
    (an `{ at = ... }` date in the past is not: a one-off job that ran stays in the file)."""
    if now is None:
        from agentcron.clock import SystemClock

        now = SystemClock().now()
    errors: list[str] = []
    _unknown_keys(data, _TOP_LEVEL, "", errors)
    jobs_data = data.get("jobs", [])
    if not isinstance(jobs_data, list):
        errors.append("jobs: use [[jobs]] tables")
        jobs_data = []
    entries: list[JobEntry] = []
    health: dict[str, JobHealth] = {}
    seen: dict[str, int] = {}
    for index, table in enumerate(jobs_data):
        job_id = table.get("id") if isinstance(table, dict) else None
        if isinstance(job_id, str) and job_id in seen:
            errors.append(f"jobs[{index}] ({job_id!r}): duplicate id (also jobs[{seen[job_id]}])")
            continue
        if isinstance(job_id, str):
            seen[job_id] = index
        entry = _job_entry(table, index, default_timezone, now, errors)
        if entry is not None:
            entries.append(entry)
            job_health = _health(table, f"jobs[{index}] ({entry.id!r}): ", errors)
            if job_health != JobHealth():
                health[entry.id] = job_health
    presets = _preset_handlers(data.get("presets", {}), errors)
    alerts = data.get("alerts")
    if alerts is not None and not isinstance(alerts, dict):
        errors.append("alerts: expected a table")
        alerts = None
    elif alerts is not None:
        errors.extend(_alerting_problems(alerts))
    if errors:
        raise JobFileError(source, errors)
    return JobFile(
        source=source, jobs=tuple(entries), preset_handlers=presets, alerts=alerts, health=health
    )


def _alerting_problems(alerts: Mapping[str, Any]) -> list[str]:
    """The `[alerts]` table checked now, as the jobs are: `agentcron run` would otherwise
    find a bad sink only after opening the store, and a SIGHUP reload never."""
    from agentcron.alerts.config import load_alerting
    from agentcron.clock import SystemClock

    try:
        load_alerting(alerts, SystemClock())
    except ValueError as exc:
        message = str(exc)
        prefix, sep, rest = message.partition(": ")
        # load_alerting sometimes repeats the location: "alerts.x: alerts.x: ..."
        return [f"{prefix}{sep}{rest.removeprefix(prefix + sep)}"]
    return []


def _unknown_keys(table: Mapping[str, Any], known: set[str], where: str, errors: list[str]) -> None:
    for key in sorted(set(table) - known):
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.7)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        errors.append(f"{where}{key}: unknown key{hint}")


def _job_entry(
    table: object, index: int, default_timezone: str, now: datetime, errors: list[str]
) -> JobEntry | None:
    where = f"jobs[{index}]"
    if not isinstance(table, dict):
        errors.append(f"{where}: expected a table")
        return None
    job_id = table.get("id")
    if not isinstance(job_id, str) or not job_id.strip():
        errors.append(f"{where}: id is required (a non-empty string)")
        return None
    problem = job_id_problem(job_id)
    if problem is not None:
        shown = job_id if len(job_id) <= 60 else f"{job_id[:40]}..."
        errors.append(f"{where}: id {shown!r} {problem}")
        return None
    where = f"{where} ({job_id!r}): "
    before = len(errors)
    _unknown_keys(table, _JOB_KEYS, where, errors)
    handler = _handler(table, where, errors)
    options = _options(table, where, errors)
    if "trigger" not in table:
        errors.append(f"{where}trigger is required")
    if len(errors) > before or handler is None:
        return None
    trigger = _trigger(table["trigger"], where, errors)
    if trigger is None:
        return None
    # Validate through the engine's own builder so the file and the API follow one set of rules.
    try:
        job = build_job(
            job_id, trigger=trigger, handler=handler, default_timezone=default_timezone, **options
        )
    except ValueError as exc:
        errors.append(f"{where}{exc}")
        return None
    if isinstance(job.trigger, CronTrigger) and job.trigger.next_fire(now) is None:
        # Warned, not refused: a file that was valid must not stop a later start (a reboot
        # in the next year) because one of its schedules ran out.
        log.warning(
            "%strigger %r never fires after %s: the years it allows are past; change its"
            " year field, or remove the job",
            where,
            job.trigger.expr,
            now.isoformat(timespec="seconds"),
        )
    return JobEntry(id=job_id, trigger=trigger, handler=handler, options=options)


def _trigger(value: object, where: str, errors: list[str]) -> object | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if set(value) == {"every"} or set(value) == {"every", "start"}:
            try:
                seconds = parse_duration(value["every"], "trigger.every")
            except ValueError as exc:
                errors.append(f"{where}{exc}")
                return None
            if seconds <= 0:
                errors.append(f"{where}trigger.every: must be greater than zero")
                return None
            anchor = None
            if value.get("start") is not None:
                anchor = _aware_time(value["start"], "trigger.start", where, errors)
                if anchor is None:
                    return None
            try:
                return Interval(seconds=seconds, start=anchor)
            except ValueError as exc:
                errors.append(f"{where}{exc}")
                return None
        if set(value) == {"at"}:
            when = _aware_time(value["at"], "trigger.at", where, errors)
            if when is None:
                return None
            try:
                return Date(when)
            except ValueError as exc:
                errors.append(f"{where}{exc}")
                return None
    errors.append(
        f'{where}trigger: expected cron text, "@reboot", {{ every = "5m" }} or '
        f'{{ at = "2026-12-01T09:00:00+01:00" }}, got {value!r}'
    )
    return None


def _aware_time(value: object, what: str, where: str, errors: list[str]) -> datetime | None:
    """A date and time with an offset (ISO text or a TOML datetime) that exists in UTC."""
    example = "e.g. 2026-12-01T09:00:00+01:00"
    when = value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            errors.append(f"{where}{what}: {value!r} is not an ISO-8601 time ({example})")
            return None
    if not isinstance(when, datetime):
        shown = repr(value.isoformat()) if isinstance(value, date | time) else repr(value)
        errors.append(
            f"{where}{what}: expected a date and time with an offset ({example}), got {shown}"
        )
        return None
    try:
        utc(when)
    except ValueError as exc:
        hint = f"; add an offset ({example})" if when.utcoffset() is None else ""
        errors.append(f"{where}{what}: {exc}{hint}")
        return None
    return when


def _handler(table: Mapping[str, Any], where: str, errors: list[str]) -> object | None:
    given = [k for k in _HANDLER_KEYS if k in table]
    if len(given) != 1:
        errors.append(
            f'{where}give exactly one of callable = "pkg.mod:func", command = [...] '
            f"or http = {{ url = ... }} (found {len(given)})"
        )
        return None
    kind = given[0]
    extra_command_keys = sorted(k for k in _COMMAND_KEYS if k in table)
    if kind != "command" and extra_command_keys:
        errors.append(f"{where}{', '.join(extra_command_keys)}: only valid with command = [...]")
        return None
    try:
        if kind == "callable":
            ref = table["callable"]
            if not isinstance(ref, str):
                raise ValueError(f'callable: expected "pkg.mod:func", got {ref!r}')
            return ref
        if kind == "command":
            return _command(table)
        return _http(table["http"])
    except (ValueError, TypeError) as exc:
        errors.append(f"{where}{exc}")
        return None


def _command(table: Mapping[str, Any]) -> object:
    from agentcron.handlers import Command

    argv = table["command"]
    if not (
        isinstance(argv, str) or (isinstance(argv, list) and all(isinstance(a, str) for a in argv))
    ):
        raise ValueError(f"command: expected a list of strings (argv), got {argv!r}")
    if isinstance(argv, list):
        _check_argv(argv)
    elif "\x00" in argv or len(argv.encode("utf-8", "surrogatepass")) > MAX_ARG_BYTES:
        _check_argv(["-", argv])  # the same messages as for a list

    kwargs: dict[str, Any] = {}
    if "cwd" in table:
        kwargs["cwd"] = _checked_cwd(table["cwd"])
    if "env" in table:
        kwargs["env"] = table["env"]
        _check_env(table["env"])
    if "shell" in table:
        kwargs["shell"] = table["shell"]
    if "kill_grace" in table:
        kwargs["kill_grace_s"] = parse_duration(table["kill_grace"], "kill_grace")
    if "ok_codes" in table:
        kwargs["ok_codes"] = table["ok_codes"]
    return Command(argv, **kwargs)


def _check_argv(argv: list[str]) -> None:
    """What the operating system would refuse at every run, refused now."""
    if argv and not argv[0].strip():
        raise ValueError("command: the program (first element) is empty")
    for index, arg in enumerate(argv):
        if "\x00" in arg:
            raise ValueError(f"command[{index}]: contains a NUL character")
        size = len(arg.encode("utf-8", "surrogatepass"))
        if size > MAX_ARG_BYTES:
            raise ValueError(
                f"command[{index}]: {size} bytes; an argument is at most {MAX_ARG_BYTES} "
                "(put long input in a file)"
            )


def _checked_cwd(cwd: object) -> str:
    if not isinstance(cwd, str) or not cwd.strip():
        raise ValueError(f"cwd: expected a directory path (text), got {cwd!r}")
    if "\x00" in cwd:
        raise ValueError("cwd: contains a NUL character")
    # Whether it exists is a question for each run, not for the file: a directory on a
    # drive mounted after boot must not keep the scheduler from starting (the run that
    # finds it missing fails, saying so).
    return cwd


def _check_env(env: object) -> None:
    """Names and values the OS accepts (the types are checked by `Command`)."""
    if not isinstance(env, dict):
        return
    for name, value in env.items():
        if not isinstance(name, str) or not isinstance(value, str):
            return  # `Command` names the wrong type
        if not name or "=" in name or "\x00" in name:
            raise ValueError(f"env: {name!r} is not a variable name (empty, or has = or NUL)")
        if "\x00" in value:
            raise ValueError(f"env.{name}: the value contains a NUL character")


def _http(spec: object) -> object:
    from agentcron.handlers import Http

    if not isinstance(spec, dict):
        raise ValueError(f"http: expected a table {{ url = ..., method = ... }}, got {spec!r}")
    unknown = sorted(set(spec) - _HTTP_KEYS)
    if unknown:
        raise ValueError(f"http: unknown key(s) {', '.join(unknown)}")
    kwargs = {k: v for k, v in spec.items() if k != "timeout"}
    if "timeout" in spec:
        kwargs["timeout_s"] = parse_duration(spec["timeout"], "http.timeout")
    if "url" not in kwargs:
        raise ValueError("http: url is required")
    return Http(**kwargs)


def _options(table: Mapping[str, Any], where: str, errors: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key in _PLAIN_KEYS:
        if key in table:
            options[key] = table[key]
    if "enabled" in table and not isinstance(table["enabled"], bool):
        errors.append(f"{where}enabled must be true or false, got {table['enabled']!r}")
    errors.extend(
        f"{where}{key}: expected text, got {table[key]!r}"
        for key in ("name", "description")
        if key in table and not isinstance(table[key], str)
    )
    tags = table.get("tags")
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        problem = tags_problem(tags)
        if problem is not None:
            errors.append(f"{where}tags: {problem}")
    for key in _DURATION_KEYS:
        if key == "expect_every" and table.get(key) == "per_schedule":
            continue  # a health option, see `_health`
        if key in table:
            try:
                options[key] = parse_duration(table[key], key)
            except ValueError as exc:
                errors.append(f"{where}{exc}")
    for key, duration_keys in _NESTED_DURATIONS.items():
        if key not in table:
            continue
        value = table[key]
        if isinstance(value, dict):
            before = len(errors)
            value = dict(value)
            for sub in duration_keys:
                if sub in value:
                    try:
                        value[sub] = parse_duration(value[sub], f"{key}.{sub}")
                    except ValueError as exc:
                        errors.append(f"{where}{exc}")
            if len(errors) == before:  # (a bad duration is named once, above)
                errors.extend(f"{where}{problem}" for problem in policy_problems(key, value))
        options[key] = value
    return options


#: The policy tables and their classes: the keys a table may hold are the class's fields
#: (plus the short names of durations), checked here so that a wrong key or type is named
#: instead of surfacing as a Python error from inside the class.
_POLICIES: dict[str, type] = {
    "retry": Retry,
    "overlap": Overlap,
    "misfire": Misfire,
    "circuit": CircuitBreaker,
}
_POLICY_ALIASES = {
    "overlap": {"delay": "delay_s"},
    "misfire": {"grace": "grace_s", "catchup_window": "catchup_window_s"},
}


def policy_problems(key: str, value: object) -> list[str]:
    """What is wrong with the keys and value types of policy table `key` (`retry`,
    `overlap`, `misfire`, `circuit`); empty when the class itself can check the rest."""
    if key not in _POLICIES or not isinstance(value, dict):
        return []
    types = {f.name: str(f.type) for f in dataclasses.fields(_POLICIES[key])}
    aliases = _POLICY_ALIASES.get(key, {})
    known = set(types) | set(aliases)
    # The documented names (`grace`, not `grace_s`; both are accepted).
    documented = ", ".join(sorted((set(types) - set(aliases.values())) | set(aliases)))
    problems = [
        f"{key}.{name}: unknown key; use one of {documented}" for name in sorted(set(value) - known)
    ]
    for name, item in value.items():
        problem = setting_problem(types.get(aliases.get(str(name), str(name)), ""), item)
        if problem is not None:
            problems.append(f"{key}.{name}: {problem}")
    return problems


def _health(table: Mapping[str, Any], where: str, errors: list[str]) -> JobHealth:
    auto_disable = table.get("auto_disable")
    if auto_disable is not None and (
        not isinstance(auto_disable, int) or isinstance(auto_disable, bool) or auto_disable < 1
    ):
        errors.append(f"{where}auto_disable: expected a number of failures >= 1")
        auto_disable = None
    ping = table.get("ping")
    urls: dict[str, str] | None = None
    if isinstance(ping, str):
        base = ping.rstrip("/")
        urls = {"start": f"{base}/start", "success": base, "failure": f"{base}/fail"}
    elif (
        isinstance(ping, dict)
        and set(ping) <= {"start", "success", "failure"}
        and all(isinstance(v, str) for v in ping.values())
    ):
        urls = dict(ping)
    elif ping is not None:
        errors.append(f"{where}ping: expected a URL or {{ start, success, failure }} URLs")
    # Each URL as written, once: a `ping` text is one URL, not the three made from it.
    # (Scheme and host only: the path is often the secret, as with healthchecks.io.)
    written = {"": ping} if isinstance(ping, str) else (urls or {})
    errors.extend(
        f"{where}ping{'.' if name else ''}{name}: {shown_url(url)} is not an http(s) URL"
        for name, url in written.items()
        if not _is_http_url(url)
    )
    grace_s: float | None = None
    if table.get("expect_every") == "per_schedule":
        try:
            grace_s = parse_duration(table.get("expect_grace", "5m"), "expect_grace")
        except ValueError as exc:
            errors.append(f"{where}{exc}")
    elif "expect_grace" in table:
        errors.append(f'{where}expect_grace: only with expect_every = "per_schedule"')
    return JobHealth(auto_disable=auto_disable, ping=urls, per_schedule_grace_s=grace_s)


def _is_http_url(url: str) -> bool:
    return url.startswith(("http://", "https://")) and not any(
        c.isspace() or not c.isprintable() for c in url
    )


def _preset_handlers(presets: object, errors: list[str]) -> dict[str, dict[str, str]]:
    from agentcron.presets import AGENT_LOOPS, PRESETS

    if not isinstance(presets, dict):
        errors.append("presets: expected a table")
        return {}
    out: dict[str, dict[str, str]] = {}
    for name, table in presets.items():
        if name not in PRESETS:
            close = difflib.get_close_matches(name, PRESETS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            errors.append(f"presets.{name}: unknown preset{hint}")
            continue
        if not isinstance(table, dict):
            errors.append(f"presets.{name}: expected a table")
            continue
        _unknown_keys(table, {"handlers"}, f"presets.{name}.", errors)
        handlers = table.get("handlers", {})
        if not isinstance(handlers, dict):
            errors.append(f'presets.{name}.handlers: expected a table of loop id = "pkg.mod:func"')
            continue
        loop_ids = {loop.id for loop in AGENT_LOOPS}
        _unknown_keys(handlers, loop_ids, f"presets.{name}.handlers.", errors)
        for loop_id, ref in handlers.items():
            if loop_id in loop_ids and not isinstance(ref, str):
                errors.append(f'presets.{name}.handlers.{loop_id}: expected "pkg.mod:func"')
            elif loop_id in loop_ids:
                try:  # imported now, as for the jobs: a typo must not wait for the first run
                    coerce_handler(ref)
                except ValueError as exc:
                    errors.append(f"presets.{name}.handlers.{loop_id}: {exc}")
        out[name] = {k: v for k, v in handlers.items() if k in loop_ids and isinstance(v, str)}
    return out
