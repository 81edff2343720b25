"""Snapshots of the Setup log mid-run, the Tunnels pane and the Jupyter log view. Deterministic: the events are
recorded ones fed through the app's bridge (the log view: its recorded lines, as the app's handler feeds them), with
fixed ports, sizes and times; the clock is frozen."""

from __future__ import annotations

from typing import Any

import pytest

from screenshots.recorded import forward_events, jupyter_events, log_events, setup_events
from tui.ui.screens.jupyter_log import JupyterLogScreen
from tui.ui.widgets.tables import InstancesTable

SIZES = [(80, 24), (120, 40)]


@pytest.fixture
def scene(ui: Any, scene_sandbox: tuple[Any, Any]) -> Any:
    sandbox, cloud = scene_sandbox
    if not cloud.list_instances():
        ui.launch(cloud, "alpha", "m1.small")
    alpha = cloud.get_instance("alpha")
    return ui.app_factory(sandbox)(clock=ui.frozen_after(alpha)), alpha


async def _loaded(ui: Any, pilot: Any) -> None:
    app = pilot.app
    await ui.wait_for(pilot, lambda: bool(app.query_one(InstancesTable).instances) and app.engine is not None)


async def _settle(pilot: Any) -> None:
    await pilot.pause(0.2)
    pilot.app.clear_notifications()
    await pilot.pause()


def test_setup_log_mid_run(ui: Any, scene: Any, snap_compare: Any) -> None:
    app, alpha = scene

    async def run_before(pilot: Any) -> None:
        await _loaded(ui, pilot)
        for event in setup_events(alpha.id, 0.0):
            app.bridge(event)
        await pilot.press("3")
        await _settle(pilot)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_tunnels_pane(ui: Any, scene: Any, snap_compare: Any, size: tuple[int, int]) -> None:
    app, alpha = scene

    async def run_before(pilot: Any) -> None:
        await _loaded(ui, pilot)
        now = app.clock()
        for event in [*jupyter_events(alpha.id, now, remote_port=8890), *forward_events(alpha.id, now)]:
            app.bridge(event)  # Jupyter's tunnel and a user's forward
        await pilot.press("4")
        await _settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_jupyter_log_view(ui: Any, scene: Any, snap_compare: Any, size: tuple[int, int]) -> None:
    app, alpha = scene

    async def run_before(pilot: Any) -> None:
        await _loaded(ui, pilot)
        screen = JupyterLogScreen(alpha.id, "alpha")
        await app.push_screen(screen)
        for event in log_events(alpha.id):
            screen.add(list(event.lines))  # as the app's LogLines handler feeds the open log view
        await pilot.pause(0.3)  # the line count in the status line is redrawn at most every 0.25 s
        await _settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
