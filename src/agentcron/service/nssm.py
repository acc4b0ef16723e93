"""NSSM: `agentcron run` as a Windows service through the Non-Sucking Service Manager.

The commands of the original spec (section 12.1) as argv lists: install, application
directory, parameters, extra environment, automatic start, stdout/stderr files with
rotation. NSSM is found on PATH (through an injected `which`) or given with `--nssm PATH`;
it is never downloaded. NSSM services run as LocalSystem, so installing one needs the
explicit `run_as_system` opt-in.
"""

from __future__ import annotations

from collections.abc import Callable

from agentcron.service.base import (
    CommandRunner,
    Kind,
    MakeDir,
    Plan,
    ServiceError,
    ServiceSpec,
    ServiceStatus,
    Step,
    cmd,
)
from agentcron.service.windows_task import check_no_expansion, windows_cmdline

_STATES = {
    "SERVICE_RUNNING": "running",
    "SERVICE_STOPPED": "stopped",
    "SERVICE_PAUSED": "paused",
    "SERVICE_START_PENDING": "starting",
    "SERVICE_STOP_PENDING": "stopping",
}


def find_nssm(explicit: str | None, which: Callable[[str], str | None]) -> str:
    """The NSSM executable: `explicit` when given, else `nssm`/`nssm.exe` on PATH."""
    if explicit:
        return explicit
    for candidate in ("nssm", "nssm.exe"):
        found = which(candidate)
        if found:
            return found
    raise ServiceError(
        "nssm not found on PATH; install it (https://nssm.cc, or `winget install nssm`) "
        "and retry, pass --nssm PATH, or use --kind windows-task"
    )


def require_run_as_system(run_as_system: bool) -> None:
    """Refuse an NSSM install without the `run_as_system` opt-in (the service is LocalSystem).

    Checked by `plan_install` too, so a dry run refuses what the real install refuses."""
    if not run_as_system:
        raise ServiceError(
            "NSSM services run as LocalSystem; pass --run-as-system to accept that, or use "
            "--kind windows-task to run as your own account"
        )


class NssmManager:
    """Installs `agentcron run` as a Windows service managed by NSSM."""

    kind: Kind = "nssm"

    def __init__(self, spec: ServiceSpec, runner: CommandRunner, *, nssm: str) -> None:
        self.spec = spec
        self.runner = runner
        self.nssm = nssm

    def _set(self, *args: str) -> tuple[str, ...]:
        return (self.nssm, "set", self.spec.name, *args)

    def plan_install(self, *, replace: bool = False) -> Plan:
        spec = self.spec
        require_run_as_system(spec.run_as_system)
        check_no_expansion(spec, "NSSM")
        name = spec.name
        argv = spec.run_argv()
        dirs = dict.fromkeys((spec.data_dir, spec.stdout_path.parent, spec.stderr_path.parent))
        steps: list[Step] = [MakeDir(d) for d in dirs]
        if replace:
            steps += [
                cmd(self.nssm, "stop", name, check=False),
                cmd(self.nssm, "remove", name, "confirm", check=False),
            ]
        steps += [
            cmd(self.nssm, "install", name, argv[0]),
            cmd(*self._set("AppParameters", windows_cmdline(argv[1:]))),
            cmd(*self._set("AppDirectory", str(spec.working_dir))),
        ]
        environment = {"PYTHONUNBUFFERED": "1", **dict(spec.environment)}
        steps.append(
            cmd(*self._set("AppEnvironmentExtra", *(f"{k}={v}" for k, v in environment.items())))
        )
        steps += [
            cmd(*self._set("DisplayName", name)),
            cmd(*self._set("Description", spec.description)),
            cmd(*self._set("Start", "SERVICE_AUTO_START")),
            cmd(*self._set("AppExit", "Default", "Restart")),
            cmd(*self._set("AppRestartDelay", str(spec.restart_delay_s * 1000))),
            cmd(*self._set("AppStdout", str(spec.stdout_path))),
            cmd(*self._set("AppStderr", str(spec.stderr_path))),
            cmd(*self._set("AppRotateFiles", "1")),
            cmd(*self._set("AppRotateOnline", "1")),
            cmd(*self._set("AppRotateBytes", str(spec.rotate_bytes))),
            cmd(self.nssm, "start", name),
        ]
        return Plan(
            steps=tuple(steps),
            undo=((self.nssm, "stop", name), (self.nssm, "remove", name, "confirm")),
            notes=(
                "warning: NSSM services run as LocalSystem; any job the scheduler runs has "
                "full control of this machine",
            ),
        )

    def plan_uninstall(self) -> Plan:
        name = self.spec.name
        return Plan(
            steps=(
                cmd(self.nssm, "stop", name, check=False),
                cmd(self.nssm, "remove", name, "confirm"),
            )
        )

    def plan_start(self) -> Plan:
        return Plan(steps=(cmd(self.nssm, "start", self.spec.name),))

    def plan_stop(self) -> Plan:
        return Plan(steps=(cmd(self.nssm, "stop", self.spec.name),))

    def _status(self) -> tuple[int, str]:
        result = self.runner.run((self.nssm, "status", self.spec.name))
        # nssm may print UTF-16 text; drop the NULs that a UTF-8 decode leaves behind
        return result.returncode, result.stdout.replace("\x00", "").strip()

    def exists(self) -> bool:
        return self._status()[0] == 0

    def check_install(self, *, force: bool) -> None:
        require_run_as_system(self.spec.run_as_system)
        check_no_expansion(self.spec, "NSSM")
        code, _ = self._status()
        if code == 127:
            raise ServiceError(f"cannot run {self.nssm}; check --nssm PATH")
        if code == 0 and not force:
            raise ServiceError(
                f"a service named {self.spec.name} already exists; pass --force to replace it"
            )

    def status(self) -> ServiceStatus:
        code, out = self._status()
        if code != 0:
            return ServiceStatus(self.kind, self.spec.name, False, "not installed")
        raw = out.splitlines()[0] if out else "unknown"
        return ServiceStatus(
            self.kind, self.spec.name, True, _STATES.get(raw, raw.lower()), {"nssm_status": raw}
        )
