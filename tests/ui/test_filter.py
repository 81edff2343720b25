"""The Instances table's `/` filter against a real sandbox: typing filters at once, keys that are bindings elsewhere
are text here, enter keeps the filter across polls, escape clears it; the key is in the footer, help and palette."""

from __future__ import annotations

from typing import Any

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
        assert any(action == "app.filter" for *_, action in app.binding_rows())  # in help and the palette

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
