"""systemd: a `Type=notify` service unit with a watchdog and a hardening baseline.

The unit runs `agentcron run` with absolute paths; each argv element is quoted by systemd's
own rules (`%` and `$` doubled, double quotes with backslash escapes), so a path with
spaces, quotes, `;` or `$(...)` stays one argument and is never expanded.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Iterable
from pathlib import Path, PurePath, PurePosixPath

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
)

SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
_UNIT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_ACCOUNT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\$?$")
_SAFE_WORD = re.compile(r"^[A-Za-z0-9_./:,+=@-]+$")
#: the directories `PrivateTmp=yes` replaces with empty private ones
TMP_DIRS = (PurePosixPath("/tmp"), PurePosixPath("/var/tmp"))


def escape_specifiers(text: str) -> str:
    """Double `%` so systemd does not read it as a specifier (`%h`, `%n`, ...)."""
    return text.replace("%", "%%")


def quote_word(word: str, *, expand_dollar: bool = True) -> str:
    """Quote one word for a systemd setting that splits on spaces and unquotes.

    For `ExecStart=` (`expand_dollar=True`) `$` is doubled, since systemd expands `$VAR`
    there. Control characters are refused: a unit file line cannot hold them.
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in word):
        raise ServiceError(f"{word!r} contains control characters; systemd cannot hold it")
    text = escape_specifiers(word)
    if expand_dollar:
        text = text.replace("$", "$$")
    if _SAFE_WORD.match(word):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_line(argv: Iterable[str]) -> str:
    """The value of an `ExecStart=` line for `argv` (argv[0] must be an absolute path).

    systemd expands `$VAR` in the arguments but not in the program path, and refuses a
    program path with quotes or backslashes.
    """
    words = list(argv)
    if not words or not words[0].startswith("/"):
        raise ServiceError("ExecStart needs an absolute program path")
    if any(c in words[0] for c in "\"'\\"):
        raise ServiceError(
            f"program path {words[0]!r} contains a quote or backslash, which systemd refuses"
        )
    return " ".join(
        [quote_word(words[0], expand_dollar=False), *(quote_word(w) for w in words[1:])]
    )


