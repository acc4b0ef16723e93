"""docs/engine.md: every Python example runs as written and prints what its comments say; its
signatures and tables name what the code has; its links lead somewhere."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agentcron import (
    CircuitBreaker,
    Command,
    Http,
    Interval,
    Retry,
    RunStatus,
    Scheduler,
    SkipReason,
)
from agentcron.engine import scheduler as scheduler_module
from agentcron.engine.catchup import ENUMERATION_CAP
from agentcron.events import EVENT_TYPES
from agentcron.handlers import RunContext
from agentcron.jobs import JOB_OPTIONS
from agentcron.models import RunQuery, RunRecord
from agentcron.policies import Misfire, Overlap
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock
from helpers.polling import wait_for

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "engine.md").read_text(encoding="utf-8")
FLAT = " ".join(DOC.split())  # the text without its line breaks


def fenced(info: str) -> list[str]:
    """The code blocks fenced with ```` ```info ```` (`""`: a bare fence), in order."""
    blocks: list[str] = []
    lines: list[str] | None = None
    language = ""
    for line in DOC.splitlines():
        if lines is None:
            if line.startswith("```"):
                lines, language = [], line[3:]
        elif line == "```":
            if language == info:
                blocks.append("\n".join(lines) + "\n")
            lines = None
        else:
            lines.append(line)
    return blocks


BLOCKS = fenced("python")

#: Each Python example, by a line only it has; `test_every_python_example_is_run_by_a_test`
#: holds this list to the document, and each entry has a test below.
EXAMPLES = {
    "first": "sched.run()   # blocks",
    "lifecycle": 'run = await sched.run_now("digest")',
    "triggers": 'sched.add_job("every-5-min"',
    "options": '"gmail-sync",',
    "decorators": "def poll_calendar():",
    "errors": "except JobConfigError as exc:",
    "run time": 'sched.pause("poll", note="travelling")',
    "callables": "def without_context():",
    "references": '"myagent.stats:crunch"',
    "commands": 'sched.add_job("hello"',
    "http": "handler=Http(",
    "events": "def on_failure(event):",
    "events in a thread": "in_thread=True)",
    "testing": "async def test_the_digest_runs",
    "clock jumps": "await clock.suspend(3590)",
    "retry": "raise ConnectionError",
}

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def example(name: str) -> str:
    [code] = [block for block in BLOCKS if EXAMPLES[name] in block]
    return code


