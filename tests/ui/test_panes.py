"""The main screen against a real sandbox: panes, focus keys, help, palette, selection, errors."""

from __future__ import annotations

import itertools
import re
from typing import Any

from textual.command import CommandPalette
from textual.widgets import Log, Static

from tui.core.engine import engine_factory
from tui.ui.app import CadesApp
from tui.ui.screens.help import HelpScreen
from tui.ui.screens.volumes import VolumesScreen
from tui.ui.widgets.panes import SETUP_IDLE, QuotaBar
from tui.ui.widgets.tables import FlavorsTable, InstancesTable


def _loaded(app: CadesApp, n: int = 1) -> Any:
    def check() -> bool:
        """the instances and flavors to be shown"""
        return len(app.query_one(InstancesTable).instances) >= n and app.query_one(FlavorsTable).row_count > 0
    return check


async def test_panes_show_sandbox_data(ui: Any, sb: Any, cloud: Any, make_app: Any) -> None:
    await ui.in_thread(ui.launch, cloud, "alpha", "m1.small")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.wait_for(pilot, _loaded(app))
        table = app.query_one(InstancesTable)
        row = [str(c) for c in table.get_row_at(0)]
        assert row[0] == "alpha" and row[1] == "ACTIVE" and row[2] == "m1.small"
        assert row[InstancesTable.COLUMNS.index("ip")] == "127.0.0.1"
        flavors = app.query_one(FlavorsTable)
        names = {f.name for f in flavors.flavors.values()}
        assert {"m1.tiny", "m1.large", "c1.small"} <= names
        # m1.small uses 4 GB of the 8 GB quota: m1.medium (8 GB) no longer fits and is marked with the reason
        medium = next(f for f in flavors.flavors.values() if f.name == "m1.medium")
        assert str(flavors.get_row(medium.id)[4]) == "✗ RAM"
        tiny = next(f for f in flavors.flavors.values() if f.name == "m1.tiny")
        assert str(flavors.get_row(tiny.id)[4]) == "✓"
        quota = str(app.query_one(QuotaBar).render())
        assert "RAM 4/8 GiB" in quota and "cores 1/16" in quota and "VMs 1/" in quota  # room kept for a hint
        assert "vol 16/" in quota
        assert app.query_one("#setup-log", Log).lines == []
        setup_hint = app.query_one("#setup-empty", Static)
        assert setup_hint.display and str(setup_hint.render()) == SETUP_IDLE
        assert app.query_one("#tunnels-empty", Static).display
        assert not app.query_one("#instances-empty", Static).display
        assert app.sub_title == "sandbox ● connected"


