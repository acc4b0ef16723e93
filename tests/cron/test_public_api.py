"""The public surface of `agentcron.cron` is exactly `__all__`."""

from __future__ import annotations

import agentcron.cron as cron


def test_all_lists_the_public_names() -> None:
    public = {name for name in vars(cron) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(cron, name)).__name__ == "module"}
    assert set(cron.__all__) == public - modules - {"annotations"}


def test_cron_error_is_a_value_error() -> None:
    assert issubclass(cron.CronError, ValueError)
