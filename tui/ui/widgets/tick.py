"""A checkbox whose mark differs by value, not by colour alone."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox


class Tick(Checkbox):
    """Textual's Checkbox draws `▐X▌` both on and off (only the colour changes), which reads as checked on a
    plain-text or monochrome terminal. This one draws `▐✓▌` when on and `▐ ▌` when off."""

    @property
    def _button(self) -> Content:
        self.BUTTON_INNER = "✓" if self.value else " "
        return super()._button
