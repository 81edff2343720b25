"""`l`: the Jupyter server's log, live. Bounded in memory, filter with `/`, follow on/off with `f`, copy the
last lines with `y` (OSC 52). Lines arrive in batches from the app (`add`); one `LogView.write_lines` per batch."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from tui.ui.widgets.logview import LogView

MAX_LINES = 5000  # kept in memory and shown
COPY_LINES = 50


class JupyterLogScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "close", "Close", id="log.close", tooltip="Back to the main screen"),
        Binding("slash", "filter", "Filter", id="log.filter", tooltip="Show only lines containing a text"),
        Binding("f", "follow", "Follow on/off", id="log.follow",
                tooltip="Keep the newest line in view, or hold the view where it is"),
        Binding("y", "copy", "Copy last lines", id="log.copy",
                tooltip=f"Copy the last {COPY_LINES} shown lines to the clipboard (OSC 52)"),
    ]

    def __init__(self, instance_id: str, name: str, running: bool = True) -> None:
        super().__init__(id="jupyter-log-screen")
        self.instance_id = instance_id
        self.instance_name = name
        self.running = running  # False: the log shown is an old one; say that Jupyter is not running
        self.lines: deque[str] = deque(maxlen=MAX_LINES)
        self.pattern = ""
        self.follow = True
        self._status_due = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="pane", id="jupyter-log-pane") as pane:
            pane.border_title = f"Jupyter log — {self.instance_name}"
            yield Static("", id="log-status")
            yield Input(placeholder="filter: text to look for (enter applies, escape clears it)", id="log-filter")
            yield LogView(MAX_LINES, id="jupyter-log")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.log_view = self.query_one("#jupyter-log", LogView)
        self.filter_input = self.query_one("#log-filter", Input)
        self.status = self.query_one("#log-status", Static)
        self.filter_input.display = False
        self.log_view.focus()
        self._status()

    def _status(self) -> None:
        self._status_due = False
        if not self.running:
            text = Text.assemble(("○ Jupyter is not running", "yellow"),
                                 f" on {self.instance_name} (j starts it)  {len(self.lines)} old lines")
        else:
            text = Text.assemble(("● following" if self.follow else "‖ paused", "green" if self.follow else "yellow"),
                                 f"  {len(self.lines)} lines")
        if self.pattern:
            text.append(f"  filter: {self.pattern!r} ({self.log_view.line_count} shown)", style="bold")
        text.append("  — / filter · f follow · y copy · escape back", style="dim")
        self.status.update(text, layout=False)  # one line, always: a redraw, not a layout of the screen

    def server_state(self, state: str) -> None:
        """Jupyter started or stopped while the log is shown."""
        running = state in ("running", "starting")
        if running != self.running:
            self.running = running
            self._status()

    def add(self, lines: list[str]) -> None:
        """New lines from the server (a batch): kept, and shown when they match the filter."""
        self.lines.extend(lines)
        shown = [x for x in lines if self.pattern in x] if self.pattern else lines
        if shown:
            self.log_view.write_lines(shown, scroll_end=self.follow)
        if not self._status_due:  # the line count is redrawn at most 4 times a second, not per batch
            self._status_due = True
            self.set_timer(0.25, self._status)

    def _reshow(self) -> None:
        self.log_view.clear()
        self.log_view.write_lines([x for x in self.lines if self.pattern in x] if self.pattern else list(self.lines),
                                  scroll_end=True)
        self._status()

    def action_filter(self) -> None:
        self.filter_input.display = True
        self.filter_input.focus()

    @on(Input.Submitted, "#log-filter")
    def _apply_filter(self, event: Input.Submitted) -> None:
        self.pattern = event.value
        self.filter_input.display = bool(self.pattern)
        self.log_view.focus()
        self._reshow()

    def action_close(self) -> None:
        if self.filter_input.has_focus or self.pattern:  # escape clears the filter first, then closes
            self.filter_input.value = ""
            self.pattern = ""
            self.filter_input.display = False
            self.log_view.focus()
            self._reshow()
            return
        self.dismiss()

    def action_follow(self) -> None:
        self.follow = not self.follow
        self.log_view.auto_scroll = self.follow
        if self.follow:
            self.log_view.scroll_end(animate=False)
        self._status()

    def action_copy(self) -> None:
        shown = [x for x in self.lines if self.pattern in x] if self.pattern else list(self.lines)
        last = shown[-COPY_LINES:]
        self.app.copy_to_clipboard("\n".join(last))
        self.notify(f"Copied the last {len(last)} lines to the clipboard.", title="Jupyter log")
