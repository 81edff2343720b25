"""The name of an image to make of an instance (`i`): checked before any API call, with what it will do."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from tui.core.cloud.base import InvalidInput
from tui.core.hints import command
from tui.core.images import ImageQuota, check_image_name, secrets_note
from tui.core.models import Instance
from tui.ui.screens.form import FormDialog


def what_it_does(inst: Instance, quota: ImageQuota | None, taken: frozenset[str]) -> str:
    backed = ("Its volumes are snapshotted in Cinder (they count against your volume quota) and the image maps "
              "them." if not inst.image_id else "Its disk is uploaded to the image service.")
    used = f" Images: {quota.text()} used." if quota is not None else ""
    secrets = (" Jupyter's token files and the autostop credential are taken off its disk for the snapshot and put "
               "back after." if inst.status == "ACTIVE" else f" Stopped: {secrets_note()}.")
    return (f"Freeze {inst.name}'s environment: what is installed now is there on every instance launched from "
            f"the image (it comes first in the launch wizard; setup skips what it has). {backed}{secrets}{used}"
            + (f" Taken: {', '.join(sorted(taken)[:3])}{', …' if len(taken) > 3 else ''}." if taken else ""))


class ImageName(FormDialog[str | None]):
    """The new image's name; a taken one (the project's images) or a full image quota is refused here."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="imagename.cancel")]

    def __init__(self, inst: Instance, suggested: str, quota: ImageQuota | None, taken: frozenset[str]) -> None:
        super().__init__(classes="dialog-screen")
        self.instance = inst
        self.suggested = suggested
        self.quota = quota
        self.taken = taken

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Make an image of {self.instance.name}", classes="dialog-title")
            yield Static(what_it_does(self.instance, self.quota, self.taken), classes="advice")
            yield Label("Image name")
            yield Input(self.suggested, id="image-name", max_length=255)
            yield Static("", id="image-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Create", id="confirm", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#image-name", Input).focus()

    def problem(self, name: str) -> str:
        try:
            check_image_name(name)
        except InvalidInput as exc:
            return f"{exc.message} ({exc.hint})"
        if name in self.taken:
            return f"{name} is the name of one of your images: pick another."
        if self.quota is not None and self.quota.full:
            return (f"Your image quota is full ({self.quota.text()}): delete one first "
                    f"({command('image', 'delete', 'IMAGE')}).")
        return ""

    def submit(self) -> None:
        name = self.query_one("#image-name", Input).value.strip()
        problem = self.problem(name)
        if problem:
            self.say_problem("#image-error", problem)
        else:
            self.dismiss(name)
