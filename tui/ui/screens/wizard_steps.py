"""The launch wizard's steps as widgets: each step's advice and its input or list of choices, and how a choice
is labelled. The wizard (wizard.py) switches between them and checks what they hold."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ContentSwitcher, Input, Log, OptionList, Static
from textual.widgets.option_list import Option

from tui.conventions import IMPORT_KEY_PREFIX
from tui.core.images import ordered
from tui.core.models import Flavor, Image, Keypair, Network, Quota
from tui.ui.messages import LaunchChoices
from tui.ui.widgets.format import mb
from tui.ui.widgets.tick import Tick

APP_KEY_OPTION = "<app-key>"  # the key step's option for the app's own key pair (LaunchSpec.key_name "")


def steps(choices: LaunchChoices, public_keys: list[Path], volume_gb: int, delete_on_term: bool) -> ComposeResult:
    """Every step in a switcher (`#steps`), one `#step-<name>` each; the name step shows first."""
    c = choices
    with ContentSwitcher(initial="step-name", id="steps"):
        with Vertical(id="step-name", classes="step"):
            yield Static("A short name you will recognise in lists and in your SSH config.",
                         classes="advice")
            yield Input(placeholder="e.g. analytics-1", id="name", max_length=63)
        with Vertical(id="step-image", classes="step"):
            yield Static("Choose Ubuntu, as the guide does: the setup steps assume it. Your own images come first "
                         "(a frozen environment: setup skips what it already has).", classes="advice")
            yield OptionList(*[Option(image_label(i), id=i.id) for i in ordered(c.images)], id="image")
        with Vertical(id="step-flavor", classes="step"):
            yield Static(
                "[b]m1.*[/b] when memory matters (statistics, large data in RAM); "
                "[b]c1.*[/b] for many small parallel jobs. You can resize later. "
                "[red]✗[/red] = does not fit what is left of your quota.", classes="advice")
            yield OptionList(*[Option(flavor_label(f, c.quota), id=f.id) for f in sorted_flavors(c.flavors)],
                             id="flavor")
        with Vertical(id="step-volume", classes="step"):
            yield Static(volume_advice(c.quota), classes="advice")
            yield Input(str(volume_gb), type="integer", id="volume")
        with Vertical(id="step-key", classes="step"):
            yield Static("The key pair whose public key is put on the instance; you log in with its "
                         "private key.", classes="advice")
            yield OptionList(*key_options(c.keypairs, public_keys), id="key")
        with Vertical(id="step-network", classes="step"):
            yield Static("The instance's network. It is always named explicitly (some clouds refuse "
                         "\"auto\").", classes="advice")
            yield OptionList(*[Option(network_label(n), id=n.id) for n in c.networks], id="network")
        with Vertical(id="step-review", classes="step"):
            yield Static("", id="summary")
            yield Tick("Delete the boot volume when the instance is deleted", delete_on_term,
                           id="delete-on-term")
        with Vertical(id="step-progress", classes="step"):
            yield Log(id="progress", max_lines=200)


# ---- labels -----------------------------------------------------------------------------------------
def sorted_flavors(flavors: list[Flavor]) -> list[Flavor]:
    """Flavors by family, then size."""
    return sorted(flavors, key=lambda f: (f.family.value, f.ram_mb, f.vcpus))


def image_label(img: Image) -> Text:
    text = Text(img.name, style="bold")
    if img.own:
        made = f", made {img.created_at:%Y-%m-%d}" if img.created_at else ""
        text.append(f"  your image{made}", style="green")
    if img.min_disk_gb:
        text.append(f"  needs ≥ {img.min_disk_gb} GB disk", style="dim")
    if img.status.lower() != "active":
        text.append(f"  ({img.status})", style="yellow")
    return text


def flavor_label(f: Flavor, quota: Quota) -> Text:
    """One line: name, size, then ✓ and its use, or ✗ and why it does not fit the quota."""
    reasons = quota.misfit(f)
    text = Text()
    text.append(f"{f.name:<12}", style="dim" if reasons else "bold")
    text.append(f"{f.vcpus:>3} vCPU {mb(f.ram_mb):>8}  ")
    if reasons:
        text.append("✗ " + "; ".join(reasons), style="red")
    else:
        text.append("✓ ", style="green")
        text.append(f.hint.split(":")[0], style="dim")
    return text


def network_label(n: Network) -> Text:
    text = Text(n.name, style="bold")
    if n.external:
        text.append("  external (provider) network", style="dim")
    return text


def key_options(keypairs: list[Keypair], public_keys: list[Path]) -> list[Option]:
    """The app's own key pair, the project's key pairs, then the user's public keys to import."""
    return [
        Option(Text.assemble(("cades-tui's own key pair", "bold"),
                             ("  made for you once; its private key stays in the app's data dir", "dim")),
               id=APP_KEY_OPTION),
        *[Option(Text.assemble((k.name, "bold"), "  ", (k.fingerprint, "dim")), id=k.name) for k in keypairs],
        *[Option(Text.assemble(("Import ", "bold"), (str(pub), "bold"),
                               ("  your own public key, as a new key pair", "dim")),
                 id=IMPORT_KEY_PREFIX + str(pub)) for pub in public_keys],
    ]


def volume_advice(q: Quota) -> str:
    left = "unlimited" if q.gigabytes_limit < 0 else f"{q.gigabytes_free} GB left of {q.gigabytes_limit} GB"
    return ("Size of the boot volume: it holds the OS, Python packages and your data. The guide "
            "recommends 16 GB or more (8 GB works but fills up fast); adding a volume later is more work. "
            f"It uses your volume quota ({left}).")
