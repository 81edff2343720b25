"""Idle tiers, messages, keys and snoozes (pure functions + the state file)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tui.core.config import CostModel, IdleSettings, Settings
from tui.core.jupyter.idle import Tier, idle_seconds, key_for, nudge, snooze_until, tier_for
from tui.core.models import Instance
from tui.core.shelveplan import nudge_choice
from tui.core.state import AppState

H = 3600.0
T = IdleSettings(resize_after_hours=24, stop_after_hours=72, delete_after_days=30)


@pytest.mark.parametrize(("idle_h", "tier"), [
    (0, None), (23.9, None), (24, Tier.RESIZE), (71.9, Tier.RESIZE), (72, Tier.STOP), (30 * 24 - 1, Tier.STOP),
    (30 * 24, Tier.DELETE), (1000 * 24, Tier.DELETE),
])
def test_tiers(idle_h: float, tier: Tier | None) -> None:
    assert tier_for(idle_h * H, T) is tier


def test_idle_time_is_jupyter_activity_capped_by_uptime() -> None:
    assert idle_seconds(None, 5.0) is None  # not running
    assert idle_seconds(10 * H, None) == 10 * H  # no Jupyter: up and unused
    assert idle_seconds(10 * H, 2 * H) == 2 * H
    assert idle_seconds(1 * H, 50 * H) == 1 * H  # activity from before a reboot does not count


def test_nudge_messages_say_what_it_saves_and_which_key() -> None:
    resize = nudge(100 * H, 30 * H, T, name="vm1")
    assert resize is not None and (resize.tier, resize.key) == (Tier.RESIZE, "r")
    assert resize.message.startswith("vm1: Jupyter has had no kernel or terminal activity for a day")
    assert "smaller flavor" in resize.message and "Press r" in resize.message
    stop = nudge(100 * H, None, T, name="vm1")
    assert stop is not None and stop.tier is Tier.STOP and "it has been up for 4 days" in stop.message
    assert "disk is kept" in stop.message and "Press p" in stop.message
    delete = nudge(40 * 24 * H, 40 * 24 * H, T, keymap={"delete": "ctrl+x,f8"})
    assert delete is not None and delete.key == "ctrl+x" and "Press ctrl+x" in delete.message
    assert "copy your data off first" in delete.message
    assert nudge(100 * H, 1 * H, T) is None
    assert key_for(Tier.STOP, {"power": ""}) == "p"


def test_snooze_quiets_until_then_nudges_again(tmp_path: Path) -> None:
    now = datetime(2025, 1, 1, 12, tzinfo=UTC)
    until = snooze_until(now, hours=24)
    assert nudge(100 * H, None, T, now=now, snoozed_until=until) is None
    assert nudge(100 * H, None, T, now=now + timedelta(hours=25), snoozed_until=until) is not None
    state = AppState.load(tmp_path / "state.json")
    state.snooze("i-1", until)
    again = AppState.load(tmp_path / "state.json")
    assert again.snoozed_until("i-1") == until and again.snoozed_until("i-2") is None
    assert "token" not in (tmp_path / "state.json").read_text()


def _costed(**factors: float) -> Settings:
    return Settings(cloud="js2", cost={"js2": CostModel(unit="SU", per_vcpu_hour=1.0, state_factors=factors)})


JS2 = {"ACTIVE": 1, "SHUTOFF": 0.5, "SUSPENDED": 0.75, "SHELVED": 0, "SHELVED_OFFLOADED": 0}


@pytest.mark.parametrize(("factors", "tier", "key", "saying"), [
    (JS2, Tier.SHELVE, "h", "it saves 4 SU/h"),  # Jetstream2: stopped costs half, shelved nothing
    ({**JS2, "SHUTOFF": 0}, Tier.STOP, "p", "it saves 4 SU/h"),  # stopping saves as much: stop (back faster)
    ({}, Tier.STOP, "p", ""),  # a model that prices every state alike: no saving said, the old stop nudge
])
def test_idle_nudge_picks_what_the_cost_model_says_saves_most(factors: dict[str, float], tier: Tier, key: str,
                                                              saying: str) -> None:
    vm = Instance("i-1", "vm1", "ACTIVE", "m1.large", vcpus=4)
    choice = nudge_choice(_costed(**factors), vm)
    found = nudge(100 * H, None, T, name="vm1", choice=choice)
    assert found is not None and (found.tier, found.key) == (tier, key)
    assert (saying in found.message) if saying else ("saves" not in found.message)
    assert f"Press {key}" in found.message
    if tier is Tier.SHELVE:
        assert "shelve it" in found.message and "disk is kept" in found.message
    assert nudge_choice(Settings(), vm) == ("", "")  # no cost model: the stop nudge as before
    resize = nudge(30 * H, None, T, name="vm1", choice=choice)  # below the stop tier the choice changes nothing
    assert resize is not None and resize.tier is Tier.RESIZE and "saves" not in resize.message
