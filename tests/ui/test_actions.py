"""Instance actions driven by keys against the sandbox; each test checks the sandbox's state afterwards."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from textual.widgets import Button, Checkbox, Input, Log, OptionList, Static

from tui.core.cloud.openstack_cloud import OpenStackCloud
from tui.core.engine import engine_factory
from tui.core.keys import KeyStore
from tui.ui.app import CadesApp
from tui.ui.screens.confirm import Confirm, DeleteInstance
from tui.ui.screens.instance import ConsoleScreen, DetailsScreen, PickFlavor, VerifyResize
from tui.ui.screens.volumes import NewVolume, VolumesScreen
from tui.ui.screens.wizard import LaunchWizard
from tui.ui.widgets.tables import InstancesTable


async def _ready(ui: Any, pilot: Any, app: CadesApp, n: int = 0) -> None:
    def loaded() -> bool:
        """the first poll with instances"""
        table = app.query_one(InstancesTable)
        return app.fleet.quota is not None and len(table.instances) >= n and bool(app.fleet.flavors)
    await ui.wait_for(pilot, loaded)


@asynccontextmanager
async def _app_with_alpha(ui: Any, cloud: Any, make_app: Any, flavor: str = "m1.tiny",
                          **run_test: Any) -> AsyncIterator[tuple[CadesApp, Any]]:
    """alpha launched in the sandbox (`flavor`), then the app (120x40, `run_test` options) past its first poll
    listing alpha: (app, pilot)."""
    await ui.in_thread(ui.launch, cloud, "alpha", flavor)
    app = make_app()
    async with app.run_test(size=(120, 40), **run_test) as pilot:
        await _ready(ui, pilot, app, 1)
        yield app, pilot


def _status(cloud: Any, name: str) -> str:
    return str(cloud.get_instance(name).status)


async def _cloud_until(ui: Any, pilot: Any, cloud: Any, check: Any, timeout: float = 20.0) -> None:
    """Poll the sandbox (from a thread) until `check(cloud)` holds."""
    deadline = time.monotonic() + timeout
    while not await ui.in_thread(check, cloud):
        assert time.monotonic() < deadline, f"sandbox never reached the expected state ({check})"
        await pilot.pause(0.2)


def _highlight(options: OptionList, text: str) -> None:
    for index in range(options.option_count):
        if str(options.get_option_at_index(index).prompt).startswith(text):
            options.highlighted = index
            return
    raise AssertionError(f"no option {text!r}")


async def test_wizard_refuses_bad_input_then_launches(ui: Any, sb: Any, cloud: Any, make_app: Any) -> None:
    async with _app_with_alpha(ui, cloud, make_app, "m1.small") as (app, pilot):  # also imports the key pair
        await pilot.press("n")
        await ui.screen(pilot, LaunchWizard)
        wizard = app.screen
        assert isinstance(wizard, LaunchWizard)
        error = wizard.query_one("#wizard-error", Static)

        await pilot.press(*"my vm;rm", "enter")  # spaces and shell characters: refused, no API call
        assert wizard.step == "name" and "not allowed" in str(error.render())
        wizard.query_one("#name", Input).value = "alpha"
        await pilot.press("enter")
        assert wizard.step == "name" and "already exists" in str(error.render())
        wizard.query_one("#name", Input).value = "gamma"
        await pilot.press("enter")
        assert wizard.step == "image"
        image = wizard.query_one("#image", OptionList)
        assert str(image.get_option_at_index(image.highlighted or 0).prompt).startswith("Ubuntu 24.04")
        await pilot.press("enter")
        assert wizard.step == "flavor"
        flavors = wizard.query_one("#flavor", OptionList)
        assert str(flavors.get_option_at_index(flavors.highlighted or 0).prompt).startswith("m1.tiny")
        _highlight(flavors, "m1.medium")  # 8 GB RAM, but alpha already uses 4 GB of 8
        await pilot.press("enter")
        assert wizard.step == "flavor"
        assert "m1.medium does not fit your quota: needs 8 GiB RAM, 4 GiB left" in str(error.render())
        _highlight(flavors, "m1.tiny")
        await pilot.press("enter")
        assert wizard.step == "volume"
        volume = wizard.query_one("#volume", Input)
        assert volume.value == "16"
        volume.value = "4"
        await pilot.press("enter")
        assert wizard.step == "volume" and "too small" in str(error.render())
        volume.value = "20"
        await pilot.press("enter")
        assert wizard.step == "key"
        keys = wizard.query_one("#key", OptionList)
        assert keys.highlighted == 0 and keys.get_option_at_index(0).id == "<app-key>"
        await pilot.press("enter", "enter")  # the app's own key pair, the network
        assert wizard.step == "review"
        summary = str(wizard.query_one("#summary", Static).render())
        assert "gamma" in summary and "m1.tiny" in summary and "20 GB" in summary
        assert len(await ui.in_thread(cloud.list_instances)) == 1  # nothing launched so far
        await pilot.press("enter")  # the Launch button
        assert wizard.step == "progress"
        await ui.wait_for(pilot, lambda: not wizard.launching, timeout=30)
        lines = wizard.query_one("#progress", Log).lines
        assert any("gamma is ACTIVE at 127.0.0.1" in line for line in lines), lines
        server = await ui.in_thread(cloud.get_instance, "gamma")
        assert server.status == "ACTIVE" and server.flavor_name == "m1.tiny"
        assert server.key_name.startswith("cades-tui-")  # the app's own key pair, imported for this launch
        assert server.key_name in {k.name for k in await ui.in_thread(cloud.list_keypairs)}
        assert KeyStore().key_for(server.id) == KeyStore().private_path("cades-tui")
        boot = [v for v in await ui.in_thread(cloud.list_volumes) if server.id in v.attached_to]
        assert [v.size_gb for v in boot] == [20]
        await pilot.press("enter")  # Close
        assert not isinstance(app.screen, LaunchWizard)
        await ui.wait_for(pilot, lambda: len(app.query_one(InstancesTable).instances) == 2)


async def test_failed_launch_is_explained_and_polling_goes_on(ui: Any, sb: Any, cloud: Any,
                                                              make_app: Any) -> None:
    watch = ui.Watch()
    async with _app_with_alpha(ui, cloud, make_app, message_hook=watch.hook) as (app, pilot):
        sb.faults.fail_next_create = True
        await pilot.press("n")
        await ui.screen(pilot, LaunchWizard)
        wizard = app.screen
        assert isinstance(wizard, LaunchWizard)
        await pilot.press(*"omega", "enter", "enter", "enter", "enter", "enter", "enter", "enter")
        await ui.wait_for(pilot, lambda: wizard.step == "progress" and not wizard.launching, timeout=30)
        lines = wizard.query_one("#progress", Log).lines
        assert any(line.startswith("Failed:") for line in lines), lines
        await pilot.press("escape")
        polls = len(watch.of("Polled"))
        await ui.wait_for(pilot, lambda: len(watch.of("Polled")) >= polls + 2)
        assert app.sub_title == "sandbox ● connected"


async def test_resize_then_confirm(ui: Any, sb: Any, cloud: Any, make_app: Any) -> None:
    async with _app_with_alpha(ui, cloud, make_app, "m1.tiny") as (app, pilot):
        await pilot.press("r")
        await ui.screen(pilot, PickFlavor)
        options = app.screen.query_one(OptionList)
        _highlight(options, "m1.tiny")  # the current flavor is refused
        await pilot.press("enter")
        assert "already has m1.tiny" in str(app.screen.query_one("#pick-error", Static).render())
        _highlight(options, "c1.small")
        await pilot.press("enter")
        await ui.screen(pilot, Confirm)
        await pilot.click("#confirm")
        await ui.screen(pilot, VerifyResize, timeout=30)
        assert await ui.in_thread(_status, cloud, "alpha") == "VERIFY_RESIZE"
        await pilot.click("#confirm")
        await _cloud_until(ui, pilot, cloud, lambda c: c.get_instance("alpha").status == "ACTIVE")
        assert (await ui.in_thread(cloud.get_instance, "alpha")).flavor_name == "c1.small"


async def test_stop_then_start(ui: Any, sb: Any, cloud: Any, make_app: Any) -> None:
    async with _app_with_alpha(ui, cloud, make_app) as (app, pilot):
        await pilot.press("p")
        await ui.screen(pilot, Confirm)
        await pilot.press("enter")  # Cancel has the focus: nothing happens
        assert not isinstance(app.screen, Confirm)
        assert await ui.in_thread(_status, cloud, "alpha") == "ACTIVE"
        await pilot.press("p")
        await ui.screen(pilot, Confirm)
        await pilot.click("#confirm")
        await _cloud_until(ui, pilot, cloud, lambda c: c.get_instance("alpha").status == "SHUTOFF")
        table = app.query_one(InstancesTable)
        await ui.wait_for(pilot, lambda: table.selected is not None and table.selected.status == "SHUTOFF")
        await pilot.press("p")  # starting asks nothing
        await _cloud_until(ui, pilot, cloud, lambda c: c.get_instance("alpha").status == "ACTIVE")


async def test_delete_needs_the_typed_name_and_keeps_volumes(ui: Any, sb: Any, cloud: Any,
                                                             make_app: Any) -> None:
    async with _app_with_alpha(ui, cloud, make_app) as (app, pilot):
        await pilot.press("ctrl+d")
        await ui.screen(pilot, DeleteInstance)
        dialog = app.screen
        fate = str(dialog.query_one("#volumes-fate", Static).render())
        assert "boot volume" in fate and "will be kept" in fate
        await pilot.press(*"alph")
        assert dialog.query_one("#confirm", Button).disabled
        await pilot.press("enter")  # wrong name: refused
        assert app.screen is dialog
        await pilot.press("a", "enter")
        await _cloud_until(ui, pilot, cloud, lambda c: not c.list_instances())
        volumes = await ui.in_thread(cloud.list_volumes)
        assert len(volumes) == 1 and volumes[0].size_gb == 16 and not volumes[0].attached_to
        await ui.wait_for(pilot, lambda: not app.query_one(InstancesTable).instances)


async def test_delete_with_volumes(ui: Any, sb: Any, cloud: Any, make_app: Any) -> None:
    async with _app_with_alpha(ui, cloud, make_app) as (app, pilot):
        await pilot.press("ctrl+d")
        await ui.screen(pilot, DeleteInstance)
        app.screen.query_one("#delete-volumes", Checkbox).value = True
        await pilot.pause()
        assert "will be deleted" in str(app.screen.query_one("#volumes-fate", Static).render())
        app.screen.query_one("#typed-name", Input).value = "alpha"
        await pilot.click("#confirm")
        await _cloud_until(ui, pilot, cloud, lambda c: not c.list_instances() and not c.list_volumes())


async def test_console_details_and_reboot(ui: Any, sb: Any, cloud: Any, make_app: Any) -> None:
    watch = ui.Watch()
    async with _app_with_alpha(ui, cloud, make_app, "m1.small", message_hook=watch.hook) as (app, pilot):
        await pilot.press("c")
        await ui.screen(pilot, ConsoleScreen)
        text = "\n".join(app.screen.query_one(Log).lines)
        assert "SSH HOST KEY" in text.upper(), text[:500]
        await pilot.press("escape")
        await pilot.press("enter")
        await ui.screen(pilot, DetailsScreen)
        body = str(app.screen.query_one("#details-body", Static).render())
        assert "m1.small" in body and "ui-key" in body and "16 GB (boot)" in body and "127.0.0.1" in body
        assert "Jupyter" in body and "Load·Mem" in body  # the table's other columns, in full
        await pilot.press("escape")
        await pilot.press("b")
        await ui.screen(pilot, Confirm)
        await pilot.click("#confirm")
        await ui.wait_for(pilot, lambda: any("alpha is ACTIVE again" in n for n in watch.notes()), timeout=20)


async def test_volume_create_attach_detach_delete(ui: Any, sb: Any, cloud: Any, make_app: Any) -> None:
    alpha = await ui.in_thread(ui.launch, cloud, "alpha")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _ready(ui, pilot, app, 1)
        await pilot.press("v")
        await ui.screen(pilot, VolumesScreen)
        screen = app.screen
        await pilot.press("a")
        await ui.screen(pilot, NewVolume)
        await pilot.press(*"bad name", "enter")
        app.screen.query_one("#volume-size", Input).value = "5"
        await pilot.press("enter")
        assert "not allowed" in str(app.screen.query_one("#volume-error", Static).render())
        app.screen.query_one("#volume-name", Input).value = "data-1"
        app.screen.query_one("#volume-size", Input).focus()
        await pilot.press("enter")

        def attached(c: Any) -> bool:
            return any(v.name == "data-1" and alpha.id in v.attached_to for v in c.list_volumes())

        await _cloud_until(ui, pilot, cloud, attached)
        assert app.screen is screen
        await ui.wait_for(pilot, lambda: any(v.name == "data-1" and v.attached_to
                                             for v in screen.volumes.values()))
        data = next(v for v in screen.volumes.values() if v.name == "data-1")
        table = screen.query_one("#volumes-table")
        table.move_cursor(row=table.get_row_index(data.id))  # type: ignore[attr-defined]
        await pilot.press("x")  # attached: refused, says detach first
        await pilot.pause()
        assert not isinstance(app.screen, Confirm)
        await pilot.press("d")
        await ui.screen(pilot, Confirm)
        await pilot.click("#confirm")

        def detached(c: Any) -> bool:
            return any(v.name == "data-1" and not v.attached_to for v in c.list_volumes())

        await _cloud_until(ui, pilot, cloud, detached)
        await ui.wait_for(pilot, lambda: not screen.volumes[data.id].attached_to)
        await pilot.press("x")
        await ui.screen(pilot, Confirm)
        await pilot.click("#confirm")
        await _cloud_until(ui, pilot, cloud, lambda c: all(v.name != "data-1" for v in c.list_volumes()))


async def test_quota_exceeded_by_the_cloud_is_shown_with_its_message(ui: Any, sb: Any, make_app: Any) -> None:
    app = make_app()
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), message_hook=watch.hook) as pilot:
        await _ready(ui, pilot, app)
        await pilot.press("n")
        wizard = await ui.screen(pilot, LaunchWizard)
        sb.set_quota(instances=0)  # the quota shrinks after the wizard read it: only the cloud can refuse now
        await pilot.press(*"omega", "enter", "enter", "enter", "enter", "enter", "enter", "enter")
        await ui.wait_for(pilot, lambda: wizard.step == "progress" and not wizard.launching, timeout=30)
        failed = [line for line in wizard.query_one("#progress", Log).lines if line.startswith("Failed:")]
        assert failed and "quota" in failed[0].lower(), failed
        assert any("quota" in n.lower() for n in watch.notes("error"))
        await pilot.press("escape")
        assert not isinstance(app.screen, LaunchWizard)
        polls = len(watch.of("Polled"))
        await ui.wait_for(pilot, lambda: len(watch.of("Polled")) >= polls + 1)
        assert app.sub_title == "sandbox ● connected"


class FakeCloudWithABuggyConsole:
    """A fake at the edge: the real sandbox cloud, except that reading a console log raises an error no code
    expects (a RuntimeError, not one of the cloud's CloudErrors) — as a bug in the cloud facade would."""

    def __init__(self, real: OpenStackCloud) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def console_log(self, *args: Any, **kwargs: Any) -> str:
        raise RuntimeError("fake cloud: console_log broke")


async def test_a_worker_that_raises_is_reported_naming_the_action(ui: Any, sb: Any, cloud: Any) -> None:
    await ui.in_thread(ui.launch, cloud, "alpha")
    settings = ui.settings_for(sb)
    app = CadesApp(settings, engine_factory(settings, lambda: FakeCloudWithABuggyConsole(
        OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sb.clouds_yaml))))
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), notifications=True, message_hook=watch.hook) as pilot:
        await _ready(ui, pilot, app, 1)
        await pilot.press("c")
        await ui.wait_for(pilot, lambda: watch.notes("error"))
        assert watch.notes("error") == ["Read the console log failed\nRuntimeError: fake cloud: console_log broke\n"
                                        "Details are in the app log."]
        assert not isinstance(app.screen, ConsoleScreen)
        polls = len(watch.of("Polled"))  # the app lives on: keys work, polling goes on
        await pilot.press("2")
        assert app.focused is not None and app.focused.id == "flavors-table"
        await ui.wait_for(pilot, lambda: len(watch.of("Polled")) >= polls + 2)
        assert app.sub_title == "sandbox ● connected"
