"""LogView: bounded, follows the end unless the user scrolled away, renders what is on screen."""

from __future__ import annotations

from textual.app import App, ComposeResult

from tui.ui.widgets.logview import LogView


class Host(App[None]):
    def compose(self) -> ComposeResult:
        yield LogView(100, id="view")


def _row(view: LogView, y: int) -> str:
    return view.render_line(y).text


async def test_keeps_the_newest_lines_and_follows_the_end() -> None:
    app = Host()
    async with app.run_test(size=(60, 12)) as pilot:
        view = app.query_one(LogView)
        view.write_lines([f"line {i}" for i in range(250)])
        await pilot.pause()
        assert view.line_count == 100 and view.lines[0] == "line 150" and view.lines[-1] == "line 249"
        assert view.is_vertical_scroll_end
        bottom = view.scrollable_content_region.height - 1
        assert _row(view, bottom).rstrip() == "line 249"


async def test_holds_the_view_when_not_following_and_renders_wide_and_tabbed_lines() -> None:
    app = Host()
    async with app.run_test(size=(60, 12)) as pilot:
        view = app.query_one(LogView)
        view.write_lines([f"line {i}" for i in range(50)])
        await pilot.pause()
        view.scroll_home(animate=False, immediate=True)
        view.write_lines(["more"] * 10)  # not at the end: the view stays where the user put it
        await pilot.pause()
        assert view.scroll_offset.y == 0 and _row(view, 0).rstrip() == "line 0"

        view.clear()
        view.write_lines(["a\tb", "数据 " + "x" * 100])
        await pilot.pause()
        assert _row(view, 0).startswith("a       b")
        assert view.virtual_size.width == 4 + 1 + 100  # two wide characters count two cells each
        assert len(_row(view, 1)) <= view.size.width

        view.write_lines(["x"] * 20, scroll_end=False)
        await pilot.pause()
        assert view.scroll_offset.y == 0
