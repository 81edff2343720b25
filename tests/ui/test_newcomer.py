"""What a newcomer trips over in the app (issue 20): each case fails on the code before its fix."""

from __future__ import annotations

from textual.app import App, ComposeResult

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
