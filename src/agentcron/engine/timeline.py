"""The heap of next fire times: O(log n) to add, reschedule or find the next wake.

Entries are invalidated lazily: rescheduling bumps the job's generation and pushes a new
entry; stale ones are dropped when they reach the top.
"""

from __future__ import annotations

import heapq
import itertools

from agentcron.engine.active import JobEntry

__all__ = ["Timeline"]


class Timeline:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, JobEntry]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, entry: JobEntry, wake_ts: float) -> None:
        """(Re)schedule `entry` to wake at `wake_ts` (epoch seconds); older entries die."""
        entry.gen += 1
        heapq.heappush(self._heap, (wake_ts, next(self._seq), entry.gen, entry))

    def drop(self, entry: JobEntry) -> None:
        entry.gen += 1

    def pop_due(self, now_ts: float) -> list[JobEntry]:
        """Every live entry due at `now_ts`, in wake order, in one pass."""
        heap = self._heap
        due: list[JobEntry] = []
        while heap and heap[0][0] <= now_ts:
            _, _, gen, entry = heapq.heappop(heap)
            if gen == entry.gen:
                entry.gen += 1
                due.append(entry)
        return due

    def next_wake(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2] != heap[0][3].gen:
            heapq.heappop(heap)
        return heap[0][0] if heap else None
