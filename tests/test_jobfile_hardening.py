"""Hostile `agentcron.toml` input: encodings, odd files, nesting, commands, secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentcron.jobfile import JobFileError, load_job_file

JOB = '[[jobs]]\nid = "a"\ntrigger = "0 2 * * *"\n'


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "agentcron.toml"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def rejected(tmp_path: Path, text: str | bytes) -> JobFileError:
    with pytest.raises(JobFileError) as info:
        load_job_file(write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message
    return info.value


def test_a_file_with_a_utf8_bom_is_read(tmp_path: Path) -> None:
    job_file = load_job_file(
        write(tmp_path, b"\xef\xbb\xbf" + (JOB + 'command = ["true"]\n').encode())
    )
    assert [entry.id for entry in job_file.jobs] == ["a"]


@pytest.mark.parametrize(
    "nested",
    [
        "command = " + "[" * 3000 + "]" * 3000,
        'command = ["true"]\nenv = ' + "{a=" * 3000 + '"x"' + "}" * 3000,
    ],
)
def test_deeply_nested_arrays_or_tables_are_an_error_not_a_recursion_crash(
    tmp_path: Path, nested: str
) -> None:
    error = rejected(tmp_path, JOB + nested + "\n")
    assert "nested too deeply" in str(error)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_instead_of_blocking_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "agentcron.toml"
    os.mkfifo(path)
    with pytest.raises(JobFileError, match="not a regular file"):
        load_job_file(path)


def test_a_directory_and_a_symlink_loop_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(JobFileError, match="(?i)is a directory"):
        load_job_file(tmp_path)
    loop = tmp_path / "loop.toml"
    loop.symlink_to(loop)
    with pytest.raises(JobFileError, match="cannot read the file"):
        load_job_file(loop)


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        ('command = [""]', "the program (first element) is empty"),
        ('command = ["a\\u0000b"]', "command[0]: contains a NUL character"),
        ('command = ["echo", "' + "x" * 200_000 + '"]', "command[1]: 200000 bytes"),
        ('command = "' + "x" * 1_000_000 + '"', "bytes; an argument is at most"),
        ('command = "echo \\u0000"', "contains a NUL character"),
    ],
)
def test_a_command_the_os_would_refuse_at_every_run_is_refused_at_load(
    tmp_path: Path, command: str, fragment: str
) -> None:
    error = rejected(tmp_path, JOB + command + "\n")
    assert fragment in str(error)
    assert len(str(error)) < 500


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ('{ "A=B" = "1" }', "'A=B' is not a variable name"),
        ('{ "" = "1" }', "'' is not a variable name"),
        ('{ "A\\u0000" = "1" }', "is not a variable name"),
        ('{ A = "1\\u0000" }', "env.A: the value contains a NUL character"),
    ],
)
def test_env_names_with_equals_or_nul_and_nul_values_are_refused(
    tmp_path: Path, env: str, fragment: str
) -> None:
    error = rejected(tmp_path, JOB + f'command = ["true"]\nenv = {env}\n')
    assert fragment in str(error)


def test_an_empty_or_nul_cwd_is_refused_at_load_and_a_missing_one_left_to_the_run(
    tmp_path: Path,
) -> None:
    error = rejected(tmp_path, JOB + 'command = ["true"]\ncwd = "a\\u0000"\n')
    assert "cwd: contains a NUL character" in str(error)
    error = rejected(tmp_path, JOB + 'command = ["true"]\ncwd = "  "\n')
    assert "cwd: expected a directory path" in str(error)
    # A drive mounted after boot: the scheduler starts, the run that finds it missing fails.
    missing = tmp_path / "not-mounted-yet"
    job_file = load_job_file(write(tmp_path, JOB + f'command = ["true"]\ncwd = {str(missing)!r}\n'))
    assert len(job_file.jobs) == 1


def test_a_cwd_that_is_a_directory_is_accepted(tmp_path: Path) -> None:
    job_file = load_job_file(
        write(tmp_path, JOB + f'command = ["true"]\ncwd = {str(tmp_path)!r}\n')
    )
    assert len(job_file.jobs) == 1


def test_ping_urls_that_are_not_text_are_an_error_not_silently_dropped(tmp_path: Path) -> None:
    error = rejected(
        tmp_path, JOB + 'command = ["true"]\nping = { start = 1, success = "https://x/" }\n'
    )
    assert "ping: expected a URL" in str(error)


def test_a_ping_url_with_a_line_break_is_refused(tmp_path: Path) -> None:
    error = rejected(tmp_path, JOB + 'command = ["true"]\nping = "https://hc.example/abc\\nX: y"\n')
    assert "is not an http(s) URL" in str(error)


def test_a_huge_value_gives_short_error_lines(tmp_path: Path) -> None:
    error = rejected(tmp_path, JOB + 'command = ["true"]\ntimeout = "' + "9" * 100_000 + 's"\n')
    assert all(len(line) <= 300 for line in error.errors)


def test_url_passwords_never_appear_in_error_messages(tmp_path: Path) -> None:
    error = rejected(
        tmp_path,
        JOB
        + 'http = { url = "ftp://user:hunter2@example.org/x" }\n'
        + '[[jobs]]\nid = "b"\ntrigger = "0 2 * * *"\ncommand = ["true"]\n'
        + 'ping = "ftp://hc.example/x?token=hunter2"\n',
    )
    assert "hunter2" not in str(error)
    assert "user:********@example.org" in str(error)


def test_a_bad_alerts_table_is_rejected_at_load_without_showing_the_url_password(
    tmp_path: Path,
) -> None:
    error = rejected(
        tmp_path,
        '[[alerts.sinks]]\nname = "ops"\ntype = "webhook"\n'
        'url = "ftp://ops:hunter2@hooks.example.org/x"\nsecret = "s3cr3t"\n',
    )
    assert "alerts.sinks[0] ('ops')" in str(error)
    assert "hunter2" not in str(error) and "s3cr3t" not in str(error)


def test_an_alerts_error_names_its_location_once(tmp_path: Path) -> None:
    error = rejected(tmp_path, '[[alerts.sinks]]\nname = "ops"\ntype = "log"\ncolour = "red"\n')
    assert str(error).count("alerts.sinks[0]") == 1
    assert "unknown key(s) colour" in str(error)


def test_a_good_alerts_table_is_accepted(tmp_path: Path) -> None:
    job_file = load_job_file(
        write(
            tmp_path,
            '[[alerts.sinks]]\nname = "ops"\ntype = "webhook"\nurl = "https://x.example/h"\n',
        )
    )
    assert job_file.alerts is not None


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        (
            {"agentcron.toml": JOB + "command = " + "[" * 3000 + "]" * 3000 + "\n"},
            "nested too deeply",
        ),
        ({".env": "DASHBOARD_HOST=\n"}, "DASHBOARD_HOST"),
        ({".env": "SCHEDULER_DATA_DIR=\n"}, "SCHEDULER_DATA_DIR"),
        ({".env": "HEARTBEAT_INTERVAL=5000\nthis line is junk\n"}, ".env, line 2"),
    ],
)
def test_agentcron_run_refuses_to_start_with_one_line_and_exit_2(
    tmp_path: Path, files: dict[str, str], fragment: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHEDULER_", "DASHBOARD_"))}
    result = subprocess.run(
        [sys.executable, "-m", "agentcron", "run", "--once", "--no-dashboard"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("agentcron: ") and fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "scheduler.db").exists()
