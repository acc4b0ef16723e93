"""Misfire: what to do with fire times that passed while the scheduler was down, asleep or
late beyond `grace` (DESIGN 2.3). `decide_misfire` is pure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from agentcron.policies.errors import (
    JobConfigError,
    check_settings,
    from_dict,
    inapplicable_setting,
    non_negative,
    positive,
    require,
    shown,
    within_max_duration,
)

__all__ = ["MISFIRE_POLICIES", "Misfire", "MisfireDecision", "decide_misfire"]

MISFIRE_POLICIES = ("run_once", "skip", "run_all")


@dataclass(frozen=True, slots=True)
class Misfire:
    """`run_once` coalesces the missed fires into one run (of the latest), `skip` runs none,
    `run_all` runs each, oldest first, at most the newest `max_catchup`. A fire later than
    `grace_s` is missed; fires older than `catchup_window_s` (None = no bound) are forgotten.
    """

    policy: str = "run_once"
    grace_s: float = 1.0
    catchup_window_s: float | None = None
    max_catchup: int = 100

    def __post_init__(self) -> None:
        require(
            self.policy in MISFIRE_POLICIES,
            "misfire",
            f"unknown policy {shown(self.policy)}; use one of {', '.join(MISFIRE_POLICIES)}",
        )
        check_settings(self, "misfire", {"grace_s": "grace", "catchup_window_s": "catchup_window"})
        non_negative(self.grace_s, "misfire.grace")
        within_max_duration(self.grace_s, "misfire.grace")
        positive(self.catchup_window_s, "misfire.catchup_window")
        within_max_duration(self.catchup_window_s, "misfire.catchup_window")
        require(
            self.max_catchup >= 1, "misfire.max_catchup", f"must be >= 1, got {self.max_catchup}"
        )
        if self.max_catchup != _DEFAULT_MAX_CATCHUP:  # would be ignored by another policy
            inapplicable_setting("misfire", self.policy, _NEEDS, ("max_catchup",))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"policy": self.policy, "grace": self.grace_s}
        if self.catchup_window_s is not None:
            out["catchup_window"] = self.catchup_window_s
        if self.policy == "run_all":
            out["max_catchup"] = self.max_catchup
        return out

    @classmethod
    def from_value(cls, value: object) -> Misfire:
        if value is None:
            return _named("run_once")
        if isinstance(value, Misfire):
            return value
        if isinstance(value, str):
            return _named(value)
        if isinstance(value, dict):
            data = dict(value)
            for short, full in (("grace", "grace_s"), ("catchup_window", "catchup_window_s")):
                if short in data:
                    data[full] = data.pop(short)
            misfire = from_dict(cls, data, "misfire", _NAMES)
            inapplicable_setting("misfire", misfire.policy, _NEEDS, data)
            return misfire
        raise JobConfigError("misfire", f"expected a policy name or dict, got {value!r}")


#: The settings that apply to one policy only, and that policy (grace and catchup_window
#: apply to all).
_NEEDS = {"max_catchup": "run_all"}
_DEFAULT_MAX_CATCHUP = next(
    f.default for f in dataclasses.fields(Misfire) if f.name == "max_catchup"
)
#: The documented names of fields (both are accepted in a dict).
_NAMES = {"grace_s": "grace", "catchup_window_s": "catchup_window"}


@lru_cache(maxsize=8)
def _named(policy: str) -> Misfire:
    return Misfire(policy)


@dataclass(frozen=True, slots=True)
class MisfireDecision:
    """`run`: fire times to run now, oldest first. `missed`: how many fires were missed
    (within the catch-up window). `latest`: the newest missed fire."""

    run: tuple[datetime, ...]
    missed: int
    latest: datetime | None


def decide_misfire(
    missed: Sequence[datetime], now: datetime, policy: Misfire, *, missed_count: int | None = None
) -> MisfireDecision:
    """Decide over `missed` (ascending; may be only the newest ones when `missed_count`
    says how many there were in all)."""
    if policy.catchup_window_s is not None:
        horizon = now - timedelta(seconds=policy.catchup_window_s)
        kept = [t for t in missed if t >= horizon]
        dropped = len(missed) - len(kept)
        total = (missed_count if missed_count is not None else len(missed)) - dropped
        missed = kept
    else:
        total = missed_count if missed_count is not None else len(missed)
    if not missed:
        return MisfireDecision(run=(), missed=0, latest=None)
    latest = missed[-1]
    if policy.policy == "skip":
        return MisfireDecision(run=(), missed=total, latest=latest)
    if policy.policy == "run_once":
        return MisfireDecision(run=(latest,), missed=total, latest=latest)
    return MisfireDecision(run=tuple(missed[-policy.max_catchup :]), missed=total, latest=latest)
