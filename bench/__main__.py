"""`python -m bench [--quick] [NAME ...]` (`make bench`): every benchmark, one after another.

Each runs in its own process (`python -m bench.<name>`) so one library's imports, threads or
event loop cannot slow another's; the tables land on stdout and in bench/README.md by hand.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

#: name -> extra arguments for a quick run
BENCHES: dict[str, list[str]] = {
    "cron_bench": ["--quick"],
    "engine_bench": ["--seconds", "5"],
    "engine_cpu": ["--seconds", "3", "--rounds", "1"],
    "engine_ticks": ["--seconds", "3"],
    "engine_stall": ["--seconds", "3"],
    "engine_instructions": ["--jobs", "2000"],
    "store_bench": ["--quick"],
    "queue_bench": ["--jobs", "2000"],
    "cluster_bench": ["--quick"],
    "dashboard_bench": ["--quick"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short runs (noisier numbers)")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHES)}")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    failed = []
    for name in args.names or list(BENCHES):
        command = [sys.executable, "-m", f"bench.{name}", *(BENCHES[name] if args.quick else [])]
        print(f"\n=== {' '.join(command[1:])}", flush=True)
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
