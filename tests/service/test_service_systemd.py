"""systemd: the unit text, `systemd-analyze verify`, the exact systemctl argv lists."""

from __future__ import annotations

import sys
from pathlib import Path, PurePath

import pytest
from service_testlib import HOSTILE, SpecFactory, verify_units

from agentcron.service import CompletedCommand, RecordingRunner, ServiceError, apply_plan
from agentcron.service.systemd import SystemdManager, exec_line, quote_word, render_unit

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="systemd-analyze is Linux-only")

EXPECTED_UNIT = """\
[Unit]
Description=agentcron: scheduler of a 24/7 AI agent
StartLimitIntervalSec=0
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart=/usr/bin/python3 -m agentcron run --data-dir /srv/agent/data --config /srv/agent/agentcron.toml
WorkingDirectory=/srv/agent
User=alice
Environment=PYTHONUNBUFFERED=1
Restart=always
RestartSec=10
WatchdogSec=60
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=/srv/agent/data
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
"""


def _manager(
    spec_factory: SpecFactory, tmp_path: Path, runner: RecordingRunner, **kw: object
) -> SystemdManager:
    return SystemdManager(
        spec_factory(**kw), runner, home=tmp_path / "home", unit_dir=tmp_path / "units"
    )


def test_the_system_unit_is_type_notify_with_watchdog_restart_and_hardening(
    make_spec: SpecFactory,
) -> None:
    spec = make_spec(
        python=PurePath("/usr/bin/python3"),
        data_dir=PurePath("/srv/agent/data"),
        working_dir=PurePath("/srv/agent"),
        config_file=PurePath("/srv/agent/agentcron.toml"),
        account="alice",
    )
    assert render_unit(spec) == EXPECTED_UNIT


def test_the_user_unit_has_no_user_line_and_is_wanted_by_the_default_target(
    make_spec: SpecFactory,
) -> None:
    text = render_unit(make_spec(scope="user"))
    assert "User=" not in text
    assert "network-online" not in text
    assert text.endswith("WantedBy=default.target\n")


