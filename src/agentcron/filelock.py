"""Exclusive, non-blocking locks on files, held by an open file (POSIX `flock`, Windows
`msvcrt.locking`). The kernel drops the lock when the file is closed or its process dies,
SIGKILL included, so a lock is never left behind by a crash."""

from __future__ import annotations

import os
import sys

__all__ = ["lock_or_none", "try_lock"]


def try_lock(fd: int) -> bool:
    """Take an exclusive lock on the open file `fd` without waiting; False if it is held."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        # flock, not fcntl/lockf: its lock belongs to this open file, so a process keeps
        # the locks it holds whatever else it opens and closes.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock_or_none(path: os.PathLike[str] | str) -> int | None:
    """Open (creating it, mode 0600) and lock `path`: the open file, to `os.close` to release
    the lock, or None when another open file holds it. OSError if it cannot be opened."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    if try_lock(fd):
        return fd
    os.close(fd)
    return None
