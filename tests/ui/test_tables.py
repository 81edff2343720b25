"""The main tables on their own, fed the live state as the app feeds them: columns follow what they show."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from textual.app import App, ComposeResult

from tui.core.events import JupyterState, Polled
from tui.core.live import Fleet
from tui.core.models import Address, Instance, Quota
from tui.ui.widgets.tables import InstancesTable

NOW = datetime(2026, 1, 1, tzinfo=UTC)
QUOTA = Quota(8192, 2048, 16, 1, 10, 1)


class OneTable(App[None]):
    def compose(self) -> ComposeResult:
        yield InstancesTable()


def instance(status: str, task_state: str = "") -> Instance:
    return Instance("i-1", "analytics-1", status, "m1.small", vcpus=1, ram_mb=4096, task_state=task_state,
                    addresses=(Address("private", "127.0.0.1", "fixed"),), launched_at=NOW)


async def test_the_status_column_shrinks_back_after_a_launch_and_jupyter_stays_in_view() -> None:
    app = OneTable()
    fleet = Fleet()
    async with app.run_test(size=(61, 10)) as pilot:  # inside the Instances pane at 120x40
        table = app.query_one(InstancesTable)
        fleet.apply(Polled((instance("BUILD", "spawning"),), QUOTA, ()))
        table.show(fleet, NOW)
        await pilot.pause()
        wide = table.columns["status"].content_width  # type: ignore[index]
        assert wide == len("spawning…")  # the task, short: the details show "BUILD (spawning)"
        fleet.apply(Polled((instance("ACTIVE"),), QUOTA, ()))
        fleet.apply(JupyterState("i-1", "running", local_port=8890, remote_port=8889))
        table.show(fleet, NOW)
        await pilot.pause()
        assert table.columns["status"].content_width == len("ACTIVE")  # type: ignore[index]
        through_jupyter = list(table.columns.values())[:InstancesTable.COLUMNS.index("jupyter") + 1]
        assert sum(c.get_render_width(table) for c in through_jupyter) <= table.size.width, "Jupyter is cut off"
        # and it grows again when a longer status comes
        fleet.apply(Polled((replace(instance("ACTIVE"), task_state="powering-off"),), QUOTA, ()))
        table.show(fleet, NOW)
        await pilot.pause()
        assert table.columns["status"].content_width == len("powering-off…")  # type: ignore[index]


class OneSetupPane(App[None]):
    def compose(self) -> ComposeResult:
        from tui.ui.widgets.panes import SetupPane

        yield SetupPane()


async def test_setup_lines_keep_a_space_between_a_long_step_name_and_its_output() -> None:
    from textual.widgets import Log

    from tui.ui.widgets.panes import SetupPane

    app = OneSetupPane()
    async with app.run_test(size=(100, 20)) as pilot:
        pane = app.query_one(SetupPane)
        await pane.build()
        pane.begin("analytics-1", 0.0)
        pane.output("jupyter-config", ["wrote ~/.jupyter/jupyter_server_config.json"], 1.0)
        pane.output("ssh", ["ok"], 1.5)
        await pilot.pause()
        lines = app.query_one("#setup-log", Log).lines
        assert any("jupyter-config │ wrote" in x for x in lines), lines
        assert any("ssh       │ ok" in x for x in lines), lines  # short names still line up


class OneTunnelsTable(App[None]):
    def compose(self) -> ComposeResult:
        from tui.ui.widgets.tables import TunnelsTable

        yield TunnelsTable()


async def test_a_tunnel_down_because_jupyter_went_away_says_so() -> None:
    from tui.core.models import TunnelInfo, TunnelState
    from tui.core.remote.tunnel import GONE
    from tui.ui.widgets.tables import TunnelsTable

    app = OneTunnelsTable()
    async with app.run_test(size=(57, 10)) as pilot:
        table = app.query_one(TunnelsTable)
        down = TunnelInfo("i-1", 8890, "127.0.0.1", 8889, TunnelState.DOWN, NOW, error=GONE)
        table.show([down, replace(down, instance="i-2", state=TunnelState.UP, error="")],
                   {"i-1": "alpha", "i-2": "beta"}, NOW)
        await pilot.pause()
        assert str(table.get_cell("i-1/jupyter", "state")) == "down: moved/stopped"
        assert str(table.get_cell("i-2/jupyter", "state")) == "up"


async def test_a_cell_that_grows_widens_its_column_and_only_changed_rows_are_drawn_again() -> None:
    """Rows update in place (the same instances shown): a wider uptime or flavor widens its column at once — never
    cut to the old width — and the other rows' cells are not drawn again."""
    from datetime import timedelta

    from tui.ui.widgets import fastcells

    app = OneTable()
    fleet = Fleet()
    one, two = instance("ACTIVE"), replace(instance("ACTIVE"), id="i-2", name="analytics-2")
    app = OneTable()
    async with app.run_test(size=(100, 10)) as pilot:
        table = app.query_one(InstancesTable)
        fleet.apply(Polled((one, two), QUOTA, ()))
        table.show(fleet, NOW + timedelta(minutes=5))
        await pilot.pause()
        uptime, flavor = table.columns["uptime"], table.columns["flavor"]  # type: ignore[index]
        narrow = uptime.content_width
        drawn: list[str] = []
        real = fastcells.render_one_line

        def counting(text: Any, *args: Any) -> Any:
            drawn.append(text.plain)
            return real(text, *args)

        fastcells.render_one_line = counting  # type: ignore[assignment]
        try:
            fleet.apply(Polled((replace(one, flavor_name="m1.xlarge-with-gpu"), two), QUOTA, ()))
            table.show(fleet, NOW + timedelta(minutes=5))
            await pilot.pause()
            assert flavor.content_width == len("m1.xlarge-with-gpu")
            assert "m1.xlarge-with-gpu" in drawn and "analytics-2" not in drawn
            assert str(table.get_row_at(0)[2]) == "m1.xlarge-with-gpu"
            table.show(fleet, NOW + timedelta(days=3, hours=4, minutes=5))  # a new minute: every uptime anew
            await pilot.pause()
        finally:
            fastcells.render_one_line = real  # type: ignore[assignment]
        assert str(table.get_row_at(1)[3]) == "3 d" and uptime.content_width == narrow  # (its label is wider)
        assert table.virtual_size.width == sum(c.get_render_width(table) for c in table.columns.values())


