"""The launch wizard: name → image → flavor → boot volume → key pair → network → review, then progress.

Every choice is validated here, before any API call. When the user presses Launch the wizard posts
`LaunchWizard.Launch(spec)`; the app runs the launch in a worker and feeds progress back through
`progress()`, `finished()` and `failed()`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, ContentSwitcher, Input, Label, Log, OptionList, Static
from textual.widgets.option_list import Option

from tui.conventions import IMPORT_KEY_PREFIX
from tui.core.cloud.base import CloudError, InvalidInput, LaunchSpec
from tui.core.cloud.launch import MIN_VOLUME_GB, check_name, pick_flavor, pick_image, pick_network
from tui.core.config import LaunchDefaults
from tui.core.models import Flavor, Image, Instance, Network
from tui.ui.messages import LaunchChoices
from tui.ui.widgets.format import leave_ram, mb

T = TypeVar("T")
APP_KEY_OPTION = "<app-key>"


def _key_label(key_name: str) -> str:
    if not key_name:
        return "cades-tui's own (imported if needed)"
    if key_name.startswith(IMPORT_KEY_PREFIX):
        return f"import {key_name[len(IMPORT_KEY_PREFIX):]}"
    return key_name  # the key step's option for the app's own key pair (LaunchSpec.key_name "")
STEPS = ("name", "image", "flavor", "volume", "key", "network", "review", "progress")
TITLES = {
    "name": "Name", "image": "Image", "flavor": "Flavor", "volume": "Boot volume", "key": "Key pair",
    "network": "Network", "review": "Review", "progress": "Launching",
}


def name_problem(name: str, taken: list[str]) -> str:
    """Why `name` cannot be an instance name; "" when it can."""
    if not name:
        return "Give the instance a name, e.g. analytics-1."
    try:
        check_name(name)
    except InvalidInput as exc:
        return f"{exc.message}: {exc.hint}."
    if name in taken:
        return f"An instance named {name} already exists; pick another name."
    return ""


def _default(pick: Callable[[], T], fallback: list[T]) -> T | None:
    """The core's choice (profile, else the guide's default), else the first offered."""
    try:
        return pick()
    except CloudError:
        return fallback[0] if fallback else None


@dataclass
class _Pick:
    """The wizard's current choices."""

    name: str = ""
    image: Image | None = None
    flavor: Flavor | None = None
    volume_gb: int = 16
    key_name: str = ""
    network: Network | None = None


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
        self.pick = _Pick(
            image=_default(lambda: pick_image(choices.images, defaults.image), choices.images),
            flavor=_default(lambda: pick_flavor(choices.flavors, choices.quota, 0, defaults.flavor), []),
            volume_gb=defaults.volume_size_gb,
            key_name=next((k.name for k in choices.keypairs if k.name == defaults.key_name), ""),
            network=_default(lambda: pick_network(choices.networks, defaults.network), choices.networks),
        )
        self.step = "name"
        self.launching = False

    # ---- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        c = self.choices
        with Vertical(classes="dialog", id="wizard"):
            yield Label("", id="wizard-title", classes="dialog-title")
            with ContentSwitcher(initial="step-name", id="steps"):
                with Vertical(id="step-name", classes="step"):
                    yield Static("A short name you will recognise in lists and in your SSH config.",
                                 classes="advice")
                    yield Input(placeholder="e.g. analytics-1", id="name", max_length=63)
                with Vertical(id="step-image", classes="step"):
                    yield Static("Choose Ubuntu, as the guide does: the setup steps assume it.", classes="advice")
                    yield OptionList(*[Option(self._image_label(i), id=i.id) for i in c.images], id="image")
                with Vertical(id="step-flavor", classes="step"):
                    yield Static(
                        "[b]m1.*[/b] when memory matters (statistics, large data in RAM); "
                        "[b]c1.*[/b] for many small parallel jobs. You can resize later. "
                        "[red]✗[/red] = does not fit what is left of your quota.", classes="advice")
                    yield OptionList(*[Option(self._flavor_label(f), id=f.id) for f in self._flavors()],
                                     id="flavor")
                with Vertical(id="step-volume", classes="step"):
                    yield Static(self._volume_advice(), classes="advice")
                    yield Input(str(self.pick.volume_gb), type="integer", id="volume")
                with Vertical(id="step-key", classes="step"):
                    yield Static("The key pair whose public key is put on the instance; you log in with its "
                                 "private key.", classes="advice")
                    yield OptionList(
                        Option(Text.assemble(("cades-tui's own key pair", "bold"),
                                             ("  made for you once; its private key stays in the app's data dir",
                                              "dim")), id=APP_KEY_OPTION),
                        *[Option(Text.assemble((k.name, "bold"), "  ", (k.fingerprint, "dim")), id=k.name)
                          for k in c.keypairs],
                        *[Option(Text.assemble(("Import ", "bold"), (str(pub), "bold"),
                                               ("  your own public key, as a new key pair", "dim")),
                                 id=IMPORT_KEY_PREFIX + str(pub)) for pub in self.public_keys], id="key")
                with Vertical(id="step-network", classes="step"):
                    yield Static("The instance's network. It is always named explicitly (some clouds refuse "
                                 "\"auto\").", classes="advice")
                    yield OptionList(*[Option(self._network_label(n), id=n.id) for n in c.networks],
                                     id="network")
                with Vertical(id="step-review", classes="step"):
                    yield Static("", id="summary")
                    yield Checkbox("Delete the boot volume when the instance is deleted",
                                   self.defaults.delete_volume_on_termination, id="delete-on-term")
                with Vertical(id="step-progress", classes="step"):
                    yield Log(id="progress", max_lines=200)
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

    # ---- labels -------------------------------------------------------------------------------
    def _flavors(self) -> list[Flavor]:
        return sorted(self.choices.flavors, key=lambda f: (f.family.value, f.ram_mb, f.vcpus))

    def _image_label(self, img: Image) -> Text:
        text = Text(img.name, style="bold")
        if img.min_disk_gb:
            text.append(f"  needs ≥ {img.min_disk_gb} GB disk", style="dim")
        if img.status.lower() != "active":
            text.append(f"  ({img.status})", style="yellow")
        return text

    def _flavor_label(self, f: Flavor) -> Text:
        reasons = self.choices.quota.misfit(f)
        text = Text()
        text.append(f"{f.name:<12}", style="dim" if reasons else "bold")
        text.append(f"{f.vcpus:>3} vCPU {mb(f.ram_mb):>8}  ")
        if reasons:
            text.append("✗ " + "; ".join(reasons), style="red")
        else:
            text.append("✓ ", style="green")
            text.append(f.hint.split(":")[0], style="dim")
        return text

    def _network_label(self, n: Network) -> Text:
        text = Text(n.name, style="bold")
        if n.external:
            text.append("  external (provider) network", style="dim")
        return text

    def _volume_advice(self) -> str:
        q = self.choices.quota
        left = "unlimited" if q.gigabytes_limit < 0 else f"{q.gigabytes_free} GB left of {q.gigabytes_limit} GB"
        return ("Size of the boot volume: it holds the OS, Python packages and your data. The guide "
                "recommends 16 GB or more (8 GB works but fills up fast); adding a volume later is more work. "
                f"It uses your volume quota ({left}).")

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
            self.query_one("#summary", Static).update(self._summary())
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
        if image is None:
            return "No image to choose — the project has no images; ask your cloud's support."
        self.pick.image = image
        return ""

    def _take_flavor(self) -> str:
        chosen = self._highlighted("flavor")
        flavor = next((f for f in self.choices.flavors if f.id == chosen), None)
        if flavor is None:
            return "Choose a flavor."
        reasons = self.choices.quota.misfit(flavor)
        if reasons:
            return (f"{flavor.name} does not fit your quota: {'; '.join(reasons)}. "
                    "Pick a smaller one, or ask for more quota.")
        self.pick.flavor = flavor
        return ""

    def _take_volume(self) -> str:
        raw = self.query_one("#volume", Input).value.strip()
        try:
            size = int(raw)
        except ValueError:
            return "The boot volume size is a whole number of GB, e.g. 16."
        minimum = max(MIN_VOLUME_GB, self.pick.image.min_disk_gb if self.pick.image else 0)
        if size < minimum:
            return f"{size} GB is too small: use at least {minimum} GB (the guide recommends 16 GB or more)."
        free = self.choices.quota.gigabytes_free
        if size > free:
            return f"{size} GB is more than your volume quota has left ({free} GB)."
        self.pick.volume_gb = size
        return ""

    def _take_key(self) -> str:
        chosen = self._highlighted("key")
        self.pick.key_name = "" if chosen in (None, APP_KEY_OPTION) else chosen
        return ""

    def _take_network(self) -> str:
        chosen = self._highlighted("network")
        network = next((n for n in self.choices.networks if n.id == chosen), None)
        if network is None:
            return "This project has no network; create one or ask your cloud's support."
        self.pick.network = network
        return ""

    def _take_review(self) -> str:
        return ""

    def _summary(self) -> Text:
        p = self.pick
        assert p.image and p.flavor and p.network
        q = self.choices.quota
        text = Text()
        for label, value in (("Name", p.name), ("Image", p.image.name),
                             ("Flavor", f"{p.flavor.name} — {p.flavor.vcpus} vCPU, {mb(p.flavor.ram_mb)} RAM"),
                             ("Boot volume", f"{p.volume_gb} GB"),
                             ("Key pair", _key_label(p.key_name)),
                             ("Network", p.network.name)):
            text.append(f"{label:<12}", style="dim")
            text.append(f"{value}\n", style="bold")
        text.append("\nAfter launch your quota has left: ", style="dim")
        text.append(f"{leave_ram(q.ram_mb_free - p.flavor.ram_mb)} RAM, {q.cores_free - p.flavor.vcpus} cores"
                    if q.ram_mb_limit >= 0 and q.cores_limit >= 0 else "plenty")
        text.append("\nThe instance uses quota until it is deleted (shut it down when idle).", style="dim")
        return text

    # ---- launching ----------------------------------------------------------------------------
    def _launch(self) -> None:
        p = self.pick
        assert p.image and p.flavor and p.network
        spec = LaunchSpec(
            name=p.name, image=p.image.id, flavor=p.flavor.id, key_name=p.key_name, network=p.network.id,
            volume_size_gb=p.volume_gb,
            delete_volume_on_termination=self.query_one("#delete-on-term", Checkbox).value,
        )
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
