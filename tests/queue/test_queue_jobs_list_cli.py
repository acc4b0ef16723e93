"""`agentcron queue jobs` and `agentcron queue show` through the real command, on SQLite
files and on a throwaway redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from agentcron.cli.main import build_app
from agentcron.queue import Job, open_queue
from agentcron.queue.sqlite import SqliteQueue
from agentcron.queue.sqlite_sql import LIST, LIST_ORDER

runner = CliRunner()
HOSTILE_NAME = "mail\x1b[2J\x1b]0;owned\x07[bold]x[/bold]"
HOSTILE_ERROR = "smtp down\x1b[31m red\nTraceback (most recent call last):\n  line 2\x9b31m"


def cli(*args: str) -> tuple[int, str, str]:
    # A wide terminal: the assertions read whole cells (rich folds them on narrow ones).
    result = runner.invoke(build_app(), list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.stdout, result.stderr


def fill(url: str) -> None:
    """Queue `emails`: one completed, one failed (hostile name and error), one waiting."""

    async def go() -> None:
        q = open_queue(url, "emails")
        try:
            await q.add("ok", {"to": "a@b"})
            await q.add(HOSTILE_NAME, {"to": "c@d"}, job_id="bad-1")

            async def handler(job: Job) -> object:
                if job.id == "bad-1":
                    raise RuntimeError(HOSTILE_ERROR)
                return {"sent": 1}

            await q.worker(handler).run(burst=True)
            await q.add("later", {"n": 3}, priority=4)
        finally:
            await q.close()

    asyncio.run(go())


def sqlite_store(tmp_path: Path) -> str:
    store = f"sqlite:///{tmp_path}/q.db"
    assert cli("db", "migrate", "--store", store)[0] == 0
    fill(store)
    return store


def test_jobs_lists_failed_jobs_with_the_first_line_of_their_error(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    code, out, err = cli("queue", "jobs", "emails", "--state", "failed", "--store", store)
    assert code == 0, err
    assert "failed jobs of queue emails" in out and "bad-1" in out
    assert "smtp down\\x1b[31m red" in out
    assert "Traceback" not in out  # the first line only


def test_jobs_and_show_escape_control_characters_and_markup(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    listed = cli("queue", "jobs", "emails", "--state", "failed", "--store", store)
    shown = cli("queue", "show", "emails", "bad-1", "--store", store)
    for code, out, _ in (listed, shown):
        assert code == 0
        assert not any(c in out for c in "\x1b\x07\x9b"), out
    assert "mail\\x1b[2J\\x1b]0;owned\\x07[bold]x[/bold]" in shown[1]  # markup shown as text
    # The full error, its lines kept, each escaped.
    assert "Traceback (most recent call last):\n  line 2\\x9b31m" in shown[1]


def test_jobs_json_prints_the_job_dicts_exactly(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    code, out, _ = cli("queue", "jobs", "emails", "--state", "failed", "--store", store, "--json")
    assert code == 0
    (job,) = json.loads(out)
    assert (job["id"], job["name"], job["state"], job["error"]) == (
        "bad-1", HOSTILE_NAME, "failed", f"RuntimeError: {HOSTILE_ERROR}",
    )  # fmt: skip
    assert job["data"] == {"to": "c@d"} and job["finished_at"]
    code, out, _ = cli("queue", "jobs", "emails", "--store", store, "--json")
    assert [(j["name"], j["priority"]) for j in json.loads(out)] == [("later", 4)]


def test_jobs_pages_with_limit_and_offset(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    args = ("queue", "jobs", "emails", "--state", "completed", "--store", store)
    code, out, _ = cli(*args, "--limit", "1")
    assert code == 0 and "more may follow: --offset 1" in out
    code, out, _ = cli(*args, "--offset", "1")
    assert code == 0 and out.strip() == "no completed jobs in queue emails from offset 1"


def test_show_prints_everything_about_a_job(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    (ok,) = json.loads(
        cli("queue", "jobs", "emails", "--state", "completed", "--store", store, "--json")[1]
    )
    code, out, _ = cli("queue", "show", "emails", ok["id"], "--store", store)
    assert code == 0
    for text in ("state", "completed", "1 made of 1", "progress", '"to": "a@b"', '"sent": 1'):
        assert text in out, text
    code, out, _ = cli("queue", "show", "emails", ok["id"], "--store", store, "--json")
    assert code == 0 and json.loads(out)["result"] == {"sent": 1}


def test_bad_input_and_unknown_ids_are_one_line_exit_2(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    for args, says in [
        (("jobs", "emails", "--state", "paused"), "--state must be one of"),
        (("jobs", "emails", "--limit", "0"), "--limit must be from 1 to 1000"),
        (("jobs", "emails", "--limit", "1001"), "--limit must be from 1 to 1000"),
        (("jobs", "emails", "--offset", "-1"), "--offset must be from 0"),
        (("jobs", "bad:name"), "may not contain ':'"),
        (("show", "emails", "nope\x1b[2J"), "no job with id 'nope\\x1b[2J' in queue emails"),
    ]:
        code, out, err = cli("queue", *args, "--store", store)
        assert code == 2, (args, out, err)
        assert err.count("\n") == 1 and says in err, (args, err)
        assert "\x1b" not in err
    missing = f"sqlite:///{tmp_path}/missing.db"
    code, _, err = cli("queue", "jobs", "emails", "--store", missing)
    assert code == 2 and "no database" in err
    assert not (tmp_path / "missing.db").exists()


def test_jobs_and_show_work_on_a_redis_queue(redis_url: str) -> None:
    fill(redis_url)
    code, out, _ = cli("queue", "jobs", "emails", "--state", "failed", "--store", redis_url)
    assert code == 0 and "bad-1" in out and "\x1b" not in out
    code, out, _ = cli("queue", "show", "emails", "bad-1", "--store", redis_url, "--json")
    assert code == 0 and json.loads(out)["error"] == f"RuntimeError: {HOSTILE_ERROR}"
    code, _, err = cli("queue", "show", "emails", "nope", "--store", redis_url)
    assert code == 2 and "no job with id 'nope'" in err


def test_every_listing_order_is_read_from_the_index(tmp_path: Path) -> None:
    path = tmp_path / "q.db"

    async def make() -> None:
        q = SqliteQueue(path, "emails")
        await q.add("x", {})
        await q.close()

    asyncio.run(make())
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for state, order in LIST_ORDER.items():
            query = LIST.format(rank="" if state == "waiting" else " AND rank=0", order=order)
            plan = " ".join(
                str(row[-1])
                for row in conn.execute(f"EXPLAIN QUERY PLAN {query}", ("emails", state, 50, 0))
            )
            assert "USING INDEX queue_jobs_next" in plan, (state, plan)
            assert "TEMP B-TREE" not in plan, (state, plan)
