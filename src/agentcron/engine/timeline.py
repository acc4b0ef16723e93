"""The next fire times, grouped by time: O(1) to add or reschedule a job, O(log t) per
distinct time t to find the next wake.

Jobs on one schedule wake together, so the jobs due at one instant share one `_Slot` (a
list, in push order) and the heap holds each distinct wake time once: 100,000 jobs on 1,440
daily schedules cost 100,000 list items and a heap of 1,440 datetimes, not 100,000 heap
tuples. Wake times are the aware datetimes the triggers give (UTC): converting each to a
float would cost more than the heap and the slot lookup together.

Items are invalidated lazily: an entry's `slot` names the one slot it is queued in (None:
not queued), so an item in any other slot (rescheduled, dropped or already popped) is stale
and is dropped when its slot is popped. Each slot counts its live entries, so a slot whose
entries have all moved is skipped without reading them. Equal wake times pop in push order
(an entry pushed twice to one time keeps its latest position).
"""

from __future__ import annotations

import heapq
from datetime import datetime

from agentcron.engine.active import JobEntry

__all__ = ["Timeline"]


class _Slot(list[JobEntry]):
    """The entries pushed for one wake time (some may be stale), and how many are live."""

    __slots__ = ("live",)

    def __init__(self) -> None:
        super().__init__()
        self.live = 0


class Timeline:
    def __init__(self) -> None:
        self._heap: list[datetime] = []  # the distinct wake times that have a slot
        self._slots: dict[datetime, _Slot] = {}
        self._items = 0  # queued items, stale ones included

    def __len__(self) -> int:
        return self._items

    def push(self, entry: JobEntry, wake: datetime) -> None:
        """(Re)schedule `entry` to wake at `wake` (aware); older items die."""
        slot = self._slots.get(wake)
        if slot is None:
            slot = self._slots[wake] = _Slot()
            heapq.heappush(self._heap, wake)
        old = entry.slot
        if old is not slot:
            if old is not None:
                old.live -= 1
            slot.live += 1
            entry.slot = slot
        slot.append(entry)
        self._items += 1

    def drop(self, entry: JobEntry) -> None:
        old = entry.slot
        if old is not None:
            old.live -= 1
            entry.slot = None

    def pop_due(self, now: datetime) -> list[JobEntry]:
        """Every live entry due at `now`, in wake order, in one pass."""
        heap, slots = self._heap, self._slots
        due: list[JobEntry] = []
        while heap and heap[0] <= now:
            slot = slots.pop(heapq.heappop(heap))
            self._items -= len(slot)
            if not slot.live:
                continue
            if len(slot) == slot.live:  # no stale or repeated item (the usual case)
                for entry in slot:
                    entry.slot = None
                due += slot
                continue
            # An entry pushed twice here is due at its latest push: read from the end.
            picked = []
            for entry in reversed(slot):
                if entry.slot is slot:
                    entry.slot = None
                    picked.append(entry)
            picked.reverse()
            due += picked
        return due

    def count_at(self, wake: datetime) -> int:
        """How many live entries wake at exactly `wake`."""
        slot = self._slots.get(wake)
        return 0 if slot is None else slot.live

    def next_wake(self) -> datetime | None:
        heap, slots = self._heap, self._slots
        while heap and not slots[heap[0]].live:
            self._items -= len(slots.pop(heapq.heappop(heap)))
        return heap[0] if heap else None