def test_run_as_system_drops_the_user_line_and_warns(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    manager = _manager(make_spec, tmp_path, RecordingRunner(), run_as_system=True)
    assert "User=" not in render_unit(manager.spec)
    assert any("runs as root" in note for note in manager.plan_install().notes)


def test_every_argv_element_is_quoted_the_way_systemd_unquotes_it() -> None:
    assert quote_word("/usr/bin/python3") == "/usr/bin/python3"
    assert quote_word("a b") == '"a b"'
    assert quote_word('say "hi" \\ now') == '"say \\"hi\\" \\\\ now"'
    assert quote_word("$(rm -rf /)") == '"$$(rm -rf /)"'
    assert quote_word("100%") == '"100%%"'
    assert quote_word(";") == '";"'
    assert quote_word("$HOME", expand_dollar=False) == '"$HOME"'
    assert exec_line(["/bin/x", "ü"]) == '/bin/x "ü"'
    with pytest.raises(ServiceError, match="control characters"):
        quote_word("a\nExecStartPre=/bin/sh")
    with pytest.raises(ServiceError, match="absolute program path"):
        exec_line(["python3", "-m", "agentcron"])


@pytest.mark.parametrize(
    "bad", ["agent cron", "agent&cron", "agent;cron", "$(x)", "agentcrön", "a@b"]
)
def test_names_that_are_not_valid_unit_names_are_refused(make_spec: SpecFactory, bad: str) -> None:
    with pytest.raises(ServiceError, match="not a valid systemd unit name"):
        render_unit(make_spec(name=bad))


def test_install_writes_the_unit_then_reloads_and_enables_it(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    runner = RecordingRunner()
    manager = _manager(make_spec, tmp_path, runner)
    plan = manager.plan_install()

    assert plan.commands == (
        ("systemctl", "daemon-reload"),
        ("systemctl", "enable", "--now", "agentcron.service"),
    )
    apply_plan(plan, runner)
    assert (tmp_path / "units" / "agentcron.service").read_text() == render_unit(manager.spec)
    assert (tmp_path / "data").is_dir()


def test_user_scope_uses_systemctl_user_and_the_user_unit_directory(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    manager = SystemdManager(make_spec(scope="user"), RecordingRunner(), home=tmp_path / "home")
    assert (
        manager.unit_path
        == tmp_path / "home" / ".config" / "systemd" / "user" / "agentcron.service"
    )
    assert manager.plan_install().commands == (
        ("systemctl", "--user", "daemon-reload"),
        ("systemctl", "--user", "enable", "--now", "agentcron.service"),
    )
    assert manager.plan_start().commands == (("systemctl", "--user", "start", "agentcron.service"),)
    assert manager.plan_stop().commands == (("systemctl", "--user", "stop", "agentcron.service"),)


def test_uninstall_disables_removes_the_unit_and_reloads(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    runner = RecordingRunner()
    manager = _manager(make_spec, tmp_path, runner)
    apply_plan(manager.plan_install(), runner)

    apply_plan(manager.plan_uninstall(), runner)

    assert runner.calls[-2:] == [
        ("systemctl", "disable", "--now", "agentcron.service"),
        ("systemctl", "daemon-reload"),
    ]
    assert not manager.unit_path.exists()


def test_a_failed_enable_disables_the_unit_and_removes_the_file(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    runner = RecordingRunner(
        {("systemctl", "enable"): CompletedCommand(1, "", "Failed to enable unit: Access denied")}
    )
    manager = _manager(make_spec, tmp_path, runner)

    with pytest.raises(ServiceError, match="Access denied; every change was rolled back"):
        apply_plan(manager.plan_install(), runner)

    assert runner.calls[-1] == ("systemctl", "disable", "--now", "agentcron.service")
    assert not (tmp_path / "units").exists()
    assert not (tmp_path / "data").exists()


def test_an_existing_unit_is_not_replaced_without_force(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    manager = _manager(make_spec, tmp_path, RecordingRunner())
    manager.unit_path.parent.mkdir(parents=True)
    manager.unit_path.write_text("[Service]\n")

    with pytest.raises(ServiceError, match="already exists; pass --force"):
        manager.check_install(force=False)
    manager.check_install(force=True)
    assert manager.plan_install(replace=True).commands[-1] == (
        "systemctl",
        "restart",
        "agentcron.service",
    )


def test_a_unit_loaded_from_elsewhere_counts_as_existing(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    runner = RecordingRunner({("systemctl", "show"): CompletedCommand(0, "LoadState=loaded\n")})
    assert _manager(make_spec, tmp_path, runner).exists()


def test_a_system_unit_without_permission_or_systemctl_is_refused(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    locked = SystemdManager(
        make_spec(),
        RecordingRunner(),
        home=tmp_path,
        unit_dir=tmp_path / "units",
        writable=lambda _: False,
    )
    with pytest.raises(
        ServiceError, match="no permission to write .* run with sudo, or pass --user"
    ):
        locked.check_install(force=False)
    missing = _manager(
        make_spec, tmp_path, RecordingRunner({("systemctl",): CompletedCommand(127)})
    )
    with pytest.raises(ServiceError, match="systemctl not found"):
        missing.check_install(force=False)


def test_status_reads_systemctl_show(make_spec: SpecFactory, tmp_path: Path) -> None:
    shown = "LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=42\nNRestarts=3\n"
    status = _manager(
        make_spec, tmp_path, RecordingRunner({("systemctl", "show"): CompletedCommand(0, shown)})
    ).status()
    assert (status.installed, status.state) == (True, "active (running)")
    assert status.details["MainPID"] == "42"
    absent = _manager(
        make_spec,
        tmp_path,
        RecordingRunner({("systemctl", "show"): CompletedCommand(0, "LoadState=not-found\n")}),
    )
    assert absent.status().state == "not installed"


@linux_only
@pytest.mark.parametrize("scope", ["system", "user"])
def test_the_generated_unit_passes_systemd_analyze_verify(
    make_spec: SpecFactory, tmp_path: Path, scope: str
) -> None:
    spec = make_spec(
        scope=scope, environment={"AGENT_MODE": "prod"}, writable_paths=(tmp_path / "out",)
    )
    unit = tmp_path / "agentcron.service"
    unit.write_text(render_unit(spec))
    assert verify_units([unit], tmp_path / "run", user=scope == "user") == ""


@linux_only
def test_a_unit_with_hostile_paths_and_environment_still_verifies(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    hostile_dir = tmp_path / HOSTILE.replace("/", "_")
    spec = make_spec(
        data_dir=hostile_dir / "data",
        working_dir=hostile_dir,
        config_file=hostile_dir / "agent cron.toml",
        environment={"NOTE": HOSTILE},
    )
    text = render_unit(spec)
    unit = tmp_path / "agentcron.service"
    unit.write_text(text)
    assert verify_units([unit], tmp_path / "run") == ""
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert "$$(touch x)" in exec_start and "%%" in exec_start


@linux_only
def test_systemd_reads_a_hostile_program_path_back_exactly_as_written(tmp_path: Path) -> None:
    # verify reports the program path it parsed when the program does not exist: this
    # shows the quoting round-trips spaces, ;, &, |, $(...), backticks, % and non-ASCII
    program = "/nonexistent/a b & ; $(touch x) `id` | > %n ^ ü 日本/python"
    unit = tmp_path / "probe.service"
    unit.write_text(f"[Service]\nExecStart={exec_line([program, HOSTILE])}\n")

    complaint = verify_units([unit], tmp_path / "run")

    assert f"Command {program} is not executable" in complaint
    with pytest.raises(ServiceError, match="quote or backslash"):
        exec_line(['/opt/a"b/python'])
