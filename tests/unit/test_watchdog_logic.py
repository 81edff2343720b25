"""The watchdog's decisions, one look at a time (its probes replaced by a scripted answer — a fake at the edge: the
probes themselves run against a sandbox VM in tests/autostop): it warns before it acts, never in the same look; any
activity, a keep or a new period voids the warning; it acts once the period has passed since the last activity."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tui.core.autostop import watchdog


@pytest.fixture
def looks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr(watchdog, "DIR", str(tmp_path))
    monkeypatch.setattr(watchdog, "HOME", str(tmp_path))
    scripted: dict[str, Any] = {"busy": None, "acted": []}
    monkeypatch.setattr(watchdog, "busy", lambda cfg, cpu, now: scripted["busy"])
    monkeypatch.setattr(watchdog, "act", lambda cfg: scripted["acted"].append(cfg["action"]) or "powered off")
    return scripted


NO_CPU: Any = None  # the CPU probe is replaced with the others
CFG = {"idle_s": 100.0, "warn_s": 20.0, "every_s": 10.0, "action": "stop", "keep_hint": "cades-tui autostop X --keep"}


def test_warns_then_acts_after_the_period(looks: dict[str, Any], tmp_path: Path) -> None:
    state: dict[str, Any] = {}
    assert not watchdog.step(CFG, state, NO_CPU, 1000.0)
    assert state["acts_at"] == 1100.0 and not state.get("warning")
    assert not watchdog.step(CFG, state, NO_CPU, 1079.0)
    assert not state.get("warning")
    assert not watchdog.step(CFG, state, NO_CPU, 1100.0)  # due, but not warned yet
    assert "will stop" in state["warning"] and looks["acted"] == []
    assert watchdog.step(CFG, state, NO_CPU, 1101.0)
    assert looks["acted"] == ["stop"] and "warned" in (tmp_path / "actions.log").read_text()


def test_activity_keep_and_a_new_period_void_the_warning(looks: dict[str, Any], tmp_path: Path) -> None:
    state: dict[str, Any] = {}
    watchdog.step(CFG, state, NO_CPU, 1000.0)
    watchdog.step(CFG, state, NO_CPU, 1085.0)
    assert state["warning"]
    looks["busy"] = (1090.0, "a Jupyter kernel is busy")
    watchdog.step(CFG, state, NO_CPU, 1090.0)
    assert not state["warning"] and state["acts_at"] == 1190.0 and state["busy"] == "a Jupyter kernel is busy"
    looks["busy"] = None
    watchdog.step(CFG, state, NO_CPU, 1175.0)
    assert state["warning"] and state["busy"] == ""
    (tmp_path / "keep").touch()
    os.utime(tmp_path / "keep", (1176.0, 1176.0))
    watchdog.step(CFG, state, NO_CPU, 1177.0)
    assert not state["warning"] and state["acts_at"] == 1276.0
    watchdog.step(CFG, state, NO_CPU, 1260.0)
    assert state["warning"]
    watchdog.step({**CFG, "idle_s": 200.0}, state, NO_CPU, 1261.0)  # re-armed longer
    assert not state["warning"] and state["acts_at"] == 1376.0 and looks["acted"] == []
