"""The README's Python example is real code against the real API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_readme_starts_with_the_two_commands() -> None:
    head = README.read_text(encoding="utf-8").splitlines()[:8]
    assert any(line.startswith("make run") for line in head)
    assert any(line.startswith("make test") for line in head)


def test_the_python_example_defines_its_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code = python_blocks()[0].replace("sched.run()", "pass")
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    sched = namespace["sched"]
    assert sorted(view.id for view in sched.jobs()) == ["heartbeat", "nightly-backup"]  # type: ignore[attr-defined]


def test_the_toml_example_is_a_valid_job_file() -> None:
    import tomllib

    from agentcron.jobfile import parse_job_file

    block = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)[0]
    parsed = parse_job_file(tomllib.loads(block))
    assert [job.id for job in parsed.jobs] == ["nightly-backup"]
