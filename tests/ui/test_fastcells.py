"""The fast one-line cell renderer draws exactly what DataTable's own renderer draws (characters and styles), and
draws a cell again only when what it shows changed."""

from __future__ import annotations

import itertools

import pytest
from rich.segment import Segment
from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widgets import DataTable

from tui.ui.widgets.fastcells import OneLineCells
from tui.ui.widgets.tables import cut

CELLS: list[Text | str] = [
    Text("analytics-1", style="bold"),
    Text.assemble(("running", "green"), (" ⚠ ssh lost", "yellow")),
    cut("10.0.0.123-a-long-address"),
    "m1.small",
    "[b]markup[/b] in a str",
    "a [bracket that is not markup",
    "",
    Text(""),
    "日本語のインスタンス",
    Text("0.4·63%", style="bold red"),
    Text("–", style="dim"),
    cut(Text("wide 日本語 cut with an ellipsis", style="italic")),
    Text("cropped, not ellipsised, when the column is narrower than this"),
]


class Table(App[None]):
    def __init__(self, fast: bool) -> None:
        super().__init__()
        self.fast = fast

    def compose(self) -> ComposeResult:
        table = OneLineCells(zebra_stripes=True, cursor_type="row") if self.fast else DataTable(zebra_stripes=True,
                                                                                                cursor_type="row")
        yield table


def chars(lines: list[list[Segment]]) -> list[list[tuple[str, object]]]:
    """Each line as (character, style) pairs: what the terminal shows, however the segments are split."""
    return [[(ch, seg.style) for seg in line for ch in seg.text] for line in lines]


@pytest.mark.parametrize("cursor,hover", [(False, False), (True, False), (False, True), (True, True)])
async def test_each_cell_is_drawn_as_datatable_draws_it(cursor: bool, hover: bool) -> None:
    app = Table(fast=True)
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(OneLineCells)
        table.add_column("A", key="a")
        table.add_column("B", key="b")
        for i, (a, b) in enumerate(itertools.pairwise(CELLS)):
            table.add_row(a, b, key=str(i))
        await pilot.pause()
        style = table.rich_style
        compared = 0
        for row in range(table.row_count):
            for column in range(2):
                for width in (1, 2, 3, 5, 8, 12, 30):
                    table._cell_render_cache.clear()  # (a fallback to DataTable's renderer)
                    ours = table._render_cell(row, column, style, width, cursor, hover)
                    table._cell_render_cache.clear()  # its key leaves out the width
                    theirs = DataTable._render_cell(table, row, column, style, width, cursor, hover)
                    assert chars(ours) == chars(theirs), (row, column, width, CELLS[row + column])
                    compared += 1
        assert compared == (len(CELLS) - 1) * 2 * 7


async def test_the_whole_table_looks_the_same_with_and_without_the_fast_renderer() -> None:
    frames = []
    for fast in (True, False):
        app = Table(fast)
        async with app.run_test(size=(60, 12)) as pilot:
            table = app.query_one(DataTable)
            table.add_column("Name", key="a")
            table.add_column("Status", key="b")
            table.add_column(cut("IP"), key="c")
            for i, cell in enumerate(CELLS):
                table.add_row(cell, CELLS[-1 - i], cut(f"10.0.{i}.1"), key=str(i))
            await pilot.pause()
            table.move_cursor(row=2)
            await pilot.pause()
            frames.append([chars([list(strip)]) for strip in table.render_lines(Region(0, 0, 60, 12))])
            app.theme = "textual-light"  # a theme drawn before must not be drawn from a cache
            await pilot.pause()
            frames.append([chars([list(strip)]) for strip in table.render_lines(Region(0, 0, 60, 12))])
    assert frames[0] == frames[2]
    assert frames[1] == frames[3]
    assert frames[0] != frames[1]


async def test_a_cell_is_drawn_again_only_when_its_value_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.ui.widgets import fastcells

    drawn: list[str] = []
    real = fastcells.render_one_line

    def counting(text: Text, *args: object) -> list[Segment]:
        drawn.append(text.plain)
        return real(text, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(fastcells, "render_one_line", counting)
    app = Table(fast=True)
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(OneLineCells)
        table.add_column("Name", key="name")
        table.add_column("Uptime", key="uptime")
        table.add_row("alpha", "1m", key="a")
        table.add_row("beta", "2m", key="b")
        await pilot.pause()
        assert {"alpha", "1m", "beta", "2m"} <= set(drawn)
        drawn.clear()
        table.update_cell("b", "uptime", "3m")  # DataTable's own cache is dropped for every cell: ours is not
        await pilot.pause()
        assert drawn == ["3m"]
