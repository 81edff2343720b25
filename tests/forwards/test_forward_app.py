"""The app's Tunnels pane with a user forward, from the keys, against a sandbox VM (a real sshd) and a real web
server on it: `a` (the dialog offers the VM's listening ports), the byte counts going up with traffic, `space`
closes and re-opens it (kept), a forward saved or forgotten by another cades-tui is followed, `delete` asks before
forgetting one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, OptionList

from tests.ui.conftest import Watch, screen, wait_for
from tui.core.cloud.base import LaunchSpec
from tui.core.cloud.openstack_cloud import OpenStackCloud
from tui.core.config import Settings, SSHSettings, UISettings
from tui.core.engine import engine_factory
from tui.core.keys import KeyStore
from tui.core.models import Instance
from tui.core.services import Services, launch_instance
from tui.core.state import AppState, ForwardRecord
from tui.sandbox.sshhost import free_port
from tui.ui.app import CadesApp
from tui.ui.screens.confirm import Confirm
from tui.ui.screens.forward import ForwardDialog
from tui.ui.widgets.tables import TunnelsTable


@dataclass
class Rig:
    base: Path
    settings: Settings
    factory: Any
    instance: Instance
    web_port: int

    @property
    def state(self) -> AppState:
        return AppState.load(self.base / "state" / "state.json")


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """A sandbox, one instance with the app's key, and `python3 -m http.server` on it (started over SSH, killed in
    the finally)."""
    from tui.sandbox import Delays, Sandbox

    base = tmp_path_factory.mktemp("forward-ui")
    sandbox = Sandbox(base / "sandbox", delays=Delays.fast(), seed_demo=False)
    sandbox.start()
    pid = 0
    try:
        cloud = OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sandbox.clouds_yaml)
        store = KeyStore(base / "data")
        image = max((i for i in cloud.list_images() if "24.04" in i.name), key=lambda i: i.name)
        network = next(n for n in cloud.list_networks() if not n.external)
        inst = launch_instance(cloud, LaunchSpec(name="fwd", image=image.id, flavor="m1.small", key_name="",
                                                 network=network.id, volume_size_gb=16), lambda _: None, store=store)
        settings = Settings(cloud="sandbox", clouds_yaml=str(sandbox.clouds_yaml), ui=UISettings(refresh_s=0.5),
                            ssh=SSHSettings(use_ssh_config=False))
        svc = Services(settings, store, base / "state", base / "known_hosts")
        factory = engine_factory(
            settings, lambda: OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sandbox.clouds_yaml),
            services=svc)
        port = free_port()
        pid = asyncio.run(_start_web(factory, cloud.get_instance(inst.id), port))
        yield Rig(base, settings, factory, cloud.get_instance(inst.id), port)
    finally:
        if pid:
            with contextlib.suppress(ProcessLookupError):  # (the sandbox's VMs run on this machine)
                os.kill(pid, signal.SIGTERM)
        sandbox.stop()


async def _start_web(factory: Any, inst: Instance, port: int) -> int:
    engine = await asyncio.to_thread(factory, lambda _e: None)
    try:
        conn = await engine.manager.connection(await engine.context(inst))
        result = await conn.run(f"echo page-of-fwd > index.html; nohup python3 -m http.server {port} --bind "
                                "127.0.0.1 >/dev/null 2>&1 </dev/null & echo $!", check=True)
        return int(str(result.stdout).split()[-1])
    finally:
        await engine.aclose()


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as resp:
        return str(resp.read().decode())


def row(app: CadesApp, key: str) -> list[str]:
    return [str(c) for c in app.query_one(TunnelsTable).get_row(key)]


def has_row(app: CadesApp, key: str, state: str) -> bool:
    try:
        return row(app, key)[2] == state
    except Exception:  # no such row (yet)
        return False


async def test_a_user_forward_from_the_tunnels_pane_with_live_bytes(rig: Rig) -> None:
    app = CadesApp(rig.settings, rig.factory)
    iid, key = rig.instance.id, f"{rig.instance.id}/forward:web"
    async with app.run_test(size=(120, 40), notifications=True, message_hook=Watch().hook) as pilot:
        await wait_for(pilot, lambda: app.engine is not None and app.fleet.get(iid) is not None)
        await pilot.press("4", "a")
        dialog = await screen(pilot, ForwardDialog)
        options = dialog.query_one("#forward-suggestions", OptionList)

        def offered() -> bool:
            """the web server's port among the suggestions"""
            return any(options.get_option_at_index(i).id == str(rig.web_port) for i in range(options.option_count))

        await wait_for(pilot, offered, timeout=30)
        assert dialog.listeners and not [x for x in dialog.listeners if x.process.startswith("sshd")]
        dialog.query_one("#forward-port", Input).value = str(rig.web_port)
        dialog.query_one("#forward-label", Input).value = "web"
        dialog.query_one("#forward-port", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: has_row(app, key, "up"), timeout=30)
        name, ports = row(app, key)[:2]
        assert name == "fwd web"
        local = int(ports.split(" → ")[0].lstrip(":"))
        assert ports == f":{local} → :{rig.web_port}"
        before = row(app, key)[4]
        for _ in range(3):
            assert await asyncio.to_thread(get, local) == "page-of-fwd\n"
        await wait_for(pilot, lambda: row(app, key)[4] != before, timeout=10)
        live = app.fleet.get(iid)
        info = next(t for t in live.tunnels if t.purpose == "forward:web") if live else None
        assert info is not None and info.bytes_in > 0 and info.bytes_out > 0
        [saved] = rig.state.forwards.values()
        assert (saved.label, saved.remote_port, saved.local_port, saved.enabled) == ("web", rig.web_port, local, True)

        await pilot.press("space")  # closed, kept
        await wait_for(pilot, lambda: has_row(app, key, "off"), timeout=15)
        assert not rig.state.forwards[(iid, "web")].enabled
        with pytest.raises(OSError):
            await asyncio.to_thread(get, local)
        await pilot.press("space")  # open again, on the same local port
        await wait_for(pilot, lambda: has_row(app, key, "up"), timeout=30)
        assert await asyncio.to_thread(get, local) == "page-of-fwd\n"

        # another cades-tui saves a forward (`forward NAME PORT --save`), then forgets it (`forward close`)
        other = f"{iid}/forward:other"
        rig.state.put_forward(ForwardRecord(iid, "other", rig.web_port, name="fwd"))
        await wait_for(pilot, lambda: has_row(app, other, "up"), timeout=30)
        rig.state.drop_forward(iid, "other")
        await wait_for(pilot, lambda: other not in [str(k.value) for k in app.query_one(TunnelsTable).rows], 30)

        await pilot.press("delete")  # asks first: a saved forward would be forgotten
        confirm = await screen(pilot, Confirm)
        assert "no longer opened by the app" in str(confirm.body)
        await pilot.click("#confirm")
        await wait_for(pilot, lambda: key not in [str(k.value) for k in app.query_one(TunnelsTable).rows], 15)
    assert not rig.state.forwards
