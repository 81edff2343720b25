"""`u`: set or clear the selected instance's autostop — idle period and action (stop or shelve)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

# what the dialog answers: ("set", idle, action), ("off", "", ""), or None (cancelled)
Choice = tuple[str, str, str] | None


class AutostopDialog(ModalScreen[Choice]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="autostop.cancel")]

    def __init__(self, name: str, now: str, idle: str, action: str) -> None:
        super().__init__(classes="dialog-screen")
        self.target, self.now, self.idle, self.action = name, now, idle, action

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Autostop · {self.target}", classes="dialog-title")
            yield Static(f"A watchdog on the VM stops it when nothing ran for this long (no busy or active kernel "
                         f"or terminal, no Dask task, no SSH login, low CPU) — also with this laptop closed. It warns "
                         f"first: w keeps it. Now: {self.now}.", classes="dialog-body")
            yield Label("Idle for (e.g. 60m, 2h)")
            yield Input(self.idle, id="autostop-idle")
            yield Select([("stop (powered off from inside)", "stop"),
                          ("shelve (a credential for this VM only)", "shelve")],
                         value=self.action, allow_blank=False, id="autostop-action")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Turn off", id="off")
                yield Button("Set", id="confirm", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#autostop-idle", Input).focus()

    def _set(self) -> None:
        action = self.query_one("#autostop-action", Select).value
        self.dismiss(("set", self.query_one("#autostop-idle", Input).value.strip(), str(action)))

    @on(Input.Submitted)
    def _entered(self, _event: Input.Submitted) -> None:
        self._set()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self._set()
        elif event.button.id == "off":
            self.dismiss(("off", "", ""))
        else:
            self.dismiss(None)
