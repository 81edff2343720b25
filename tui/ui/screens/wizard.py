"""The launch wizard: name → image → flavor → boot volume → key pair → network → review, then progress.

Every choice is validated here, before any API call. When the user presses Launch the wizard posts
`LaunchWizard.Launch(spec)`; the app runs the launch in a worker and feeds progress back through
`progress()`, `finished()` and `failed()`.

The steps' widgets and labels are in wizard_steps.py, the choices and their checks in wizard_pick.py.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, ContentSwitcher, Input, Label, Log, OptionList, Static

from tui.core.cloud.base import CloudError, LaunchSpec
from tui.core.config import LaunchDefaults
from tui.core.models import Instance
from tui.ui.messages import LaunchChoices
from tui.ui.screens.wizard_pick import (
    first_pick,
    flavor_problem,
    image_problem,
    launch_spec,
    name_problem,
    network_problem,
    summary,
    volume_problem,
)
from tui.ui.screens.wizard_steps import APP_KEY_OPTION, steps

STEPS = ("name", "image", "flavor", "volume", "key", "network", "review", "progress")
TITLES = {
    "name": "Name", "image": "Image", "flavor": "Flavor", "volume": "Boot volume", "key": "Key pair",
    "network": "Network", "review": "Review", "progress": "Launching",
}


class LaunchWizard(ModalScreen[None]):
    # one line per choice: a flavor's reasons stay in their column, cut with an ellipsis where the dialog ends
    DEFAULT_CSS = "LaunchWizard #flavor { text-wrap: nowrap; text-overflow: ellipsis; }"

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="wizard.cancel", tooltip="Close the wizard"),
        Binding("ctrl+b", "back", "Back", id="wizard.back", tooltip="Previous step"),
    ]

    @dataclass
    class Launch(Message):
        """The user confirmed: launch this."""

        spec: LaunchSpec

    def __init__(self, choices: LaunchChoices, defaults: LaunchDefaults) -> None:
        super().__init__(classes="dialog-screen")
        self.choices = choices
        self.defaults = defaults
        self.public_keys = choices.public_keys
        self.pick = first_pick(choices, defaults)
        self.step = "name"
        self.launching = False

    # ---- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="wizard"):
            yield Label("", id="wizard-title", classes="dialog-title")
            yield from steps(self.choices, self.public_keys, self.pick.volume_gb,
                             self.defaults.delete_volume_on_termination)
            yield Static("", id="wizard-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Back", id="back")
                yield Button("Next", id="next", variant="primary")

    def on_mount(self) -> None:
        self._preselect("image", self.pick.image.id if self.pick.image else None)
        self._preselect("flavor", self.pick.flavor.id if self.pick.flavor else None)
        self._preselect("key", self.pick.key_name or APP_KEY_OPTION)
        self._preselect("network", self.pick.network.id if self.pick.network else None)
        self._show("name")

    def _preselect(self, list_id: str, option_id: str | None) -> None:
        options = self.query_one(f"#{list_id}", OptionList)
        if option_id is not None:
            try:
                options.highlighted = options.get_option_index(option_id)
                return
            except Exception:  # noqa: S110 - an unknown default just leaves the first highlighted
                pass
        if options.option_count:
            options.highlighted = 0

    # ---- navigation ---------------------------------------------------------------------------
    def _show(self, step: str) -> None:
        self.step = step
        self.query_one("#steps", ContentSwitcher).current = f"step-{step}"
        number = STEPS.index(step) + 1
        title = (f"Launch an instance — {TITLES[step]}"
                 + (f" ({number}/{len(STEPS) - 1})" if step != "progress" else ""))
        self.query_one("#wizard-title", Label).update(title)
        self._error("")
        nxt = self.query_one("#next", Button)
        nxt.label = "Launch" if step == "review" else "Close" if step == "progress" else "Next"
        nxt.variant = "warning" if step == "review" else "primary"
        self.query_one("#back", Button).display = step not in ("name", "progress")
        self.query_one("#cancel", Button).display = step != "progress"
        if step == "review":
            self.query_one("#summary", Static).update(summary(self.pick, self.choices.quota))
            nxt.focus()
        elif step == "progress":
            nxt.disabled = True
        else:
            self.query_one(f"#{step}").focus()

    def _error(self, text: str) -> None:
        self.query_one("#wizard-error", Static).update(Text(text, style="bold red") if text else "")

    def action_cancel(self) -> None:
        if self.launching:
            self.notify("The launch continues in the background; watch the Instances pane.")
        self.dismiss(None)

    def action_back(self) -> None:
        i = STEPS.index(self.step)
        if 0 < i < STEPS.index("progress") or (self.step == "progress" and not self.launching):
            self._show(STEPS[i - 1])

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#back")
    def _back_pressed(self) -> None:
        self.action_back()

    @on(Button.Pressed, "#next")
    def _next_pressed(self) -> None:
        self.advance()

    @on(Input.Submitted)
    @on(OptionList.OptionSelected)
    def _submitted(self) -> None:
        self.advance()

    def advance(self) -> None:
        """Validate the current step, then go to the next one (or launch from the review)."""
        if self.step == "progress":
            self.dismiss(None)
            return
        problem = getattr(self, f"_take_{self.step}")()
        if problem:
            self._error(problem)
            return
        if self.step == "review":
            self._launch()
            return
        self._show(STEPS[STEPS.index(self.step) + 1])

    # ---- per-step validation: return a problem or "" ------------------------------------------
    def _take_name(self) -> str:
        name = self.query_one("#name", Input).value.strip()
        problem = name_problem(name, self.choices.instance_names)
        if not problem:
            self.pick.name = name
        return problem

    def _highlighted(self, list_id: str) -> str | None:
        options = self.query_one(f"#{list_id}", OptionList)
        if options.highlighted is None:
            return None
        return options.get_option_at_index(options.highlighted).id

    def _take_image(self) -> str:
        chosen = self._highlighted("image")
        image = next((i for i in self.choices.images if i.id == chosen), None)
        problem = image_problem(image)
        if not problem:
            self.pick.image = image
        return problem

    def _take_flavor(self) -> str:
        chosen = self._highlighted("flavor")
        flavor = next((f for f in self.choices.flavors if f.id == chosen), None)
        problem = flavor_problem(flavor, self.choices.quota)
        if not problem:
            self.pick.flavor = flavor
        return problem

    def _take_volume(self) -> str:
        raw = self.query_one("#volume", Input).value.strip()
        problem = volume_problem(raw, self.pick.image, self.choices.quota)
        if not problem:
            self.pick.volume_gb = int(raw)
        return problem

    def _take_key(self) -> str:
        chosen = self._highlighted("key")
        self.pick.key_name = "" if chosen in (None, APP_KEY_OPTION) else chosen
        return ""

    def _take_network(self) -> str:
        chosen = self._highlighted("network")
        network = next((n for n in self.choices.networks if n.id == chosen), None)
        problem = network_problem(network)
        if not problem:
            self.pick.network = network
        return problem

    def _take_review(self) -> str:
        return ""

    # ---- launching ----------------------------------------------------------------------------
    def _launch(self) -> None:
        spec = launch_spec(self.pick, self.query_one("#delete-on-term", Checkbox).value)
        self.launching = True
        self._show("progress")
        self.progress(f"Launching {spec.name}…")
        self.post_message(self.Launch(spec))

    def progress(self, line: str) -> None:
        """One line of the launch; a line wider than the log (a key's path) goes on below, indented: never cut."""
        log = self.query_one("#progress", Log)
        # the log's width less its scrollbar, read from the dialog: the log may not be laid out yet (it is shown
        # as the launch begins)
        width = self.query_one("#wizard").size.width - 2
        if 0 < width < len(line):
            log.write_lines(textwrap.wrap(line, width, subsequent_indent="  ", break_on_hyphens=False))
        else:
            log.write_line(line)

    def _ended(self, how: str) -> None:
        self.launching = False
        self.query_one("#wizard-title", Label).update(f"Launch an instance — {how}")

    def finished(self, instance: Instance) -> None:
        self._ended(f"{instance.name} launched")
        said = f"{instance.name} is {instance.status}"
        if not any(line.startswith(said) for line in self.query_one("#progress", Log).lines):  # the cloud said so
            self.progress(f"{said} at {instance.ip or 'no address yet'}.")
        self.progress("Next: select it and press s to set up Jupyter.")
        nxt = self.query_one("#next", Button)
        nxt.disabled = False
        nxt.focus()

    def failed(self, error: CloudError) -> None:
        self._ended("failed")
        self.progress(f"Failed: {error.message}")
        if error.hint:
            self.progress(f"What to do: {error.hint}")
        self.progress("Press Back to change your choices, or Close.")
        self.query_one("#next", Button).disabled = False
        back = self.query_one("#back", Button)
        back.display = True
        back.focus()
