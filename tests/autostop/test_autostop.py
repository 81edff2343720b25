"""Autostop on a sandbox VM (a real sshd host; the watchdog runs there as it would on a VM, with a period of seconds
set by the test-only threshold `policy.MIN_IDLE_S`): idle → the VM powers itself off and Nova (the sandbox, seen
through openstacksdk) says SHUTOFF; a busy kernel of a real Jupyter and an interactive SSH session keep it; `keep`
resets the timer, `off` removes the watchdog; the warning is in Jupyter's log and reaches the app as an event.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests._support import JUPYTER, Events, launch, never, sandbox_services, sandbox_settings
from tests.manager.conftest import execute
from tui.core.autostop import policy as autostop_policy
from tui.core.autostop.policy import Policy
from tui.core.config import AutostopSettings
from tui.core.engine import CoreEngine, open_cloud
from tui.core.events import AutostopState
from tui.core.guide.steps import InstallAutostop, WaitForSSH
from tui.core.jupyter import http
from tui.core.models import Instance, StepStatus
from tui.core.options import ManagerOptions
from tui.core.services import Services

FAST = Policy(idle_s=3.0, action="stop", cpu_percent=100.0, warn_s=1.5, every_s=0.3)  # 100: CPU never counts


@pytest.fixture(autouse=True)
def seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(autostop_policy, "MIN_IDLE_S", 1.0)  # the test-only threshold
    monkeypatch.setattr(autostop_policy, "MIN_EVERY_S", 0.1)


@pytest.fixture(scope="module")
def world(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, Any]]:
    base = tmp_path_factory.mktemp("autostop")
    settings = sandbox_settings(sandbox)
    services = sandbox_services(settings, base / "data" / "cades-tui", base / "state" / "cades-tui")
    yield sandbox, settings, services


@pytest.fixture
async def vm(world: tuple[Any, Any, Any]) -> AsyncIterator[tuple[CoreEngine, Instance, Events]]:
    _sandbox, settings, services = world
    cloud = await asyncio.to_thread(open_cloud, settings)
    name = f"as-{uuid.uuid4().hex[:6]}"
    events = Events()
    engine = CoreEngine(settings, cloud, events, services=services, options=ManagerOptions(jupyter_command=JUPYTER))
    try:
        inst = await asyncio.to_thread(launch, cloud, name, services.keystore)
        yield engine, inst, events
    finally:
        await engine.aclose()
        try:
            await asyncio.to_thread(cloud.delete, name, True)  # ends the VM's processes (the watchdog too)
        except Exception as exc:
            print(f"cleanup of {name}: {exc}")


def nova_status(engine: CoreEngine, inst: Instance) -> str:
    """What Nova says, through openstacksdk (not the app's models)."""
    conn = engine.cloud.conn  # type: ignore[attr-defined]
    return str(conn.compute.get_server(inst.id).status)


def vm_home(engine: CoreEngine, inst: Instance, world: tuple[Any, Any, Any]) -> Path:
    return Path(world[0].instances_dir) / inst.id / "home"


async def shut_off(engine: CoreEngine, inst: Instance, timeout: float) -> bool:
    async def look() -> bool:
        return await asyncio.to_thread(nova_status, engine, inst) == "SHUTOFF"

    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await look():
            return True
        await asyncio.sleep(0.2)
    return False


async def test_idle_vm_warns_then_powers_itself_off(vm: tuple[CoreEngine, Instance, Events],
                                                    world: tuple[Any, Any, Any]) -> None:
    engine, inst, events = vm
    home = vm_home(engine, inst, world)
    (home / ".cades-tui").mkdir(exist_ok=True)
    (home / ".cades-tui" / "jupyter.log").write_text("")  # Jupyter's log (a server ran here): the warning goes in
    status = await engine.autostop.set(inst, FAST)
    assert status.armed and status.running and status.action == "stop"
    folder = home / ".cades-tui" / "autostop"
    assert folder.stat().st_mode & 0o777 == 0o700 and (folder / "config.json").stat().st_mode & 0o777 == 0o600
    warned = None
    for _ in range(100):
        warned = await engine.autostop.status(inst)
        if warned.warning:
            break
        await asyncio.sleep(0.1)
    assert warned is not None and "will stop" in warned.warning, warned
    assert events.of(AutostopState)[-1].status.warning == warned.warning  # what the app shows
    assert "--keep" in (home / ".cades-tui" / "jupyter.log").read_text()
    assert await shut_off(engine, inst, 20), await asyncio.to_thread(nova_status, engine, inst)
    actions = (folder / "actions.log").read_text()
    assert "warned" in actions and "powered off (poweroff)" in actions, actions
    assert "token" not in (folder / "watchdog.log").read_text().lower()

    conn = engine.cloud.conn  # type: ignore[attr-defined]
    await asyncio.to_thread(conn.compute.start_server, inst.id)  # started again: the app starts its watchdog again
    for _ in range(150):
        again = await asyncio.to_thread(engine.cloud.get_instance, inst.id)
        if again.status == "ACTIVE":
            await engine.fleet.refresh([again])
            seen = [e.status for e in events.of(AutostopState) if e.instance_id == inst.id]
            if seen and seen[-1].running:
                break
        await asyncio.sleep(0.2)
    status = await engine.autostop.status(again)
    assert status.armed and status.running and not status.acted, status


async def test_busy_kernel_then_ssh_session_keep_it(vm: tuple[CoreEngine, Instance, Events],
                                                   world: tuple[Any, Any, Any]) -> None:
    engine, inst, _ = vm
    await engine.jupyter.start(inst)
    url = urlparse(await engine.jupyter.token_url(inst) or "")
    port, token = int(url.port or 0), parse_qs(url.query)["token"][0]
    through = http.tcp_opener("127.0.0.1", port)
    created = await http.request(through, "POST", "/api/kernels", token=token, body={"name": "python3"})
    kernel_id = created.json()["id"]
    await execute(port, token, kernel_id, "import time; time.sleep(120)")
    await engine.autostop.set(inst, FAST)

    async def busy_with(what: str) -> bool:
        for _ in range(100):
            if what in (await engine.autostop.status(inst)).busy:
                return True
            await asyncio.sleep(0.1)
        return False

    assert await busy_with("kernel is busy")
    assert await never(lambda: nova_status(engine, inst) == "SHUTOFF", within=FAST.idle_s * 2)
    conn = await engine.manager.connection(await engine.context(inst))
    person = await conn.create_process("sleep 120", term_type="xterm")  # an interactive login: a terminal
    try:
        assert (await http.request(through, "POST", f"/api/kernels/{kernel_id}/interrupt", token=token)).status == 204
        assert await busy_with("SSH session")
        assert await never(lambda: nova_status(engine, inst) == "SHUTOFF", within=FAST.idle_s * 2)
    finally:
        person.close()  # the person logs out: sshd hangs up their terminal
        await person.wait_closed()
    assert await shut_off(engine, inst, 30), await engine.autostop.status(inst)  # nobody left: it acts
    log = (vm_home(engine, inst, world) / ".cades-tui" / "jupyter.log").read_text()
    assert "cades-tui autostop] this VM will stop" in log  # the warning, in Jupyter's own log
    assert token not in (vm_home(engine, inst, world) / ".cades-tui" / "autostop" / "watchdog.log").read_text()


async def test_keep_resets_and_off_removes(vm: tuple[CoreEngine, Instance, Events],
                                           world: tuple[Any, Any, Any]) -> None:
    engine, inst, _ = vm
    slow = Policy(idle_s=4.0, action="stop", cpu_percent=100.0, warn_s=3.0, every_s=0.3)
    first = await engine.autostop.set(inst, slow)
    warned = first
    for _ in range(100):
        warned = await engine.autostop.status(inst)
        if warned.warning:
            break
        await asyncio.sleep(0.1)
    assert warned.warning and warned.acts_at is not None
    kept = await engine.autostop.keep(inst)
    for _ in range(50):
        kept = await engine.autostop.status(inst)
        if not kept.warning:
            break
        await asyncio.sleep(0.1)
    assert not kept.warning and kept.acts_at is not None and kept.acts_at > warned.acts_at
    log = engine.services.command_log(inst).read()  # what the watchdog did, copied into the command log here
    assert "# autostop on the VM:" in log and "warned:" in log and "kept: the timer starts again" in log
    off = await engine.autostop.off(inst)
    assert not off.armed and not off.running
    folder = vm_home(engine, inst, world) / ".cades-tui" / "autostop"
    assert not (folder / "config.json").exists()
    assert await never(lambda: nova_status(engine, inst) == "SHUTOFF", within=slow.idle_s * 2)
    with pytest.raises(Exception, match="no autostop to keep"):
        await engine.autostop.keep(inst)


async def test_setup_installs_and_arms_the_profiles_autostop(world: tuple[Any, Any, Any]) -> None:
    """The guide step: with the profile's `autostop.idle: 5m` setup installs the watchdog and starts it (and its
    @reboot line); run again, the step is already done (skipped)."""
    _sandbox, settings, services = world
    armed = dataclasses.replace(settings, autostop=AutostopSettings(idle="5m"))
    cloud = await asyncio.to_thread(open_cloud, armed)
    name = f"as-setup-{uuid.uuid4().hex[:6]}"
    engine = CoreEngine(armed, cloud, Events(), services=Services(armed, services.keystore, services.state_dir,
                                                                    services.known_hosts),
                        options=ManagerOptions(setup_steps=(WaitForSSH(), InstallAutostop())))
    try:
        inst = await asyncio.to_thread(launch, cloud, name, services.keystore)
        first = await engine.run_setup(inst)
        assert first.ok and [(r.step, r.status) for r in first.results][-1] == ("autostop", StepStatus.DONE)
        status = await engine.autostop.status(inst)
        assert status.armed and status.running and status.idle_s == 300 and status.action == "stop"
        assert status.at_boot == "cron"  # and started at every boot by the crontab's @reboot line
        again = await engine.run_setup(inst)
        assert [(r.step, r.status) for r in again.results][-1] == ("autostop", StepStatus.SKIPPED)
    finally:
        await engine.aclose()
        await asyncio.to_thread(cloud.delete, name, True)