async def test_quota_bar_says_what_the_highlighted_flavor_leaves(ui: Any, sb: Any, make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.wait_for(pilot, lambda: app.query_one(FlavorsTable).row_count > 0)
        await pilot.press("2")
        flavors = app.query_one(FlavorsTable)
        await ui.wait_for(pilot, lambda: flavors.selected is not None)
        first = flavors.selected
        assert first is not None
        assert f"{first.name} would leave" in str(app.query_one(QuotaBar).render())
        m1_large = next(f for f in flavors.flavors.values() if f.name == "m1.large")
        flavors.move_cursor(row=flavors.get_row_index(m1_large.id))
        await pilot.pause()
        assert "m1.large does not fit: needs 16 GiB RAM, 8 GiB left" in str(app.query_one(QuotaBar).render())


async def test_empty_project_says_how_to_start(ui: Any, sb: Any, make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        hint = app.query_one("#instances-empty", Static)
        await ui.wait_for(pilot, lambda: "press n" in str(hint.render()))
        assert hint.display


async def test_keys_move_focus_between_panes(ui: Any, sb: Any, make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ui.wait_for(pilot, lambda: app.focused is not None)  # the tables mount right after the first frame
        assert app.focused is not None and app.focused.id == "instances-table"
        for key, expected in (("2", "flavors-table"), ("3", "setup-log"), ("4", "tunnels-table"),
                              ("1", "instances-table"), ("tab", "flavors-table"), ("tab", "setup-log"),
                              ("shift+tab", "flavors-table")):
            await pilot.press(key)
            assert app.focused is not None and app.focused.id == expected, key
        # narrow layout: the focused pane takes the room, the others shrink to a title line
        assert app.query_one("#flavors-pane").size.height > 3
        assert app.query_one("#instances-pane").outer_size.height == 4  # its header and the selected instance


def _visible_rows(table: Any) -> list[int]:
    """The row indexes a table shows now (below its header, when it shows one)."""
    body = table.size.height - (table.header_height if table.show_header else 0)
    top = int(table.scroll_y)
    return [r for r in range(top, top + max(0, body)) if r < table.row_count]


async def test_collapsed_panes_at_80x24_still_show_the_selected_row(ui: Any, sb: Any, cloud: Any,
                                                                   make_app: Any) -> None:
    """Another pane has the focus: Instances keeps its header and the selected instance, Flavors its selected
    flavor (not only headers)."""
    for name in ("alpha", "beta", "gamma"):
        await ui.in_thread(ui.launch, cloud, name, "m1.tiny")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ui.wait_for(pilot, _loaded(app, 3))
        instances, flavors = app.query_one(InstancesTable), app.query_one(FlavorsTable)
        await pilot.pause(0.2)
        # from the start: the panes were laid out (collapsed) before their tables were mounted in them
        assert not flavors.show_header and _visible_rows(flavors) == [flavors.cursor_row]
        await pilot.press("down", "down")  # the third instance
        await pilot.press("2", "down", "down", "down")
        selected_flavor = flavors.cursor_row
        await pilot.press("3")  # the setup log takes the room
        await pilot.pause(0.2)
        assert instances.show_header and _visible_rows(instances) == [instances.cursor_row] == [2]
        assert _visible_rows(flavors) == [selected_flavor]
        await pilot.press("4")
        await pilot.pause(0.2)
        assert _visible_rows(instances) == [2] and _visible_rows(flavors) == [selected_flavor]
        await pilot.press("1")
        await pilot.pause(0.2)
        assert instances.show_header and len(_visible_rows(instances)) >= 3


async def test_help_lists_every_binding_and_palette_has_every_action(ui: Any, sb: Any, make_app: Any) -> None:
    app = make_app(keymap={"launch": "ctrl+n"})
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.wait_for(pilot, lambda: app.query_one(FlavorsTable).row_count > 0)  # up (slow under load)
        await pilot.press("question_mark")
        await ui.screen(pilot, HelpScreen)
        said = " ".join(str(w.render()) for w in app.screen.query(Static))
        assert "jupyter.local_port" in said and "last local port" in said
        rows = [row for _heading, group in app.screen.groups for row in group]
        shown = {description for _, description, _, _ in rows}
        for binding in [*CadesApp.BINDINGS, *InstancesTable.BINDINGS]:
            assert binding.description in shown  # type: ignore[union-attr]
        assert ("^n", "New") in {(k, d) for k, d, _, _ in rows}  # the keymap is applied
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)

        await ui.wait_for(pilot, lambda: app.fleet.quota is not None)
        await pilot.press("ctrl+p")
        await ui.screen(pilot, CommandPalette)
        await pilot.press(*"volumes")
        await pilot.pause(0.3)
        palette = app.screen
        options = palette.query_one("CommandList")
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]  # type: ignore[attr-defined]
        assert any("Volumes (v)" in p for p in prompts), prompts
        await pilot.press("enter")  # runs it, as the key would
        await ui.screen(pilot, VolumesScreen)
        await pilot.press("n", "ctrl+d", "q")  # the main screen's keys do nothing inside a dialog
        assert isinstance(app.screen, VolumesScreen) and len(app.screen_stack) == 2
        await pilot.press("escape")
        assert len(app.screen_stack) == 1


async def test_remapped_key_runs_the_action(ui: Any, sb: Any, make_app: Any) -> None:
    app = make_app(keymap={"pane.flavors": "f"})
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.wait_for(pilot, lambda: app.query_one(FlavorsTable).row_count > 0)  # up (slow under load)
        await pilot.press("f")
        assert app.focused is not None and app.focused.id == "flavors-table"
        await pilot.press("1", "2")  # "2" is no longer bound to it
        assert app.focused.id == "instances-table"


async def test_selection_is_kept_across_refreshes(ui: Any, sb: Any, cloud: Any, make_app: Any) -> None:
    await ui.in_thread(ui.launch, cloud, "beta")
    await ui.in_thread(ui.launch, cloud, "delta")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(InstancesTable)
        await ui.wait_for(pilot, _loaded(app, 2))
        await pilot.press("down")
        assert table.selected is not None and table.selected.name == "delta"
        await ui.in_thread(ui.launch, cloud, "alpha")  # sorts first: every row moves down by one
        await ui.wait_for(pilot, lambda: len(table.instances) == 3)
        assert table.selected is not None and table.selected.name == "delta"
        assert table.cursor_row == 2


async def test_bad_credentials_show_a_message_and_the_app_lives(ui: Any, sb: Any, tmp_path: Any) -> None:
    from tui.core.cloud.openstack_cloud import OpenStackCloud

    bad = tmp_path / "bad-clouds.yaml"
    bad.write_text(sb.clouds_yaml.read_text().replace("password:", "password: wrong-", 1))
    settings = ui.settings_for(sb)
    app = CadesApp(settings, engine_factory(settings, lambda: OpenStackCloud.from_config(cloud="sandbox",
                                                                                        clouds_yaml=bad)))
    async with app.run_test(size=(80, 24)) as pilot:
        banner = app.query_one("#banner", Static)
        await ui.wait_for(pilot, lambda: banner.display)
        assert app.sub_title == "sandbox ✗ not connected"
        text = str(banner.render())
        assert "401" in text or "credential" in text.lower() or "auth" in text.lower(), text
        await pilot.press("2")  # still responsive
        assert app.focused is not None and app.focused.id == "flavors-table"
        assert app.is_running


def _retrying_in(banner: Static) -> float:
    """The back-off the banner states ("… (retrying in N s)"); 0 when it says none."""
    found = re.search(r"retrying in (\d+) s", str(banner.render()))
    return float(found[1]) if found else 0.0


async def test_api_errors_back_off_then_recover(ui: Any, sb: Any, make_app: Any) -> None:
    app = make_app()
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), message_hook=watch.hook) as pilot:
        await ui.wait_for(pilot, lambda: app.sub_title == "sandbox ● connected" and app.fleet.quota is not None)
        sb.faults.error_rate = 1.0
        banner = app.query_one("#banner", Static)
        await ui.wait_for(pilot, lambda: banner.display)
        assert app.sub_title == "sandbox ✗ not connected"
        await ui.wait_for(pilot, lambda: _retrying_in(banner) >= 2)  # 0.5 s doubled at least twice
        sb.faults.error_rate = 0.0
        await pilot.press("f5")
        await ui.wait_for(pilot, lambda: app.sub_title == "sandbox ● connected")
        assert not banner.display
        # back to the profile's 0.5 s: polls come well within the 2 s the back-off had reached
        start = len(watch.of("Polled"))
        await ui.wait_for(pilot, lambda: len(watch.of("Polled")) >= start + 4, timeout=20)
        arrived = [m.time for m in watch.of("Polled")[start:]]
        assert min(b - a for a, b in itertools.pairwise(arrived)) < 1.5, arrived


