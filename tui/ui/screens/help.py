"""The `?` screen: every key binding, grouped by where it acts, with what it does and its action id (the name the
profile's `keymap:` section remaps it by)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

if TYPE_CHECKING:
    from tui.ui.app import CadesApp

HelpRow = tuple[str, str, str, str]  # keys as displayed (after the keymap), description, tooltip, action id
HelpGroup = tuple[str, list[HelpRow]]  # heading, rows


def help_groups(app: CadesApp) -> list[HelpGroup]:
    """Every binding of the app, its panes and its screens, under a heading per screen or pane."""
    from tui.ui.keys import key_text
    from tui.ui.screens.cluster import BINDINGS as CLUSTER
    from tui.ui.screens.jupyter_log import JupyterLogScreen
    from tui.ui.screens.volumes import VolumesScreen
    from tui.ui.widgets.tables import InstancesTable, TunnelsTable

    groups: list[tuple[str, list[Binding]]] = [
        ("Main screen", list(app.BINDINGS)),
        ("Instances table", list(InstancesTable.BINDINGS)),  # type: ignore[arg-type]
        ("Tunnels pane", list(TunnelsTable.BINDINGS)),  # type: ignore[arg-type]
        ("Cluster screen (k)", list(CLUSTER)),
        ("Jupyter log (l)", list(JupyterLogScreen.BINDINGS)),  # type: ignore[arg-type]
        ("Volumes (v)", list(VolumesScreen.BINDINGS)),  # type: ignore[arg-type]
    ]
    return [(heading, [(key_text(app, b), b.description, b.tooltip, b.id or "") for b in bindings])
            for heading, bindings in groups]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, groups: list[HelpGroup]) -> None:
        super().__init__(classes="dialog-screen")
        self.groups = groups

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="help"):
            yield Label("Keys", classes="dialog-title")
            for heading, rows in self.groups:
                yield Static(Text(heading, style="bold underline"), classes="help-heading")
                table = Table.grid(padding=(0, 1))
                table.add_column(style="bold cyan", no_wrap=True, min_width=12)
                table.add_column(style="bold", no_wrap=True, min_width=14)
                table.add_column(style="magenta", no_wrap=True, min_width=18)
                table.add_column(style="dim")
                for keys, description, tooltip, action_id in rows:
                    table.add_row(keys, description, action_id, tooltip)
                yield Static(table)
            yield Static(Text("ctrl+p opens the command palette with every action. The third column is the "
                              "action's id: remap a key in the profile's keymap: section by it, e.g. "
                              "keymap: {launch: ctrl+n}.", style="dim"))
            yield Static(Text("Tunnels: a tunnel to Jupyter comes back on the last local port used for that "
                              "instance (a bookmark stays valid); set jupyter.local_port in the profile to ask for "
                              "one port everywhere (0: any free port).", style="dim"))
            yield Label("[dim]escape closes this screen[/dim]")
