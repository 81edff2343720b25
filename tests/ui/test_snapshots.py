"""Snapshots at 80x24 and 120x40: fixed sandbox data (fixed names, no ids shown), frozen clock, no blink."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Input, OptionList

from tui.ui.screens.confirm import DeleteInstance
from tui.ui.screens.wizard import LaunchWizard
from tui.ui.widgets.tables import FlavorsTable, InstancesTable

SIZES = [(80, 24), (120, 40)]


@pytest.fixture
def scene(ui: Any, scene_sandbox: tuple[Any, Any]) -> Any:
    """The app on the scene (alpha: m1.small, running; beta: c1.small, shut down), its clock 3 h 7 min after
    alpha's launch."""
    sandbox, cloud = scene_sandbox
    if not cloud.list_instances():
        ui.launch(cloud, "alpha", "m1.small")
        ui.launch(cloud, "beta", "c1.small")
        cloud.stop("beta")
    alpha = cloud.get_instance("alpha")
    return ui.app_factory(sandbox)(clock=ui.frozen_after(alpha))


async def _still(pilot: Any) -> None:
    """No notifications and no blinking cursors in a snapshot. `clear_notifications` refreshes only the top
    screen: a toast shown before a dialog opened ("Reading images…", 2 s) stays on the screen below until it
    expires, and showed at the dialog's edge whenever the test ran faster than that."""
    app = pilot.app
    app.clear_notifications()
    for below in app.screen_stack:
        await below.query("ToastHolder").remove()
    for widget in app.screen.query(Input):
        widget.cursor_blink = False
    await pilot.pause()


async def _loaded(ui: Any, pilot: Any) -> None:
    app = pilot.app

    def ready() -> bool:
        """both instances and the flavors"""
        return len(app.query_one(InstancesTable).instances) == 2 and app.query_one(FlavorsTable).row_count > 0
    await ui.wait_for(pilot, ready)
    app.query_one(InstancesTable).focus()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen(ui: Any, scene: Any, snap_compare: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        await _loaded(ui, pilot)
        await _still(pilot)

    assert snap_compare(scene, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_wizard_flavor_step(ui: Any, scene: Any, snap_compare: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        await _loaded(ui, pilot)
        await pilot.press("n")
        await ui.screen(pilot, LaunchWizard)
        await pilot.press(*"analytics-1", "enter", "enter")
        wizard = pilot.app.screen
        flavors = wizard.query_one("#flavor", OptionList)
        index = next(i for i in range(flavors.option_count)
                     if str(flavors.get_option_at_index(i).prompt).startswith("m1.medium"))
        flavors.highlighted = index
        await pilot.press("enter")  # refused: does not fit
        await pilot.pause(0.3)  # the refusal and the highlight's scroll settle
        await _still(pilot)

    assert snap_compare(scene, terminal_size=size, run_before=run_before)


def test_delete_confirmation(ui: Any, scene: Any, snap_compare: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await _loaded(ui, pilot)
        await pilot.press("ctrl+d")
        await ui.screen(pilot, DeleteInstance)
        await pilot.press(*"alp")
        await _still(pilot)

    assert snap_compare(scene, terminal_size=(80, 24), run_before=run_before)
