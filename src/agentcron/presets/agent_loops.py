"""The spec's 15 agent loops (spec section 11.2) as data.

Loops the scheduler can do itself have a `builtin` handler (see
`agentcron.presets.builtin`). Integration loops (Gmail, Twilio, browser, voice, identity, soul
state, presence, notification digest, API rate limits: only the user's code knows the APIs
and their quotas) run the handler the user configures::

    [presets.agent-loops.handlers]
    loop-gmail-sync = "myagent.gmail:sync"

and until then are registered disabled with the reason "no handler configured" — never a
fake success.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AGENT_LOOPS", "NO_HANDLER_REASON", "LoopSpec"]

NO_HANDLER_REASON = "no handler configured"


@dataclass(frozen=True, slots=True)
class LoopSpec:
    """One agent loop: the spec's id, name, schedule and tags, and how it runs.

    `builtin` names the loop's handler in `agentcron.presets.builtin.BUILTIN_HANDLERS`;
    None marks an integration loop, which runs only the handler the user configures.
    """

    id: str
    name: str
    schedule: str
    tags: tuple[str, ...]
    builtin: str | None = None
    description: str = ""


AGENT_LOOPS: tuple[LoopSpec, ...] = (
    LoopSpec(
        "loop-heartbeat",
        "Heartbeat Monitor",
        "*/30 * * * * *",
        ("critical", "system"),
        builtin="heartbeat",
        description="Checks every node's heartbeat and reports the cluster's health.",
    ),
    LoopSpec(
        "loop-gmail-sync",
        "Gmail Synchronization",
        "*/2 * * * *",
        ("communication",),
        description="Syncs the Gmail inbox (your handler).",
    ),
    LoopSpec(
        "loop-browser-health",
        "Browser Health Check",
        "* * * * *",
        ("system",),
        description="Checks the browser instance's health (your handler).",
    ),
    LoopSpec(
        "loop-voice-queue",
        "Voice Queue Processor",
        "*/5 * * * * *",
        ("voice",),
        description="Processes the TTS/STT queue (your handler).",
    ),
    LoopSpec(
        "loop-twilio-status",
        "Twilio Status Check",
        "* * * * *",
        ("communication",),
        description="Checks the Twilio connection and messages (your handler).",
    ),
    LoopSpec(
        "loop-resource-monitor",
        "Resource Monitor",
        "*/30 * * * * *",
        ("system", "monitoring"),
        builtin="resource_monitor",
        description="Records CPU, memory and disk use; fails over a threshold.",
    ),
    LoopSpec(
        "loop-identity-sync",
        "Identity Synchronization",
        "*/5 * * * *",
        ("identity",),
        description="Syncs identity state and user preferences (your handler).",
    ),
    LoopSpec(
        "loop-soul-update",
        "Soul State Update",
        "* * * * *",
        ("soul",),
        description="Updates the agent's emotional/behavioural state (your handler).",
    ),
    LoopSpec(
        "loop-context-cleanup",
        "Context Cleanup",
        "*/10 * * * *",
        ("maintenance",),
        builtin="context_cleanup",
        description="Prunes runs past the retention (by age and per job).",
    ),
    LoopSpec(
        "loop-notification-digest",
        "Notification Digest",
        "*/15 * * * *",
        ("notifications",),
        description="Sends accumulated notifications (your handler).",
    ),
    LoopSpec(
        "loop-log-rotation",
        "Log Rotation",
        "0 * * * *",
        ("maintenance",),
        builtin="log_rotation",
        description="Rotates agentcron's own log files and deletes old ones.",
    ),
    LoopSpec(
        "loop-backup-check",
        "Backup Check",
        "*/30 * * * *",
        ("maintenance", "backup"),
        builtin="backup_check",
        description="Verifies the newest database backup (integrity and age).",
    ),
    LoopSpec(
        "loop-rate-limit",
        "API Rate Limit Check",
        "* * * * *",
        ("system",),
        description="Monitors and adjusts API call rates (your handler).",
    ),
    LoopSpec(
        "loop-presence-check",
        "User Presence Check",
        "*/5 * * * *",
        ("user",),
        description="Detects user activity/inactivity (your handler).",
    ),
    LoopSpec(
        "loop-daily-maintenance",
        "Daily Maintenance",
        "0 2 * * *",
        ("maintenance", "daily"),
        builtin="daily_maintenance",
        description="Backup, integrity check, prune and VACUUM/optimize of the database.",
    ),
)
