"""The service axis: typed settings, plans, the command-runner seam and the plan executor.

Every OS integration (systemd, Windows Task Scheduler, NSSM, launchd) is a `ServiceManager`
that *plans*: it returns a `Plan`, an ordered list of files to write or remove and commands
to run, each command an argv list. Nothing is ever joined into a string for a shell.
`apply_plan` carries a plan out through one injected `CommandRunner`, and rolls back the
files it wrote (restoring what was there before) when a command fails, so a failed install
leaves nothing half-installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Literal, Protocol

Kind = Literal["systemd", "windows-task", "nssm", "launchd"]
Scope = Literal["user", "system"]

KINDS: tuple[Kind, ...] = ("systemd", "windows-task", "nssm", "launchd")

#: Characters the Windows Task Scheduler (and Windows file names) reject in a name.
FORBIDDEN_NAME_CHARS = '<>:"/\\|?*'
MAX_NAME_LENGTH = 200
#: The longest watchdog (24 h): systemd silently ignores a `WatchdogSec=` it cannot parse
#: (turning the watchdog off), and a hang noticed after more than a day is not noticed.
MAX_WATCHDOG_S = 86_400


class ServiceError(Exception):
    """Bad input or a failed OS command; the message is one line and says what to do."""


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class CompletedCommand:
    """What a command returned: exit code and decoded output."""

    returncode: int
    stdout: str = ""
    stderr: str = ""


class CommandRunner(Protocol):
    """The one seam through which every OS command runs.

    `run` receives the argv list exactly as it will be executed (no shell) and returns its
    result; a missing program is a result with return code 127, not an exception.
    """

    def run(self, argv: Sequence[str]) -> CompletedCommand: ...


class SubprocessRunner:
    """The real runner: `subprocess.run(argv, shell=False)`, output captured as text."""

    def __init__(self, timeout_s: float = 120.0) -> None:
        self.timeout_s = timeout_s

    def run(self, argv: Sequence[str]) -> CompletedCommand:
        args = [str(a) for a in argv]
        try:
            done = subprocess.run(
                args,
                shell=False,
                capture_output=True,
                text=True,
                # Windows console tools (schtasks, sc) print in the OEM code page
                encoding="oem" if sys.platform == "win32" else "utf-8",
                errors="replace",
                timeout=self.timeout_s,
                check=False,
            )
        except FileNotFoundError:
            return CompletedCommand(127, "", f"{args[0]}: command not found")
        except PermissionError as exc:
            return CompletedCommand(126, "", f"{args[0]}: {exc.strerror or exc}")
        except subprocess.TimeoutExpired:
            return CompletedCommand(124, "", f"{args[0]}: timed out after {self.timeout_s:g}s")
        return CompletedCommand(done.returncode, done.stdout or "", done.stderr or "")


Responder = Callable[[tuple[str, ...]], CompletedCommand | None]


class RecordingRunner:
    """A runner that runs nothing: it records each argv and answers from a script.

    `results` maps an argv *prefix* to the result to return (the longest matching prefix
    wins); anything else gets `default` (success with no output). Used by tests and by
    `--dry-run`.
    """

    def __init__(
        self,
        results: Mapping[tuple[str, ...], CompletedCommand] | None = None,
        *,
        default: CompletedCommand | None = None,
    ) -> None:
        self.calls: list[tuple[str, ...]] = []
        self._results = dict(results or {})
        self._default = default or CompletedCommand(0)

    def run(self, argv: Sequence[str]) -> CompletedCommand:
        call = tuple(str(a) for a in argv)
        self.calls.append(call)
        best: tuple[str, ...] | None = None
        for prefix in self._results:
            if call[: len(prefix)] == prefix and (best is None or len(prefix) > len(best)):
                best = prefix
        return self._results[best] if best is not None else self._default


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class WriteFile:
    """Write `content` (encoded with `encoding`) to `path` with permission bits `mode`."""

    path: PurePath
    content: str
    mode: int = 0o644
    encoding: str = "utf-8"


@dataclass(frozen=True)
class RemoveFile:
    """Remove `path` if it exists."""

    path: PurePath


@dataclass(frozen=True)
class MakeDir:
    """Create directory `path` (and missing parents) if absent; `owner` chowns it when root."""

    path: PurePath
    mode: int = 0o700
    owner: str | None = None


@dataclass(frozen=True)
class RunCommand:
    """Run one program; `argv[0]` is the program, every other element one argument.

    With `check=False` a non-zero exit is tolerated (used to clear an old install).
    """

    argv: tuple[str, ...]
    check: bool = True


Step = MakeDir | WriteFile | RemoveFile | RunCommand


@dataclass(frozen=True)
class Plan:
    """An ordered list of steps, plus best-effort `undo` commands run when a step fails.

    `notes` are human remarks (warnings, what to do next) that are not steps.
    """

    steps: tuple[Step, ...] = ()
    undo: tuple[tuple[str, ...], ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def files(self) -> tuple[WriteFile, ...]:
        return tuple(s for s in self.steps if isinstance(s, WriteFile))

    @property
    def directories(self) -> tuple[MakeDir, ...]:
        return tuple(s for s in self.steps if isinstance(s, MakeDir))

    @property
    def removals(self) -> tuple[RemoveFile, ...]:
        return tuple(s for s in self.steps if isinstance(s, RemoveFile))

    @property
    def commands(self) -> tuple[tuple[str, ...], ...]:
        return tuple(s.argv for s in self.steps if isinstance(s, RunCommand))

    def to_json(self) -> dict[str, object]:
        """The `--dry-run --json` shape: `{"files": [...], "commands": [[...], ...]}`.

        A plan that removes files (uninstall) also has `"remove": [path, ...]`.
        """
        out: dict[str, object] = {
            "files": [{"path": str(f.path), "content": f.content} for f in self.files],
            "commands": [list(c) for c in self.commands],
        }
        if self.removals:
            out["remove"] = [str(r.path) for r in self.removals]
        return out


def cmd(*argv: str | PurePath, check: bool = True) -> RunCommand:
    """Build a `RunCommand` from argv elements (paths become strings, nothing is joined)."""
    return RunCommand(tuple(str(a) for a in argv), check)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ServiceSpec:
    """Typed settings of one installed agentcron service.

    Paths are absolute. The service runs `<python> -m agentcron run --data-dir <data_dir>
    [--config <config_file>] [--preset NAME ...]` in `working_dir`.
    """

    data_dir: PurePath
    working_dir: PurePath
    python: PurePath = field(default_factory=lambda: PurePath(sys.executable))
    name: str = "agentcron"
    config_file: PurePath | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    scope: Scope = "system"
    #: the account the service runs as (the installing user); None = the manager's default
    account: str | None = None
    #: run as root / LocalSystem / SYSTEM (explicit opt-in, warned about)
    run_as_system: bool = False
    description: str = "agentcron: scheduler of a 24/7 AI agent"
    restart_delay_s: int = 10
    restart_count: int = 255
    watchdog_s: int = 60
    notify: bool = True
    wake_to_run: bool = False
    #: "HH:MM": also (re)start once a day at this local time (Windows daily trigger)
    daily_at: str | None = None
    stdout_log: PurePath | None = None
    stderr_log: PurePath | None = None
    rotate_bytes: int = 10 * 1024 * 1024
    writable_paths: tuple[PurePath, ...] = ()
    #: presets the service runs with (`agentcron run --preset NAME`): a start without one
    #: removes the jobs an earlier start with it registered (docs/presets.md)
    presets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        validate_name(self.name)
        from agentcron.presets import PRESETS

        for preset in self.presets:
            if preset not in PRESETS:
                raise ServiceError(f"unknown preset {preset!r}; available: {', '.join(PRESETS)}")
        for label, path in (
            ("python executable", self.python),
            ("data dir", self.data_dir),
            ("working directory", self.working_dir),
            ("config file", self.config_file),
            ("stdout log", self.stdout_log),
            ("stderr log", self.stderr_log),
            *(("writable path", p) for p in self.writable_paths),
        ):
            if path is not None:
                validate_path(label, path)
        for key, value in self.environment.items():
            validate_env(key, value)
        for label, text in (("account", self.account), ("description", self.description)):
            if text is not None:
                validate_text(label, text)
        if self.restart_delay_s < 1 or self.restart_count < 0 or self.watchdog_s < 0:
            raise ServiceError("restart delay must be >= 1 s, restart count and watchdog >= 0")
        if self.watchdog_s > MAX_WATCHDOG_S:
            raise ServiceError(
                f"watchdog {self.watchdog_s} s is more than {MAX_WATCHDOG_S} s (24 h); "
                "use a shorter watchdog, or 0 to turn it off"
            )
        if self.daily_at is not None:
            parse_hh_mm(self.daily_at)

    @property
    def stdout_path(self) -> PurePath:
        return self.stdout_log or self.data_dir / "logs" / "service.log"

    @property
    def stderr_path(self) -> PurePath:
        return self.stderr_log or self.data_dir / "logs" / "service-error.log"

    def run_argv(self) -> tuple[str, ...]:
        """The argv the service runs: this Python's `agentcron run` with absolute paths."""
        argv = [str(self.python), "-m", "agentcron", "run", "--data-dir", str(self.data_dir)]
        if self.config_file is not None:
            argv += ["--config", str(self.config_file)]
        for preset in self.presets:
            argv += ["--preset", preset]
        return tuple(argv)


