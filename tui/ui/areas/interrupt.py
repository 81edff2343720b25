"""Ctrl+C, on every screen and dialog: copy the selected text when there is some; else cancel what runs (setups,
cluster work); when nothing runs, ask to quit — and on that question, Ctrl+C again quits."""

from __future__ import annotations

from tui.ui.areas.base import Area

QUIT_ASK = "quit-ask"  # the id of the "Quit cades-tui?" dialog Ctrl+C opens (Ctrl+C on it quits)


class InterruptArea(Area):
    def action_interrupt(self) -> None:
        selected = getattr(self.focused, "selected_text", "") or self.screen.get_selected_text()
        if selected:
            self.copy_to_clipboard(selected)
        elif self.screen.id == QUIT_ASK:
            self.screen.dismiss(True)
        elif self.running_setups():  # type: ignore[attr-defined]
            self.action_cancel_setup()  # type: ignore[attr-defined]
        elif self.running_cluster_work():  # type: ignore[attr-defined]
            self.cancel_cluster_work()  # type: ignore[attr-defined]
        else:
            self._quit(ask=True)  # type: ignore[attr-defined]
