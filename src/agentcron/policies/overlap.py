"""Overlap: what to do when a fire comes while a run of the same job is active (DESIGN 2.3).

`Overlap.decide(...)` is a pure function of the job's current activity; the engine applies
the returned `OverlapAction`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from agentcron.policies.errors import (
    JobConfigError,
    check_settings,
    from_dict,
    inapplicable_setting,
    positive,
    require,
    shown,
    within_max_duration,
)

__all__ = ["OVERLAP_POLICIES", "Overlap", "OverlapAction"]

OVERLAP_POLICIES = (
    "skip",
    "queue",
    "buffer_one",
    "delay",
    "timeout",
    "replace",
    "concurrent",
    "allow",
)


class OverlapAction(StrEnum):
    run = "run"  #: start a run now
    skip = "skip"  #: record skipped(overlap)
    enqueue = "enqueue"  #: run after the active one(s), in order
    buffer = "buffer"  #: become the only pending fire (a previous pending one is skipped)
    delay = "delay"  #: wait `delay_s`, then `after_delay()` decides
    replace_active = "replace"  #: cancel the active run(s), then start this one


@dataclass(frozen=True, slots=True)
class Overlap:
    """One of the eight overlap policies with its parameters.

    * `skip` drops the fire; `queue` runs it later in order (at most `max_queue` waiting);
      `buffer_one` keeps only the newest pending fire; `delay` waits `delay_s` then runs if
      free, else skips; `timeout` skips, and once `max_skips` consecutive fires were skipped
      the next one cancels the hung run and starts anew; `replace` cancels the active run;
      `concurrent` runs in parallel up to `max_concurrent`, then skips; `allow` always runs.
    """

    policy: str = "skip"
    max_queue: int = 100
    delay_s: float = 5.0
    max_skips: int = 3
    max_concurrent: int = 2

    def __post_init__(self) -> None:
        require(
            self.policy in OVERLAP_POLICIES,
            "overlap",
            f"unknown policy {shown(self.policy)}; use one of {', '.join(OVERLAP_POLICIES)}",
        )
        check_settings(self, "overlap", {"delay_s": "delay"})
        require(self.max_queue >= 1, "overlap.max_queue", f"must be >= 1, got {self.max_queue}")
        positive(self.delay_s, "overlap.delay")
        within_max_duration(self.delay_s, "overlap.delay")
        require(self.max_skips >= 1, "overlap.max_skips", f"must be >= 1, got {self.max_skips}")
        require(
            self.max_concurrent >= 1,
            "overlap.max_concurrent",
            f"must be >= 1, got {self.max_concurrent}",
        )
        # A setting of another policy, given a value of its own, would be ignored.
        inapplicable_setting(
            "overlap",
            self.policy,
            _NEEDS,
            (
                _NAMES.get(name, name)
                for name, default in _DEFAULTS.items()
                if getattr(self, name) != default
            ),
        )

    def decide(self, *, active: int, pending: int, consecutive_skips: int) -> OverlapAction:
        """What to do with a new fire given `active` runs, `pending` waiting fires and the
        number of fires skipped in a row since the last run started."""
        p = self.policy
        if p == "allow":
            return OverlapAction.run
        if p == "concurrent":
            return OverlapAction.run if active < self.max_concurrent else OverlapAction.skip
        if active == 0:
            return OverlapAction.run
        if p == "skip":
            return OverlapAction.skip
        if p == "queue":
            return OverlapAction.enqueue if pending < self.max_queue else OverlapAction.skip
        if p == "buffer_one":
            return OverlapAction.buffer
        if p == "delay":
            return OverlapAction.delay
        if p == "timeout":
            if consecutive_skips >= self.max_skips:
                return OverlapAction.replace_active
            return OverlapAction.skip
        return OverlapAction.replace_active  # "replace"

    def after_delay(self, *, active: int) -> OverlapAction:
        """The `delay` policy's second look, `delay_s` after the fire."""
        return OverlapAction.run if active == 0 else OverlapAction.skip

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"policy": self.policy}
        if self.policy == "queue":
            out["max_queue"] = self.max_queue
        elif self.policy == "delay":
            out["delay"] = self.delay_s
        elif self.policy == "timeout":
            out["max_skips"] = self.max_skips
        elif self.policy == "concurrent":
            out["max_concurrent"] = self.max_concurrent
        return out

    @classmethod
    def from_value(cls, value: object) -> Overlap:
        """Accept an `Overlap`, a policy name, or a dict `{"policy": ..., params}`."""
        if isinstance(value, Overlap):
            return value
        if isinstance(value, str):
            return _named(value)
        if isinstance(value, dict):
            data = dict(value)
            known = {"policy", "max_queue", "delay", "delay_s", "max_skips", "max_concurrent"}
            extra = set(data) - known
            require(not extra, "overlap", f"unknown option(s) {sorted(extra)}")
            if "delay" in data:
                data["delay_s"] = data.pop("delay")
            overlap = from_dict(cls, data, "overlap", _NAMES)
            # (given at its default value too: `{ max_concurrent = 2 }` is no `skip` either)
            inapplicable_setting(
                "overlap", overlap.policy, _NEEDS, (_NAMES.get(k, k) for k in data)
            )
            return overlap
        raise JobConfigError("overlap", f"expected a policy name or dict, got {value!r}")


#: The settings that apply to one policy only (as users name them), and that policy.
_NEEDS = {
    "max_queue": "queue",
    "delay": "delay",
    "max_skips": "timeout",
    "max_concurrent": "concurrent",
}
#: Fields users name otherwise.
_NAMES = {"delay_s": "delay"}
#: The default of each setting of `_NEEDS` (field name -> default).
_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(Overlap) if f.name != "policy"
}


@lru_cache(maxsize=16)
def _named(policy: str) -> Overlap:
    return Overlap(policy)
