"""Volumes: list with size and where attached; create+attach, detach, delete (the app asks first)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Input, Label, Static

from tui.core.cloud.base import InvalidInput
from tui.core.cloud.launch import check_name
from tui.core.models import Instance, Quota, Volume
from tui.ui.widgets.format import volume_label
from tui.ui.widgets.tables import cursor_key


class VolumesScreen(ModalScreen[None]):
    """All volumes of the project. Actions are requests the app carries out (with confirmation)."""

    BINDINGS = [
        Binding("a", "request('create')", "Create+attach", id="volumes.create",
                tooltip="Create a volume and attach it to the selected instance"),
        Binding("d", "request('detach')", "Detach", id="volumes.detach",
                tooltip="Detach the highlighted volume (unmount it on the VM first)"),
        Binding("x,delete", "request('delete')", "Delete", id="volumes.delete",
                tooltip="Delete the highlighted volume and its data"),
        Binding("escape", "dismiss", "Close", id="volumes.close"),
    ]

    @dataclass
    class Request(Message):
        kind: str  # "create" | "detach" | "delete"
        volume: Volume | None
        instance: Instance | None

    def __init__(self, instance: Instance | None, volumes: list[Volume], instances: list[Instance],
                 quota: Quota) -> None:
        super().__init__(classes="dialog-screen")
        self.instance = instance
        self.volumes: dict[str, Volume] = {}
        self._initial = (volumes, instances, quota)
        self.table: DataTable[Text | str] = DataTable(id="volumes-table", cursor_type="row")
        self.summary = Static("", id="volumes-quota", classes="advice")

    def compose(self) -> ComposeResult:
        target = f" — new volumes attach to {self.instance.name}" if self.instance else ""
        with Vertical(classes="dialog wide"):
            yield Label(f"Volumes{target}", classes="dialog-title")
            yield self.summary
            yield self.table
            yield Footer()

    def on_mount(self) -> None:
        table = self.table
        for label in ("Name", "Size", "Status", "Attached to", "Boot"):
            table.add_column(label, key=label.lower())
        table.focus()
        self.show(*self._initial)

    def show(self, volumes: list[Volume], instances: list[Instance], quota: Quota) -> None:
        names = {i.id: i.name for i in instances}
        table = self.table
        current = self.highlighted
        table.clear()
        self.volumes = {v.id: v for v in sorted(volumes, key=lambda v: (v.name, v.id))}
        for v in self.volumes.values():
            where = ", ".join(names.get(s, s[:8]) for s in v.attached_to)
            table.add_row(Text(volume_label(v), style="bold"), f"{v.size_gb} GB", v.status,
                          f"{where} {v.device}".strip() or Text("–", style="dim"),
                          "yes" if v.bootable else "", key=v.id)
        if current is not None and current.id in self.volumes:
            table.move_cursor(row=table.get_row_index(current.id), animate=False)
        limit = "∞" if quota.gigabytes_limit < 0 else str(quota.gigabytes_limit)
        self.summary.update(
            f"{len(volumes)} volumes, {quota.gigabytes_used} of {limit} GB of volume quota used. "
            "A new volume must be formatted and mounted on the VM before use.")

    @property
    def highlighted(self) -> Volume | None:
        return self.volumes.get(cursor_key(self.table) or "")

    def action_request(self, kind: str) -> None:
        volume = self.highlighted
        if kind != "create" and volume is None:
            self.notify("No volume highlighted.", severity="warning")
            return
        self.post_message(self.Request(kind, volume, self.instance))


class NewVolume(ModalScreen[tuple[str, int] | None]):
    """Name and size of a new volume; checked before any API call."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="newvolume.cancel")]

    def __init__(self, instance: Instance | None, quota: Quota) -> None:
        super().__init__(classes="dialog-screen")
        self.instance = instance
        self.quota = quota

    def compose(self) -> ComposeResult:
        left = "unlimited" if self.quota.gigabytes_limit < 0 else f"{self.quota.gigabytes_free} GB left"
        target = f"attached to {self.instance.name}" if self.instance else "not attached (no instance selected)"
        with Vertical(classes="dialog"):
            yield Label("Create a volume", classes="dialog-title")
            yield Static(f"Extra storage, {target}. It uses your volume quota ({left}).", classes="advice")
            yield Label("Name")
            yield Input(placeholder="e.g. data-1", id="volume-name")
            yield Label("Size (GB)")
            yield Input("10", type="integer", id="volume-size")
            yield Static("", id="volume-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Create", id="confirm", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#volume-name", Input).focus()

    def _problem(self, name: str, size_text: str) -> str:
        try:
            check_name(name)
        except InvalidInput as exc:
            return f"{exc.message.replace('instance', 'volume')}: {exc.hint}."
        try:
            size = int(size_text)
        except ValueError:
            return "The size is a whole number of GB."
        if size < 1:
            return "The size is at least 1 GB."
        if size > self.quota.gigabytes_free:
            return f"{size} GB is more than your volume quota has left ({self.quota.gigabytes_free} GB)."
        return ""

    def _submit(self) -> None:
        name = self.query_one("#volume-name", Input).value.strip()
        size = self.query_one("#volume-size", Input).value.strip()
        problem = self._problem(name, size)
        if problem:
            self.query_one("#volume-error", Static).update(Text(problem, style="bold red"))
        else:
            self.dismiss((name, int(size)))

    @on(Input.Submitted)
    def _entered(self, event: Input.Submitted) -> None:
        if event.input.id == "volume-name":
            self.query_one("#volume-size", Input).focus()
        else:
            self._submit()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self._submit()
        else:
            self.dismiss(None)
