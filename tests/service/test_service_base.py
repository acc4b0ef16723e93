"""The plan executor, the runners and the typed settings."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path, PurePath

import pytest
from service_testlib import HOSTILE, SpecFactory

from agentcron.service import (
    CompletedCommand,
    Plan,
    RecordingRunner,
    ServiceError,
    SubprocessRunner,
    apply_plan,
    default_kind,
    supported_kinds,
)
from agentcron.service.base import MakeDir, RemoveFile, WriteFile, cmd, validate_name

FAIL = CompletedCommand(1, "", "Access is denied.\nmore")


def test_apply_plan_writes_files_with_their_mode_and_runs_commands_in_order(
    tmp_path: Path,
) -> None:
    runner = RecordingRunner()
    plan = Plan(
        steps=(
            MakeDir(tmp_path / "d" / "e"),
            WriteFile(tmp_path / "x" / "unit.service", "hello ü\n", 0o640),
            cmd("tool", "one"),
            WriteFile(tmp_path / "task.xml", "<a/>", 0o644, "utf-16"),
            cmd("tool", "two"),
        )
    )

    apply_plan(plan, runner)

    assert (tmp_path / "d" / "e").is_dir()
    assert (tmp_path / "x" / "unit.service").read_text("utf-8") == "hello ü\n"
    assert stat.S_IMODE((tmp_path / "x" / "unit.service").stat().st_mode) == 0o640
    assert (tmp_path / "task.xml").read_bytes()[:2] == b"\xff\xfe"  # UTF-16 with a BOM
    assert runner.calls == [("tool", "one"), ("tool", "two")]


def test_a_failing_command_rolls_back_every_file_and_runs_the_undo_commands(
    tmp_path: Path,
) -> None:
    existing = tmp_path / "existing.conf"
    existing.write_text("old")
    doomed = tmp_path / "a"
    existing_mode = stat.S_IMODE(existing.stat().st_mode)
    runner = RecordingRunner({("tool", "enable"): FAIL})
    plan = Plan(
        steps=(
            MakeDir(doomed / "data"),
            WriteFile(doomed / "b" / "new.service", "new"),
            WriteFile(existing, "replaced", 0o600),
            cmd("tool", "reload"),
            cmd("tool", "enable"),
            cmd("tool", "never"),
        ),
        undo=(("tool", "disable"),),
    )

    with pytest.raises(ServiceError) as caught:
        apply_plan(plan, runner)

    message = str(caught.value)
    assert "['tool', 'enable'] failed with exit code 1: Access is denied." in message
    assert "rolled back" in message
    assert not doomed.exists()
    assert existing.read_text() == "old"
    assert stat.S_IMODE(existing.stat().st_mode) == existing_mode
    assert runner.calls == [("tool", "reload"), ("tool", "enable"), ("tool", "disable")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.conf"]


def test_a_failure_before_any_command_ran_skips_the_undo_commands(tmp_path: Path) -> None:
    runner = RecordingRunner({("tool",): FAIL})
    plan = Plan(steps=(WriteFile(tmp_path / "f", "x"), cmd("tool")), undo=(("undo",),))

    with pytest.raises(ServiceError):
        apply_plan(plan, runner)

    assert runner.calls == [("tool",)]
    assert list(tmp_path.iterdir()) == []


def test_a_removed_file_comes_back_when_a_later_command_fails(tmp_path: Path) -> None:
    unit = tmp_path / "agentcron.service"
    unit.write_text("[Service]\n")
    plan = Plan(steps=(cmd("stop"), RemoveFile(unit), cmd("reload")))

    with pytest.raises(ServiceError):
        apply_plan(plan, RecordingRunner({("reload",): FAIL}))

    assert unit.read_text() == "[Service]\n"


def test_a_command_marked_unchecked_may_fail_without_stopping_the_plan(tmp_path: Path) -> None:
    runner = RecordingRunner({("old",): FAIL})
    apply_plan(Plan(steps=(cmd("old", check=False), cmd("new"))), runner)
    assert runner.calls == [("old",), ("new",)]


def test_a_file_that_cannot_be_written_is_a_one_line_error_that_suggests_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "units" / "agentcron.service"

    def denied(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr("agentcron.service.base.tempfile.mkstemp", denied)

    with pytest.raises(ServiceError) as caught:
        apply_plan(Plan(steps=(WriteFile(target, "x"), cmd("never"))), RecordingRunner())

    assert str(caught.value) == (
        f"cannot write {target}: Permission denied (run as root/administrator, or use "
        "--user); every change was rolled back"
    )
    assert not (tmp_path / "units").exists()


def test_a_path_under_a_file_is_refused_and_nothing_is_left_behind(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("")
    plan = Plan(steps=(WriteFile(tmp_path / "new", "x"), WriteFile(tmp_path / "plain" / "f", "x")))

    with pytest.raises(ServiceError, match="every change was rolled back"):
        apply_plan(plan, RecordingRunner())

    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]


def test_the_subprocess_runner_passes_hostile_arguments_as_single_elements() -> None:
    script = "import json, sys; print(json.dumps(sys.argv[1:]))"
    args = [HOSTILE, "$(echo pwned)", "a;b", "&", "%PATH%", ""]

    result = SubprocessRunner().run([sys.executable, "-c", script, *args])

    assert result.returncode == 0
    assert json.loads(result.stdout) == args


def test_the_subprocess_runner_reports_a_missing_program_as_exit_127() -> None:
    result = SubprocessRunner().run(["agentcron-no-such-program-xyz", "--help"])
    assert result.returncode == 127
    assert "not found" in result.stderr


def test_the_recording_runner_answers_with_the_longest_matching_prefix() -> None:
    runner = RecordingRunner(
        {("a",): CompletedCommand(1), ("a", "b"): CompletedCommand(2)},
        default=CompletedCommand(0, "ok"),
    )
    assert runner.run(["a", "b", "c"]).returncode == 2
    assert runner.run(["a", "x"]).returncode == 1
    assert runner.run(["z"]).stdout == "ok"
    assert runner.calls == [("a", "b", "c"), ("a", "x"), ("z",)]


def test_the_plan_json_has_files_and_commands_and_removals_only_when_there_are_some(
    tmp_path: Path,
) -> None:
    plan = Plan(steps=(MakeDir(tmp_path), WriteFile(tmp_path / "f", "x"), cmd("a", tmp_path)))
    assert plan.to_json() == {
        "files": [{"path": str(tmp_path / "f"), "content": "x"}],
        "commands": [["a", str(tmp_path)]],
    }
    removing = Plan(steps=(RemoveFile(tmp_path / "f"),))
    assert removing.to_json() == {"files": [], "commands": [], "remove": [str(tmp_path / "f")]}


def test_the_service_runs_this_python_with_absolute_paths(make_spec: SpecFactory) -> None:
    spec = make_spec(config_file=PurePath("/etc/agentcron.toml"))
    assert spec.run_argv() == (
        sys.executable,
        "-m",
        "agentcron",
        "run",
        "--data-dir",
        str(spec.data_dir),
        "--config",
        "/etc/agentcron.toml",
    )


@pytest.mark.parametrize("bad", list('<>:"/\\|?*'))
def test_names_with_characters_the_task_scheduler_rejects_are_refused(bad: str) -> None:
    with pytest.raises(ServiceError, match="are not allowed"):
        validate_name(f"agent{bad}cron")


@pytest.mark.parametrize(
    "bad", ["", "   ", "a\nb", "tab\tname", " lead", "trail ", "dot.", "x" * 201]
)
def test_empty_padded_control_or_overlong_names_are_refused(bad: str) -> None:
    with pytest.raises(ServiceError):
        validate_name(bad)


def test_relative_paths_and_paths_with_newlines_are_refused(make_spec: SpecFactory) -> None:
    with pytest.raises(ServiceError, match="not an absolute path"):
        make_spec(data_dir=PurePath("data"))
    with pytest.raises(ServiceError, match="control characters"):
        make_spec(data_dir=PurePath("/tmp/a\nExecStartPre=/bin/sh"))
    with pytest.raises(ServiceError, match="not a valid name"):
        make_spec(environment={"A B": "x"})
    with pytest.raises(ServiceError, match="HH:MM"):
        make_spec(daily_at="25:00")


def test_the_default_kind_follows_the_platform() -> None:
    assert default_kind("linux") == "systemd"
    assert default_kind("win32") == "windows-task"
    assert default_kind("darwin") == "launchd"
    assert supported_kinds("win32") == ("windows-task", "nssm")
    with pytest.raises(ServiceError, match="no service kind"):
        default_kind("emscripten")


def test_the_public_surface_is_exactly_all() -> None:
    import agentcron.service as service

    exported = {
        name
        for name, value in vars(service).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("agentcron.service")
    }
    assert set(service.__all__) == exported | {"KINDS", "Kind"}
