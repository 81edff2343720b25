"""A faster cell renderer for DataTables of one-line text cells (the Instances table with 1,000 servers).

Textual's DataTable renders each cell through Rich's layout machinery — `Styled(Padding(cell))` rendered by
`console.render_lines` — ~350 µs a cell, and caches the result under a key holding the table's update count: any
change to any row (a filter key, a poll's new uptime) renders every visible cell anew (~30 rows × 7 columns, 70 ms).
`OneLineCells._render_cell` draws a one-line `Text`/`str` cell straight to segments — the same characters and styles,
checked against DataTable's own renderer in `tests/ui/test_fastcells.py` — and caches it by what it shows, so a cell
whose value did not change is not drawn again. Anything else (headers, labels, fixed cells, taller rows, other
renderables, tabs or newlines, justified text) goes to DataTable's renderer.

(Overrides DataTable's private `_render_cell`; pinned by the tests.)
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

SegmentLines = list[list[Segment]]


class OneLineCells(DataTable[Text | str]):
    """A DataTable whose one-line text cells are drawn by `render_one_line`."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        # (row key, column key, id of the value, width, styles, cursor, hover, ...) -> (value, lines)
        self._one_line_cache: LRUCache[tuple[object, ...], tuple[object, SegmentLines]] = LRUCache(10000)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def notify_style_update(self) -> None:  # (the cache outlives `clear()`: it is keyed by what a cell shows)
        super().notify_style_update()
        self._one_line_cache.clear()

    def replace_cells(self, changes: Iterable[tuple[str, ColumnKey, Text | str]]) -> None:
        """(row key, column key, value): these cells, in place, as one update (`update_cell` counts an update per
        cell and re-measures through Rich a whole column whose cell got narrower); a column is widened at once
        for a wider cell (narrowing is the caller's, e.g. `fit_columns`)."""
        changed = False
        for row, column_key, value in changes:
            self._data[RowKey(row)][column_key] = value
            column = self.columns[column_key]
            width = cell_len(value.plain if isinstance(value, Text) else value)
            if width > column.content_width:
                column.content_width = width
                self._require_update_dimensions = True
            changed = True
        if changed:
            self._update_count += 1
            self.refresh()
            self.check_idle()

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> SegmentLines:
        if width <= 0:  # a hidden column (tables.Hideable)
            return [[]]
        if row_index < 0 or column_index < 0 or row_index < self.fixed_rows or column_index < self.fixed_columns:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        row = self.rows.get(row_key) if row_key is not None else None
        value = self._data.get(row_key, {}).get(column_key) if row_key is not None and column_key is not None \
            else None
        inner = width - 2 * self.cell_padding
        if row is None or row.height != 1 or not isinstance(value, Text | str) or inner <= 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = (row_key, column_key, id(value), width, row_index, column_index, base_style, cursor, hover,
               self._show_hover_cursor, self._pseudo_class_state, self.show_cursor, self.cell_padding,
               self.cursor_foreground_priority, self.cursor_background_priority)
        hit = self._one_line_cache.get(key)
        if hit is not None and hit[0] is value:
            return hit[1]
        text = value if isinstance(value, Text) else as_text(value)
        if "\n" in text.plain or "\t" in text.plain or text.justify not in (None, "default") \
                or text.overflow == "ignore":
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css")
        pre_style = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style
        lines = [render_one_line(text, inner, self.cell_padding, pre_style, post_style, self.app.console)]
        self._one_line_cache[key] = (value, lines)
        return lines


def as_text(value: str) -> Text:
    """A str cell as DataTable formats it: console markup (only where it could be some)."""
    return Text.from_markup(value, end="") if "[" in value else Text(value, end="")


def render_one_line(text: Text, inner: int, padding: int, pre_style: Style, post_style: Style,
                    console: object) -> list[Segment]:
    """`text` (one line) cut to `inner` cells (its overflow: ellipsis, else cropped), padded to them, `padding`
    blanks each side, every segment styled `pre_style + its style + post_style`: as `Styled(Padding(text))`
    renders it."""
    if text.cell_len > inner:
        text = text.copy()
        text.truncate(inner, overflow="ellipsis" if text.overflow == "ellipsis" else "crop")
    if text.spans:
        segments = list(text.render(console, end=""))  # type: ignore[arg-type]
    else:  # (Text.render leaves out the base style of a Text without spans: Rich's own rendering joins lines first)
        segments = [Segment(text.plain, console.get_style(text.style, default=Style.null()))]  # type: ignore[attr-defined]
    used = text.cell_len
    blank = Segment(" " * padding) if padding else None
    line = [blank] if blank else []
    line.extend(segments)
    if used < inner:
        line.append(Segment(" " * (inner - used)))
    if blank:
        line.append(blank)
    return list(Segment.apply_style(line, pre_style, post_style or None))
