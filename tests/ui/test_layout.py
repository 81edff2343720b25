"""Layout on its own (issue 11): what is drawn fits where it is drawn, cut text ends in an ellipsis, one unit style."""

from __future__ import annotations

from textual.app import App, ComposeResult

from tui.core.models import Flavor, Quota
from tui.ui.widgets.tables import FlavorsTable

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
