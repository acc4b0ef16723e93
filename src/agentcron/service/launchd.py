"""launchd (macOS): a LaunchAgent (per user) or LaunchDaemon (system) property list.

The plist is built with `plistlib`; `ProgramArguments` is the argv list itself, so nothing
is ever parsed by a shell. Loaded with `launchctl bootstrap gui/<uid>|system <plist>`.
"""

from __future__ import annotations

import os
import plistlib
import re
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

from agentcron.service.base import (
    CommandRunner,
    Kind,
    MakeDir,
    Plan,
    RemoveFile,
    ServiceError,
    ServiceSpec,
    ServiceStatus,
    Step,
    WriteFile,
    cmd,
)

_LABEL = re.compile(r"^[A-Za-z0-9_.-]+$")
SYSTEM_DAEMON_DIR = Path("/Library/LaunchDaemons")


def label_for(name: str) -> str:
    if not _LABEL.match(name) or name.startswith("."):
        raise ServiceError(
            f"service name {name!r} is not a valid launchd label; "
            "use letters, digits, '_', '.' and '-' only"
        )
    return name


def render_plist(spec: ServiceSpec) -> str:
    """The property list (XML) for `spec`."""
    body: dict[str, Any] = {
        "Label": label_for(spec.name),
        "ProgramArguments": list(spec.run_argv()),
        "WorkingDirectory": str(spec.working_dir),
        "RunAtLoad": True,
        "KeepAlive": True,
        "ThrottleInterval": spec.restart_delay_s,
        "ProcessType": "Background",
        "StandardOutPath": str(spec.stdout_path),
        "StandardErrorPath": str(spec.stderr_path),
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1", **dict(spec.environment)},
    }
    if spec.scope == "system" and not spec.run_as_system and spec.account:
        body["UserName"] = spec.account
    return plistlib.dumps(body, sort_keys=False).decode("utf-8")


class LaunchdManager:
    """Installs `agentcron run` as a LaunchAgent (`--user`) or a LaunchDaemon."""

    kind: Kind = "launchd"

    def __init__(
        self,
        spec: ServiceSpec,
        runner: CommandRunner,
        *,
        home: PurePath,
        uid: int,
        plist_dir: Path | None = None,
        writable: Callable[[Path], bool] | None = None,
    ) -> None:
        self.spec = spec
        self._writable = writable or _writable
        self.runner = runner
        self.label = label_for(spec.name)
        if plist_dir is None:
            plist_dir = (
                Path(str(home)) / "Library" / "LaunchAgents"
                if spec.scope == "user"
                else SYSTEM_DAEMON_DIR
            )
        self.plist_path = plist_dir / f"{self.label}.plist"
        self.domain = f"gui/{uid}" if spec.scope == "user" else "system"
        self.target = f"{self.domain}/{self.label}"

    def plan_install(self, *, replace: bool = False) -> Plan:
        spec = self.spec
        owner = None if spec.run_as_system or spec.scope == "user" else spec.account
        dirs = dict.fromkeys((spec.data_dir, spec.stdout_path.parent, spec.stderr_path.parent))
        steps: list[Step] = [MakeDir(d, owner=owner) for d in dirs]
        if replace:
            steps.append(cmd("launchctl", "bootout", self.target, check=False))
        steps += [
            WriteFile(self.plist_path, render_plist(spec), 0o644),
            cmd("launchctl", "bootstrap", self.domain, self.plist_path),
        ]
        notes: tuple[str, ...] = ()
        if spec.scope == "system" and spec.run_as_system:
            notes = ("warning: the daemon runs as root (--run-as-system)",)
        return Plan(steps=tuple(steps), undo=(("launchctl", "bootout", self.target),), notes=notes)

    def plan_uninstall(self) -> Plan:
        # a job that is not loaded (stopped) cannot be booted out: that is not an error here
        return Plan(
            steps=(
                cmd("launchctl", "bootout", self.target, check=False),
                RemoveFile(self.plist_path),
            )
        )

    def plan_start(self) -> Plan:
        return Plan(steps=(cmd("launchctl", "bootstrap", self.domain, self.plist_path),))

    def plan_stop(self) -> Plan:
        # KeepAlive would restart a killed job: stopping means unloading (the plist stays,
        # so the job comes back at the next login or boot)
        return Plan(steps=(cmd("launchctl", "bootout", self.target),))

    def _print(self) -> tuple[int, str]:
        result = self.runner.run(("launchctl", "print", self.target))
        return result.returncode, result.stdout

    def exists(self) -> bool:
        return self.plist_path.exists() or self._print()[0] == 0

    def check_install(self, *, force: bool) -> None:
        if self._print()[0] == 127:
            raise ServiceError("launchctl not found: the launchd kind needs macOS")
        if self.spec.scope == "system" and not self._writable(self.plist_path.parent):
            raise ServiceError(
                f"no permission to write {self.plist_path.parent}: run with sudo, or pass "
                "--user for a LaunchAgent"
            )
        if not force and self.exists():
            raise ServiceError(
                f"a launchd job {self.label} already exists ({self.plist_path}); "
                "pass --force to replace it"
            )

    def status(self) -> ServiceStatus:
        code, out = self._print()
        if code != 0:
            installed = self.plist_path.exists()
            state = "not loaded" if installed else "not installed"
            return ServiceStatus(self.kind, self.spec.name, installed, state)
        details: dict[str, str] = {}
        for line in out.splitlines():
            key, sep, value = line.strip().partition(" = ")
            if sep and key in {"state", "pid", "last exit code", "runs", "path"}:
                details.setdefault(key, value.strip())
        return ServiceStatus(
            self.kind, self.spec.name, True, details.get("state", "loaded"), details
        )


def _writable(directory: Path) -> bool:
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return os.access(probe, os.W_OK)
