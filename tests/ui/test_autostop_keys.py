"""`u` and `w` in the app, against a sandbox VM (real sshd; the watchdog runs there): the dialog sets autostop, the
warning the watchdog writes on the VM reaches the app when it refreshes and is shown with the key that keeps the VM,
`w` keeps it, the dialog's Turn off removes it. At 80x24."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Input

from tui.core.autostop import policy as autostop_policy
from tui.core.cloud.base import LaunchSpec
from tui.core.cloud.openstack_cloud import OpenStackCloud
from tui.core.config import AutostopSettings, Settings, SSHSettings, UISettings
from tui.core.engine import engine_factory
from tui.core.keys import KeyStore
from tui.core.services import Services, launch_instance
from tui.ui.app import CadesApp
from tui.ui.screens.autostop import AutostopDialog
from tui.ui.widgets.tables import InstancesTable


def _spec(cloud: OpenStackCloud, name: str) -> LaunchSpec:
    image = max((i for i in cloud.list_images() if "24.04" in i.name), key=lambda i: i.name)
    network = next(n for n in cloud.list_networks() if not n.external)
    return LaunchSpec(name=name, image=image.id, flavor="m1.small", key_name="", network=network.id,
                      volume_size_gb=16)


async def test_u_sets_the_warning_shows_w_keeps_and_turn_off(ui: Any, sb: Any, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(autostop_policy, "MIN_IDLE_S", 1.0)  # the test-only threshold: seconds
    monkeypatch.setattr(autostop_policy, "MIN_EVERY_S", 0.1)
    cloud = OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sb.clouds_yaml)
    store = KeyStore(tmp_path / "data")
    inst = await asyncio.to_thread(launch_instance, cloud, _spec(cloud, "auto"), lambda _: None, store=store)
    settings = Settings(cloud="sandbox", clouds_yaml=str(sb.clouds_yaml), ui=UISettings(refresh_s=0.5),
                        ssh=SSHSettings(use_ssh_config=False),
                        autostop=AutostopSettings(cpu_percent=100, warn_before="15s", check_every="0.3s"))
    services = Services(settings, store, tmp_path / "state", tmp_path / "known_hosts")
    app = CadesApp(settings, engine_factory(
        settings, lambda: OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sb.clouds_yaml), services=services))
    watch = ui.Watch()

    def told(text: str) -> bool:
        return any(text in note for note in watch.notes())

    try:
        async with app.run_test(size=(80, 24), notifications=True, message_hook=watch.hook) as pilot:
            await ui.wait_for(pilot, lambda: bool(app.query_one(InstancesTable).instances) and app.engine is not None)
            await pilot.press("u")
            dialog = await ui.screen(pilot, AutostopDialog)
            assert dialog.query_one("#autostop-idle", Input).value == "60m"  # the profile's is off: a suggestion
            dialog.query_one("#autostop-idle", Input).value = "30s"
            await pilot.press("enter")
            await ui.wait_for(pilot, lambda: told("Autostop set: stop after 30s idle"), timeout=20)
            await ui.wait_for(pilot, lambda: told("auto is idle: it will stop in"), timeout=30)  # read on a refresh
            assert told("Press w to keep it")
            await pilot.press("w")
            await ui.wait_for(pilot, lambda: told("Kept auto"), timeout=20)
            await pilot.press("u")
            dialog = await ui.screen(pilot, AutostopDialog)
            dialog.query_one("#off", Button).press()  # (toasts may cover it for a click at 80x24)
            await ui.wait_for(pilot, lambda: told("Autostop off on auto"), timeout=20)
        assert (await asyncio.to_thread(cloud.get_instance, inst.id)).status == "ACTIVE"  # never stopped
    finally:
        await asyncio.to_thread(cloud.delete, inst.id, True)
