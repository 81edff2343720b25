"""The app's key bindings — every action with an id (remappable in the profile's keymap), a footer label and a
tooltip for `?` and the palette — and which actions act on the main screen only."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.binding import Binding

if TYPE_CHECKING:
    from textual.command import Provider

BINDINGS: list[Binding] = [
    Binding("question_mark", "help", "Help", id="help", tooltip="List every key"),
    Binding("q", "quit", "Quit", id="quit",
            tooltip="Leave cades-tui (instances and Jupyter keep running; tunnels re-open on the next start)"),
    Binding("ctrl+c", "interrupt", "Cancel/Quit", id="interrupt", show=False, priority=True,
            tooltip="Cancel what runs (a setup, cluster work); when nothing runs, ask to quit (ctrl+c again quits)"),
    Binding("n", "launch", "New", id="launch",
            tooltip="Launch a new instance: image, flavor, boot volume, key pair, network"),
    Binding("r", "resize", "Resize", id="resize",
            tooltip="Change the selected instance's flavor; confirm or revert afterwards"),
    Binding("p", "power", "Stop/Start", id="power", tooltip="Shut down the selected instance, or start it"),
    Binding("b", "reboot", "Reboot", id="reboot", tooltip="Reboot the selected instance"),
    Binding("h", "shelve", "Shelve", id="shelve", show=False,
            tooltip="Shelve the selected instance (nothing runs, its disk is kept, its cores and RAM freed; asks "
                    "first), or unshelve it when shelved (Jupyter and a cluster's sessions come back)"),
    Binding("ctrl+d", "delete", "Delete", id="delete",
            tooltip="Delete the selected instance (asks for its name; you choose what happens to volumes)"),
    Binding("c", "console", "Console", id="console",
            tooltip="Show the selected instance's console log"),
    Binding("v", "volumes", "Volumes", id="volumes",
            tooltip="List volumes; create+attach, detach or delete them"),
    Binding("s", "setup", "Setup", id="setup",
            tooltip="Install and configure Python + Jupyter on the selected instance (done steps are skipped)"),
    Binding("ctrl+x", "cancel_setup", "Cancel setup", id="setup.cancel",
            tooltip="Cancel the running setup (the step running now stops; s runs it again, skipping done steps)"),
    Binding("j", "jupyter_start", "Jupyter", id="jupyter.start",
            tooltip="Start Jupyter on the selected instance in a screen session, with a tunnel to it"),
    Binding("x", "jupyter_stop", "Stop Jupyter", id="jupyter.stop",
            tooltip="Stop Jupyter on the selected instance (asks first when kernels are busy)"),
    Binding("l", "jupyter_log", "Log", id="jupyter.log", tooltip="The selected instance's Jupyter log, live"),
    Binding("t", "open_tunnel", "Tunnel", id="tunnel.open",
            tooltip="Open a tunnel 127.0.0.1:port → the selected instance's Jupyter"),
    Binding("o", "open_browser", "Open", id="open",
            tooltip="Open Jupyter in the browser through the tunnel (URL with token copied too)"),
    Binding("k", "cluster", "Cluster", id="cluster",
            tooltip="The Dask cluster headed by the selected instance: workers live; create, scale, dashboard, "
                    "delete"),
    Binding("i", "image", "Image", id="image", show=False,
            tooltip="Make an image of the selected instance (asks its name): launch or grow a cluster from it "
                    "with what is installed now"),
    Binding("m", "transfers", "Transfers", id="transfers",
            tooltip="Move data: upload / download the selected instance's workspace folder, with a queue, progress, "
                    "cancel and retry (resumes partial files)"),
    Binding("ctrl+s", "shell", "Shell", id="shell",
            tooltip="Suspend the app and open an SSH shell on the selected instance; exit returns here"),
    Binding("e", "vscode", "VS Code", id="vscode",
            tooltip="Open the selected instance in VS Code (Remote-SSH by its name: code --remote ssh-remote+NAME)"),
    Binding("z", "snooze", "Snooze", id="snooze",
            tooltip="Quiet the selected instance's idle reminders for a day"),
    Binding("u", "autostop", "Autostop", id="autostop",
            tooltip="Set or clear the selected instance's autostop: a watchdog on the VM stops (or shelves) it when "
                    "idle, also with this laptop closed"),
    Binding("w", "autostop_keep", "Keep", id="autostop.keep",
            tooltip="Keep the selected instance: reset its autostop timer (after a warning that it will stop)"),
    Binding("f5", "refresh", "Refresh", id="refresh", tooltip="Poll the cloud now"),
    Binding("slash", "filter", "Filter", id="filter",
            tooltip="Filter the Instances table by name, status, flavor or IP (Enter keeps it, Esc clears it)"),
    Binding("1", "focus_pane('instances')", "Instances", id="pane.instances", show=False,
            tooltip="Focus the Instances pane"),
    Binding("2", "focus_pane('flavors')", "Flavors", id="pane.flavors", show=False,
            tooltip="Focus the Flavors pane"),
    Binding("3", "focus_pane('setup')", "Setup log", id="pane.setup", show=False,
            tooltip="Focus the Setup log pane"),
    Binding("4", "focus_pane('tunnels')", "Tunnels", id="pane.tunnels", show=False,
            tooltip="Focus the Tunnels pane"),
    Binding("tab", "focus_next", "Next pane", id="pane.next", show=False, tooltip="Focus the next pane"),
    Binding("shift+tab", "focus_previous", "Previous pane", id="pane.previous", show=False,
            tooltip="Focus the previous pane"),
    Binding("ctrl+p", "command_palette", "Palette", id="palette", show=False,
            tooltip="Search every action by name"),
]

# Actions on the main screen only: with a dialog open, its keys must not act on the instance beneath.
MAIN_SCREEN_ACTIONS = {"launch", "resize", "power", "reboot", "shelve", "delete", "console", "volumes", "details",
                       "focus_pane", "help", "quit", "setup", "cancel_setup", "jupyter_start", "jupyter_stop",
                       "jupyter_log", "open_tunnel", "close_tunnel", "open_browser", "shell", "snooze", "cluster",
                       "image", "filter", "vscode", "forward_add", "forward_toggle", "autostop", "autostop_keep",
                       "transfers"}
PANES = {"instances": "#instances-table", "flavors": "#flavors-table", "setup": "#setup-log",
         "tunnels": "#tunnels-table"}


def key_text(app: App[Any], binding: Binding) -> str:
    """A binding's keys as displayed, after the profile's keymap (for `?` and the palette)."""
    keys = app._keymap.get(binding.id, binding.key) if binding.id else binding.key
    return ", ".join(app.get_key_display(replace(binding, key=k.strip())) for k in keys.split(","))


def binding_rows(app: App[Any]) -> list[tuple[str, str, str, str]]:
    """(keys as displayed, description, tooltip, action) for every binding of the app, its tables and the cluster
    screen's app actions, after the keymap: what the palette offers."""
    from tui.ui.screens.cluster import BINDINGS as CLUSTER
    from tui.ui.widgets.tables import InstancesTable, TunnelsTable

    rows = []
    cluster = [b for b in CLUSTER if b.action.startswith("app.")]
    for binding in [*app.BINDINGS, *InstancesTable.BINDINGS, *TunnelsTable.BINDINGS, *cluster]:
        assert isinstance(binding, Binding)
        action = binding.action if "." in binding.action.split("(")[0] else f"app.{binding.action}"
        rows.append((key_text(app, binding), binding.description, binding.tooltip, action))
    return rows


def actions_provider() -> type[Provider]:
    """The palette's provider, imported when the palette first opens (textual.command is slow to import)."""
    from tui.ui.widgets.commands import ActionsProvider

    return ActionsProvider
