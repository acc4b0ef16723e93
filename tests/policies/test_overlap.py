from __future__ import annotations

import pytest

from agentcron.policies import JobConfigError, Overlap, OverlapAction
from agentcron.policies.overlap import OVERLAP_POLICIES


def test_the_eight_policies_are_exactly_those_of_the_design() -> None:
    assert OVERLAP_POLICIES == (
        "skip",
        "queue",
        "buffer_one",
        "delay",
        "timeout",
        "replace",
        "concurrent",
        "allow",
    )


@pytest.mark.parametrize("policy", OVERLAP_POLICIES)
def test_every_policy_runs_a_fire_when_the_job_is_idle(policy: str) -> None:
    assert Overlap(policy).decide(active=0, pending=0, consecutive_skips=0) == OverlapAction.run


@pytest.mark.parametrize(
    ("overlap", "expected"),
    [
        (Overlap("skip"), OverlapAction.skip),
        (Overlap("queue", max_queue=2), OverlapAction.enqueue),
        (Overlap("buffer_one"), OverlapAction.buffer),
        (Overlap("delay", delay_s=3), OverlapAction.delay),
        (Overlap("timeout", max_skips=2), OverlapAction.skip),
        (Overlap("replace"), OverlapAction.replace_active),
        (Overlap("concurrent", max_concurrent=2), OverlapAction.run),
        (Overlap("allow"), OverlapAction.run),
    ],
)
def test_a_fire_during_one_active_run_gets_the_policys_action(
    overlap: Overlap, expected: OverlapAction
) -> None:
    assert overlap.decide(active=1, pending=0, consecutive_skips=0) == expected


def test_queue_skips_once_max_queue_fires_are_waiting() -> None:
    overlap = Overlap("queue", max_queue=2)
    assert overlap.decide(active=1, pending=1, consecutive_skips=0) == OverlapAction.enqueue
    assert overlap.decide(active=1, pending=2, consecutive_skips=0) == OverlapAction.skip


def test_timeout_replaces_the_hung_run_after_max_skips_consecutive_skips() -> None:
    overlap = Overlap("timeout", max_skips=2)
    assert overlap.decide(active=1, pending=0, consecutive_skips=1) == OverlapAction.skip
    assert overlap.decide(active=1, pending=0, consecutive_skips=2) == OverlapAction.replace_active


def test_concurrent_skips_at_max_concurrent_and_allow_never_does() -> None:
    assert (
        Overlap("concurrent", max_concurrent=2).decide(active=2, pending=0, consecutive_skips=0)
        == OverlapAction.skip
    )
    assert Overlap("allow").decide(active=500, pending=0, consecutive_skips=0) == OverlapAction.run


def test_delay_runs_after_the_delay_only_if_the_job_became_free() -> None:
    overlap = Overlap("delay", delay_s=5)
    assert overlap.after_delay(active=0) == OverlapAction.run
    assert overlap.after_delay(active=1) == OverlapAction.skip


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"policy": "sometimes"}, "overlap"),
        ({"policy": "concurrent", "max_concurrent": 0}, "overlap.max_concurrent"),
        ({"policy": "queue", "max_queue": 0}, "overlap.max_queue"),
        ({"policy": "delay", "delay_s": 0}, "overlap.delay"),
        ({"policy": "timeout", "max_skips": 0}, "overlap.max_skips"),
    ],
)
def test_bad_overlap_options_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(JobConfigError) as info:
        Overlap(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert field in str(info.value)


def test_overlap_round_trips_through_a_dict() -> None:
    for overlap in (Overlap("queue", max_queue=7), Overlap("delay", delay_s=2.5), Overlap("allow")):
        assert Overlap.from_value(overlap.to_dict()) == overlap
    assert Overlap.from_value({"policy": "concurrent", "max_concurrent": 3}).max_concurrent == 3


def test_unknown_overlap_dict_keys_are_rejected() -> None:
    with pytest.raises(JobConfigError, match="overlap"):
        Overlap.from_value({"policy": "skip", "max_wait": 3})