async def test_rate_limiting_is_reported_then_recovers(ui: Any, sb: Any, make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.wait_for(pilot, lambda: app.sub_title == "sandbox ● connected" and app.fleet.quota is not None)
        sb.faults.rate_limit_rate = 1.0
        banner = app.query_one("#banner", Static)
        await ui.wait_for(pilot, lambda: banner.display, timeout=30)
        text = str(banner.render())
        assert "429" in text or "too many" in text.lower() or "rate" in text.lower(), text
        sb.faults.rate_limit_rate = 0.0
        await pilot.press("f5")
        await ui.wait_for(pilot, lambda: app.sub_title == "sandbox ● connected", timeout=30)


async def test_unreachable_cloud_shows_a_message_and_the_app_lives(ui: Any, sb: Any, tmp_path: Any) -> None:
    import socket

    from tui.core.cloud.openstack_cloud import OpenStackCloud

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = tmp_path / "gone-clouds.yaml"
    gone.write_text(sb.clouds_yaml.read_text().replace(f":{sb.port}/", f":{port}/"))
    settings = ui.settings_for(sb)
    app = CadesApp(settings, engine_factory(settings, lambda: OpenStackCloud.from_config(cloud="sandbox",
                                                                                        clouds_yaml=gone)))
    async with app.run_test(size=(80, 24)) as pilot:
        banner = app.query_one("#banner", Static)
        await ui.wait_for(pilot, lambda: banner.display)
        text = str(banner.render())
        assert app.sub_title == "sandbox ✗ not connected" and "retrying in" in text, text
        assert "No data:" in str(app.query_one("#instances-empty", Static).render())
        app._redraw(None)  # a redraw before any answer (the other panes' late build does one) keeps the reason
        assert "No data:" in str(app.query_one("#instances-empty", Static).render())
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)


