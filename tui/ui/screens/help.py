"""The `?` screen: every key binding, with what it does."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class HelpScreen(ModalScreen[None]):
    """Rows are (keys as displayed, what it does, longer explanation)."""

    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__(classes="dialog-screen")
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(style="dim")
        for keys, description, tooltip in self.rows:
            table.add_row(keys, description, tooltip)
        with VerticalScroll(classes="dialog", id="help"):
            yield Label("Keys", classes="dialog-title")
            yield Static(table)
            yield Static(Text("ctrl+p opens the command palette with every action. "
                              "Keys can be changed in the profile's keymap: section.", style="dim"))
            yield Static(Text("Tunnels: a tunnel to Jupyter comes back on the last local port used for that "
                              "instance (a bookmark stays valid); set jupyter.local_port in the profile to ask for "
                              "one port everywhere (0: any free port).", style="dim"))
            yield Label("[dim]escape closes this screen[/dim]")