def run_example(code: str, name: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": f"docs_engine_{name.replace(' ', '_')}"}
    exec(compile(code, f"docs/engine.md ({name})", "exec"), namespace)
    return namespace


def comments(code: str) -> list[str]:
    """The text of every `# ...` comment of the example, in order."""
    return [line.split("# ", 1)[1].strip() for line in code.splitlines() if "# " in line]


def expected_output(code: str) -> list[str]:
    """What the example says it prints: its closing comment lines, else the comments on
    its `print(...)` lines."""
    lines = code.rstrip("\n").splitlines()
    closing: list[str] = []
    while lines and lines[-1].startswith("# "):
        closing.insert(0, lines.pop()[2:])
    if closing:
        return closing
    return [
        line.split("  # ", 1)[1].strip() for line in lines if "print(" in line and "  # " in line
    ]


def printed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def run_as_printed(name: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Run the example `name`, check it printed what its comments say; its namespace."""
    code = example(name)
    namespace = run_example(code, name)
    assert printed(capsys) == expected_output(code)
    return namespace


def test_every_python_example_is_run_by_a_test() -> None:
    for block in BLOCKS:
        names = [name for name, marker in EXAMPLES.items() if marker in block]
        assert len(names) == 1, block[:200]
    assert len(BLOCKS) == len(EXAMPLES)


# == the examples, one test each ===========================================================
def test_the_first_example_runs_until_sigint_and_stores_its_jobs(tmp_path: Path) -> None:
    script = tmp_path / "first.py"
    script.write_text(example("first"), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: stored_ids(tmp_path / "data" / "scheduler.db") == DEFINED)
        proc.send_signal(signal.SIGINT)  # Ctrl+C: the graceful stop
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert stored_ids(tmp_path / "data" / "scheduler.db") == DEFINED


DEFINED = ["disk-report", "heartbeat"]


def stored_ids(db: Path) -> list[str]:
    """The job ids in the SQLite file, read as another process would ([] until it exists)."""
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        try:
            return sorted(row[0] for row in conn.execute("SELECT id FROM jobs"))
        except sqlite3.OperationalError:  # the schema is still being created
            return []


#: The examples whose printed output is the whole check (what each one shows, in its test id).
PRINT_ONLY = {
    "lifecycle": "runs the job now and lists its run",
    "triggers": "lists each trigger as shown",
    "errors": "raises job config errors naming the field",
    "run time": "pauses resumes updates and removes on a virtual clock",
    "callables": "runs each kind of python function as described",
    "commands": "prints the status error and output shown",
    "events": "delivers only the failure it subscribed to",
    "events in a thread": "posts from a worker thread",
}


@pytest.mark.parametrize("name", list(PRINT_ONLY), ids=list(PRINT_ONLY.values()))
def test_the_example_prints_what_its_comments_say(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_as_printed(name, capsys)


def test_the_options_example_builds_the_job_it_describes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = run_as_printed("options", capsys)["job"]
    assert job.timezone == "Europe/Berlin" and job.tags == ("mail", "integration")
    assert job.retry.retry_on == (ConnectionError, "rate limit")
    assert job.circuit == CircuitBreaker(failure_threshold=5, reset_timeout=300, name="gmail")
    assert (job.jitter_s, job.concurrency_group) == (20.0, "llm")
    assert job.end == datetime(2026, 12, 31, 22, 59, 59, tzinfo=UTC)


def test_the_decorators_register_their_functions_under_the_ids_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    namespace = run_as_printed("decorators", capsys)
    assert namespace["sched"].job("poll_calendar").job.overlap.policy == "queue"
    assert callable(namespace["summarise_inbox"])  # returned unchanged


@pytest.fixture
def myagent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The package the reference example names, importable from a temporary directory (in
    child processes too: they get the parent's import path)."""
    package = tmp_path / "myagent"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "digest.py").write_text(
        "async def send(ctx):\n    ctx.logger.info('digest of %s', ctx.scheduled_for)\n"
    )
    (package / "stats.py").write_text(
        "import os\n\ndef crunch(ctx):\n    print('crunching', ctx.job_id, 'in', os.getpid())\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package
    for name in [m for m in sys.modules if m == "myagent" or m.startswith("myagent.")]:
        del sys.modules[name]


def test_references_and_process_isolation_run_from_an_importable_package(
    myagent: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = run_as_printed("references", capsys)
    sched = namespace["sched"]
    assert sched.job("digest").job.handler.describe() == "python myagent.digest:send"
    # (a memory store: still readable after the scheduler closed it)
    [crunch] = asyncio.run(sched.store.list_runs(RunQuery(job_id="crunch")))
    # The function printed into the run's output, from a process of its own.
    words = crunch.output_tail.split()
    assert words[:3] == ["crunching", "crunch", "in"] and int(words[3]) != os.getpid()


class _Hook(BaseHTTPRequestHandler):
    seen: list[tuple[str, dict[str, str], Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hook_server() -> Iterator[tuple[str, list[tuple[str, dict[str, str], Any]]]]:
    seen: list[tuple[str, dict[str, str], Any]] = []
    handler = type("Hook", (_Hook,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_the_http_example_posts_to_a_loopback_server_with_the_idempotency_key(
    hook_server: tuple[str, list[tuple[str, dict[str, str], Any]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    address, seen = hook_server
    code = example("http")
    assert "127.0.0.1:8080" in code
    run_example(code.replace("127.0.0.1:8080", address), "http")
    assert printed(capsys) == expected_output(code)
    [(path, headers, body)] = seen
    assert (path, body) == ("/hooks/tick", {"source": "agentcron"})
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["Idempotency-Key"].startswith("tick@")
    assert headers["X-Agentcron-Job-Id"] == "tick" and headers["X-Agentcron-Attempt"] == "1"


async def test_the_testing_example_passes() -> None:
    namespace = run_example(example("testing"), "testing")
    await namespace["test_the_digest_runs_at_9_and_17_berlin_time_on_weekdays"]()


def test_the_clock_jump_example_runs_a_missed_fire_once_and_nothing_twice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = example("clock jumps")
    run_example(code, "clock jumps")
    narrated = [c for c in comments(code) if c.startswith("run for")]
    assert printed(capsys) == narrated + expected_output(code)


def test_the_retry_example_attempts_at_the_times_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = example("retry")
    run_example(code, "retry")
    assert printed(capsys) == expected_output(code)


# == signatures and tables =================================================================
def rendered(name: str, obj: Callable[..., Any]) -> str:
    """`name(a, *, b=1, ...)` as the document writes signatures (double quotes)."""
    parts: list[str] = []
    star = False
    for param in inspect.signature(obj).parameters.values():
        if param.name == "self":
            continue
        if param.kind is param.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        if param.default is param.empty:
            parts.append(param.name)
        else:
            parts.append(f"{param.name}={param.default!r}".replace("'", '"'))
    return f"{name}({', '.join(parts)})"


def fenced_signatures() -> list[str]:
    return [" ".join(block.split()) for block in fenced("")]


@pytest.mark.parametrize(
    ("name", "obj"),
    [
        ("Scheduler", Scheduler.__init__),
        ("Retry", Retry),
        ("CircuitBreaker", CircuitBreaker),
        ("Command", Command.__init__),
        ("Http", Http.__init__),
    ],
)
def test_each_signature_shown_is_the_codes(name: str, obj: Callable[..., Any]) -> None:
    assert rendered(name, obj) in fenced_signatures()


def test_every_scheduler_argument_is_in_its_table() -> None:
    for name in inspect.signature(Scheduler.__init__).parameters:
        if name != "self":
            assert f"| `{name}` |" in DOC, name


def test_every_job_option_is_in_the_options_table() -> None:
    for option in JOB_OPTIONS - {"start", "end"}:
        assert f"| `{option}` |" in DOC, option
    assert "| `start` / `end` |" in DOC


def test_every_event_type_is_in_the_events_table() -> None:
    table = "\n".join(line for line in DOC.splitlines() if line.startswith("| `"))
    for event_type, cls in EVENT_TYPES.items():
        assert f"`{event_type}`" in table and cls.__name__ in table, event_type


def test_every_run_status_and_skip_reason_is_in_its_table() -> None:
    for status in RunStatus:
        assert f"| `{status}` |" in DOC, status
    for reason in SkipReason:
        assert f"| `{reason}` |" in DOC, reason


def test_every_run_record_and_run_context_field_is_documented() -> None:
    for field in RunRecord._fields:
        assert f"`{field}`" in DOC, field
    for field in dataclasses.fields(RunContext):
        if field.name != "progress_callback":
            assert f"| `{field.name}` |" in DOC, field.name
    for prop in ("lateness", "occurrence_key", "cancel_requested"):
        assert f"| `{prop}` |" in DOC, prop


def test_the_policy_defaults_it_states_are_the_codes() -> None:
    overlap, misfire = Overlap(), Misfire()
    assert f"| `queue` | `max_queue` ({overlap.max_queue}) |" in DOC
    assert f"| `delay` | `delay` ({overlap.delay_s:g} s) |" in DOC
    assert f"| `timeout` | `max_skips` ({overlap.max_skips}) |" in DOC
    assert f"| `concurrent` | `max_concurrent` ({overlap.max_concurrent}) |" in DOC
    assert f"| `grace` | {misfire.grace_s:g} s |" in DOC
    assert f"| `max_catchup` | {misfire.max_catchup} |" in DOC
    assert (
        f'`Misfire(policy="{misfire.policy}", grace_s={misfire.grace_s}, '
        f"catchup_window_s={misfire.catchup_window_s}, max_catchup={misfire.max_catchup})`"
    ) in FLAT
    assert ENUMERATION_CAP == 1000 and "More than a thousand missed fires" in FLAT
    assert scheduler_module.CLOCK_JUMP_S == 2.0 and "more than 2 s is a clock jump" in FLAT
    assert scheduler_module.MAX_NOTE_LENGTH == 1000 and "(at most 1,000 characters)" in FLAT


def test_every_link_leads_to_a_file_or_a_heading() -> None:
    def slug(heading: str) -> str:
        return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    anchors = {slug(h) for h in re.findall(r"^#+ (.+)$", DOC, re.M)}
    for target in re.findall(r"\]\(([^)]+)\)", DOC):
        path, _, anchor = target.partition("#")
        if not path:
            assert anchor in anchors, target
            continue
        file = (ROOT / "docs" / path).resolve()
        assert file.is_file(), target
        if anchor:
            text = file.read_text(encoding="utf-8")
            assert anchor in {slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}, target
    assert "[docs/engine.md](docs/engine.md)" in readme


# == claims the examples do not show ======================================================
async def test_sigterm_gives_running_jobs_the_grace_period_then_records_them_cancelled() -> None:
    clock, store = VirtualClock(T0), MemoryStore()
    sched = Scheduler(store, clock=clock, stop_grace_s=30)

    async def long(ctx: RunContext) -> None:
        await clock.sleep(3600)

    sched.add_job("long", trigger="* * * * *", handler=long)
    serving = asyncio.ensure_future(sched.serve())
    await clock.advance(60)  # the run of 00:01 starts
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # serve() handles it
    signal.raise_signal(signal.SIGTERM)
    await clock.settle()
    await clock.advance(29)
    assert not serving.done()  # still within the grace period
    await clock.advance(1)
    await serving
    [run] = await store.list_runs(RunQuery(job_id="long"))
    assert (run.status, run.error) == (RunStatus.cancelled, "cancelled: scheduler stopped")
    assert run.finished_at == T0 + timedelta(seconds=90)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers removed again


async def test_a_second_sigterm_ends_the_grace_period_at_once() -> None:
    clock, store = VirtualClock(T0), MemoryStore()
    sched = Scheduler(store, clock=clock, stop_grace_s=30)

    async def long(ctx: RunContext) -> None:
        await clock.sleep(3600)

    sched.add_job("long", trigger="* * * * *", handler=long)
    serving = asyncio.ensure_future(sched.serve())
    await clock.advance(60)
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    signal.raise_signal(signal.SIGTERM)
    await clock.settle()
    signal.raise_signal(signal.SIGTERM)
    await serving  # no clock advance needed
    [run] = await store.list_runs(RunQuery(job_id="long"))
    assert run.status == RunStatus.cancelled and run.finished_at == T0 + timedelta(seconds=60)


async def noop(ctx: RunContext) -> None:
    pass


async def test_misfire_skip_records_only_the_newest_missed_fire_and_counts_all_in_the_event() -> (
    None
):
    clock = VirtualClock(T0)
    sched = Scheduler(clock=clock)
    missed: list[Any] = []
    sched.events.subscribe(missed.append, types=["run.missed"])
    sched.add_job("m", trigger="*/10 * * * * *", handler=noop, misfire="skip")
    async with sched:
        await clock.advance(10)
        await clock.suspend(45)  # 00:00:55: the fires of 20 to 50 were missed
        await clock.advance(0)
        await sched.drain()
        runs = list(reversed(await sched.runs("m")))
    assert [(r.scheduled_for.second, r.status, r.skip_reason) for r in runs] == [
        (10, RunStatus.succeeded, None),
        (50, RunStatus.skipped, "misfire"),
    ]
    assert [(e.missed, e.action, e.run_id) for e in missed] == [(4, "skip", "")]


async def test_a_full_concurrency_group_skips_the_fire_instead_of_waiting() -> None:
    clock = VirtualClock(T0)
    sched = Scheduler(clock=clock, concurrency_limits={"gpu": 1}, stop_grace_s=0)

    async def long(ctx: RunContext) -> None:
        await clock.sleep(15)

    for job_id in ("a", "b"):
        sched.add_job(job_id, trigger=Interval(seconds=10), handler=long, concurrency_group="gpu")
    async with sched:
        await clock.advance(10)
        [a], [b] = await sched.runs("a"), await sched.runs("b")
    assert {a.status, b.status} == {RunStatus.running, RunStatus.skipped}
    assert SkipReason.concurrency in (a.skip_reason, b.skip_reason)


async def test_a_job_with_a_queue_but_no_dispatch_runs_in_the_scheduler() -> None:
    clock = VirtualClock(T0)
    sched = Scheduler(clock=clock)
    sched.add_job("q", trigger=Interval(seconds=10), handler=noop, queue="emails")
    async with sched:
        await clock.advance(10)
        [run] = await sched.runs("q")
    assert run.status == RunStatus.succeeded and run.queue_job_id is None


async def test_jitter_delays_each_fire_by_less_than_half_the_gap_to_the_next() -> None:
    clock = VirtualClock(T0)
    sched = Scheduler(clock=clock, rng=random.Random(7))
    delays: list[float] = []

    async def record(ctx: RunContext) -> None:
        delays.append((clock.now() - ctx.scheduled_for).total_seconds())
        assert ctx.lateness_s == 0  # measured from the jittered time

    sched.add_job("j", trigger="*/10 * * * * *", handler=record, jitter=60)
    async with sched:
        await clock.advance(600)
    assert len(delays) >= 55 and all(0 <= d < 5 for d in delays) and max(delays) > 4


async def test_run_now_runs_a_paused_or_disabled_job_without_moving_its_schedule() -> None:
    clock = VirtualClock(T0)
    sched = Scheduler(clock=clock)
    sched.add_job("p", trigger="0 9 * * *", handler=noop)
    sched.add_job("d", trigger="0 9 * * *", handler=noop, enabled=False)
    sched.pause("p", note="travelling")
    async with sched:
        paused, disabled = await sched.run_now("p"), await sched.run_now("d")
        assert (paused.status, disabled.status) == (RunStatus.succeeded, RunStatus.succeeded)
        assert paused.scheduled_for == T0
        assert sched.job("p").paused and sched.job("p").next_run is None
        assert sched.job("d").next_run is None


async def test_a_shared_circuit_breaker_opens_for_every_job_that_names_it() -> None:
    clock = VirtualClock(T0)
    sched = Scheduler(clock=clock)

    async def boom(ctx: RunContext) -> None:
        raise RuntimeError("api down")

    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=300, name="gmail")
    sched.add_job("a", trigger=Interval(seconds=10), handler=boom, circuit=breaker)
    b_trigger = Interval(seconds=10, start=T0 + timedelta(seconds=5))
    sched.add_job("b", trigger=b_trigger, handler=noop, circuit=breaker)
    async with sched:
        await clock.advance(10)  # b succeeds at 5, a fails at 10
        await clock.advance(10)  # b succeeds at 15 (the count starts again), a fails at 20
        sched.pause("b")
        await clock.advance(20)  # a fails at 30 (two in a row: open), is skipped at 40
        sched.resume("b")
        await clock.advance(10)  # b's fire at 45 and a's at 50 are skipped
        assert sched.health()["circuits"] == {"gmail": "open"}
        statuses = {
            job_id: [(r.scheduled_for.second, r.skip_reason) for r in await sched.runs(job_id)]
            for job_id in ("a", "b")
        }
    assert statuses["a"][0] == (50, "circuit_open") and statuses["b"][0] == (45, "circuit_open")
