"""`agentcron queue ...` and `agentcron worker` through the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentcron.cli.main import build_app
from agentcron.jobfile import JobFileError, parse_job_file
from agentcron.queue import QueueInputError, open_queue
from agentcron.queue.base import queue_name_problem
from agentcron.queue.redis import RedisQueue
from agentcron.queue.sqlite import SqliteQueue
from helpers.redis_server import RedisServer

runner = CliRunner()
HERE = Path(__file__).resolve().parent


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(build_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


def test_add_then_status_reports_the_job_as_json(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    code, out, _ = cli(
        "queue",
        "add",
        "emails",
        "send",
        "--data",
        '{"to": "a@b"}',
        "--data-dir",
        data_dir,
        "--json",
    )
    assert code == 0 and json.loads(out)["job_id"]
    code, out, _ = cli("queue", "status", "emails", "--data-dir", data_dir, "--json")
    assert code == 0
    assert json.loads(out) == {
        "queue": "emails",
        "paused": False,
        "counts": {
            "waiting": 1,
            "active": 0,
            "completed": 0,
            "failed": 0,
            "delayed": 0,
            "paused": 0,
        },
    }


def test_status_prints_a_table_for_people(tmp_path: Path) -> None:
    assert cli("db", "migrate", "--data-dir", str(tmp_path))[0] == 0
    code, out, _ = cli("queue", "status", "emails", "--data-dir", str(tmp_path))
    assert code == 0 and "waiting" in out and "queue emails" in out


def test_pause_and_resume_flip_the_paused_flag(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/q.db"
    assert cli("db", "migrate", "--store", store)[0] == 0
    assert cli("queue", "pause", "emails", "--store", store)[0] == 0
    assert (
        json.loads(cli("queue", "status", "emails", "--store", store, "--json")[1])["paused"]
        is True
    )
    code, out, _ = cli("queue", "resume", "emails", "--store", store, "--json")
    assert code == 0 and json.loads(out) == {"queue": "emails", "paused": False}


def test_clean_and_retry_failed_report_what_they_did(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/q.db"
    cli("queue", "add", "emails", "no.such.module:handler", "--store", store)
    code, _, _ = cli("worker", "--queue", "emails", "--burst", "--store", store)
    assert code == 0
    status = json.loads(cli("queue", "status", "emails", "--store", store, "--json")[1])
    assert status["counts"]["failed"] == 1
    code, out, _ = cli("queue", "retry-failed", "emails", "--store", store, "--json")
    assert code == 0 and json.loads(out) == {"queue": "emails", "retried": 1}
    code, out, _ = cli("queue", "clean", "emails", "--state", "waiting", "--store", store, "--json")
    assert code == 0 and len(json.loads(out)["removed"]) == 1


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/q.db"
    for args in (
        ("queue", "add", "emails", "x", "--data", "{bad", "--store", store),
        ("queue", "add", "emails", "x", "--priority", "-1", "--store", store),
        ("queue", "add", "emails", "x", "--delay", "soon", "--store", store),
        ("queue", "clean", "emails", "--state", "active", "--store", store),
        ("queue", "status", "emails", "--store", "ftp://nowhere"),
        ("worker", "--queue", "emails", "--handler", "not a reference", "--store", store),
        ("worker", "--queue", "emails", "--rate-limit", "lots", "--store", store),
        ("worker", "--queue", "emails", "--timeout", "0", "--store", store),
        ("worker", "--queue", "emails", "--timeout", "soon", "--store", store),
    ):
        code, _, err = cli(*args)
        assert code == 2, args
        assert err.startswith("agentcron: ") and err.count("\n") == 1, (args, err)


@pytest.mark.parametrize(
    "command",
    [
        ["status", "emails"],
        ["pause", "emails"],
        ["resume", "emails"],
        ["clean", "emails"],
        ["retry-failed", "emails"],
    ],
    ids=lambda command: command[0],
)
@pytest.mark.parametrize("where", ["data-dir", "store"])
def test_a_command_on_a_missing_database_exits_2_and_creates_nothing(
    tmp_path: Path, command: list[str], where: str
) -> None:
    # QA: a mistyped --data-dir (or --store) made a half-initialised database (schema
    # version 0, which `jobs list` then asked to migrate) and reported zeros or "paused".
    missing = tmp_path / "typo"
    target = (
        ["--data-dir", str(missing)]
        if where == "data-dir"
        else ["--store", f"sqlite:///{missing}/x.db"]
    )
    code, out, err = cli("queue", *command, *target)
    assert code == 2, (out, err)
    assert err.startswith(f"agentcron: no database at {missing}") and err.count("\n") == 1
    assert out == "" and not missing.exists()


def test_queue_add_creates_a_complete_database_as_jobs_add_does(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    assert cli("queue", "add", "emails", "send", "--data-dir", data_dir)[0] == 0
    code, out, err = cli("jobs", "list", "--json", "--data-dir", data_dir)
    assert (code, json.loads(out)) == (0, []), err
    code, out, err = cli("db", "check", "--json", "--data-dir", data_dir)
    assert code == 0, err
    assert json.loads(out)["schema_version"] == json.loads(out)["latest_version"]


HOSTILE_NAMES = ["q\x1b]0;pwned\x07", "a/b", "line\nbreak", "tab\there", "", " ", "a:b", ".."]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_queue_name_with_control_characters_or_a_slash_is_refused_everywhere(
    tmp_path: Path, name: str
) -> None:
    # QA: `queue add "$(printf 'q\x1b]0;pwned\x07')" j` and `queue add a/b j` were accepted
    # (and `queue status` printed the escape sequence raw), while `jobs add --queue`
    # refused the first; a queue "a/b" cannot be reached as /api/queues/{name}.
    data_dir = str(tmp_path / "data")
    for command in (
        ["queue", "add", name, "j"],
        ["queue", "status", name],
        ["worker", "--queue", name, "--burst"],
        ["jobs", "add", "x", "--every", "1h", "--queue", name, "--", "true"],
    ):
        code, out, err = cli(*command, "--data-dir", data_dir)
        assert code == 2, (command, out, err)
        assert err.startswith("agentcron: ") and err.count("\n") == 1, (command, err)
        assert "queue" in err and "\x1b" not in err and "\x07" not in err, err
    assert not (tmp_path / "data").exists()
    problem = queue_name_problem(name)
    assert problem is not None
    with pytest.raises(QueueInputError, match="queue name"):
        open_queue(f"sqlite:///{tmp_path}/q.db", name)
    with pytest.raises(QueueInputError, match="queue name"):
        SqliteQueue(tmp_path / "q.db", name)
    with pytest.raises(QueueInputError, match="queue name"):
        RedisQueue("redis://127.0.0.1:1/0", name)
    with pytest.raises(JobFileError, match="queue"):
        parse_job_file(
            {"jobs": [{"id": "x", "trigger": "@hourly", "command": ["true"], "queue": name}]},
            source="agentcron.toml",
        )
    assert not (tmp_path / "q.db").exists()


@pytest.mark.parametrize("name", ["emails", "Emails-2", "a.b", "mails@eu", "täglich", "x" * 200])
def test_ordinary_queue_names_are_accepted(name: str) -> None:
    assert queue_name_problem(name) is None


def test_a_name_longer_than_200_characters_is_refused() -> None:
    assert queue_name_problem("x" * 201) == "is 201 characters long (at most 200)"


def test_a_worker_process_runs_jobs_with_its_handler_and_exits_in_burst_mode(
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path}/q.db"
    for i in range(3):
        cli("queue", "add", "emails", f"job-{i}", "--store", store)
    log = tmp_path / "runs.log"
    env = os.environ | {
        "QUEUE_TEST_LOG": str(log),
        "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path]),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "agentcron",
            "worker",
            "--queue",
            "emails",
            "--burst",
            "--concurrency",
            "2",
            "--handler",
            "queue_handlers:record",
            "--store",
            store,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "stopped after 3 job(s)" in result.stderr
    assert len(log.read_text().splitlines()) == 3


def test_a_worker_process_fails_an_attempt_past_its_timeout_and_runs_the_retry(
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path}/q.db"
    cli("queue", "add", "emails", "job", "--attempts", "2", "--store", store)
    log = tmp_path / "runs.log"
    env = os.environ | {
        "QUEUE_TEST_LOG": str(log),
        "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "agentcron", "worker", "--queue", "emails", "--burst",
         "--timeout", "0.5", "--handler", "queue_handlers:hang_first", "--store", store],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [line.split()[2] for line in log.read_text().splitlines()] == ["1", "2"]
    status = json.loads(cli("queue", "status", "emails", "--store", store, "--json")[1])
    assert status["counts"]["completed"] == 1


def test_the_queue_commands_work_on_a_redis_queue(redis_url: str) -> None:
    code, out, _ = cli(
        "queue", "add", "emails", "send", "--priority", "2", "--store", redis_url, "--json"
    )
    assert code == 0
    job_id = json.loads(out)["job_id"]
    assert job_id == "1"  # BullMQ's own id counter
    assert cli("queue", "pause", "emails", "--store", redis_url)[0] == 0
    status = json.loads(cli("queue", "status", "emails", "--store", redis_url, "--json")[1])
    assert status["paused"] is True and status["counts"]["paused"] == 1


def test_a_worker_on_a_redis_that_refuses_its_password_exits_2_at_start(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", password="right-password", durable=False).start()
    try:
        wrong = f"redis://:wrong-password@127.0.0.1:{server.port}/0"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "agentcron",
                "worker",
                "--queue",
                "emails",
                "--burst",
                "--handler",
                "json:dumps",
                "--store",
                wrong,
                "--data-dir",
                str(tmp_path / "data"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        server.stop()
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("agentcron: ") and result.stderr.count("\n") == 1, result.stderr
    assert "refused authentication" in result.stderr
    assert "wrong-password" not in result.stderr  # the password is masked
