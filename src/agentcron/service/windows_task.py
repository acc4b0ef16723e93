"""Windows Task Scheduler: a task defined by XML (schema 1.2) and registered with schtasks.

The XML is built with `xml.etree` (never by concatenating strings) and written as UTF-16,
as `schtasks /Create /XML` expects. The task runs as the installing user with least
privilege; SYSTEM with the highest privileges only with `run_as_system` (warned about).
Tasks live in the `\\agentcron\\` folder of the Task Scheduler library.
"""

from __future__ import annotations

import csv
import io
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import PurePath

from agentcron.service.base import (
    CommandRunner,
    Kind,
    MakeDir,
    Plan,
    RemoveFile,
    ServiceError,
    ServiceSpec,
    ServiceStatus,
    WriteFile,
    cmd,
    expansion_problem,
    parse_hh_mm,
)

TASK_NS = "http://schemas.microsoft.com/windows/2004/02/mit/task"
TASK_FOLDER = "\\agentcron\\"
SYSTEM_SID = "S-1-5-18"
#: the fixed date of the daily trigger's StartBoundary (local time; only the time matters)
DAILY_START_DATE = "2024-01-01"
#: Task Scheduler accepts restart intervals from 1 minute to 31 days
MIN_RESTART_INTERVAL_S = 60
#: RestartOnFailure/Count is an unsignedByte in the schema
MAX_RESTART_COUNT = 255
#: Windows device names: a file named so (with any extension: `CON.task.xml`) is the device
_RESERVED_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789\u00b9\u00b2\u00b3"}
)


def reserved_name_problem(name: str) -> str | None:
    """Why `name` cannot name a file on Windows (a reserved device name), or None.

    The part before the first dot counts, in any case, trailing spaces ignored, so `con`,
    `Nul.txt` and `COM1.task` are all devices."""
    if name.split(".", 1)[0].rstrip(" ").upper() in _RESERVED_NAMES:
        return (
            "is a reserved Windows device name (CON, PRN, AUX, NUL, COM0-9, LPT0-9, "
            "also with an extension)"
        )
    return None


def check_task_name(name: str) -> None:
    """Refuse a task name whose XML file (`<name>.task.xml`) Windows would take for a device."""
    problem = reserved_name_problem(name)
    if problem is not None:
        raise ServiceError(f"task name {name!r} {problem}; pass another --name")


def check_no_expansion(spec: ServiceSpec, manager: str) -> None:
    """Refuse paths that Windows would expand as `%VAR%` in the command, its arguments or its
    working directory (Task Scheduler and NSSM both expand them, with no escape for '%')."""
    argv = spec.run_argv()
    expansion_problem("command", manager, [("python executable", argv[0])])
    arguments = [("data dir", str(spec.data_dir))]
    if spec.config_file is not None:
        arguments.append(("config file", str(spec.config_file)))
    expansion_problem("arguments", manager, arguments)
    expansion_problem("working directory", manager, [("working directory", str(spec.working_dir))])


def windows_cmdline(argv: list[str] | tuple[str, ...]) -> str:
    """Join argv with the MS C runtime quoting rules (what `subprocess.list2cmdline` does)."""
    return subprocess.list2cmdline(list(argv))


def task_path(name: str) -> str:
    """The full Task Scheduler path of the task `name`: `\\agentcron\\<name>`."""
    return TASK_FOLDER + name