def validate_name(name: str) -> str:
    """Reject names the Task Scheduler, the service managers or file systems would refuse."""
    if not name or not name.strip():
        raise ServiceError("service name is empty; pass --name NAME")
    if name != name.strip() or name.endswith("."):
        raise ServiceError(
            f"service name {name!r} starts or ends with a space or ends with a dot; remove it"
        )
    bad = sorted({c for c in name if c in FORBIDDEN_NAME_CHARS})
    if bad:
        raise ServiceError(
            f"service name {name!r} contains {' '.join(bad)}; "
            f'the characters < > : " / \\ | ? * are not allowed'
        )
    validate_text("service name", name)
    if len(name) > MAX_NAME_LENGTH:
        raise ServiceError(f"service name is longer than {MAX_NAME_LENGTH} characters")
    return name


def validate_text(label: str, text: str) -> None:
    """Refuse what no unit file, XML document or plist can hold: control characters, and
    text that is not valid UTF-8 (a non-UTF-8 byte of a POSIX path or argv arrives as a lone
    surrogate, which cannot be written to the file, and would crash the write half-way)."""
    problem = _text_problem(text)
    if problem is not None:
        raise ServiceError(f"{label} {text!r} {problem}")


def _text_problem(text: str) -> str | None:
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        return "contains control characters (a newline?)"
    if any("\ud800" <= c <= "\udfff" for c in text):
        return "is not valid UTF-8 text"
    return None


