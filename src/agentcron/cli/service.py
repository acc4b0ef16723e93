"""`agentcron service`: install, remove, start, stop and inspect the OS service.

Every OS command goes through one `CommandRunner`; `--dry-run` prints every file and every
command (argv lists) and changes nothing. Tests inject a `ServiceCliEnv` as the click
context object (`CliRunner().invoke(app, args, obj=env)`).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import typer

from agentcron.cli.common import fail, print_json
from agentcron.service import (
    KINDS,
    CommandRunner,
    HostInfo,
    Kind,
    Plan,
    ServiceError,
    ServiceManager,
    ServiceSpec,
    SubprocessRunner,
    apply_plan,
    create_manager,
    default_kind,
    supported_kinds,
)
from agentcron.service.base import (
    MAX_WATCHDOG_S,
    MakeDir,
    RemoveFile,
    RunCommand,
    Scope,
    WriteFile,
    validate_name,
)
from agentcron.service.nssm import NssmManager, require_run_as_system
from agentcron.service.timers import TimerJob, export_timers
from agentcron.service.windows_task import reserved_name_problem

if TYPE_CHECKING:
    from agentcron.config import Settings

app = typer.Typer(
    name="service",
    help="Run agentcron as an OS service (systemd, Windows Task Scheduler, NSSM, launchd).",
    no_args_is_help=True,
)


@dataclass(frozen=True)
class ServiceCliEnv:
    """Everything the commands take from the machine: host facts, the runner, cwd, Python."""

    host: HostInfo
    runner: CommandRunner
    cwd: Path
    python: PurePath
    environ: dict[str, str]


def _installing_user(platform: str, environ: dict[str, str]) -> str:
    if platform in ("win32", "cygwin"):
        user = environ.get("USERNAME") or getpass.getuser()
        domain = environ.get("USERDOMAIN")
        return f"{domain}\\{user}" if domain else user
    return environ.get("SUDO_USER") or getpass.getuser()


def real_env() -> ServiceCliEnv:
    """The environment of this process: the real platform and a subprocess runner."""
    environ = dict(os.environ)
    host = HostInfo(
        platform=sys.platform,
        home=Path.home(),
        uid=os.getuid() if hasattr(os, "getuid") else 0,
        user=_installing_user(sys.platform, environ),
        which=shutil.which,
    )
    return ServiceCliEnv(host, SubprocessRunner(), Path.cwd(), PurePath(sys.executable), environ)


def _env(ctx: typer.Context) -> ServiceCliEnv:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, ServiceCliEnv) else real_env()


@contextlib.contextmanager
def _bad_input() -> Iterator[None]:
    try:
        yield
    except ServiceError as exc:
        fail(str(exc))


# ----------------------------------------------------------------------------- options

KindOpt = typer.Option(
    None, "--kind", help="systemd | windows-task | nssm | launchd (default: this platform's)"
)
NameOpt = typer.Option(
    None,
    "--name",
    help="Service / task name (default: agentcron; windows-task: $WINDOWS_TASK_NAME).",
)
UserOpt = typer.Option(
    False, "--user", help="Per-user service (systemd --user unit, launchd LaunchAgent)."
)
DataDirOpt = typer.Option(
    None, "--data-dir", help="Data directory (default: $SCHEDULER_DATA_DIR or ./data)."
)
ConfigOpt = typer.Option(
    None, "--config", help="agentcron.toml (default: ./agentcron.toml when it exists)."
)
DryRunOpt = typer.Option(False, "--dry-run", help="Print every file and command; change nothing.")
JsonOpt = typer.Option(False, "--json", help="Print JSON.")
ForceOpt = typer.Option(False, "--force", help="Replace an existing service with the same name.")
NssmOpt = typer.Option(None, "--nssm", help="Path of nssm.exe (default: found on PATH).")
SystemOpt = typer.Option(
    False,
    "--run-as-system",
    help="Run as root / SYSTEM / LocalSystem with the highest privileges (unsafe).",
)
WakeOpt = typer.Option(False, "--wake-to-run", help="Windows: wake the computer to start.")
AccountOpt = typer.Option(
    None, "--account", help="Account the service runs as (default: the installing user)."
)
EnvOpt = typer.Option([], "--env", help="KEY=VALUE environment for the service (repeatable).")
PresetOpt = typer.Option(
    [],
    "--preset",
    help="Run the service with this preset of jobs (agent-loops), as `agentcron run --preset`."
    " Repeatable.",
)
WritableOpt = typer.Option(
    [], "--writable", help="systemd: another path the service may write (repeatable)."
)
DailyOpt = typer.Option(None, "--daily-at", help="Windows: also start daily at HH:MM.")
WatchdogOpt = typer.Option(
    60, "--watchdog-sec", help=f"systemd WatchdogSec, 0 (off) to {MAX_WATCHDOG_S} (24 h)."
)
NotifyOpt = typer.Option(
    True,
    "--notify/--no-notify",
    help="systemd Type=notify (agentcron run reports READY=1); --no-notify: Type=simple.",
)


@dataclass(frozen=True)
class _Choice:
    kind: Kind
    manager: ServiceManager
    env: ServiceCliEnv


def _abs(env: ServiceCliEnv, path: Path) -> Path:
    return path if path.is_absolute() else env.cwd / path


def _parse_env(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ServiceError(f"--env {item!r} is not KEY=VALUE")
        out[key] = value
    return out


def _choose(
    ctx: typer.Context,
    *,
    kind: str | None,
    name: str | None,
    user: bool,
    data_dir: Path | None,
    config: Path | None,
    nssm: str | None,
    run_as_system: bool = False,
    wake_to_run: bool = False,
    account: str | None = None,
    env_items: list[str] | None = None,
    writable: list[Path] | None = None,
    daily_at: str | None = None,
    watchdog_sec: int = 60,
    notify: bool = True,
    presets: list[str] | None = None,
    dry_run: bool = False,
    installing: bool = False,
) -> _Choice:
    env = _env(ctx)
    host = env.host
    if kind is None:
        chosen = default_kind(host.platform)
    elif kind in KINDS:
        chosen = kind
    else:
        raise ServiceError(f"unknown service kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not dry_run and chosen not in supported_kinds(host.platform):
        supported = ", ".join(supported_kinds(host.platform)) or "none"
        raise ServiceError(
            f"--kind {chosen} is not supported on {host.platform} (supported: {supported}); "
            "--dry-run previews it anywhere"
        )
    if not 0 <= watchdog_sec <= MAX_WATCHDOG_S:
        raise ServiceError(
            f"--watchdog-sec {watchdog_sec} is out of range; use 0 (off) to {MAX_WATCHDOG_S} (24 h)"
        )
    settings = _LazySettings(env)
    if chosen == "windows-task":
        if installing and not settings.get().WINDOWS_TASK_ENABLED:
            raise ServiceError(
                "WINDOWS_TASK_ENABLED is false (environment or .env), which turns Task "
                "Scheduler off for agentcron; set it to true, or use --kind nssm"
            )
        if name is None:
            name = _task_name_setting(settings.get())
    if installing and chosen == "nssm":
        require_run_as_system(run_as_system)
    data = _abs(env, data_dir or settings.get().data_dir)
    config_file = _config_file(
        env, config, check=installing and chosen in supported_kinds(host.platform)
    )
    scope: Scope = "user" if user else "system"
    resolved_account = account
    if resolved_account is None and chosen in ("systemd", "launchd") and scope == "system":
        resolved_account = host.user
        if resolved_account == "root" and not run_as_system and installing:
            raise ServiceError(
                "installing as root would run the service as root; pass --account USER "
                "(or --run-as-system to accept root)"
            )
    spec = ServiceSpec(
        data_dir=data,
        working_dir=env.cwd,
        python=env.python,
        name=name or "agentcron",
        config_file=config_file,
        environment=_parse_env(env_items or []),
        scope=scope,
        account=resolved_account,
        run_as_system=run_as_system,
        wake_to_run=wake_to_run,
        daily_at=daily_at,
        watchdog_s=watchdog_sec,
        notify=notify,
        writable_paths=tuple(_abs(env, p) for p in writable or []),
        presets=tuple(presets or ()),
    )
    try:
        manager = create_manager(chosen, spec, env.runner, host, nssm=nssm)
    except ServiceError:
        if not (dry_run and chosen == "nssm"):
            raise
        typer.echo("agentcron: nssm not found on PATH; the commands show 'nssm.exe'", err=True)
        manager = NssmManager(spec, env.runner, nssm="nssm.exe")
    return _Choice(chosen, manager, env)


def _load_settings(env: ServiceCliEnv) -> Settings:
    """The settings `agentcron run` would read in `env.cwd`: the environment, `<cwd>/.env`."""
    from agentcron.config import ConfigError, load_settings

    try:
        return load_settings(
            environ=env.environ, env_file=env.cwd / ".env", warn=lambda _warning: None
        )
    except ConfigError as exc:
        raise ServiceError(str(exc)) from None


class _LazySettings:
    """Settings read once, and only when needed (an unused bad setting stops nothing)."""

    def __init__(self, env: ServiceCliEnv) -> None:
        self._env = env
        self._settings: Settings | None = None

    def get(self) -> Settings:
        if self._settings is None:
            self._settings = _load_settings(self._env)
        return self._settings


def _default_data_dir(env: ServiceCliEnv) -> Path:
    """The data directory `agentcron run` would use in `env.cwd` without --data-dir:
    `SCHEDULER_DATA_DIR` from the environment, then from `<cwd>/.env`, else ./data."""
    return _load_settings(env).data_dir


def _task_name_setting(settings: Settings) -> str:
    """`WINDOWS_TASK_NAME`, the default `--name` of the windows-task kind, checked so that a
    bad one is refused naming the setting."""
    name = settings.WINDOWS_TASK_NAME
    try:
        validate_name(name)
    except ServiceError as exc:
        raise ServiceError(f"WINDOWS_TASK_NAME: {exc}; or pass --name") from None
    problem = reserved_name_problem(name)
    if problem is not None:
        raise ServiceError(
            f"WINDOWS_TASK_NAME {name!r} {problem}; set another name (environment or .env) "
            "or pass --name"
        )
    return name


def _config_file(env: ServiceCliEnv, config: Path | None, *, check: bool) -> Path | None:
    """The jobs file the service passes to `agentcron run --config`: `config`, else
    `<cwd>/agentcron.toml` when it is a file.

    With `check` (installing a service of this machine) a file that is not there is refused:
    the service would fail at every start, and restart forever. (A preview of another
    platform's service names paths of that machine, which cannot be checked here.)"""
    if config is None:
        default = env.cwd / "agentcron.toml"
        if default.is_file():
            return default
        if check and os.path.lexists(default):
            what = "is a directory" if default.is_dir() else "is not a regular file"
            raise ServiceError(
                f"{default} (the jobs file read by default) {what}; make it the jobs file, "
                "move it away, or name the jobs file with --config"
            )
        return None
    path = _abs(env, config)
    if check and not path.is_file():
        if path.is_dir():
            what = "is a directory; name the agentcron.toml file in it"
        elif os.path.lexists(path):
            what = "is not a regular file; name the agentcron.toml file"
        else:
            what = "does not exist; create it or leave out --config"
        raise ServiceError(f"--config {path} {what} (the service would fail at every start)")
    return path


# ----------------------------------------------------------------------------- output


def _print_plan(plan: Plan, *, as_json: bool, action: str) -> None:
    if as_json:
        print_json(plan.to_json())
        return
    typer.echo(f"# dry run of `service {action}`: nothing is changed")
    for step in plan.steps:
        if isinstance(step, MakeDir):
            typer.echo(f"# would create directory {step.path} (if missing, mode {step.mode:o})")
        elif isinstance(step, WriteFile):
            typer.echo(f"# would write {step.path} (mode {step.mode:o}, {step.encoding}):")
            typer.echo(step.content.rstrip("\n"))
            typer.echo(f"# end of {step.path}")
        elif isinstance(step, RemoveFile):
            typer.echo(f"# would remove {step.path}")
        elif isinstance(step, RunCommand):
            suffix = "   # failure ignored" if not step.check else ""
            typer.echo(f"$ {json.dumps(list(step.argv), ensure_ascii=False)}{suffix}")
    for argv in plan.undo:
        typer.echo(f"# on failure: {json.dumps(list(argv), ensure_ascii=False)}")
    for note in plan.notes:
        typer.echo(f"# {note}")


def _warnings(plan: Plan) -> None:
    for note in plan.notes:
        if note.startswith("warning"):
            typer.echo(f"agentcron: {note}", err=True)


def _after(plan: Plan, as_json: bool) -> None:
    if not as_json:
        for note in plan.notes:
            if not note.startswith("warning"):
                typer.echo(f"note: {note}")


def _apply(choice: _Choice, plan: Plan) -> None:
    apply_plan(plan, choice.env.runner)


# ----------------------------------------------------------------------------- commands


@app.command()
def install(
    ctx: typer.Context,
    kind: str | None = KindOpt,
    name: str | None = NameOpt,
    user: bool = UserOpt,
    data_dir: Path | None = DataDirOpt,
    config: Path | None = ConfigOpt,
    dry_run: bool = DryRunOpt,
    as_json: bool = JsonOpt,
    force: bool = ForceOpt,
    nssm: str | None = NssmOpt,
    run_as_system: bool = SystemOpt,
    wake_to_run: bool = WakeOpt,
    account: str | None = AccountOpt,
    env: list[str] = EnvOpt,
    writable: list[Path] = WritableOpt,
    daily_at: str | None = DailyOpt,
    watchdog_sec: int = WatchdogOpt,
    notify: bool = NotifyOpt,
    preset: list[str] = PresetOpt,
) -> None:
    """Install `agentcron run` as a service that starts at boot and restarts on failure."""
    with _bad_input():
        choice = _choose(
            ctx,
            kind=kind,
            name=name,
            user=user,
            data_dir=data_dir,
            config=config,
            nssm=nssm,
            run_as_system=run_as_system,
            wake_to_run=wake_to_run,
            account=account,
            env_items=env,
            writable=writable,
            daily_at=daily_at,
            watchdog_sec=watchdog_sec,
            notify=notify,
            presets=preset,
            dry_run=dry_run,
            installing=True,
        )
        if dry_run:
            _print_plan(
                choice.manager.plan_install(replace=force), as_json=as_json, action="install"
            )
            return
        choice.manager.check_install(force=force)
        plan = choice.manager.plan_install(replace=force and choice.manager.exists())
        _warnings(plan)
        _apply(choice, plan)
    _done(as_json, "installed", choice)
    _after(plan, as_json)


def _done(as_json: bool, what: str, choice: _Choice) -> None:
    if as_json:
        print_json({"kind": choice.kind, "name": choice.manager.spec.name, "result": what})
    else:
        typer.echo(f"{choice.kind} service {choice.manager.spec.name!r} {what}")


def _simple(
    ctx: typer.Context,
    action: str,
    *,
    kind: str | None,
    name: str | None,
    user: bool,
    data_dir: Path | None,
    nssm: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    with _bad_input():
        choice = _choose(
            ctx,
            kind=kind,
            name=name,
            user=user,
            data_dir=data_dir,
            config=None,
            nssm=nssm,
            dry_run=dry_run,
        )
        manager = choice.manager
        plans = {
            "uninstall": manager.plan_uninstall,
            "start": manager.plan_start,
            "stop": manager.plan_stop,
        }
        plan = plans[action]()
        if dry_run:
            _print_plan(plan, as_json=as_json, action=action)
            return
        if not manager.exists():
            raise ServiceError(
                f"no {choice.kind} service named {manager.spec.name!r} is installed; "
                "check --name, --kind and --user"
            )
        _apply(choice, plan)
    _done(
        as_json, {"uninstall": "uninstalled", "start": "started", "stop": "stopped"}[action], choice
    )


def _simple_command(action: str, doc: str) -> None:
    """Register `agentcron service <action>`: uninstall, start and stop share one signature."""

    def command(
        ctx: typer.Context,
        kind: str | None = KindOpt,
        name: str | None = NameOpt,
        user: bool = UserOpt,
        data_dir: Path | None = DataDirOpt,
        dry_run: bool = DryRunOpt,
        as_json: bool = JsonOpt,
        nssm: str | None = NssmOpt,
    ) -> None:
        _simple(
            ctx,
            action,
            kind=kind,
            name=name,
            user=user,
            data_dir=data_dir,
            nssm=nssm,
            dry_run=dry_run,
            as_json=as_json,
        )

    command.__doc__ = doc
    app.command(action)(command)


_simple_command("uninstall", "Stop and remove the service.")
_simple_command("start", "Start the installed service.")
_simple_command("stop", "Stop the service (it starts again at the next boot or login).")


@app.command()
def status(
    ctx: typer.Context,
    kind: str | None = KindOpt,
    name: str | None = NameOpt,
    user: bool = UserOpt,
    as_json: bool = JsonOpt,
    nssm: str | None = NssmOpt,
) -> None:
    """Show what the OS reports: installed, state, last/next run where known."""
    with _bad_input():
        choice = _choose(
            ctx, kind=kind, name=name, user=user, data_dir=None, config=None, nssm=nssm
        )
        result = choice.manager.status()
    if as_json:
        print_json(result.to_json())
        return
    typer.echo(f"{result.kind} {result.name}: {result.state}")
    for key, value in result.details.items():
        typer.echo(f"  {key}: {value}")


@app.command()
def show(
    ctx: typer.Context,
    kind: str | None = KindOpt,
    name: str | None = NameOpt,
    user: bool = UserOpt,
    data_dir: Path | None = DataDirOpt,
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    nssm: str | None = NssmOpt,
    run_as_system: bool = SystemOpt,
    wake_to_run: bool = WakeOpt,
    account: str | None = AccountOpt,
    env: list[str] = EnvOpt,
    writable: list[Path] = WritableOpt,
    daily_at: str | None = DailyOpt,
    watchdog_sec: int = WatchdogOpt,
    notify: bool = NotifyOpt,
    preset: list[str] = PresetOpt,
) -> None:
    """Print the files `install` would write (unit, task XML or plist), on any platform."""
    with _bad_input():
        choice = _choose(
            ctx,
            kind=kind,
            name=name,
            user=user,
            data_dir=data_dir,
            config=config,
            nssm=nssm,
            run_as_system=run_as_system,
            wake_to_run=wake_to_run,
            account=account,
            env_items=env,
            writable=writable,
            daily_at=daily_at,
            watchdog_sec=watchdog_sec,
            notify=notify,
            presets=preset,
            dry_run=True,
            installing=True,
        )
        plan = choice.manager.plan_install()
    if as_json:
        print_json([{"path": str(f.path), "content": f.content} for f in plan.files])
        return
    for file in plan.files:
        typer.echo(f"# {file.path}")
        typer.echo(file.content.rstrip("\n"))
    if not plan.files:
        typer.echo(f"# {choice.kind} writes no file; its commands:")
        for argv in plan.commands:
            typer.echo(f"$ {json.dumps(list(argv), ensure_ascii=False)}")


OutOpt = typer.Option(..., "--out", help="Directory for the .timer/.service files.")
CronOpt = typer.Option(
    [],
    "--cron",
    help="ID=EXPR: a job and its cron expression (repeatable; default: the store's cron jobs).",
)
TzOpt = typer.Option("UTC", "--tz", help="IANA time zone of the expressions.")
MisfireOpt = typer.Option(
    "run_once", "--misfire", help="run_once (Persistent=true) | skip | run_all."
)


def _timer_jobs_from_store(data_dir: Path) -> list[TimerJob]:
    """The cron jobs stored in `data_dir` (other triggers have no `OnCalendar=`)."""
    import asyncio

    from agentcron.cli.common import opened_store, store_url

    async def read() -> list[TimerJob]:
        async with opened_store(store_url(data_dir, None), read_only=True) as store:
            stored = await store.list_jobs()
        jobs = []
        for job in stored:
            trigger = job.definition.get("trigger", {})
            if trigger.get("type") != "cron" or job.definition.get("enabled") is False:
                continue
            misfire = job.definition.get("misfire", "run_once")
            policy = misfire.get("policy", "run_once") if isinstance(misfire, dict) else misfire
            jobs.append(
                TimerJob(job.id, str(trigger["expr"]), str(trigger.get("tz", "UTC")), str(policy))
            )
        return jobs

    return asyncio.run(read())


def _check_timer_options(tz: str, misfire: str) -> None:
    """`--tz` and `--misfire` of `--cron` jobs: typed by hand, so bad ones are bad input
    (a stored job that does not convert is only reported)."""
    from agentcron.triggers import resolve_tz

    if misfire not in ("run_once", "skip", "run_all"):
        raise ServiceError(f"--misfire {misfire!r}: use run_once, skip or run_all")
    try:
        resolve_tz(tz)
    except ValueError as exc:
        raise ServiceError(f"--tz: {exc}") from None


def _timer_job(item: str, tz: str, misfire: str, *, seen: set[str]) -> TimerJob:
    """One `--cron ID=EXPR`, checked as `jobs add` checks an id and an expression."""
    from agentcron.cron import CronError, CronExpression
    from agentcron.jobs import job_id_problem

    job_id, sep, expr = (part.strip() for part in item.partition("="))
    if not sep or not job_id or not expr:
        raise ServiceError(f"--cron {item!r} is not ID=EXPR")
    problem = job_id_problem(job_id)
    if problem is not None:
        raise ServiceError(f"--cron {item!r}: the job id {problem}")
    if job_id in seen:
        raise ServiceError(f"--cron: the job id {job_id!r} is given twice")
    try:
        CronExpression(expr)
    except CronError as exc:
        raise ServiceError(f"--cron {item!r}: {exc}") from None
    return TimerJob(job_id, expr, tz, misfire)


@app.command("export-timers")
def export_timers_command(
    ctx: typer.Context,
    out: Path = OutOpt,
    cron: list[str] = CronOpt,
    tz: str = TzOpt,
    misfire: str = MisfireOpt,
    data_dir: Path | None = DataDirOpt,
    dry_run: bool = DryRunOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Write one systemd .timer/.service pair per job whose cron converts exactly."""
    env = _env(ctx)
    with _bad_input():
        data = _abs(env, data_dir or _default_data_dir(env))
        jobs = [] if cron else _timer_jobs_from_store(data)
        if not cron and not jobs:
            raise ServiceError(
                f"no cron jobs in the store of {data}; add jobs first or pass --cron ID=EXPR"
            )
        if cron:
            _check_timer_options(tz, misfire)
        for item in cron:
            jobs.append(_timer_job(item, tz, misfire, seen={job.job_id for job in jobs}))
        result = export_timers(jobs, _abs(env, out), python=env.python, data_dir=data)
        if not dry_run:
            apply_plan(result.plan, env.runner)
    if as_json:
        body: dict[str, Any] = result.plan.to_json() if dry_run else {}
        body["timers"] = [c.to_json() for c in result.conversions]
        print_json(body)
        return
    if dry_run:
        _print_plan(result.plan, as_json=False, action="export-timers")
    for conversion in result.conversions:
        if conversion.on_calendar is None:
            typer.echo(
                f"not converted: {conversion.job_id} ({conversion.cron}): "
                + "; ".join(conversion.reasons),
                err=True,
            )
        else:
            verb = "would write" if dry_run else "wrote"
            typer.echo(f"{verb} timer {conversion.job_id}: OnCalendar={conversion.on_calendar}")
        for warning in conversion.warnings:
            typer.echo(f"warning: {conversion.job_id}: {warning}", err=True)
