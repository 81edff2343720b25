"""Autostop survives a reboot: armed, it puts one `@reboot` line in the VM user's crontab (the sandbox's cron shim: the
VM's own crontab, run at each boot as cron does), so after a reboot through Nova (openstacksdk) the watchdog runs
again with nobody attached — its screen session is back and its heartbeat advances, its timer counting from the boot.
Arming twice leaves one line, `off` removes it and leaves the user's own lines byte-for-byte, a config removed by hand
makes the watchdog remove it; a VM without `crontab` is armed as before and its status says so; a clone of the armed
VM (its image carried the folder and the line) disarms itself at boot."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

from tests._support import Events, eventually, launch
from tests.autostop.test_autostop import nova_status, seconds, vm, vm_home, world
from tui.core.autostop import watchdog
from tui.core.autostop.policy import Policy
from tui.core.engine import CoreEngine
from tui.core.models import Instance

__all__ = ["seconds", "vm", "world"]  # the fixtures of test_autostop

LONG = Policy(idle_s=120.0, action="stop", cpu_percent=100.0, warn_s=30.0, every_s=0.3)  # never acts in a test
MARK = "# cades-tui autostop"
USERS = "# mine\nMAILTO=\"\"\n0 3 * * *\t/home/me/backup.sh  >/dev/null 2>&1 \n"


def crontab(world: tuple[Any, Any, Any], inst: Instance) -> str:
    """The VM's crontab, as the sandbox keeps it (its folder; "" when it has none)."""
    path = Path(world[0].instances_dir) / inst.id / "spool" / "crontab"
    return path.read_text() if path.exists() else ""


