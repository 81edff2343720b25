"""Trust on first use: the instance's SSH host key, shown before the app ever trusts it."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class HostKeyScreen(ModalScreen[bool]):
    """Dismisses with True (trust) or False (refuse). Refuse has the focus: enter never trusts by accident."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Refuse", id="hostkey.refuse")]

    def __init__(self, name: str, host: str, port: int, key_type: str, fingerprint: str) -> None:
        super().__init__(classes="dialog-screen")
        self.instance_name = name
        self.where = f"{host}:{port}"
        self.key_type = key_type
        self.fingerprint = fingerprint

    def compose(self) -> ComposeResult:
        body = Text.assemble(
            "The cloud's console log did not print this instance's host key, so it cannot be checked "
            "automatically. Compare the fingerprint with one you trust (e.g. ", ("ssh-keygen -lf "
            "/etc/ssh/ssh_host_*_key.pub", "bold"), " on the VM's web console) before trusting it.\n\n",
            ("Host         ", "dim"), (self.where, "bold"), "\n",
            ("Key type     ", "dim"), (self.key_type, "bold"), "\n",
            ("Fingerprint  ", "dim"), (self.fingerprint, "bold cyan"), "\n\n",
            "Trusted keys are kept in the app's own known_hosts; a changed key is refused later.",
        )
        with Vertical(classes="dialog", id="hostkey"):
            yield Label(Text.assemble("Trust the SSH host key of ", (self.instance_name, "bold"), "?"),
                        classes="dialog-title")
            yield Static(body, classes="dialog-body", id="hostkey-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Refuse", id="refuse")
                yield Button("Trust", id="trust", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#refuse", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "trust")
