"""One scheduler node for the cluster tests, run as a real process::

    python cluster_node.py URL NODE_ID JOB START END [--skew S] [--misfire P] [--lease S]

JOB is `tick` (every second between START and END) or `long` (once at START, retried once
when interrupted). `--skew` shifts this node's wall clock by S seconds. The node prints
`ready` once started and one JSON line per change of `health()["status"]`; it stops
gracefully on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agentcron import Scheduler
from agentcron.clock import SystemClock
from agentcron.store.redis import RedisStore
from agentcron.triggers import Date


class SkewedClock(SystemClock):
    """The system clock, `skew_s` seconds off (as a machine whose NTP is broken)."""

    def __init__(self, skew_s: float) -> None:
        self.skew = timedelta(seconds=skew_s)

    def now(self) -> datetime:
        return super().now() + self.skew


async def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("url", "node_id", "job", "start", "end"):
        parser.add_argument(name)
    parser.add_argument("--skew", type=float, default=0.0)
    parser.add_argument("--misfire", default="skip")
    parser.add_argument("--lease", type=float, default=30.0)
    args = parser.parse_args()
    clock = SkewedClock(args.skew)
    store = RedisStore(args.url, clock=clock)
    sched = Scheduler(store, clock=clock, node_id=args.node_id, lease_s=args.lease)
    start, end = datetime.fromisoformat(args.start), datetime.fromisoformat(args.end)
    if args.job == "tick":
        sched.add_job(
            "tick",
            trigger="* * * * * *",
            handler="cluster_jobs:tick",
            start=start,
            end=end,
            misfire={"policy": args.misfire},
            # Each node waits a random part of a second before claiming, so the winner of
            # each occurrence is random and the work spreads even when one node is faster.
            jitter=0.3,
        )
    else:
        sched.add_job(
            "long",
            trigger=Date(start),
            handler="cluster_jobs:long",
            retry={"max_attempts": 2, "base_delay": 0.0, "strategy": "fixed"},
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with sched:
        print("ready", flush=True)
        status = None
        while not stop.is_set():
            now_status = sched.health()["status"]
            if now_status != status:
                status = now_status
                print(json.dumps({"health": status}), flush=True)
            try:
                await asyncio.wait_for(stop.wait(), 0.1)
            except TimeoutError:
                pass
    print(json.dumps({"health": "stopped"}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
