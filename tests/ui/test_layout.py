"""Layout on its own (issue 11): what is drawn fits where it is drawn, cut text ends in an ellipsis, one unit style."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Label, Log, OptionList

import tui.ui
from tui.core.keys import KeyStore
from tui.core.models import Flavor, Quota
from tui.ui.screens.wizard import LaunchWizard
from tui.ui.widgets.panes import QuotaBar, SetupPane
from tui.ui.widgets.tables import FlavorsTable, TunnelsTable

QUOTA = Quota(8192, 6144, 16, 3, 10, 2)
FLAVORS = [Flavor("f1", "c1.small", 2, 2048, 20), Flavor("f2", "c1.xlarge", 16, 16384, 160),
           Flavor("f3", "m1.tiny", 1, 2048, 10)]


class OneFlavorsTable(App[None]):
    CSS = "FlavorsTable { height: 1fr; }"  # as in its pane: measuring the rows does not resize it

    def compose(self) -> ComposeResult:
        yield FlavorsTable()


async def test_flavor_rows_drawn_before_the_table_measured_them_are_not_squashed_for_good() -> None:
    """A frame drawn between `show()` and the table's idle pass (the pane resizing, the cursor moving) cached each
    cell at its column label's width ("c1.s", "2 G", "com"), and DataTable never drew them again: the snapshot
    tests caught the collapsed Flavors pane so, now and then."""
    app = OneFlavorsTable()
    async with app.run_test(size=(78, 12)) as pilot:
        table = app.query_one(FlavorsTable)
        table.show(FLAVORS, QUOTA)
        table.render_line(1)  # a frame drawn before the table's idle pass
        await pilot.pause()
        line = table.render_line(1).text
        assert "c1.small" in line and "2 GiB" in line and "compute" in line, line


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_quota_bar_fits_one_line_with_or_without_a_flavor_hint(ui: Any, sb: Any, cloud: Any, make_app: Any,
                                                                          size: tuple[int, int]) -> None:
    await ui.in_thread(ui.launch, cloud, "alpha", "m1.small")
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await ui.wait_for(pilot, lambda: app.query_one(FlavorsTable).selected is not None)
        flavors = app.query_one(FlavorsTable)
        bar = app.query_one(QuotaBar)
        shown = {}
        for name in ("m1.xlarge", "c1.xlarge", "m1.tiny"):  # two misfits (one on RAM and cores), one that fits
            flavor = next(f for f in flavors.flavors.values() if f.name == name)
            flavors.move_cursor(row=flavors.get_row_index(flavor.id))
            await pilot.pause()
            shown[name] = line = bar.render_line(0).text.strip()
            assert bar.size.height == 1, f"the quota bar wraps at {size[0]} columns: {bar.render()}"
            assert re.match(r"(Quota )?RAM 4( GiB)?/8 GiB", line) and "1/16" in line and "16/100 GB" in line, line
            assert name in line or line.endswith("…"), f"the hint neither shown nor cut with an ellipsis: {line}"
        if size[0] >= 120:  # room for the hints in full, where they fit
            assert "m1.xlarge does not fit: needs 32 GiB RAM, 4 GiB left" in shown["m1.xlarge"]
            assert "m1.tiny would leave 2 GiB RAM, 14 cores" in shown["m1.tiny"]
        assert "c1.xlarge ✗ RAM+cores" in shown["c1.xlarge"]


async def test_the_wizard_keeps_flavor_reasons_in_their_column_cut_with_an_ellipsis(ui: Any, sb: Any, cloud: Any,
                                                                                  make_app: Any) -> None:
    await ui.in_thread(ui.launch, cloud, "alpha", "m1.small")
    await ui.in_thread(ui.launch, cloud, "beta", "c1.small")  # 2 GiB RAM and 13 cores left
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ui.wait_for(pilot, lambda: app.query_one(FlavorsTable).row_count > 0)
        await pilot.press("n")
        wizard = await ui.screen(pilot, LaunchWizard)
        await pilot.press(*"analytics-1", "enter", "enter")
        flavors = wizard.query_one("#flavor", OptionList)
        await ui.wait_for(pilot, lambda: flavors.size.width > 0 and wizard.step == "flavor")
        assert flavors.virtual_size.height == flavors.option_count, "a flavor's reasons wrapped into the name column"
        lines = {str(flavors.get_option_at_index(i).prompt).split()[0]: flavors.render_line(i).text.rstrip()
                 for i in range(min(flavors.option_count, flavors.size.height))}
        assert "c1.xlarge" in lines and lines["c1.xlarge"].endswith("…"), lines
        assert "✗ needs 16 GiB RAM, 2 GiB left" in lines["c1.xlarge"], lines  # one unit style: no "16384 MB"


async def test_the_launch_log_wraps_its_long_lines_says_active_once_and_says_when_it_is_done(
        ui: Any, sb: Any, cloud: Any, make_app: Any) -> None:
    await ui.in_thread(ui.launch, cloud, "alpha")  # with a key pair of its own: the app's key is imported below
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ui.wait_for(pilot, lambda: app.query_one(FlavorsTable).row_count > 0)
        await pilot.press("n")
        wizard = await ui.screen(pilot, LaunchWizard)
        title = wizard.query_one("#wizard-title", Label)
        titles: list[str] = []  # every title shown: the launch may be over before a check could look (under load)
        shown = title.update
        title.update = lambda content="", **kw: (titles.append(str(content)), shown(content, **kw))[1]  # type: ignore[method-assign]
        await pilot.press(*"gamma", *["enter"] * 7)  # name, image, flavor, volume, key, network, Launch
        await ui.wait_for(pilot, lambda: wizard.step == "progress", timeout=10)
        assert any("Launching" in t for t in titles), titles
        await ui.wait_for(pilot, lambda: not wizard.launching, timeout=30)
        await pilot.pause()
        log = wizard.query_one("#progress", Log)
        lines = list(log.lines)
        assert sum("gamma is ACTIVE" in line for line in lines) == 1, lines
        assert "Launching" not in str(title.render()) and "launched" in str(title.render()), title.render()
        width = log.scrollable_content_region.width
        assert max(len(line) for line in lines) <= width, f"cut at {width} columns: {lines}"
        key = str(KeyStore().private_path("cades-tui"))
        assert key in "".join(line.strip() for line in lines), lines  # wrapped, whole


class OneSetupPane(App[None]):
    CSS_PATH = str(Path(tui.ui.__file__).parent / "app.tcss")

    def compose(self) -> ComposeResult:
        yield SetupPane()


async def test_a_setup_step_cut_to_fit_its_status_line_ends_with_an_ellipsis() -> None:
    app = OneSetupPane()
    async with app.run_test(size=(60, 12)) as pilot:
        pane = app.query_one(SetupPane)
        await pane.build()
        pane.begin("analytics-1", 0.0)
        pane.step_started("screen", 1, 6, "Ensure screen (or tmux) is installed for the Jupyter session", 0.5)
        await pilot.pause()
        status = app.query_one("#setup-status")
        line = status.render_line(0).text.rstrip()
        assert status.size.height == 1 and line.endswith("…"), line
        assert "step 2/6 screen — Ensure screen" in line, line


class OneTunnelsTable(App[None]):
    CSS = "TunnelsTable { height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield TunnelsTable()


async def test_a_tunnels_table_too_wide_for_its_pane_ends_its_last_column_with_an_ellipsis() -> None:
    from datetime import UTC, datetime

    from tui.core.models import TunnelInfo, TunnelState

    now = datetime(2026, 1, 1, tzinfo=UTC)
    app = OneTunnelsTable()
    async with app.run_test(size=(51, 6)) as pilot:  # a little narrower than the Tunnels pane at 120x40
        table = app.query_one(TunnelsTable)
        down = TunnelInfo("i-1", 8890, "127.0.0.1", 8889, TunnelState.RECONNECTING, now,
                          bytes_in=3_300_000, bytes_out=178_000)
        table.show([down], {"i-1": "analytics-1"}, now)
        await pilot.pause()
        header, row = table.render_line(0).text.rstrip(), table.render_line(1).text.rstrip()
        assert header.endswith("In / o…"), header  # not "In / o" cut at the edge
        assert "For" not in header, header  # hidden first (issue 22: the bytes stay in view as long as they can)
        assert row.endswith("…") and "↓3.1M" in row, row
        assert table.virtual_size.width <= table.scrollable_content_region.width  # nothing hidden to the right
        table.show([replace(down, state=TunnelState.UP, error="")], {"i-1": "a"}, now)  # room again: in full
        await pilot.pause()
        assert table.render_line(0).text.rstrip().endswith("In / out"), table.render_line(0).text
