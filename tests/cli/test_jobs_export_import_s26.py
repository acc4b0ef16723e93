"""`agentcron jobs export|import|run`: what is at the export path is respected (a symlink is
written through, a FIFO, device or directory refused, `-` is stdout), write errors are one
line; hostile import files (huge numbers, deep nesting, FIFOs, oversized files, definitions
the job file would refuse) are one line and import nothing; a built-in loop run by
`jobs run` uses the command's data directory, not the current one."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import as_json, assert_bad_input, jobs, migrated_data_dir, ok

from agentcron.jobfile import MAX_FILE_BYTES

PY = sys.executable
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return migrated_data_dir(tmp_path)


def add(data_dir: Path, job_id: str, *args: str) -> None:
    ok(jobs(data_dir, "add", job_id, *args, "--json"))


def exported(data_dir: Path) -> dict[str, Any]:
    result: dict[str, Any] = as_json(jobs(data_dir, "export"))
    return result


def cli(
    *args: str, cwd: Path | None = None, fsize: int | None = None, stdout: Any = None
) -> subprocess.CompletedProcess[str]:
    """`python -m agentcron ARGS` in a real process; `fsize`: its RLIMIT_FSIZE (bytes), so a
    write past it fails with EFBIG as a full disk fails with ENOSPC."""

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    return subprocess.run(
        [PY, "-m", "agentcron", *args],
        cwd=cwd,
        env=env,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        preexec_fn=limit if fsize is not None else None,
        check=False,
    )


def assert_one_line_exit_two(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("agentcron: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# == export: what is at FILE ===================================================================
def test_export_writes_through_a_symlink_to_its_target(data: Path, tmp_path: Path) -> None:
    add(data, "a", "--every", "1h", "--command", "true")
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    ok(jobs(data, "export", str(link)))
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert [job["id"] for job in json.loads(target.read_text())["jobs"]] == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "link.json", "real.json"]


def test_export_through_a_dangling_symlink_creates_its_target(data: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "new.json")
    ok(jobs(data, "export", str(link)))
    assert link.is_symlink()
    assert json.loads((tmp_path / "new.json").read_text())["jobs"] == []


def test_export_keeps_the_mode_of_the_file_it_replaces(data: Path, tmp_path: Path) -> None:
    file = tmp_path / "jobs.json"
    file.write_text("old")
    file.chmod(0o640)
    ok(jobs(data, "export", str(file)))
    assert file.stat().st_mode & 0o777 == 0o640
    assert json.loads(file.read_text())["format"] == "agentcron.jobs"


@needs_fifo
@pytest.mark.parametrize("through_link", [False, True])
def test_export_refuses_a_fifo_and_leaves_it_a_fifo(
    data: Path, tmp_path: Path, through_link: bool
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    path = fifo
    if through_link:
        path = tmp_path / "link"
        path.symlink_to(fifo)
    result = jobs(data, "export", str(path))
    assert_bad_input(result, f"cannot write {path}: ", "not a regular file", "`-` for stdout")
    assert fifo.is_fifo()
    assert path.is_symlink() == through_link
    assert {p.name for p in tmp_path.iterdir()} == {"data", "pipe", path.name}


def test_export_refuses_a_directory(data: Path, tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    assert_bad_input(jobs(data, "export", str(target)), f"cannot write {target}: ", "directory")
    assert target.is_dir() and list(target.iterdir()) == []


def test_export_into_a_missing_directory_is_one_line(data: Path, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "jobs.json"
    assert_bad_input(jobs(data, "export", str(target)), f"cannot write {target}: ")


def test_export_dash_writes_to_stdout(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(data, "a", "--every", "1h", "--command", "true")
    monkeypatch.chdir(tmp_path)
    result = jobs(data, "export", "-")
    assert [job["id"] for job in json.loads(ok(result))["jobs"]] == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def _many_jobs(data: Path) -> None:
    for index in range(8):
        add(data, f"j{index}", "--every", "1h", "--command", "true", "--description", "d" * 9000)


@posix_only
def test_a_write_error_on_export_is_one_line_and_keeps_the_old_file(
    data: Path, tmp_path: Path
) -> None:
    _many_jobs(data)
    file = tmp_path / "jobs.json"
    file.write_text("old")
    result = cli("jobs", "export", str(file), "--data-dir", str(data), fsize=40_000)
    assert_one_line_exit_two(result, f"cannot write {file}: ", "File too large")
    assert file.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "jobs.json"]


@posix_only
@pytest.mark.parametrize("argument", [[], ["-"]])
def test_a_write_error_on_stdout_is_one_line(
    data: Path, tmp_path: Path, argument: list[str]
) -> None:
    _many_jobs(data)
    out = tmp_path / "out.json"
    with out.open("w") as stdout:
        result = cli(
            "jobs", "export", *argument, "--data-dir", str(data), fsize=40_000, stdout=stdout
        )
    assert_one_line_exit_two(result, "cannot write the export to stdout: ", "File too large")


# == import: hostile files =====================================================================
def _import_file(data: Path, tmp_path: Path, text: str) -> tuple[Any, Path]:
    file = tmp_path / "in.json"
    file.write_text(text)
    other = tmp_path / "other"
    return jobs(other, "import", str(file)), other


def test_import_of_a_number_with_too_many_digits_is_one_line(data: Path, tmp_path: Path) -> None:
    add(data, "a", "--every", "1h", "--command", "true")
    document = json.dumps(exported(data)).replace(
        '"jobs": [', '"max": ' + "1" + "0" * 5000 + ', "jobs": ['
    )
    result, other = _import_file(data, tmp_path, document)
    assert_bad_input(result, "nothing imported", "a number has more than")
    assert not other.exists()


def test_import_of_deeply_nested_json_is_one_line(data: Path, tmp_path: Path) -> None:
    result, other = _import_file(data, tmp_path, "[" * 100_000 + "]" * 100_000)
    assert_bad_input(result, "nothing imported", "nested too deeply")
    assert not other.exists()


@pytest.mark.parametrize("depth", [200, 900])
def test_import_of_a_definition_nested_below_the_parser_limit_is_one_line(
    data: Path, tmp_path: Path, depth: int
) -> None:
    add(data, "a", "--every", "1h", "--callable", "json:dumps")
    document = exported(data)
    document["jobs"][0]["definition"]["handler"]["ref"] = "json:dumps"
    text = json.dumps(document).replace(
        '"paused"', '"x": ' + "[" * depth + "]" * depth + ', "paused"', 1
    )
    result, other = _import_file(data, tmp_path, text)
    assert result.exit_code == 2, (result.stderr, result.exception)
    assert "Traceback" not in result.stderr
    assert not other.exists()


@needs_fifo
def test_import_refuses_a_fifo_without_waiting_for_a_writer(data: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = cli("jobs", "import", str(fifo), "--data-dir", str(tmp_path / "other"))
    assert_one_line_exit_two(result, "nothing imported", "not a regular file")
    assert not (tmp_path / "other").exists()


def test_import_refuses_an_oversized_file(data: Path, tmp_path: Path) -> None:
    file = tmp_path / "big.json"
    with file.open("wb") as out:
        out.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used
    result = jobs(tmp_path / "other", "import", str(file))
    assert_bad_input(result, "nothing imported", f"at most {MAX_FILE_BYTES}")
    assert not (tmp_path / "other").exists()


def test_import_refuses_a_directory(data: Path, tmp_path: Path) -> None:
    result = jobs(tmp_path / "other", "import", str(tmp_path))
    assert_bad_input(result, "nothing imported", "directory", "agentcron jobs export")


# == import: the job file's limits =============================================================
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "n" * 100_000}, "name: 'nnnnnnnn"),
        ({"name": "n" * 501}, "is 501 characters long (at most 500)"),
        ({"description": "d" * 10_001}, "(at most 10000)"),
        ({"handler": {"env": {"A=B": "x"}}}, "'A=B' is not a variable name"),
        ({"handler": {"env": {"": "x"}}}, "'' is not a variable name"),
        ({"handler": {"output_tail_bytes": 10**12}}, "output_tail_bytes: at most"),
        ({"handler": {"kill_grace_s": 1e300}}, "kill_grace_s: 1e+300 seconds is longer than 100"),
    ],
)
def test_import_refuses_what_the_job_file_refuses(
    data: Path, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    add(data, "a", "--every", "1h", "--command", "true")
    document = exported(data)
    definition = document["jobs"][0]["definition"]
    for key, value in change.items():
        if key == "handler":
            definition["handler"].update(value)
        else:
            definition[key] = value
    result, other = _import_file(data, tmp_path, json.dumps(document))
    assert_bad_input(result, "1 problem in ", "nothing imported: jobs[0].definition: ", message)
    assert len(result.stderr) < 2000
    assert not other.exists()


def test_import_still_takes_the_longest_name_and_an_ordinary_env(
    data: Path, tmp_path: Path
) -> None:
    add(data, "a", "--every", "1h", "--command", "true")
    document = exported(data)
    definition = document["jobs"][0]["definition"]
    definition["name"] = "n" * 500
    definition["handler"].update(env={"A_B": "x=y"}, output_tail_bytes=1024 * 1024)
    result, other = _import_file(data, tmp_path, json.dumps(document))
    ok(result)
    assert exported(other)["jobs"][0]["definition"]["name"] == "n" * 500


# == run: built-in loops use the command's data directory ======================================
@pytest.mark.parametrize("loop", ["backup_check", "context_cleanup"])
def test_jobs_run_of_a_builtin_loop_uses_the_data_dir_option(tmp_path: Path, loop: str) -> None:
    data = migrated_data_dir(tmp_path)
    add(data, "loop", "--every", "1h", "--callable", f"agentcron.presets.builtin:{loop}")
    backup = cli("db", "backup", "--data-dir", str(data))
    assert backup.returncode == 0, backup.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli("jobs", "run", "loop", "--json", "--data-dir", str(data), cwd=elsewhere)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["status"] == "succeeded"
    assert list(elsewhere.iterdir()) == []
