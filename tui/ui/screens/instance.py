"""Screens about one instance: resize (pick a flavor, then confirm/revert), console log, details."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Log, OptionList, Static
from textual.widgets.option_list import Option

from tui.core.live import InstanceLive
from tui.core.models import Flavor, Instance, Quota, Volume
from tui.core.units import left
from tui.ui.widgets.format import ago, duration, mb, short_age, status_text, volume_label


def resize_misfit(instance: Instance, flavor: Flavor, quota: Quota) -> list[str]:
    """Why resizing `instance` to `flavor` does not fit the quota: only the growth counts."""
    reasons = []
    more_ram = flavor.ram_mb - instance.ram_mb
    more_cores = flavor.vcpus - instance.vcpus
    if more_ram > quota.ram_mb_free:
        reasons.append(f"needs {mb(more_ram)} more RAM, {left(quota.ram_mb_free, mb(quota.ram_mb_free))}")
    if more_cores > quota.cores_free:
        reasons.append(f"needs {more_cores} more cores, {left(quota.cores_free)}")
    return reasons


class PickFlavor(ModalScreen[Flavor | None]):
    """Choose the flavor to resize to; the current one and those that do not fit are refused with numbers."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="resize.cancel")]

    def __init__(self, instance: Instance, flavors: list[Flavor], quota: Quota) -> None:
        super().__init__(classes="dialog-screen")
        self.instance = instance
        self.flavors = sorted(flavors, key=lambda f: (f.family.value, f.ram_mb, f.vcpus))
        self.quota = quota

    def compose(self) -> ComposeResult:
        inst = self.instance
        with Vertical(classes="dialog"):
            yield Label(Text.assemble("Resize ", (inst.name, "bold"), f" (now {inst.flavor_name})"),
                        classes="dialog-title")
            yield Static("Smaller when idle saves quota for others; bigger when you need it. The instance "
                         "restarts; you then confirm the new size or revert.", classes="advice")
            yield OptionList(*[Option(self._label(f), id=f.id) for f in self.flavors], id="flavor")
            yield Static("", id="pick-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Resize", id="confirm", variant="warning")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = 0 if options.option_count else None
        options.focus()

    def _label(self, f: Flavor) -> Text:
        text = Text()
        text.append(f"{f.name:<12}", style="bold")
        text.append(f"{f.vcpus:>3} vCPU {mb(f.ram_mb):>8}  ")
        if f.id == self.instance.flavor_id or f.name == self.instance.flavor_name:
            text.append("current", style="cyan")
        elif reasons := resize_misfit(self.instance, f, self.quota):
            text.append("✗ " + "; ".join(reasons), style="red")
        else:
            text.append(f.hint.split(":")[0], style="dim")
        return text

    def _choose(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return
        chosen = options.get_option_at_index(options.highlighted).id
        flavor = next(f for f in self.flavors if f.id == chosen)
        error = self.query_one("#pick-error", Static)
        if flavor.id == self.instance.flavor_id or flavor.name == self.instance.flavor_name:
            error.update(Text(f"{self.instance.name} already has {flavor.name}.", style="bold red"))
        elif reasons := resize_misfit(self.instance, flavor, self.quota):
            error.update(Text(f"{flavor.name} does not fit your quota: {'; '.join(reasons)}.", style="bold red"))
        else:
            self.dismiss(flavor)

    @on(OptionList.OptionSelected)
    def _selected(self) -> None:
        self._choose()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self._choose()
        else:
            self.dismiss(None)


class VerifyResize(ModalScreen[str | None]):
    """The cloud says VERIFY_RESIZE: keep the new size ("confirm"), go back ("revert") or decide later (None)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Later", id="verify.later")]

    def __init__(self, instance: Instance) -> None:
        super().__init__(classes="dialog-screen")
        self.instance = instance

    def compose(self) -> ComposeResult:
        inst = self.instance
        with Vertical(classes="dialog"):
            yield Label(Text.assemble("Keep the new size of ", (inst.name, "bold"), "?"), classes="dialog-title")
            yield Static(f"{inst.name} now runs as {inst.flavor_name} and waits for your decision "
                         "(VERIFY_RESIZE). Check it works, then keep the new size — or revert to the old "
                         "flavor. Until you decide, both sizes count against your quota.", classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Later", id="later")
                yield Button("Revert", id="revert", variant="warning")
                yield Button("Keep new size", id="confirm", variant="success")

    def on_mount(self) -> None:
        self.query_one("#later", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "later" else event.button.id)


class ConsoleScreen(ModalScreen[None]):
    """The instance's console log (cloud-init output, SSH host key fingerprints)."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close", id="console.close")]

    def __init__(self, instance: Instance, text: str) -> None:
        super().__init__(classes="dialog-screen")
        self.instance = instance
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(Text.assemble("Console log of ", (self.instance.name, "bold")), classes="dialog-title")
            yield Log(id="console", highlight=False)
            yield Label("[dim]escape closes[/dim]")

    def on_mount(self) -> None:
        log = self.query_one(Log)
        log.write_lines(self.text.splitlines() or ["(the console log is empty)"])
        log.focus()


def live_rows(live: InstanceLive | None, now: datetime) -> list[tuple[str, str]]:
    """Jupyter, load and memory, and each tunnel with its bytes: the Instances and Tunnels panes' cells in full."""
    from tui.core.events import Metrics

    if live is None:
        return []
    j = live.jupyter
    jupyter = "not started by cades-tui" if j is None else j.state + (
        f" on VM port {j.remote_port}" if j.remote_port else "") + (f" — {j.public_url}" if j.public_url else "")
    m = live.signal(Metrics)
    load = (f"{m.load1:.2f} load per vCPU (1 min), {m.mem_used_pct:.0f}% memory in use" if m is not None
            else "not read yet (read once the VM answers SSH with a known host key)")
    rows = [("Jupyter", jupyter), ("Load·Mem", load)]
    if live.ssh:
        rows.append(("SSH", live.ssh + (f": {live.ssh_error}" if live.ssh_error else "")))
    for t in live.tunnels:
        rows.append((f"Tunnel {t.purpose}",
                     f"127.0.0.1:{t.local_port} → {t.remote_host}:{t.remote_port}, {t.state.value}"
                     f"{' (' + t.error + ')' if t.error else ''}, for {short_age(t.since, now)}, "
                     f"↓{natural_size(t.bytes_in)} ↑{natural_size(t.bytes_out)}"))
    return rows


def natural_size(n: int) -> str:
    import humanize

    return str(humanize.naturalsize(n, gnu=True))


class DetailsScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close", id="details.close")]

    def __init__(self, instance: Instance, image_name: str, volumes: list[Volume], now: datetime,
                 live: InstanceLive | None = None, cost: str = "") -> None:
        """`live`: what the app knows of it besides the cloud (Jupyter, load, tunnels): every column of the
        Instances table — some hidden or cut in a narrow pane — is here in full. `cost`: its rate, share of the
        burn rate and savings by the profile's cost model ("" without one)."""
        super().__init__(classes="dialog-screen")
        self.instance = instance
        self.image_name = image_name
        self.volumes = volumes
        self.now = now
        self.live = live
        self.cost = cost

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Label(Text.assemble((self.instance.name, "bold"), "  ",
                                      status_text(self.instance.status, self.instance.task_state)),
                        classes="dialog-title")
            yield Static(self._body(), id="details-body")
            yield Label("[dim]escape closes[/dim]")

    def _body(self) -> Text:
        i = self.instance
        rows: list[tuple[str, str]] = [
            ("Flavor", f"{i.flavor_name} — {i.vcpus} vCPU, {mb(i.ram_mb)} RAM"),
            ("Image", self.image_name or i.image_id or "on its boot volume"),
            ("Key pair", i.key_name or "none"),
            ("Addresses", ", ".join(f"{a.addr} ({a.kind}, {a.network})" for a in i.addresses) or "none yet"),
            ("SSH", f"{i.ssh_user or 'ubuntu'}@{i.ip or '?'} port {i.ssh_port}"),
            ("Created", ago(i.created_at, self.now) or "unknown"),
            ("Uptime", duration(i.uptime_seconds(self.now))),
        ]
        vols = [f"{volume_label(v)} {v.size_gb} GB{' (boot)' if v.bootable else ''}"
                f"{' on ' + v.device if v.device else ''}" for v in self.volumes]
        rows.append(("Volumes", ", ".join(vols) or "none"))
        rows += live_rows(self.live, self.now)
        if self.cost:
            rows.append(("Cost", self.cost))
        if i.fault:
            rows.append(("Fault", i.fault))
        text = Text()
        pad = max(11, *(len(label) + 2 for label, _ in rows))
        for label, value in rows:
            text.append(f"{label:<{pad}}", style="dim")
            text.append(f"{value}\n")
        return text