def _duration(seconds: int) -> str:
    """An ISO-8601 duration (`PT1M`, `PT1H30M`) for a whole number of seconds."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    text += f"{secs}S" if secs or text == "PT" else ""
    return text


def restart_interval_s(spec: ServiceSpec) -> int:
    """The restart delay rounded up to whole minutes, at least one (the scheduler's minimum)."""
    return max(MIN_RESTART_INTERVAL_S, -(-spec.restart_delay_s // 60) * 60)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def _bool(value: bool) -> str:
    return "true" if value else "false"


def render_task_xml(spec: ServiceSpec, *, user: str) -> str:
    """The task definition for `spec` as XML text (declared UTF-16; encode it so)."""
    if spec.environment:
        raise ServiceError(
            "Task Scheduler cannot set environment variables for a task; put them in a .env "
            "file in the working directory, or use --kind nssm"
        )
    if not user and not spec.run_as_system:
        raise ServiceError("cannot tell the installing user; pass --account DOMAIN\\user")
    check_task_name(spec.name)
    check_no_expansion(spec, "Task Scheduler")
    # unqualified tags under a default xmlns: the parsed document is in TASK_NS
    task = ET.Element("Task", {"version": "1.2", "xmlns": TASK_NS})
    info = _sub(task, "RegistrationInfo")
    _sub(info, "Author", user or "SYSTEM")
    _sub(info, "Description", spec.description)
    _sub(info, "URI", task_path(spec.name))

    triggers = _sub(task, "Triggers")
    boot = _sub(triggers, "BootTrigger")
    _sub(boot, "Enabled", "true")
    logon = _sub(triggers, "LogonTrigger")
    _sub(logon, "Enabled", "true")
    if not spec.run_as_system:
        _sub(logon, "UserId", user)
    if spec.daily_at is not None:
        hour, minute = parse_hh_mm(spec.daily_at)
        daily = _sub(triggers, "CalendarTrigger")
        _sub(daily, "StartBoundary", f"{DAILY_START_DATE}T{hour:02d}:{minute:02d}:00")
        _sub(daily, "Enabled", "true")
        by_day = _sub(daily, "ScheduleByDay")
        _sub(by_day, "DaysInterval", "1")

    principals = _sub(task, "Principals")
    principal = _sub(principals, "Principal", id="Author")
    if spec.run_as_system:
        _sub(principal, "UserId", SYSTEM_SID)
        _sub(principal, "RunLevel", "HighestAvailable")
    else:
        _sub(principal, "UserId", user)
        # S4U: runs at boot whether or not the user is logged on, without a stored password
        # (and without the user's credentials for network shares)
        _sub(principal, "LogonType", "S4U")
        _sub(principal, "RunLevel", "LeastPrivilege")

    settings = _sub(task, "Settings")
    _sub(settings, "MultipleInstancesPolicy", "IgnoreNew")
    _sub(settings, "DisallowStartIfOnBatteries", "false")
    _sub(settings, "StopIfGoingOnBatteries", "false")
    _sub(settings, "AllowHardTerminate", "true")
    _sub(settings, "StartWhenAvailable", "true")
    _sub(settings, "RunOnlyIfNetworkAvailable", "false")
    idle = _sub(settings, "IdleSettings")
    _sub(idle, "StopOnIdleEnd", "false")
    _sub(idle, "RestartOnIdle", "false")
    _sub(settings, "AllowStartOnDemand", "true")
    _sub(settings, "Enabled", "true")
    _sub(settings, "Hidden", "false")
    _sub(settings, "RunOnlyIfIdle", "false")
    _sub(settings, "WakeToRun", _bool(spec.wake_to_run))
    _sub(settings, "ExecutionTimeLimit", "PT0S")
    _sub(settings, "Priority", "7")
    if spec.restart_count:
        restart = _sub(settings, "RestartOnFailure")
        _sub(restart, "Interval", _duration(restart_interval_s(spec)))
        _sub(restart, "Count", str(min(spec.restart_count, MAX_RESTART_COUNT)))

    actions = _sub(task, "Actions", Context="Author")
    exec_ = _sub(actions, "Exec")
    argv = spec.run_argv()
    _sub(exec_, "Command", argv[0])
    _sub(exec_, "Arguments", windows_cmdline(argv[1:]))
    _sub(exec_, "WorkingDirectory", str(spec.working_dir))

    ET.indent(task, space="  ")
    body = ET.tostring(task, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-16"?>\n' + body + "\n"


#: columns of `schtasks /Query /FO CSV /V` in their fixed order (headers are localised)
_CSV_COLUMNS = (
    "HostName",
    "TaskName",
    "Next Run Time",
    "Status",
    "Logon Mode",
    "Last Run Time",
    "Last Result",
)


def parse_query_csv(text: str) -> dict[str, str]:
    """Parse `schtasks /Query /TN ... /FO CSV /V` into last run, next run, last result, state.

    Headers are localised by Windows, so the columns are read by position (which is fixed);
    the keys returned are `next_run`, `state`, `last_run`, `last_result` and `task`.
    """
    rows = [r for r in csv.reader(io.StringIO(text.lstrip("\ufeff"))) if r]
    if len(rows) < 2:
        return {}
    row = next((r for r in rows[1:] if r != rows[0]), rows[1])
    if len(row) < len(_CSV_COLUMNS):
        return {}
    values = dict(zip(_CSV_COLUMNS, row, strict=False))
    return {
        "task": values["TaskName"],
        "next_run": values["Next Run Time"],
        "state": values["Status"],
        "last_run": values["Last Run Time"],
        "last_result": values["Last Result"],
    }


class WindowsTaskManager:
    """Installs `agentcron run` as a Task Scheduler task in the `\\agentcron\\` folder."""

    kind: Kind = "windows-task"

    def __init__(self, spec: ServiceSpec, runner: CommandRunner, *, user: str) -> None:
        self.spec = spec
        self.runner = runner
        check_task_name(spec.name)
        self.user = spec.account or user
        self.task = task_path(spec.name)

    @property
    def xml_path(self) -> PurePath:
        """Where the task XML is kept (beside the data, so `show` and support can read it)."""
        return self.spec.data_dir / "service" / f"{self.spec.name}.task.xml"

    def plan_install(self, *, replace: bool = False) -> Plan:
        xml_path = self.xml_path
        notes = [
            "registering a task with a boot trigger needs an elevated (Administrator) prompt",
            "the task runs as S4U: at boot, without a stored password and without access to "
            "Windows network shares",
        ]
        if self.spec.run_as_system:
            notes.append(
                "warning: the task runs as SYSTEM with the highest privileges (--run-as-system);"
                " any job it runs can take over this machine"
            )
        end_old = (cmd("schtasks", "/End", "/TN", self.task, check=False),) if replace else ()
        return Plan(
            steps=(
                MakeDir(self.spec.data_dir),
                *end_old,
                WriteFile(xml_path, render_task_xml(self.spec, user=self.user), 0o644, "utf-16"),
                cmd("schtasks", "/Create", "/TN", self.task, "/XML", xml_path, "/F"),
                cmd("schtasks", "/Run", "/TN", self.task),
            ),
            undo=(("schtasks", "/Delete", "/TN", self.task, "/F"),),
            notes=tuple(notes),
        )

    def plan_uninstall(self) -> Plan:
        xml_path = self.xml_path
        return Plan(
            steps=(
                cmd("schtasks", "/End", "/TN", self.task, check=False),
                cmd("schtasks", "/Delete", "/TN", self.task, "/F"),
                RemoveFile(xml_path),
            )
        )

    def plan_start(self) -> Plan:
        return Plan(steps=(cmd("schtasks", "/Run", "/TN", self.task),))

    def plan_stop(self) -> Plan:
        return Plan(steps=(cmd("schtasks", "/End", "/TN", self.task),))

    def _query(self) -> tuple[int, str]:
        result = self.runner.run(("schtasks", "/Query", "/TN", self.task, "/FO", "CSV", "/V"))
        return result.returncode, result.stdout

    def exists(self) -> bool:
        return self._query()[0] == 0

    def check_install(self, *, force: bool) -> None:
        code, _ = self._query()
        if code == 127:
            raise ServiceError("schtasks not found: the windows-task kind needs Windows")
        if code == 0 and not force:
            raise ServiceError(
                f"a scheduled task {self.task} already exists; pass --force to replace it"
            )

    def status(self) -> ServiceStatus:
        code, out = self._query()
        if code != 0:
            return ServiceStatus(self.kind, self.spec.name, False, "not installed")
        details: Mapping[str, str] = parse_query_csv(out)
        return ServiceStatus(
            self.kind, self.spec.name, True, details.get("state", "unknown"), details
        )
