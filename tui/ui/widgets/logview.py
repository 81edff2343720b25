"""A bounded, append-only view of plain log lines, built for floods.

Textual's `Log` measures every new line's cells in a thread worker started per write and keeps its own list of
lines; under 10,000 lines/s that work competes with key presses. `LogView` keeps the lines in a bounded deque,
measures a batch with `len` (cells only for the rare non-ASCII line), and renders just the rows on screen.
Lines must already be clean text (no ANSI escapes or carriage returns: `tui.core.jupyter.logparse` strips them).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

from rich.cells import cell_len
from rich.segment import Segment
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip


def _width(line: str) -> int:
    return len(line) if line.isascii() else cell_len(line)


class LogView(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    LogView {
        background: $surface;
        color: $text;
        overflow: scroll;
    }
    """

    def __init__(self, max_lines: int, *, auto_scroll: bool = True, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._width = 0
        self.auto_scroll = auto_scroll

    @property
    def line_count(self) -> int:
        return len(self._lines)

    @property
    def lines(self) -> Sequence[str]:
        return self._lines

    def write_lines(self, lines: Iterable[str], scroll_end: bool | None = None) -> None:
        """Append lines (the oldest fall off past `max_lines`); follow the end when at it and following."""
        new = [line.expandtabs() if "\t" in line else line for line in lines]
        if not new:
            return
        at_end = self.is_vertical_scroll_end
        self._lines.extend(new)
        self._width = max(self._width, max(map(_width, new)))
        self.virtual_size = Size(self._width, len(self._lines))
        follow = self.auto_scroll if scroll_end is None else scroll_end
        if follow and at_end and not self.is_vertical_scrollbar_grabbed:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def clear(self) -> None:
        self._lines.clear()
        self._width = 0
        self.virtual_size = Size(0, 0)
        self.scroll_to(0, 0, animate=False, immediate=True)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        style = self.rich_style
        if index >= len(self._lines):
            return Strip.blank(width, style)
        line = self._lines[index]
        strip = Strip([Segment(line, style)], _width(line))
        return strip.crop_extend(scroll_x, scroll_x + width, style)
