"""What other processes see of a SQLite database file (for the lock-safety tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_READ_JOB_IDS = (
    "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
    " print(','.join(r[0] for r in c.execute('SELECT id FROM jobs ORDER BY id'))); c.close()"
)


def job_ids_seen_by_another_process(path: Path) -> list[str]:
    """Job ids read by a new process, which opens, reads and closes its own connection:
    the close is what deletes the WAL when it finds no other process holding the file."""
    out = subprocess.run(
        [sys.executable, "-c", _READ_JOB_IDS, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [job_id for job_id in out.stdout.strip().split(",") if job_id]
