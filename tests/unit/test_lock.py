"""The lock (config/requirements.lock) is the install CI tested: every dependency pyproject.toml declares, the test
extras included, is pinned there to a version its specifier admits. A dependency added or re-ranged without
refreshing the lock (the README's command) fails here, before any install."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, list[str]]:
    pins: dict[str, list[str]] = {}
    for line in (ROOT / "config" / "requirements.lock").read_text().splitlines():
        if line and line[0] not in "# ":
            name, _, version = line.split(";")[0].strip().partition("==")
            pins.setdefault(_norm(name), []).append(version)
    return pins


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]
    pins = _pins()
    assert len(declared) > 15
    for req in declared:
        versions = pins.get(_norm(req.name))
        assert versions, f"{req.name} is not in config/requirements.lock: refresh it (README, Development)"
        for version in versions:
            assert req.specifier.contains(version, prereleases=True), f"{req}: the lock pins {version}"


def test_every_pin_is_exact() -> None:
    lines = [x for x in (ROOT / "config" / "requirements.lock").read_text().splitlines() if x and x[0] not in "# "]
    assert len(lines) > 100
    assert all("==" in x.split(";")[0] for x in lines), [x for x in lines if "==" not in x]
