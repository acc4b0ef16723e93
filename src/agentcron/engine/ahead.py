"""How far ahead of a crowded instant the engine claims its fires.

A tick's handlers start one after another, each after the claim, the `running` record and
the bookkeeping of every fire before it: at 10,000 fires in one instant, the last handler
starts about as late as the whole tick takes. Most of that work does not need the instant to
have come. For an instant with at least `MIN_FIRES` fires, the engine therefore wakes
`lead_s(...)` before it, computes the next fires and claims the instant's fires (their
`running` records written with the claims, as in any tick), sleeps until the instant, and
only then starts the handlers: a handler never starts before its time, and the lateness a
crowded instant adds is only that of starting its handlers.

What this changes for a fire claimed ahead (at most `MAX_LEAD_S` before its time): its job's
`last_fire` and next fire move when it is claimed, not when it starts; a job paused in
between records the fire `skipped` (paused), a job removed in between drops it with its
history; a job updated in between runs its new definition for it; a scheduler stopping in
between records each such fire `cancelled`, since no other node may run an occurrence that
this one claimed. What does not change: a fire of a job busy at the claim is decided at
the instant, by its overlap policy and the job as they are then, as in any tick.
"""

from __future__ import annotations

__all__ = ["CLAIM_SLICE", "MAX_LEAD_S", "MIN_FIRES", "PER_FIRE_S", "lead_s"]

#: Instants with fewer fires are claimed at their time: their tick is short anyway.
MIN_FIRES = 500
#: The least time claimed per fire (about twice what the in-memory store takes here).
PER_FIRE_S = 10e-6
#: Never claim earlier than this before an instant.
MAX_LEAD_S = 0.25
#: Fires taken (scheduled and claimed) between two turns of the event loop while claiming
#: ahead: about 2.5 ms of work here (10 µs a fire). Without the turns, the rest of the
#: process (running handlers, the dashboard, heartbeats) waited for all of an instant's
#: claims, 155 ms at 10,000 fires; a task woken by a timer waits two or three slices (its
#: timer, then its step, each behind the claiming task's next slice). Not a turn per chunk
#: of 32: an instant of 500 fires would then need more turns than a test's
#: `VirtualClock.settle()` gives (20) before its instant.
CLAIM_SLICE = 256


def lead_s(fires: int, measured_per_fire_s: float = 0.0) -> float:
    """Seconds before an instant with `fires` due fires to start claiming them (0: at the
    instant). `measured_per_fire_s`: what taking the fires took per fire last time, on
    the real clock (scheduling each job's next fire, then the claims: a slow store claims
    earlier); 1.5 times it is allowed, at least `PER_FIRE_S`."""
    if fires < MIN_FIRES:
        return 0.0
    return min(MAX_LEAD_S, fires * max(PER_FIRE_S, 1.5 * measured_per_fire_s))
