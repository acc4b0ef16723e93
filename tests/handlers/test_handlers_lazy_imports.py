"""A scheduler of Python callables does not load psutil (only command and process-isolated
handlers need it, and import it when they run)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_scheduler_and_handlers_does_not_load_psutil() -> None:
    code = (
        "import sys\n"
        "import agentcron, agentcron.handlers, agentcron.engine\n"
        "from agentcron import Scheduler\n"
        "print('psutil' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"
