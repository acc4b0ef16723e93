"""The heap of next fire times: O(log n) to add, reschedule or find the next wake.

Entries are invalidated lazily: every push takes a new sequence number, which is also the
entry's `gen`; an entry in the heap whose number is no longer its job's `gen` (rescheduled,
dropped or already popped) is stale and is dropped when it reaches the top. Equal wake
times pop in push order (the sequence number breaks the tie, never the `JobEntry`).
"""

from __future__ import annotations

import heapq
import itertools

from agentcron.engine.active import JobEntry

__all__ = ["Timeline"]

#: The `gen` of an entry with no live heap item (sequence numbers start at 1).
_NOT_QUEUED = 0


class Timeline:
    def __init__(self) -> None:
        # (wake_ts, seq, entry): three items, and `seq` is the one int `entry.gen` holds too.
        self._heap: list[tuple[float, int, JobEntry]] = []
        self._seq = itertools.count(1)

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, entry: JobEntry, wake_ts: float) -> None:
        """(Re)schedule `entry` to wake at `wake_ts` (epoch seconds); older entries die."""
        seq = entry.gen = next(self._seq)
        heapq.heappush(self._heap, (wake_ts, seq, entry))

    def drop(self, entry: JobEntry) -> None:
        entry.gen = _NOT_QUEUED

    def pop_due(self, now_ts: float) -> list[JobEntry]:
        """Every live entry due at `now_ts`, in wake order, in one pass."""
        heap = self._heap
        due: list[JobEntry] = []
        while heap and heap[0][0] <= now_ts:
            _, seq, entry = heapq.heappop(heap)
            if seq == entry.gen:
                entry.gen = _NOT_QUEUED
                due.append(entry)
        return due

    def next_wake(self) -> float | None:
        heap = self._heap
        while heap and heap[0][1] != heap[0][2].gen:
            heapq.heappop(heap)
        return heap[0][0] if heap else None