async def test_a_malformed_clouds_yaml_is_named_not_cloud_not_found(ui: Any, sb: Any, tmp_path: Any) -> None:
    import dataclasses

    from tui.core.engine import open_cloud

    bad = tmp_path / "clouds.yaml"
    bad.write_text("clouds:\n  sandbox:\n    auth: {auth_url: http://127.0.0.1:1/v3\n    region_name: x\n")
    settings = dataclasses.replace(ui.settings_for(sb), clouds_yaml=str(bad))
    app = CadesApp(settings, engine_factory(settings, lambda: open_cloud(settings)))
    async with app.run_test(size=(120, 40)) as pilot:
        banner = app.query_one("#banner", Static)
        await ui.wait_for(pilot, lambda: banner.display)
        text = " ".join(str(banner.render()).split())
        assert f"{bad}:" in text and "not valid YAML" in text and "not found" not in text, text


async def test_a_hanging_cloud_is_reported_while_the_screen_stays_live(ui: Any, sb: Any, make_app: Any) -> None:
    app = make_app()
    app.polling.stuck_after_s = 1.0
    async with app.run_test(size=(80, 24)) as pilot:
        await ui.wait_for(pilot, lambda: app.fleet.quota is not None)
        sb.faults.latency_s = 3.0
        banner = app.query_one("#banner", Static)
        await ui.wait_for(pilot, lambda: banner.display)
        assert "has not answered for 1 s" in str(banner.render())
        await pilot.press("2")  # the UI thread is free
        assert app.focused is not None and app.focused.id == "flavors-table"
        sb.faults.latency_s = 0.0
        await ui.wait_for(pilot, lambda: app.sub_title == "sandbox ● connected", timeout=20)
        assert not banner.display


async def test_no_clouds_yaml_says_no_cloud_is_configured(ui: Any, tmp_path: Any, monkeypatch: Any) -> None:
    """No profile, no clouds.yaml anywhere: the title says what is missing and how to go on — not
    "sandbox ✗ not connected" (the settings' default cloud name), which reads as if the demo had failed."""
    from tui.core.cloud.openstack_cloud import OpenStackCloud
    from tui.core.config import Settings

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    app = CadesApp(settings, engine_factory(settings, lambda: OpenStackCloud.from_config(cloud=settings.cloud)))
    async with app.run_test(size=(120, 40)) as pilot:
        banner = app.query_one("#banner", Static)
        await ui.wait_for(pilot, lambda: banner.display)
        assert "sandbox" not in app.sub_title, app.sub_title
        assert "no cloud configured" in app.sub_title and "--demo" in app.sub_title and "clouds.yaml" in app.sub_title
        assert "no clouds.yaml found" in str(banner.render())
