"""The sign-in dialog: a TOTP passcode (or a password) clouds.yaml does not hold, asked for while connecting.

The core's connecting thread waits on the event's `answer`; this screen calls it exactly once — with what was typed,
or None when cancelled or when the app ends with the dialog open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

if TYPE_CHECKING:
    from tui.core.events import SecretWanted


class SecretPrompt(ModalScreen[str | None]):
    """One masked field; enter signs in, escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="signin.cancel")]

    def __init__(self, wanted: SecretWanted) -> None:
        super().__init__(classes="dialog-screen")
        self.wanted = wanted
        self._answered = False

    def compose(self) -> ComposeResult:
        passcode = self.wanted.kind == "passcode"
        with Vertical(classes="dialog"):
            yield Label(f"Sign in to {self.wanted.cloud}", classes="dialog-title")
            yield Static(self.wanted.prompt.rstrip(": "), classes="dialog-body")
            yield Input(password=True, id="secret", placeholder="123456" if passcode else "password",
                        max_length=16 if passcode else 0)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Sign in", id="confirm", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#secret", Input).focus()

    def _answer(self, value: str | None) -> None:
        if not self._answered:
            self._answered = True
            self.wanted.answer(value)
        self.dismiss(value)

    @on(Input.Submitted, "#secret")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self._answer(event.value)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        value = self.query_one("#secret", Input).value
        self._answer(value if event.button.id == "confirm" and value.strip() else None)

    def action_cancel(self) -> None:
        self._answer(None)

    def on_unmount(self) -> None:
        if not self._answered:  # the app ends with the dialog open: the connecting thread must not wait on
            self._answered = True
            self.wanted.answer(None)
