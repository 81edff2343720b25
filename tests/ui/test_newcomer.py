"""What a newcomer trips over in the app (issue 20): each case fails on the code before its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult

from tui.ui.screens.help import HelpScreen
from tui.ui.widgets.tick import Tick


class _TickApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Tick("off", False, id="off")
        yield Tick("on", True, id="on")


async def test_a_checkbox_looks_different_on_and_off_without_colour() -> None:
    """Plain text alone (no colour) tells an unticked box from a ticked one: `▐ ▌` off, `▐✓▌` on."""
    app = _TickApp()
    async with app.run_test(size=(40, 6)) as pilot:
        off, on = app.query_one("#off", Tick), app.query_one("#on", Tick)
        assert off.render().plain.startswith("▐ ▌"), off.render().plain
        assert on.render().plain.startswith("▐✓▌"), on.render().plain
        off.focus()
        await pilot.press("space")
        assert off.value and off.render().plain.startswith("▐✓▌")


async def test_help_groups_keys_by_screen_with_their_action_ids(ui: Any, make_app: Any) -> None:
    """`?`: a heading per screen or pane; the cluster screen's `n` and `ctrl+d` under its own heading, not mixed
    into the main screen's; each row names its action id (what the profile's keymap remaps)."""
    app = make_app(keymap={"launch": "ctrl+n"})
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        help_screen = await ui.screen(pilot, HelpScreen)
        groups = dict(help_screen.groups)
        assert list(groups)[:4] == ["Main screen", "Instances table", "Tunnels pane", "Cluster screen (k)"]
        for heading, rows in groups.items():
            keys = [k for k, *_ in rows]
            assert len(keys) == len(set(keys)), (heading, keys)  # no key twice under one heading
        main = {action_id: keys for keys, _d, _t, action_id in groups["Main screen"]}
        cluster = {action_id: keys for keys, _d, _t, action_id in groups["Cluster screen (k)"]}
        assert main["launch"] == "^n" and main["delete"] == "^d"  # the keymap applies
        assert cluster["cluster.create"] == "n" and cluster["cluster.delete"] == "^d"
        shown = app.export_screenshot().replace("&#160;", " ")  # what is on screen (the top of the list)
        assert "Main screen" in shown and "launch" in shown and "jupyter.start" in shown
        await pilot.press("end")
        shown = app.export_screenshot().replace("&#160;", " ")
        assert "Cluster screen (k)" in shown and "cluster.create" in shown, shown


class _ScreenApp(App[None]):
    CSS_PATH = str(Path(__file__).resolve().parents[2] / "tui" / "ui" / "app.tcss")


async def test_the_cluster_progress_pane_follows_new_lines() -> None:
    """Lines arriving faster than frames (several per refresh) keep the newest in view; scrolled up, it stays."""
    from textual.widgets import Log

    from tui.ui.screens.cluster import ClusterScreen

    app = _ScreenApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = ClusterScreen("h", "head")
        await app.push_screen(screen)
        await pilot.pause()
        log = screen.query_one("#cluster-log", Log)
        for i in range(30):
            screen.progress("head-w1", f"line {i}")
            if i % 7 == 0:
                await pilot.pause(0.01)
        for _ in range(50):  # the frames after the burst (a loaded machine may need a few)
            await pilot.pause()
            if log.max_scroll_y > 0 and log.scroll_y == log.max_scroll_y:
                break
        assert log.max_scroll_y > 0 and log.scroll_y == log.max_scroll_y
        log.scroll_home(animate=False, immediate=True)  # the user reads back
        screen.progress("head-w1", "one more")
        await pilot.pause()
        assert log.scroll_y == 0


async def test_details_show_every_column_in_full() -> None:
    """Enter: what the Instances and Tunnels panes cut or hide in a narrow pane — the IP, the status with its
    task, Jupyter, load and memory, each tunnel with its bytes — is all in the details."""
    from datetime import UTC, datetime

    from textual.widgets import Static

    from tui.core.events import JupyterState, Metrics
    from tui.core.live import InstanceLive
    from tui.core.models import Address, Instance, TunnelInfo, TunnelState
    from tui.ui.screens.instance import DetailsScreen

    now = datetime(2026, 1, 1, tzinfo=UTC)
    inst = Instance("i-1", "analytics-1", "ACTIVE", "m1.small", vcpus=1, ram_mb=4096, task_state="deleting",
                    addresses=(Address("private", "192.168.100.123", "fixed"),), launched_at=now)
    tunnels = (TunnelInfo("i-1", 8890, "127.0.0.1", 8889, TunnelState.UP, now, 2_000_000, 30_000),
               TunnelInfo("i-1", 8790, "127.0.0.1", 8787, TunnelState.UP, now, purpose="dask-dashboard"))
    live = InstanceLive("i-1", inst, ssh="connected", jupyter=JupyterState("i-1", "running", local_port=8890,
                                                                          remote_port=8889),
                        tunnels=tunnels, signals=(Metrics("i-1", 0.25, 41.0),))
    app = _ScreenApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(DetailsScreen(inst, "Ubuntu 24.04", [], now, live))
        await pilot.pause()
        body = str(app.screen.query_one("#details-body", Static).render())
        for shown in ("192.168.100.123", "running on VM port 8889", "0.25 load per vCPU", "41% memory",
                      "Tunnel jupyter", "127.0.0.1:8890 → 127.0.0.1:8889", "↓1.9M ↑29.3K", "Tunnel dask-dashboard"):
            assert shown in body, (shown, body)
        assert "ACTIVE (deleting)" in str(app.screen.query_one(".dialog-title").render())