def validate_path(label: str, path: PurePath) -> None:
    text = str(path)
    if not path.is_absolute():
        raise ServiceError(f"{label} {text!r} is not an absolute path")
    validate_text(label, text)


def validate_env(key: str, value: str) -> None:
    if (
        not key
        or not (key[0].isalpha() or key[0] == "_")
        or not all(c.isascii() and (c.isalnum() or c == "_") for c in key)
    ):
        raise ServiceError(f"environment variable name {key!r} is not a valid name")
    problem = _text_problem(value)
    if problem is not None:  # the value is not shown: it may be a secret
        raise ServiceError(f"environment variable {key} {problem}")


def expansion_problem(field: str, manager: str, sources: Sequence[tuple[str, str]]) -> None:
    """Refuse values that `manager` would expand as `%VAR%` in `field`.

    `sources` are the (label, value) pairs that make up the field. Windows expands an
    environment variable only between two `%`, so one `%` in the whole field is safe; two or
    more may expand (`%PATH%`) and there is no escape for `%`, so that is refused.
    """
    total = sum(value.count("%") for _label, value in sources)
    if total < 2:
        return
    labels = [f"{label} {value!r}" for label, value in sources if "%" in value]
    raise ServiceError(
        f"{' and '.join(labels)}: two '%' in the {field}, which {manager} expands as %VAR% "
        "(with no escape for '%'); use a path without '%'"
    )


def parse_hh_mm(text: str) -> tuple[int, int]:
    parts = text.split(":")
    if len(parts) == 2 and all(p.isdigit() and len(p) <= 2 for p in parts):
        hour, minute = int(parts[0]), int(parts[1])
        if hour < 24 and minute < 60:
            return hour, minute
    raise ServiceError(f"daily time {text!r} is not HH:MM (00:00-23:59)")


# --------------------------------------------------------------------------- managers


@dataclass(frozen=True)
class ServiceStatus:
    """What the OS reports about an installed service."""

    kind: str
    name: str
    installed: bool
    state: str
    details: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "name": self.name,
            "installed": self.installed,
            "state": self.state,
            "details": dict(self.details),
        }