def _plain_value(label: str, text: str) -> str:
    """A setting value systemd takes verbatim (no unquoting): only specifiers are escaped."""
    if text != text.strip() or text.endswith("\\"):
        raise ServiceError(
            f"{label} {text!r} ends with a space or a backslash; systemd cannot hold it"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ServiceError(f"{label} {text!r} contains control characters")
    return escape_specifiers(text)


def unit_name(name: str) -> str:
    if not _UNIT_NAME.match(name) or name.startswith("."):
        raise ServiceError(
            f"service name {name!r} is not a valid systemd unit name; "
            "use letters, digits, '_', '.' and '-' only"
        )
    return f"{name}.service"


def _posix(label: str, path: PurePath) -> str:
    text = str(path)
    if not text.startswith("/"):
        raise ServiceError(f"{label} {text!r} is not an absolute POSIX path")
    return text


def _in_tmp(path: PurePath) -> bool:
    normal = PurePosixPath(posixpath.normpath(str(path)))
    return any(normal == tmp or tmp in normal.parents for tmp in TMP_DIRS)


def paths_in_tmp(spec: ServiceSpec) -> list[tuple[str, PurePath]]:
    """The paths the service uses that lie in /tmp or /var/tmp, with their labels.

    `PrivateTmp=yes` would hide them behind an empty private /tmp: the service would fail at
    every start (and restart forever), so the unit leaves PrivateTmp out when there are any."""
    candidates: list[tuple[str, PurePath | None]] = [
        ("python executable", spec.python),
        ("working directory", spec.working_dir),
        ("data dir", spec.data_dir),
        ("config file", spec.config_file),
        *(("writable path", p) for p in spec.writable_paths),
    ]
    return [(label, path) for label, path in candidates if path is not None and _in_tmp(path)]


def render_unit(spec: ServiceSpec) -> str:
    """The text of the `.service` unit for `spec`."""
    unit_name(spec.name)
    argv = [_posix("python executable", spec.python), *spec.run_argv()[1:]]
    _posix("data dir", spec.data_dir)
    lines = [
        "[Unit]",
        f"Description={_plain_value('description', spec.description)}",
        # never give up restarting a 24/7 agent
        "StartLimitIntervalSec=0",
    ]
    if spec.scope == "system":
        lines += ["Wants=network-online.target", "After=network-online.target"]
    lines += [
        "",
        "[Service]",
        f"Type={'notify' if spec.notify else 'simple'}",
    ]
    if spec.notify:
        lines.append("NotifyAccess=main")
    lines += [
        f"ExecStart={exec_line(argv)}",
        f"WorkingDirectory={_plain_value('working directory', _posix('working directory', spec.working_dir))}",
    ]
    if spec.scope == "system" and not spec.run_as_system and spec.account:
        if not _ACCOUNT.match(spec.account):
            raise ServiceError(f"account {spec.account!r} is not a valid user name")
        lines.append(f"User={spec.account}")
    env = {"PYTHONUNBUFFERED": "1", **dict(spec.environment)}
    for key, value in env.items():
        lines.append(f"Environment={quote_word(f'{key}={value}', expand_dollar=False)}")
    lines += [
        "Restart=always",
        f"RestartSec={spec.restart_delay_s}",
    ]
    if spec.watchdog_s and spec.notify:
        lines.append(f"WatchdogSec={spec.watchdog_s}")
    writable: list[PurePath] = [spec.data_dir, *spec.writable_paths]
    in_tmp = paths_in_tmp(spec)
    if in_tmp:
        # the real /tmp and /var/tmp, writable (ProtectSystem=strict would make them read-only)
        writable += [tmp for tmp in TMP_DIRS if tmp not in writable]
    lines += [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths="
        + " ".join(quote_word(_posix("writable path", p), expand_dollar=False) for p in writable),
    ]
    if in_tmp:
        label, path = in_tmp[0]
        lines.append(f"# no PrivateTmp=: the {label} {path} is in {_tmp_dir(path)}")
    else:
        lines.append("PrivateTmp=yes")
    lines += [
        "",
        "[Install]",
        f"WantedBy={'multi-user.target' if spec.scope == 'system' else 'default.target'}",
        "",
    ]
    return "\n".join(lines)


def _tmp_dir(path: PurePath) -> PurePosixPath:
    normal = PurePosixPath(posixpath.normpath(str(path)))
    return next(tmp for tmp in TMP_DIRS if normal == tmp or tmp in normal.parents)


def tmp_note(spec: ServiceSpec) -> str | None:
    """What to tell the user when the service uses paths in /tmp or /var/tmp (else None)."""
    in_tmp = paths_in_tmp(spec)
    if not in_tmp:
        return None
    named = ", ".join(f"{label} {path}" for label, path in in_tmp)
    return (
        f"{named} in /tmp or /var/tmp: the unit shares the machine's /tmp (no PrivateTmp=); "
        "files there can be deleted at reboot or by systemd-tmpfiles, so a directory "
        "outside them is safer"
    )


class SystemdManager:
    """Installs `agentcron run` as a systemd service (system unit, or `--user` unit)."""

    kind: Kind = "systemd"

    def __init__(
        self,
        spec: ServiceSpec,
        runner: CommandRunner,
        *,
        home: PurePath,
        unit_dir: Path | None = None,
        writable: Callable[[Path], bool] | None = None,
    ) -> None:
        self.spec = spec
        self.runner = runner
        if unit_dir is None:
            unit_dir = (
                Path(str(home)) / ".config" / "systemd" / "user"
                if spec.scope == "user"
                else SYSTEM_UNIT_DIR
            )
        self.unit_dir = unit_dir
        self._writable = writable or _can_write
        self.unit = unit_name(spec.name)

    @property
    def unit_path(self) -> Path:
        return self.unit_dir / self.unit

    def _systemctl(self, *args: str) -> tuple[str, ...]:
        scope = ("--user",) if self.spec.scope == "user" else ()
        return ("systemctl", *scope, *args)

    def plan_install(self, *, replace: bool = False) -> Plan:
        notes: list[str] = []
        if self.spec.run_as_system and self.spec.scope == "system":
            notes.append("warning: the service runs as root (--run-as-system)")
        tmp = tmp_note(self.spec)
        if tmp is not None:
            notes.append(tmp)
        return Plan(
            steps=(
                MakeDir(
                    self.spec.data_dir, owner=None if self.spec.run_as_system else self.spec.account
                ),
                WriteFile(self.unit_path, render_unit(self.spec), 0o644),
                cmd(*self._systemctl("daemon-reload")),
                cmd(*self._systemctl("enable", "--now", self.unit)),
                *((cmd(*self._systemctl("restart", self.unit)),) if replace else ()),
            ),
            undo=(self._systemctl("disable", "--now", self.unit),),
            notes=(
                *notes,
                f"logs: journalctl {'--user ' if self.spec.scope == 'user' else ''}-u {self.unit}",
            ),
        )

    def plan_uninstall(self) -> Plan:
        return Plan(
            steps=(
                cmd(*self._systemctl("disable", "--now", self.unit)),
                RemoveFile(self.unit_path),
                cmd(*self._systemctl("daemon-reload")),
            )
        )

    def plan_start(self) -> Plan:
        return Plan(steps=(cmd(*self._systemctl("start", self.unit)),))

    def plan_stop(self) -> Plan:
        return Plan(steps=(cmd(*self._systemctl("stop", self.unit)),))

    def _show(self) -> dict[str, str]:
        result = self.runner.run(
            self._systemctl(
                "show",
                "--property=LoadState,ActiveState,SubState,UnitFileState,MainPID,"
                "ExecMainStartTimestamp,NRestarts,FragmentPath",
                self.unit,
            )
        )
        if result.returncode != 0:
            return {}
        props: dict[str, str] = {}
        for line in result.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                props[key.strip()] = value.strip()
        return props

    def exists(self) -> bool:
        return self.unit_path.exists() or self._show().get("LoadState") == "loaded"

    def check_install(self, *, force: bool) -> None:
        probe = self.runner.run(("systemctl", "--version"))
        if probe.returncode == 127:
            raise ServiceError("systemctl not found: this machine does not run systemd")
        if self.spec.scope == "system" and not self._writable(self.unit_dir):
            raise ServiceError(
                f"no permission to write {self.unit_dir}: run with sudo, or pass --user "
                "for a per-user service"
            )
        if not force and self.exists():
            raise ServiceError(
                f"a systemd service {self.unit} already exists; pass --force to replace it"
            )

    def status(self) -> ServiceStatus:
        props = self._show()
        installed = props.get("LoadState") == "loaded"
        state = props.get("ActiveState", "unknown") if installed else "not installed"
        if installed and props.get("SubState"):
            state = f"{state} ({props['SubState']})"
        return ServiceStatus(self.kind, self.spec.name, installed, state, props)


def _can_write(directory: Path) -> bool:
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return os.access(probe, os.W_OK)
