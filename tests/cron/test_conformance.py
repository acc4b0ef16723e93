"""Every public conformance case of ``shared/conformance/cron_cases.jsonl``.

CI clones the repository next to a copy of ``shared/``, so the file is looked up at
``<repo>/../shared/conformance/``; ``tests/cron/data/`` holds a copy for checkouts without it,
so this test never silently runs on nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from agentcron.cron import CronError, CronExpression

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "conformance" / "cron_cases.jsonl"
COPY = Path(__file__).resolve().parent / "data" / "cron_cases.jsonl"
CASES_FILE = SHARED if SHARED.is_file() else COPY


def _load() -> list[dict[str, Any]]:
    lines = CASES_FILE.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


CASES = _load()


def test_the_case_file_holds_the_published_number_of_cases() -> None:
    assert len(CASES) >= 1700
    assert sum(case["expect"] == "error" for case in CASES) >= 200


@pytest.mark.parametrize("case", CASES, ids=[f"line{i + 1}" for i in range(len(CASES))])
def test_conformance_case(case: dict[str, Any]) -> None:
    if case["expect"] == "error":
        with pytest.raises(CronError):
            CronExpression(case["expr"], tz=case["tz"])
        return
    expr = CronExpression(case["expr"], tz=case["tz"])
    want = [datetime.fromisoformat(s) for s in case["expect"]]
    got: list[datetime] = []
    t: datetime | None = datetime.fromisoformat(case["after"])
    for _ in range(min(5, len(want) + 1)):
        assert t is not None
        t = expr.next(t)
        if t is None:
            break
        got.append(t)
    # same instant and same UTC offset, compared as ISO strings
    assert [g.isoformat() for g in got] == [w.isoformat() for w in want]
    assert got == want
