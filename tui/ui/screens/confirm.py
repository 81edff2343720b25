"""Confirmation dialogs for costly or destructive actions.

`Confirm` answers yes/no; `TypedConfirm` wants a name typed out; `DeleteInstance` asks for the instance's name
typed out and whether its volumes go too, and says what goes with it (the core's words, as the CLI prints
them). All are meant for `await app.push_screen_wait(...)` inside a worker.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from tui.core.cluster.deletion import Deletion
from tui.ui.widgets.tick import Tick


class Confirm(ModalScreen[bool]):
    """Yes or no. Cancel has the focus, so a stray enter never destroys anything."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel", id="confirm.cancel")]

    def __init__(self, title: str, body: str | Text, confirm: str = "Confirm", *, danger: bool = False,
                 screen_id: str | None = None) -> None:
        super().__init__(id=screen_id, classes="dialog-screen")
        self.title_text = title
        self.body = body
        self.confirm_label = confirm
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.body, classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(self.confirm_label, id="confirm", variant="error" if self.danger else "primary")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")


class DeleteInstance(ModalScreen[bool | None]):
    """Delete an instance: type its name; choose whether its volumes are deleted too. Says what goes with it (the
    core's `Deletion`): Jupyter and its busy kernels, the Dask cluster it heads (workers, their volumes, the group).

    Dismisses with None when cancelled, else with `delete_volumes`.
    """

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="delete.cancel")]
    DEFAULT_CSS = "DeleteInstance #delete-facts { height: auto; }"
    FIXED_ROWS = 14  # title, name label and field, buttons, borders: what stays visible below and above the facts

    def __init__(self, plan: Deletion, delete_volumes: bool = False) -> None:
        super().__init__(classes="dialog-screen")
        self.plan = plan
        self.instance = plan.instance
        self.delete_volumes = delete_volumes

    def compose(self) -> ComposeResult:
        inst = self.instance
        with Vertical(classes="dialog"):
            yield Label(Text.assemble("Delete instance ", (inst.name, "bold"), "?"), classes="dialog-title")
            with VerticalScroll(id="delete-facts"):  # scrolls when they do not fit (80x24): the name field stays
                yield Static(
                    f"{inst.name} ({inst.flavor_name}, {inst.status}) is shut down and removed for good. "
                    "Anything on it that is not on a kept volume is lost.",
                    classes="dialog-body",
                )
                if self.plan.jupyter:
                    yield Static(Text(self.plan.jupyter, style="bold red"), id="running-lost", classes="dialog-body")
                if cluster := self.plan.cluster_text():
                    yield Static(Text(cluster, style="bold red"), id="cluster-lost", classes="dialog-body")
                yield Static(self._volumes_text(), id="volumes-fate", classes="dialog-body")
                if self.plan.volumes:
                    yield Tick("Also delete its volumes", self.delete_volumes, id="delete-volumes")
            yield Label("Type the instance name to confirm:")
            yield Input(placeholder=inst.name, id="typed-name")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Delete", id="confirm", variant="error", disabled=True)

    def on_mount(self) -> None:
        self._fit()
        self.query_one("#typed-name", Input).focus()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """The facts take what the name field and the buttons leave (they scroll beyond that)."""
        self.query_one("#delete-facts", VerticalScroll).styles.max_height = max(3, self.size.height - self.FIXED_ROWS)

    def _volumes_text(self) -> Text:
        if not self.plan.volumes:
            return Text("It has no volumes attached.", style="dim")
        fate = ("deleted", "bold red") if self.delete_volumes else ("kept", "bold green")
        text = Text()
        for phrase, _ in self.plan.volume_fates(self.delete_volumes):
            text.append(f"• {phrase} will be ")
            text.append(*fate)
            text.append("\n")
        if not self.delete_volumes:
            text.append("Kept volumes still count against your volume quota.", style="dim")
        return text

    @on(Checkbox.Changed, "#delete-volumes")
    def _toggle(self, event: Checkbox.Changed) -> None:
        self.delete_volumes = event.value
        self.query_one("#volumes-fate", Static).update(self._volumes_text())

    @on(Input.Changed, "#typed-name")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = event.value != self.instance.name

    @on(Input.Submitted, "#typed-name")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value == self.instance.name:
            self.dismiss(self.delete_volumes)
        else:
            self.notify("The name does not match — nothing deleted.", severity="warning")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self.delete_volumes if event.button.id == "confirm" else None)


class TypedConfirm(ModalScreen[bool]):
    """A destructive action confirmed by typing a name (e.g. deleting a cluster: type its head's name)."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel", id="typed.cancel")]

    def __init__(self, title: str, body: str | Text, expected: str, confirm: str = "Delete") -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.body = body
        self.expected = expected
        self.confirm_label = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.body, classes="dialog-body")
            yield Label(f"Type {self.expected} to confirm:")
            yield Input(placeholder=self.expected, id="typed-name")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(self.confirm_label, id="confirm", variant="error", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#typed-name", Input).focus()

    @on(Input.Changed, "#typed-name")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = event.value != self.expected

    @on(Input.Submitted, "#typed-name")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value == self.expected:
            self.dismiss(True)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm" and self.query_one("#typed-name", Input).value == self.expected)