class TwoTables(App[None]):
    def compose(self) -> ComposeResult:
        from tui.ui.widgets.tables import TunnelsTable

        yield TunnelsTable()


async def test_tunnel_rows_whose_bytes_change_update_in_place_and_keep_the_cursor() -> None:
    from tui.core.models import TunnelInfo, TunnelState
    from tui.ui.widgets.tables import TunnelsTable

    def tunnel(iid: str, bytes_in: int, purpose: str = "jupyter") -> TunnelInfo:
        return TunnelInfo(iid, 8890, "127.0.0.1", 8889, TunnelState.UP, NOW, bytes_in=bytes_in, purpose=purpose)

    names = {"i-1": "analytics-1", "i-2": "analytics-2"}
    app = TwoTables()
    async with app.run_test(size=(80, 8)) as pilot:
        table = app.query_one(TunnelsTable)
        table.show([tunnel("i-1", 0), tunnel("i-2", 0)], names, NOW)
        await pilot.pause()
        table.move_cursor(row=1)
        rows = dict(table.rows)
        table.show([tunnel("i-1", 0), tunnel("i-2", 1_500_000_000)], names, NOW)  # 1.5 GB came in
        await pilot.pause()
        assert dict(table.rows) == rows and all(table.rows[k] is rows[k] for k in rows)  # not refilled
        assert "↓1.4G" in str(table.get_row_at(1)[4]) and table.selected == ("i-2", "jupyter")
        assert table.columns["traffic"].content_width == len(str(table.get_row_at(1)[4]))  # type: ignore[index]
        table.show([tunnel("i-2", 7)], names, NOW)  # a tunnel closed: rows anew
        await pilot.pause()
        assert table.row_count == 1 and table.selected == ("i-2", "jupyter")


async def test_the_last_column_is_fitted_when_rows_are_shown_not_only_after_the_table_measured_them() -> None:
    """Shown rows widen their columns at once: `fit_last_column`, run by `show`, sees the columns as drawn — a
    frame drawn before DataTable's idle measuring had the IP cut without its ellipsis (a flaky snapshot under
    load)."""
    app = OneTable()
    fleet = Fleet()
    async with app.run_test(size=(64, 10)) as pilot:  # Uptime and Flavor hidden, the IP has 6 of its 9 columns
        table = app.query_one(InstancesTable)
        await pilot.pause()
        fleet.apply(Polled((replace(instance("ACTIVE"), name="a-rather-long-instance-name",
                                    flavor_name="m1.xlarge"),), QUOTA, ()))
        table.show(fleet, NOW)  # no pause: DataTable has not measured the row yet
        ip = table.columns["ip"]  # type: ignore[index]
        assert ip.content_width == len("127.0.0.1")
        others = sum(c.get_render_width(table) for c in list(table.columns.values())[:-1])
        assert others + ip.get_render_width(table) <= table.scrollable_content_region.width
        assert not ip.auto_width  # cut, and so drawn with an ellipsis
        assert table.columns["uptime"].hidden and table.columns["flavor"].hidden  # type: ignore[index, attr-defined]


async def test_at_120_columns_uptime_and_flavor_give_way_before_load_and_the_ip() -> None:
    """Inside the Instances pane at 120x40: the least needed columns are hidden first, so a long status
    (a task: "deleting…") never pushes Load·Mem off and the IP shows in full; with room they come back."""
    from tui.core.events import Metrics

    app = OneTable()
    fleet = Fleet()
    async with app.run_test(size=(61, 10)) as pilot:
        table = app.query_one(InstancesTable)
        fleet.apply(Polled((replace(instance("ACTIVE", "deleting"),
                                    addresses=(Address("private", "192.168.100.123", "fixed"),)),), QUOTA, ()))
        fleet.apply(Metrics("i-1", 0.25, 41.0))
        table.show(fleet, NOW)
        await pilot.pause()
        row = table.render_line(1).text
        assert "deleting…" in row and "0.2·41%" in row and "192.168.100.123" in row, row
        assert table.columns["uptime"].hidden and table.columns["flavor"].hidden  # type: ignore[index, attr-defined]
        fleet.apply(Polled((instance("ACTIVE"),), QUOTA, ()))
        table.show(fleet, NOW)
        await pilot.pause()
        row = table.render_line(1).text
        assert "m1.small" in row and "127.0.0.1" in row and "0.2·41%" in row, row  # Flavor back: room for it
    app = OneTable()
    async with app.run_test(size=(100, 10)) as pilot:
        table = app.query_one(InstancesTable)
        table.show(fleet, NOW)
        await pilot.pause()
        assert not any(getattr(c, "hidden", False) for c in table.columns.values())
