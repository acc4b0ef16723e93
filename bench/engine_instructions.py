"""Instructions per fire: the deterministic before/after instrument for the engine's hot path.

`bench.engine_cpu` measures CPU time per fire on the virtual clock; on a shared VM two
rounds of the same code differ by up to 10 %, which hides any single change worth 1-3 %.
This runs `bench.engine_cpu` under Valgrind's cachegrind (`--cache-sim=no`: it only
counts instructions) twice, for a short and a longer run, and divides the difference in
instructions by the fires between them, so start-up and registration cancel out. With
`PYTHONHASHSEED=0` two runs of one version agree to within 0.01 %.

    .venv/bin/python -m bench.engine_instructions              # about 1-3 minutes
    .venv/bin/python -m bench.engine_instructions --lib agentcron   # agentcron only
    PYTHONPATH=/tmp/other-checkout/src:. .venv/bin/python -m bench.engine_instructions

Needs `valgrind` (Debian: `apt-get install valgrind`). Instructions are not time (cache
misses and the collector's pauses are not in them), so confirm a real gain on the real
clock (`bench.engine_bench`, `bench.engine_ticks`) before calling it one.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys

_TOTAL = re.compile(r"I\s+refs:\s+([\d,]+)")


def instructions(lib: str, jobs: int, seconds: int) -> int:
    """Instructions of one `bench.engine_cpu --lib LIB` process running `seconds` after
    warm-up."""
    command = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, "-m", "bench.engine_cpu", "--lib", lib,
        "--jobs", str(jobs), "--seconds", str(seconds), "--rounds", "1",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    found = _TOTAL.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed ({done.returncode}): {done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--short", type=int, default=1, help="seconds of the short run")
    parser.add_argument("--long", type=int, default=4, help="seconds of the long run")
    parser.add_argument(
        "--lib",
        choices=("both", "agentcron", "baseline"),
        default="both",
        help="both (default): agentcron, the heapq baseline and their ratio, the CPU goal's",
    )
    opts = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed; on Debian: apt-get install valgrind")
    if opts.long <= opts.short:
        raise SystemExit("--long must be more seconds than --short")
    fires = opts.jobs * (opts.long - opts.short)
    per_fire = {}
    for lib in ("agentcron", "baseline") if opts.lib == "both" else (opts.lib,):
        short = instructions(lib, opts.jobs, opts.short)
        long = instructions(lib, opts.jobs, opts.long)
        per_fire[lib] = (long - short) / fires
        print(
            f"{lib}, {opts.jobs:,} jobs: {per_fire[lib]:,.0f} instructions per fire "
            f"(seconds {opts.short}-{opts.long} after warm-up, {fires:,} fires)"
        )
    if len(per_fire) == 2:
        print(f"agentcron / baseline: {per_fire['agentcron'] / per_fire['baseline']:.2f}x")


if __name__ == "__main__":
    main()
