"""`n` on the cluster screen: how many worker instances — the profile's number by default, capped to what the
remaining quota holds (and said so), checked before the cluster is created."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from tui.ui.screens.form import FormDialog


class WorkerCount(FormDialog[int | None]):
    """Dismisses with the number of worker instances, or None when cancelled.

    `existing`: the head's worker instances already there (adopted, they need no quota); `fit`: how many more the
    remaining quota holds; `least`: 0 when the head runs a worker too, else 1."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="workers.cancel")]

    def __init__(self, head: str, wanted: int, existing: int, fit: int, least: int = 1) -> None:
        super().__init__(classes="dialog-screen")
        self.head = head
        self.most = existing + fit
        self.least = least
        self.existing = existing
        self.default = max(least, min(wanted, self.most))

    def compose(self) -> ComposeResult:
        adopted = f" {self.existing} exist already and are adopted." if self.existing else ""
        room = (f"The remaining quota holds {self.most - self.existing} more." if self.most > self.existing
                else "The remaining quota holds no more.")
        with Vertical(classes="dialog"):
            yield Label(f"Create a Dask cluster on {self.head}", classes="dialog-title")
            yield Static(f"Worker instances ({self.head}-w1, -w2, …): private, reached through {self.head}. "
                         f"{room}{adopted}", classes="dialog-body")
            yield Label(f"Workers ({self.least}–{max(self.least, self.most)})")
            yield Input(str(self.default), type="integer", id="workers-count")
            yield Static("", id="workers-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Create", id="confirm", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#workers-count", Input).focus()

    def _problem(self, text: str) -> str:
        try:
            n = int(text)
        except ValueError:
            return "The number of workers is a whole number."
        if n < self.least:
            return f"At least {self.least} worker{'s' if self.least != 1 else ''}."
        if n > self.most:
            return (f"{n} workers do not fit: the remaining quota holds {self.most - self.existing} more"
                    + (f" (and {self.existing} exist)" if self.existing else "") + ".")
        return ""

    def submit(self) -> None:
        text = self.query_one("#workers-count", Input).value.strip()
        problem = self._problem(text)
        if problem:
            self.say_problem("#workers-error", problem)
        else:
            self.dismiss(int(text))
