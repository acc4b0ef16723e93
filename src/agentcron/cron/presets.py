"""Macros (``@daily`` ...) and the named presets of the original specification.

`CronExpression` accepts a macro or a preset name wherever it accepts an expression; its
`text` keeps what was written and `expression` the expansion.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["MACROS", "PRESETS", "REBOOT"]

#: ``@reboot`` is an engine trigger (run once when the scheduler starts), not a time schedule.
REBOOT = "@reboot"

#: Vixie-cron macros and their 5-field expansions.
MACROS: Mapping[str, str] = MappingProxyType(
    {
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    }
)

#: The named schedules of the specification (section 2.3). Six-field entries have seconds.
PRESETS: Mapping[str, str] = MappingProxyType(
    {
        # agent loops
        "AGENT_LOOP_FAST": "*/30 * * * * *",
        "AGENT_LOOP_NORMAL": "*/2 * * * *",
        "AGENT_LOOP_SLOW": "*/5 * * * *",
        "AGENT_LOOP_HOURLY": "0 * * * *",
        # heartbeats
        "HEARTBEAT_CRITICAL": "*/5 * * * * *",
        "HEARTBEAT_NORMAL": "*/30 * * * * *",
        "HEARTBEAT_RELAXED": "* * * * *",
        # maintenance
        "DAILY_MAINTENANCE": "0 2 * * *",
        "WEEKLY_CLEANUP": "0 3 * * 0",
        "HOURLY_SYNC": "0 * * * *",
        # user activity
        "USER_PRESENCE_CHECK": "*/10 * * * *",
        "NOTIFICATION_DIGEST": "0 9,17 * * *",
    }
)