class ServiceManager(Protocol):
    """One OS service manager. Planning is pure; `exists` and `status` query through the runner.

    `check_install` raises `ServiceError` for anything that would make the install fail
    half-way (missing tool, no permission, already installed without `force`).
    """

    kind: Kind
    spec: ServiceSpec

    def plan_install(self, *, replace: bool = False) -> Plan:
        """Steps that install and start the service; `replace` first clears an old one."""
        ...

    def plan_uninstall(self) -> Plan: ...

    def plan_start(self) -> Plan: ...

    def plan_stop(self) -> Plan: ...

    def exists(self) -> bool: ...

    def check_install(self, *, force: bool) -> None: ...

    def status(self) -> ServiceStatus: ...


# --------------------------------------------------------------------------- executor


@dataclass
class _Journal:
    """What the executor changed on disk, so it can put it back."""

    created_dirs: list[Path] = field(default_factory=list)
    #: (path, previous bytes or None when the file did not exist)
    files: list[tuple[Path, bytes | None, int | None]] = field(default_factory=list)

    def rollback(self) -> None:
        for path, previous, mode in reversed(self.files):
            try:
                if previous is None:
                    path.unlink(missing_ok=True)
                else:
                    path.write_bytes(previous)
                    if mode is not None:
                        os.chmod(path, mode)
            except OSError:
                pass
        for directory in reversed(self.created_dirs):
            try:
                directory.rmdir()
            except OSError:
                pass


def _make_dirs(target: Path, journal: _Journal, mode: int = 0o755) -> list[Path]:
    missing: list[Path] = []
    parent = target
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        directory.mkdir(mode=mode)
        journal.created_dirs.append(directory)
    return missing


def _make_dir(step: MakeDir, journal: _Journal) -> None:
    path = Path(str(step.path))
    created = _make_dirs(path, journal, step.mode)
    if step.owner and created and hasattr(os, "geteuid") and os.geteuid() == 0:
        for directory in created:
            try:
                shutil.chown(directory, user=step.owner)
            except LookupError as exc:
                raise ServiceError(
                    f"no such user {step.owner!r} to own {directory}; pass --account USER"
                ) from exc


def _write(step: WriteFile, journal: _Journal) -> None:
    path = Path(str(step.path))
    _make_dirs(path.parent, journal)
    previous = path.read_bytes() if path.exists() else None
    old_mode = path.stat().st_mode & 0o7777 if previous is not None else None
    journal.files.append((path, previous, old_mode))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(step.content.encode(step.encoding))
        os.chmod(tmp, step.mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove(step: RemoveFile, journal: _Journal) -> None:
    path = Path(str(step.path))
    if path.exists():
        journal.files.append((path, path.read_bytes(), path.stat().st_mode & 0o7777))
        path.unlink()


def describe_argv(argv: Sequence[str]) -> str:
    """A readable, unambiguous rendering of an argv list for messages (not for a shell)."""
    return "[" + ", ".join(repr(a) for a in argv) + "]"


def apply_plan(plan: Plan, runner: CommandRunner) -> list[CompletedCommand]:
    """Carry out `plan` step by step; on the first failure undo everything and raise.

    A command fails when its return code is not 0. On failure the plan's `undo` commands run
    (best effort, results ignored), then every file written or removed is put back as it was
    and directories the plan created are removed again. The `ServiceError` names the
    command and the first line of its error output.
    """
    journal = _Journal()
    results: list[CompletedCommand] = []
    ran_any = False
    try:
        for step in plan.steps:
            if isinstance(step, MakeDir):
                _make_dir(step, journal)
            elif isinstance(step, WriteFile):
                _write(step, journal)
            elif isinstance(step, RemoveFile):
                _remove(step, journal)
            else:
                result = runner.run(step.argv)
                results.append(result)
                if result.returncode != 0 and step.check:
                    detail = (result.stderr or result.stdout).strip().splitlines()
                    reason = detail[0] if detail else "no output"
                    raise ServiceError(
                        f"{describe_argv(step.argv)} failed with exit code "
                        f"{result.returncode}: {reason}"
                    )
                ran_any = True
    except (ServiceError, OSError) as exc:
        if ran_any:
            for argv in plan.undo:
                runner.run(argv)
        journal.rollback()
        if isinstance(exc, ServiceError):
            raise ServiceError(f"{exc}; every change was rolled back") from exc
        target = getattr(exc, "filename", None) or ""
        hint = (
            " (run as root/administrator, or use --user)"
            if isinstance(exc, PermissionError)
            else ""
        )
        raise ServiceError(
            f"cannot write {target}: {exc.strerror or exc}{hint}; every change was rolled back"
        ) from exc
    return results
