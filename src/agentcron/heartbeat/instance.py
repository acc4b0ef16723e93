"""Which running instance of a role this process is on a data directory.

The node id stored in `<data dir>/node-id` names the host's node, so that a restart keeps
its identity. Two processes of one role running at once on one data directory (two
`agentcron worker --queue emails` for more throughput, or a second `agentcron run`) must
not share it: their heartbeats would land on one node row, and when one of them died the
other's beats would keep that node "online", so nobody would be told.

Each process therefore holds a lock on one numbered slot of its role for as long as it
lives: the first free slot, from 1. Slot 1 keeps the plain node id (what `agentcron health`
checks by default, and what every node had before); slot n > 1 gets `<node id>#n`. The
kernel drops a dead process's lock, SIGKILL included, so its slot (and its node id) is free
for the next process that starts.

The lock files live in `<data dir>/instances/`, named by a hash of the role: a role holds a
queue name, which may contain anything a file name must not.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from agentcron.filelock import lock_or_none

__all__ = ["MAX_INSTANCES", "claim_instance", "instance_node_id"]

#: Slots tried per role before giving up (a runaway loop starting workers, not a setup).
MAX_INSTANCES = 256
_LOCK_DIR = "instances"

#: The slots this process holds: (data directory, role) -> (slot, open lock file). Kept open
#: until the process ends: closing a lock file releases its lock.
_held: dict[tuple[str, str], tuple[int, int]] = {}


def claim_instance(data_dir: str | os.PathLike[str], role: str) -> int:
    """This process's slot of `role` on `data_dir` (1, or the first one no live process
    holds), held until the process ends. The same answer every time it is asked again.

    OSError when the lock directory cannot be written; RuntimeError when every slot up to
    `MAX_INSTANCES` is held."""
    directory = Path(data_dir).resolve()
    key = (str(directory), role)
    held = _held.get(key)
    if held is not None:
        return held[0]
    locks = directory / _LOCK_DIR
    locks.mkdir(parents=True, exist_ok=True)
    stem = hashlib.sha256(role.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    for slot in range(1, MAX_INSTANCES + 1):
        fd = lock_or_none(locks / f"{stem}-{slot}.lock")
        if fd is not None:
            _held[key] = (slot, fd)
            return slot
    raise RuntimeError(
        f"{MAX_INSTANCES} processes of {role!r} already run on {directory}: stop some of them"
    )


def instance_node_id(node_id: str, data_dir: str | os.PathLike[str], role: str) -> str:
    """`node_id` for the first running process of `role` on `data_dir`, `<node_id>#<n>` for
    the n-th one running at the same time (see the module docstring)."""
    slot = claim_instance(data_dir, role)
    return node_id if slot == 1 else f"{node_id}#{slot}"
