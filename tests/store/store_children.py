"""Child processes for the store tests: run as `python store_children.py MODE DB [ARGS]`.

Each mode prints one line per acknowledged action (flushed), so the parent knows exactly
what the store promised before it killed the child or the disk filled up.

* `claim DB NODE GO_FILE COUNT` - wait for GO_FILE, then claim COUNT occurrences of one job
  (every occurrence three times, concurrently) and print `won <i>` for each claim it won.
* `record DB` - record runs forever, printing `ack <run_id>` after each `record_run` returns.
* `fill DB LIMIT_BYTES` - cap the size of any file this process writes (RLIMIT_FSIZE), then
  record runs with a large output tail until the store raises `StoreError`; prints
  `ack <run_id>` per acknowledged run and `error <message>` at the end.
* `lease DB` - record one running run with a lease and print `leased`, then wait forever.
* `takeover DB GO_FILE` - wait for GO_FILE, then call `interrupt_expired` ten times at once
  and print `took <run_id>` for every run handed to this process.
* `open DB GO_FILE` - wait for GO_FILE, then open (creating) the store and print `opened`,
  or `error <message>`.
"""

from __future__ import annotations

import asyncio
import resource
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agentcron.models import RunRecord, RunStatus
from agentcron.store.base import StoreError
from agentcron.store.sqlite import SqliteStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def wait_for_file(path: str) -> None:
    while not Path(path).exists():
        time.sleep(0.001)  # a start barrier between two real processes (noqa: sleep-ok)


async def claim(db: str, node: str, go_file: str, count: int) -> None:
    store = SqliteStore(db, busy_timeout_s=30.0)
    await store.open()
    await asyncio.to_thread(wait_for_file, go_file)
    tries = [i for _ in range(3) for i in range(count)]
    results = await asyncio.gather(
        *(store.claim_fire("tick", T0 + timedelta(seconds=i), node, now=T0) for i in tries)
    )
    for i, won in zip(tries, results, strict=True):
        if won:
            say(f"won {i}")
    await store.close()


def a_run(n: int, *, tail: str | None = None) -> RunRecord:
    return RunRecord(
        run_id=f"run-{n:06d}",
        job_id="tick",
        scheduled_for=T0 + timedelta(seconds=n),
        status=RunStatus.succeeded,
        started_at=T0 + timedelta(seconds=n),
        finished_at=T0 + timedelta(seconds=n, milliseconds=5),
        output_tail=tail,
    )


async def record(db: str) -> None:
    store = SqliteStore(db)
    await store.open()
    n = 0
    while True:
        run = a_run(n)
        await store.record_run(run)
        say(f"ack {run.run_id}")
        n += 1


async def fill(db: str, limit_bytes: int) -> None:
    store = SqliteStore(db)
    await store.open()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    tail = "x" * 4000
    try:
        for n in range(100_000):
            await store.record_run(a_run(n, tail=tail))
            say(f"ack {a_run(n).run_id}")
    except StoreError as exc:
        say(f"error {exc}")
    await store.close()


async def lease(db: str) -> None:
    store = SqliteStore(db)
    await store.open()
    run = RunRecord(
        run_id="leased",
        job_id="tick",
        scheduled_for=T0,
        status=RunStatus.running,
        started_at=T0,
        node_id="node-dies",
        lease_expires_at=T0 + timedelta(seconds=30),
    )
    await store.record_run(run)
    say("leased")
    await asyncio.Event().wait()


async def takeover(db: str, go_file: str) -> None:
    store = SqliteStore(db, busy_timeout_s=30.0)
    await store.open()
    await asyncio.to_thread(wait_for_file, go_file)
    batches = await asyncio.gather(
        *(store.interrupt_expired(T0 + timedelta(hours=1)) for _ in range(10))
    )
    for run in (run for batch in batches for run in batch):
        say(f"took {run.run_id}")
    await store.close()


async def open_new(db: str, go_file: str) -> None:
    store = SqliteStore(db)
    wait_for_file(go_file)
    try:
        await store.open()
    except StoreError as exc:
        say(f"error {exc}")
        return
    await store.close()
    say("opened")


def main(argv: list[str]) -> None:
    mode, db, *rest = argv
    if mode == "claim":
        asyncio.run(claim(db, rest[0], rest[1], int(rest[2])))
    elif mode == "record":
        asyncio.run(record(db))
    elif mode == "fill":
        asyncio.run(fill(db, int(rest[0])))
    elif mode == "takeover":
        asyncio.run(takeover(db, rest[0]))
    elif mode == "lease":
        asyncio.run(lease(db))
    elif mode == "open":
        asyncio.run(open_new(db, rest[0]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
