"""The app's autostop owner, alone: `u` opens the dialog prefilled (the instance's autostop, else the profile's)
and sets or clears it through the engine; a watchdog's warning read from the VM is shown once, with the key that
keeps the VM; `w` keeps it. Driven with recorders for its narrow callables and a recording engine (a fake: the
engine's real methods are tested against a sandbox VM in tests/autostop)."""

from __future__ import annotations

import time
from typing import Any

from tui.core.autostop.policy import Policy
from tui.core.autostop.status import AutostopStatus
from tui.core.config import DEFAULTS
from tui.core.events import AutostopState
from tui.core.models import Instance
from tui.ui.autostop import AutostopOwner

INST = Instance(id="i-1", name="vm1", status="ACTIVE")


class RecordingAutostop:
    """A fake `engine.autostop` recording its calls (fake: the owner's edge)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def policy(self, idle: str | None = None, action: str | None = None) -> Policy | None:
        return Policy(idle_s=3600, action=action or "stop")

    async def set(self, inst: Instance, policy: Policy) -> AutostopStatus:
        self.calls.append(("set", inst.name, policy.idle_s, policy.action))
        return AutostopStatus(True, True, policy.action, policy.idle_s, at_boot=self.at_boot)

    at_boot = "cron"

    async def off(self, inst: Instance) -> AutostopStatus:
        self.calls.append(("off", inst.name))
        return AutostopStatus(False, False)

    async def keep(self, inst: Instance) -> AutostopStatus:
        self.calls.append(("keep", inst.name))
        return AutostopStatus(True, True, "stop", 3600, acts_at=time.time() + 3600)


class RecordingEngine:
    """A fake engine with only the autostop capability (fake: the owner's edge)."""

    def __init__(self) -> None:
        self.autostop = RecordingAutostop()
        self.calls = self.autostop.calls


class Rig:
    def __init__(self) -> None:
        self.jobs: list[tuple[str, Any]] = []
        self.asked: list[tuple[str, str, str, str, Any]] = []
        self.told: list[tuple[str, str, str]] = []
        self.owner = AutostopOwner(DEFAULTS, lambda action, job: self.jobs.append((action, job)),
                                   lambda *a: self.asked.append(a), lambda *a: self.told.append(a),
                                   lambda _id: "vm1")

    async def run_jobs(self, engine: RecordingEngine) -> list[str | None]:
        out = [await job(engine, INST) for _, job in self.jobs]
        self.jobs.clear()
        return out


async def test_dialog_prefilled_then_set_and_off() -> None:
    rig, engine = Rig(), RecordingEngine()
    rig.owner.set_or_clear(INST)
    name, now, idle, action, then = rig.asked[-1]
    assert (name, idle, action) == ("vm1", "60m", "stop") and now == "not read yet"  # the profile's is off: 60m
    then(("set", "2h", "shelve"))
    assert [a for a, _ in rig.jobs] == ["autostop"]
    said = await rig.run_jobs(engine)
    assert engine.calls == [("set", "vm1", 3600, "shelve")] and "Autostop set" in str(said[0])
    assert "cron" not in str(said[0])
    rig.owner.on_state(AutostopState(INST.id, AutostopStatus(True, True, "shelve", 7200)))
    rig.owner.set_or_clear(INST)
    assert rig.asked[-1][2:4] == ("2h", "shelve")  # now prefilled with what the VM has
    rig.asked[-1][4](("off", "", ""))
    await rig.run_jobs(engine)
    assert engine.calls[-1] == ("off", "vm1")
    rig.asked[-1][4](None)  # cancelled: nothing runs
    assert rig.jobs == []


async def test_warning_shown_once_and_w_keeps() -> None:
    rig, engine = Rig(), RecordingEngine()
    warned = AutostopStatus(True, True, "stop", 3600, acts_at=time.time() + 120, warning="this VM will stop")
    rig.owner.on_state(AutostopState(INST.id, warned))
    rig.owner.on_state(AutostopState(INST.id, warned))
    assert len(rig.told) == 1 and "Press w to keep it" in rig.told[0][0] and rig.told[0][2] == "warning"
    rig.owner.keep()
    said = await rig.run_jobs(engine)
    assert engine.calls == [("keep", "vm1")] and "Kept vm1" in str(said[0])
    rig.owner.on_state(AutostopState(INST.id, warned))  # warned again after a keep: shown again
    assert len(rig.told) == 2
    rig.owner.on_state(AutostopState(INST.id, AutostopStatus(True, False, "stop", 3600, acted="stop: powered off")))
    assert "acted: stop: powered off" in rig.told[-1][0]


async def test_setting_it_where_cron_is_missing_says_so() -> None:
    """The VM has no cron: the watchdog will not start again at a boot by itself, and the line says so."""
    rig, engine = Rig(), RecordingEngine()
    engine.autostop.at_boot = "no-cron"
    rig.owner.set_or_clear(INST)
    rig.asked[-1][4](("set", "2h", "stop"))
    (said,) = await rig.run_jobs(engine)
    assert str(said).startswith("Autostop set: ")
    assert "will restart at the next attach: cron is not installed" in str(said)