def state(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


async def ssh(engine: CoreEngine, inst: Instance, cmd: str, input: str | None = None) -> str:
    conn = await engine.manager.connection(await engine.context(inst))
    result = await conn.run(cmd, input=input, check=True)
    return str(result.stdout)


async def test_the_watchdog_runs_again_after_a_reboot_with_nobody_attached(
        vm: tuple[CoreEngine, Instance, Events], world: tuple[Any, Any, Any]) -> None:
    engine, inst, _ = vm
    status = await engine.autostop.set(inst, LONG)
    assert status.armed and status.running and status.at_boot == "cron", status
    assert "next attach" not in status.line(time.time())
    assert [line for line in crontab(world, inst).splitlines() if line.endswith(MARK)] == [
        f"@reboot /bin/sh {vm_home(engine, inst, world)}/.cades-tui/autostop/boot.sh {MARK}"]
    folder = vm_home(engine, inst, world) / ".cades-tui" / "autostop"
    before = int((folder / "pid").read_text())
    await engine.aclose()  # nobody attached from here on
    host = world[0].ssh_host(inst.id)
    screens = Path(host.screendir)
    booted_at = time.time()
    conn = engine.cloud.conn  # type: ignore[attr-defined]
    await asyncio.to_thread(conn.compute.reboot_server, inst.id, "HARD")
    assert await eventually(lambda: nova_status(engine, inst) == "ACTIVE" and state(folder).get("started", 0) >
                            booted_at, 30), (nova_status(engine, inst), state(folder))
    first = state(folder)
    assert first["pid"] != before and first["pid"] == int((folder / "pid").read_text())
    assert any(s.name.endswith(".cades-autostop") for s in screens.iterdir())  # its screen session, as the app's
    # it looks, again and again (its first look may not be done yet when `first` was read: a busy machine)
    assert await eventually(lambda: state(folder).get("updated", 0) > 0, 20), state(folder)
    looked = state(folder)["updated"]
    assert await eventually(lambda: state(folder).get("updated", 0) > looked, 20), state(folder)
    fresh = state(folder)
    assert fresh["idle_since"] >= booted_at and fresh["acts_at"] == fresh["idle_since"] + LONG.idle_s  # from boot
    assert not fresh.get("warned_at") and not fresh.get("acted")
    boot_log = (folder / "boot.log").read_text()
    assert "did not start" not in boot_log, boot_log


async def test_arming_twice_leaves_one_line_and_off_removes_only_it(
        vm: tuple[CoreEngine, Instance, Events], world: tuple[Any, Any, Any]) -> None:
    engine, inst, _ = vm
    await ssh(engine, inst, "crontab -", input=USERS)  # the user's own crontab, before autostop
    await engine.autostop.set(inst, LONG)
    await engine.autostop.set(inst, LONG)
    text = crontab(world, inst)
    assert text.startswith(USERS) and text.count(MARK) == 1 and text.endswith(f"{MARK}\n"), text
    off = await engine.autostop.off(inst)
    assert not off.armed and crontab(world, inst) == USERS  # byte-for-byte
    assert await ssh(engine, inst, "crontab -l") == USERS


async def test_a_config_removed_by_hand_takes_the_line_with_it(
        vm: tuple[CoreEngine, Instance, Events], world: tuple[Any, Any, Any]) -> None:
    engine, inst, _ = vm
    await engine.autostop.set(inst, LONG)
    assert crontab(world, inst).count(MARK) == 1
    await ssh(engine, inst, "rm ~/.cades-tui/autostop/config.json")  # disarmed another way: the watchdog ends
    assert await eventually(lambda: crontab(world, inst) == "", 10), crontab(world, inst)
    deadline = time.monotonic() + 20  # it takes the line out, then ends: read until it has ended
    while (status := await engine.autostop.status(inst)).running and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert not status.armed and not status.running, status


async def test_without_crontab_it_arms_and_says_it_restarts_at_the_next_attach(
        vm: tuple[CoreEngine, Instance, Events], world: tuple[Any, Any, Any]) -> None:
    engine, inst, _ = vm
    (Path(world[0].instances_dir) / inst.id / "bin" / "crontab").unlink()  # cron not installed on this VM
    assert (await ssh(engine, inst, "command -v crontab || echo none")).strip() == "none"
    status = await engine.autostop.set(inst, LONG)
    assert status.armed and status.running and status.at_boot == "no-cron", status
    line = status.line(time.time())
    assert line.endswith("; will restart at the next attach: cron is not installed"), line
    assert line.count("cron is not installed") == 1
    assert crontab(world, inst) == ""


async def test_a_clone_of_the_armed_vm_disarms_itself_at_boot(
        vm: tuple[CoreEngine, Instance, Events], world: tuple[Any, Any, Any]) -> None:
    """A VM booted from the armed VM's frozen image carries its autostop folder (config naming the other server, its
    shelve credential) and its @reboot line: at boot its watchdog sees it is not that server and disarms itself —
    never acting for the other VM — while the armed VM keeps its autostop."""
    engine, inst, _ = vm
    status = await engine.autostop.set(inst, dataclasses.replace(LONG, action="shelve"))
    assert status.armed and status.running and status.action == "shelve"
    clone = await asyncio.to_thread(launch, engine.cloud, f"{inst.name}-clone", engine.services.keystore)
    try:
        home = vm_home(engine, clone, world)
        folder = home / ".cades-tui" / "autostop"
        shutil.copytree(vm_home(engine, inst, world) / ".cades-tui" / "autostop", folder)  # what its image held
        for name in ("pid", "state.json", "actions.log", "watchdog.log"):
            (folder / name).unlink(missing_ok=True)
        spool = Path(world[0].instances_dir) / clone.id / "spool"
        spool.mkdir(exist_ok=True)
        (spool / "crontab").write_text(watchdog.boot_line(str(home)) + "\n")
        conn = engine.cloud.conn  # type: ignore[attr-defined]
        await asyncio.to_thread(conn.compute.reboot_server, clone.id, "HARD")
        assert await eventually(lambda: "a clone of it?" in ((folder / "actions.log").read_text() if (
            folder / "actions.log").exists() else ""), 30), (folder / "boot.log").read_text()
        assert not (folder / "config.json").exists() and not (folder / "credential.json").exists()
        assert crontab(world, clone) == ""
        assert f"armed for server {inst.id}, but this VM is {clone.id}" in (folder / "actions.log").read_text()
        again = await engine.autostop.status(inst)  # the armed VM: untouched
        assert again.armed and again.running and again.at_boot == "cron" and again.action == "shelve", again
        assert nova_status(engine, inst) == "ACTIVE"
    finally:
        await asyncio.to_thread(engine.cloud.delete, clone.name, True)
