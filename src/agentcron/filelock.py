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


def lock_or_none(path: os.PathLike[str] | str, *, mode: int = 0o600) -> int | None:
    """Open (creating it with `mode`) and lock `path`: the open file, to `os.close` to
    release the lock, or None when another open file holds it. A lock file another user
    made (and may not be written here) is opened read-only: a lock needs no write access.
    OSError if it cannot be opened or locked."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY)
    try:
        locked = try_lock(fd)
    except BaseException:
        os.close(fd)
        raise
    if locked:
        return fd
    os.close(fd)
    return None
