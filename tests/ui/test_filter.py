"""The Instances table's `/` filter against a real sandbox: typing filters at once, keys that are bindings elsewhere
are text here, enter keeps the filter across polls, escape clears it; the key is in the footer, help and palette."""

from __future__ import annotations

from typing import Any

from tui.ui.keys import binding_rows
from tui.ui.widgets.panes import InstancesPane
from tui.ui.widgets.tables import InstancesTable


def _names(table: InstancesTable) -> set[str]:
    return {str(table.get_row_at(i)[0]) for i in range(table.row_count)}


async def test_slash_filters_the_instances_table(ui: Any, sb: Any, make_app: Any) -> None:
    sb.seed_servers(30, ssh_hosts=False)
    every = {f"bench-{i:04d}" for i in range(30)}
    app = make_app()
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), message_hook=watch.hook) as pilot:
        table = app.query_one(InstancesTable)
        await ui.wait_for(pilot, lambda: table.row_count == 30 and app.engine is not None)
        assert "slash" in app.active_bindings  # in the footer
        assert any(action == "app.filter" for *_, action in binding_rows(app))  # in help and the palette

        await pilot.press("slash", "0", "0", "1")
        wanted = {n for n in every if "001" in n}
        assert _names(table) == wanted and table.filtering
        pane = app.query_one(InstancesPane)
        assert str(pane.border_subtitle).startswith("/001")

        await pilot.press("q")  # a binding elsewhere (quit): here it is typed
        assert app.is_running and table.filter_text == "001q" and table.row_count == 0
        await pilot.press("backspace", "enter")
        assert not table.filtering and _names(table) == wanted
        assert "filter: 001" in str(pane.border_subtitle)

        await pilot.press("down")  # the cursor moves through the rows shown
        assert table.selected is not None and "001" in table.selected.name
        polls = len(watch.of("Polled"))
        await pilot.press("f5")
        await ui.wait_for(pilot, lambda: len(watch.of("Polled")) > polls)
        assert _names(table) == wanted  # a poll keeps the filter

        await pilot.press("slash", "escape")
        assert table.filter_text == "" and _names(table) == every
        assert not pane.border_subtitle


async def test_a_filter_shows_what_hidden_rows_became_and_keeps_the_rows_whole(ui: Any, sb: Any, make_app: Any,
                                                                               cloud: Any) -> None:
    """Rows hidden by the filter still follow the cloud (each instance's cells are made when it changes, shown or
    not); a refilled table is what `add_row` would make: each row's cells, keys, index, height, the table's size."""
    sb.seed_servers(6, ssh_hosts=False)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(InstancesTable)
        await ui.wait_for(pilot, lambda: table.row_count == 6 and app.engine is not None)
        await pilot.press("slash", "0", "0", "0", "1", "enter")
        assert _names(table) == {"bench-0001"}
        await ui.in_thread(cloud.stop, "bench-0004")  # while its row is hidden

        def polled() -> bool:
            """bench-0004 seen SHUTOFF by a poll"""
            return any(x.name == "bench-0004" and x.instance is not None and x.instance.status == "SHUTOFF"
                       for x in app.fleet.live.values())

        await ui.wait_for(pilot, polled)
        await pilot.press("slash", "escape")
        assert table.row_count == 6
        names = [str(table.get_row_at(i)[0]) for i in range(6)]
        assert names == [f"bench-{i:04d}" for i in range(6)]
        assert "SHUTOFF" in str(table.get_row_at(4)[1])
        for index, name in enumerate(names):
            key = next(k for k, inst in table.instances.items() if inst.name == name)
            assert table.get_row_index(key) == index and table.rows[table.coordinate_to_cell_key((index, 0)).row_key]
            assert table.rows[table.coordinate_to_cell_key((index, 0)).row_key].height == 1
        assert table.virtual_size.height == 6 + table.header_height
        assert table.selected is not None and table.selected.name == "bench-0001"  # the cursor stayed on it
        await pilot.press("down")
        assert table.selected is not None and table.selected.name == "bench-0002"


async def test_filtering_updates_the_scrollbar_and_the_scroll_range_without_a_screen_layout(
        ui: Any, sb: Any, make_app: Any) -> None:
    """The table's virtual size follows the rows shown; the vertical scrollbar goes when they fit and comes back
    when they do not; the end of the table can be scrolled to either way. (Set without a screen-wide layout: see
    `InstancesTable._update_dimensions`.)"""
    sb.seed_servers(60, ssh_hosts=False)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(InstancesTable)
        await ui.wait_for(pilot, lambda: table.row_count == 60 and app.engine is not None)
        await pilot.pause()
        assert table.show_vertical_scrollbar and table.virtual_size.height == 60 + table.header_height
        await pilot.press("slash", "0", "0", "0", "1")  # bench-0001 only: it fits, the scrollbar goes
        await pilot.pause()
        assert table.row_count == 1 and table.virtual_size.height == 1 + table.header_height
        assert not table.show_vertical_scrollbar
        await pilot.press(*["backspace"] * 4)
        await pilot.pause()
        assert table.row_count == 60 and table.show_vertical_scrollbar
        assert table.virtual_size.height == 60 + table.header_height
        table.move_cursor(row=59, animate=False)
        await pilot.pause()
        assert table.max_scroll_y == 60 + table.header_height - table.scrollable_content_region.height
        assert table.scroll_y == table.max_scroll_y
        assert str(table.get_row_at(59)[0]) == "bench-0059"
