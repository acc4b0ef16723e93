"""NSSM and launchd: exact argv lists, the plist, refusals and status."""

from __future__ import annotations

import plistlib
from pathlib import Path

import pytest
from service_testlib import HOSTILE, SpecFactory

from agentcron.service import CompletedCommand, RecordingRunner, ServiceError, apply_plan
from agentcron.service.base import MakeDir, Plan
from agentcron.service.launchd import LaunchdManager, render_plist
from agentcron.service.nssm import NssmManager, find_nssm

NSSM = r"C:\Tools\nssm.exe"


def test_nssm_install_is_the_spec_12_1_sequence_as_argv_lists(windows_spec: SpecFactory) -> None:
    spec = windows_spec(run_as_system=True, environment={"AGENT_MODE": "prod"})
    plan = NssmManager(spec, RecordingRunner(), nssm=NSSM).plan_install()
    data = r"C:\Users\Alice\agent\data"

    def set_(*args: str) -> tuple[str, ...]:
        return (NSSM, "set", "agentcron", *args)

    assert plan.commands == (
        (NSSM, "install", "agentcron", r"C:\Program Files\Python311\python.exe"),
        set_(
            "AppParameters",
            rf"-m agentcron run --data-dir {data} --config C:\Users\Alice\agent\agentcron.toml",
        ),
        set_("AppDirectory", r"C:\Users\Alice\agent"),
        set_("AppEnvironmentExtra", "PYTHONUNBUFFERED=1", "AGENT_MODE=prod"),
        set_("DisplayName", "agentcron"),
        set_("Description", "agentcron: scheduler of a 24/7 AI agent"),
        set_("Start", "SERVICE_AUTO_START"),
        set_("AppExit", "Default", "Restart"),
        set_("AppRestartDelay", "10000"),
        set_("AppStdout", rf"{data}\logs\service.log"),
        set_("AppStderr", rf"{data}\logs\service-error.log"),
        set_("AppRotateFiles", "1"),
        set_("AppRotateOnline", "1"),
        set_("AppRotateBytes", "10485760"),
        (NSSM, "start", "agentcron"),
    )
    assert plan.undo == ((NSSM, "stop", "agentcron"), (NSSM, "remove", "agentcron", "confirm"))
    assert any("LocalSystem" in note for note in plan.notes)


def test_nssm_uninstall_start_stop_and_replace_are_exact(windows_spec: SpecFactory) -> None:
    manager = NssmManager(windows_spec(run_as_system=True), RecordingRunner(), nssm=NSSM)
    assert manager.plan_uninstall().commands == (
        (NSSM, "stop", "agentcron"),
        (NSSM, "remove", "agentcron", "confirm"),
    )
    assert manager.plan_start().commands == ((NSSM, "start", "agentcron"),)
    assert manager.plan_stop().commands == ((NSSM, "stop", "agentcron"),)
    replace = manager.plan_install(replace=True)
    assert replace.commands[:3] == (
        (NSSM, "stop", "agentcron"),
        (NSSM, "remove", "agentcron", "confirm"),
        (NSSM, "install", "agentcron", r"C:\Program Files\Python311\python.exe"),
    )


def test_nssm_is_found_on_path_or_given_and_never_downloaded() -> None:
    assert find_nssm(None, lambda name: r"C:\bin\nssm.exe" if name == "nssm.exe" else None) == (
        r"C:\bin\nssm.exe"
    )
    assert find_nssm(NSSM, lambda name: None) == NSSM
    with pytest.raises(ServiceError, match="nssm not found on PATH; install it .* --nssm PATH"):
        find_nssm(None, lambda name: None)


def test_nssm_needs_the_explicit_system_opt_in(windows_spec: SpecFactory) -> None:
    with pytest.raises(ServiceError, match="pass --run-as-system"):
        NssmManager(windows_spec(), RecordingRunner(), nssm=NSSM).check_install(force=False)


def test_an_existing_nssm_service_is_refused_without_force(windows_spec: SpecFactory) -> None:
    runner = RecordingRunner({(NSSM, "status"): CompletedCommand(0, "SERVICE_STOPPED\r\n")})
    manager = NssmManager(windows_spec(run_as_system=True), runner, nssm=NSSM)
    with pytest.raises(ServiceError, match="already exists; pass --force"):
        manager.check_install(force=False)
    manager.check_install(force=True)


def test_nssm_status_reads_the_utf16_state_name(windows_spec: SpecFactory) -> None:
    out = "S\x00E\x00R\x00V\x00I\x00C\x00E\x00_\x00R\x00U\x00N\x00N\x00I\x00N\x00G\x00\r\n"
    runner = RecordingRunner({(NSSM, "status"): CompletedCommand(0, out)})
    status = NssmManager(windows_spec(), runner, nssm=NSSM).status()
    assert (status.installed, status.state) == (True, "running")
    missing = RecordingRunner({(NSSM,): CompletedCommand(3, "", "Can't open service!")})
    assert NssmManager(windows_spec(), missing, nssm=NSSM).status().state == "not installed"


def test_a_failing_nssm_step_removes_the_half_installed_service(windows_spec: SpecFactory) -> None:
    runner = RecordingRunner({(NSSM, "set", "agentcron", "AppStdout"): CompletedCommand(5)})
    manager = NssmManager(windows_spec(run_as_system=True), runner, nssm=NSSM)
    plan = manager.plan_install()
    # Windows directories cannot be created on this machine: drop the directory steps
    commands_only = Plan(tuple(s for s in plan.steps if not isinstance(s, MakeDir)), plan.undo)
    with pytest.raises(ServiceError, match="exit code 5"):
        apply_plan(commands_only, runner)
    assert runner.calls[-2:] == [
        (NSSM, "stop", "agentcron"),
        (NSSM, "remove", "agentcron", "confirm"),
    ]


