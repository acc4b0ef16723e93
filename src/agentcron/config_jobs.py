"""The jobs `agentcron.toml` defines, as `agentcron run` last recorded them in the store.

The file is their source: the daemon's next reload of it undoes any other change to them
without a word. So the HTTP API and the CLI refuse to change or remove them, with the same
words (`config_job_problem`); pausing, resuming and running them stay allowed (a pause is
kept across reloads).
"""

from __future__ import annotations

import json

from agentcron.models import CONFIG_JOBS_KEY
from agentcron.store.base import Store

__all__ = ["config_job_ids", "config_job_problem"]


async def config_job_ids(store: Store) -> frozenset[str]:
    """The ids recorded under `CONFIG_JOBS_KEY` (none when nothing readable is there)."""
    try:
        listed = json.loads(await store.get_state(CONFIG_JOBS_KEY) or "[]")
    except ValueError:
        return frozenset()
    if not isinstance(listed, list):
        return frozenset()
    return frozenset(item for item in listed if isinstance(item, str))


def config_job_problem(job_id: str, what: str) -> str:
    """Why job `job_id` cannot be changed here; `what`: the verb (`change`, `remove`)."""
    return (
        f"job {job_id!r} is defined in agentcron.toml: {what} it there, then reload"
        " (`agentcron jobs reload`); a change made here would be undone by the next reload"
    )
