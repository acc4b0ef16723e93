"""Real scheduler processes (`cluster_node.py`) on one Redis, for the cluster tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


@dataclass
class Node:
    """A scheduler process (`cluster_node.py`) and what it printed."""

    node_id: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    def health(self) -> list[str]:
        return [json.loads(line)["health"] for line in list(self.lines) if line.startswith("{")]


class Cluster:
    """Starts nodes on one Redis; every node shares one handler log (JSON lines)."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.tmp_path = tmp_path
        self.log = tmp_path / "handler.jsonl"
        self.log.touch()
        self.nodes: dict[str, Node] = {}

    def start(self, node_id: str, job: str, start: datetime, end: datetime, *opts: str) -> Node:
        env = {**os.environ, "AGENTCRON_CLUSTER_LOG": str(self.log), "PYTHONPATH": str(SRC)}
        stderr = self._stderr(node_id).open("w")
        process = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "cluster_node.py"),
                self.url,
                node_id,
                job,
                start.isoformat(),
                end.isoformat(),
                *opts,
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
        stderr.close()  # the child has its own copy
        node = Node(node_id, process)
        node.reader = threading.Thread(target=self._read, args=(node,), daemon=True)
        node.reader.start()
        self.nodes[node_id] = node
        return node

    @staticmethod
    def _read(node: Node) -> None:
        assert node.process.stdout is not None
        for line in node.process.stdout:
            line = line.strip()
            node.lines.append(line)
            if line == "ready":
                node.ready.set()

    def _stderr(self, node_id: str) -> Path:
        return self.tmp_path / f"{node_id}.stderr"

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        for node in self.nodes.values():
            assert node.ready.wait(timeout_s), (
                f"node {node.node_id} did not start (exit {node.process.poll()}): "
                f"{self._stderr(node.node_id).read_text()[-3000:]}"
            )

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def wait_for(self, predicate: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)  # polling real processes, bounded by timeout_s (noqa: sleep-ok)
        raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")

    def stop(self) -> None:
        for node in self.nodes.values():
            if node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            try:
                node.process.wait(30)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
            if node.reader is not None:
                node.reader.join(10)
            if node.process.stdout is not None:
                node.process.stdout.close()


def second_boundary(after_s: float) -> datetime:
    """The first whole UTC second at least `after_s` from now."""
    t = datetime.now(UTC) + timedelta(seconds=after_s)
    return t.replace(microsecond=0) + timedelta(seconds=1)