def test_hostile_nssm_values_stay_single_argv_elements(windows_spec: SpecFactory) -> None:
    spec = windows_spec(run_as_system=True, environment={"NOTE": HOSTILE}, name="agent & cron")
    commands = NssmManager(spec, RecordingRunner(), nssm=NSSM).plan_install().commands
    assert (
        NSSM,
        "set",
        "agent & cron",
        "AppEnvironmentExtra",
        "PYTHONUNBUFFERED=1",
        f"NOTE={HOSTILE}",
    ) in commands


# ------------------------------------------------------------------------------ launchd


def test_the_launch_agent_plist_runs_the_argv_list_with_keepalive_and_logs(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    spec = make_spec(
        scope="user", environment={"AGENT_MODE": "prod"}, config_file=tmp_path / HOSTILE
    )
    plist = plistlib.loads(render_plist(spec).encode())
    assert plist == {
        "Label": "agentcron",
        "ProgramArguments": list(spec.run_argv()),
        "WorkingDirectory": str(tmp_path),
        "RunAtLoad": True,
        "KeepAlive": True,
        "ThrottleInterval": 10,
        "ProcessType": "Background",
        "StandardOutPath": str(tmp_path / "data" / "logs" / "service.log"),
        "StandardErrorPath": str(tmp_path / "data" / "logs" / "service-error.log"),
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1", "AGENT_MODE": "prod"},
    }
    assert plist["ProgramArguments"][-1] == str(tmp_path / HOSTILE)


def test_a_launch_daemon_runs_as_the_installing_user_unless_system_is_asked(
    make_spec: SpecFactory,
) -> None:
    assert plistlib.loads(render_plist(make_spec(account="alice")).encode())["UserName"] == "alice"
    as_root = plistlib.loads(render_plist(make_spec(run_as_system=True)).encode())
    assert "UserName" not in as_root


def test_launchctl_commands_for_an_agent_and_a_daemon(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    agent = LaunchdManager(
        make_spec(scope="user"), RecordingRunner(), home=tmp_path / "home", uid=501
    )
    plist = tmp_path / "home" / "Library" / "LaunchAgents" / "agentcron.plist"
    assert agent.plan_install().commands == (("launchctl", "bootstrap", "gui/501", str(plist)),)
    assert agent.plan_uninstall().commands == (("launchctl", "bootout", "gui/501/agentcron"),)
    assert agent.plan_uninstall().removals[0].path == plist
    assert agent.plan_stop().commands == (("launchctl", "bootout", "gui/501/agentcron"),)
    assert agent.plan_start().commands == (("launchctl", "bootstrap", "gui/501", str(plist)),)
    daemon = LaunchdManager(make_spec(), RecordingRunner(), home=tmp_path, uid=0)
    assert daemon.plan_install().commands == (
        ("launchctl", "bootstrap", "system", "/Library/LaunchDaemons/agentcron.plist"),
    )


def test_uninstall_removes_a_stopped_job_and_a_stopped_service_too(
    make_spec: SpecFactory, windows_spec: SpecFactory, tmp_path: Path
) -> None:
    not_running = CompletedCommand(3, "", "Boot-out failed: 3: No such process")
    runner = RecordingRunner({("launchctl", "bootout"): not_running, (NSSM, "stop"): not_running})
    agent = LaunchdManager(make_spec(scope="user"), runner, home=tmp_path / "home", uid=501)
    agent.plist_path.parent.mkdir(parents=True)
    agent.plist_path.write_text("<plist/>")

    apply_plan(agent.plan_uninstall(), runner)
    apply_plan(NssmManager(windows_spec(), runner, nssm=NSSM).plan_uninstall(), runner)

    assert not agent.plist_path.exists()
    assert runner.calls[-1] == (NSSM, "remove", "agentcron", "confirm")


def test_a_failed_bootstrap_removes_the_plist(make_spec: SpecFactory, tmp_path: Path) -> None:
    runner = RecordingRunner(
        {
            ("launchctl", "bootstrap"): CompletedCommand(
                5, "", "Bootstrap failed: 5: Input/output error"
            )
        }
    )
    manager = LaunchdManager(make_spec(scope="user"), runner, home=tmp_path / "home", uid=501)
    with pytest.raises(ServiceError, match="Input/output error"):
        apply_plan(manager.plan_install(), runner)
    assert not (tmp_path / "home").exists()
    assert not (tmp_path / "data").exists()


def test_launchd_refuses_bad_labels_existing_jobs_and_reads_status(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    with pytest.raises(ServiceError, match="not a valid launchd label"):
        render_plist(make_spec(name="agent cron"))
    printed = "gui/501/agentcron = {\n\tstate = running\n\tpid = 812\n\tlast exit code = 0\n}\n"
    runner = RecordingRunner({("launchctl", "print"): CompletedCommand(0, printed)})
    manager = LaunchdManager(make_spec(scope="user"), runner, home=tmp_path, uid=501)
    with pytest.raises(ServiceError, match="already exists"):
        manager.check_install(force=False)
    status = manager.status()
    assert (status.state, status.details["pid"]) == ("running", "812")
