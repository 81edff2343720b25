"""The launch wizard's choices as plain values: the defaults it starts from, each step's check (a problem to
show, or ""), the review's summary and the `LaunchSpec` it launches. No widgets here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from rich.text import Text

from tui.conventions import IMPORT_KEY_PREFIX
from tui.core.cloud.base import CloudError, InvalidInput, LaunchSpec
from tui.core.cloud.launch import MIN_VOLUME_GB, check_name, pick_flavor, pick_image, pick_network
from tui.core.config import LaunchDefaults
from tui.core.models import Flavor, Image, Network, Quota
from tui.ui.messages import LaunchChoices
from tui.ui.widgets.format import leave_ram, mb

T = TypeVar("T")


@dataclass
class Pick:
    """The wizard's current choices."""

    name: str = ""
    image: Image | None = None
    flavor: Flavor | None = None
    volume_gb: int = 16
    key_name: str = ""
    network: Network | None = None


def _default(pick: Callable[[], T], fallback: list[T]) -> T | None:
    """The core's choice (profile, else the guide's default), else the first offered."""
    try:
        return pick()
    except CloudError:
        return fallback[0] if fallback else None


def first_pick(choices: LaunchChoices, defaults: LaunchDefaults) -> Pick:
    """What the wizard starts with: the profile's defaults where the cloud offers them."""
    return Pick(
        image=_default(lambda: pick_image(choices.images, defaults.image), choices.images),
        flavor=_default(lambda: pick_flavor(choices.flavors, choices.quota, 0, defaults.flavor), []),
        volume_gb=defaults.volume_size_gb,
        key_name=next((k.name for k in choices.keypairs if k.name == defaults.key_name), ""),
        network=_default(lambda: pick_network(choices.networks, defaults.network), choices.networks),
    )


# ---- per-step checks: return a problem or "" -------------------------------------------------------
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


def image_problem(image: Image | None) -> str:
    """Why the image step cannot go on; "" when it can."""
    if image is None:
        return "No image to choose — the project has no images; ask your cloud's support."
    return ""


def flavor_problem(flavor: Flavor | None, quota: Quota) -> str:
    """Why `flavor` cannot be launched (none chosen, or it does not fit the quota); "" when it can."""
    if flavor is None:
        return "Choose a flavor."
    reasons = quota.misfit(flavor)
    if reasons:
        return (f"{flavor.name} does not fit your quota: {'; '.join(reasons)}. "
                "Pick a smaller one, or ask for more quota.")
    return ""


def volume_problem(raw: str, image: Image | None, quota: Quota) -> str:
    """Why `raw` GB cannot be the boot volume's size (not a number, below the image's or the guide's minimum,
    over the quota); "" when it can."""
    try:
        size = int(raw)
    except ValueError:
        return "The boot volume size is a whole number of GB, e.g. 16."
    minimum = max(MIN_VOLUME_GB, image.min_disk_gb if image else 0)
    if size < minimum:
        return f"{size} GB is too small: use at least {minimum} GB (the guide recommends 16 GB or more)."
    free = quota.gigabytes_free
    if size > free:
        return f"{size} GB is more than your volume quota has left ({free} GB)."
    return ""


def network_problem(network: Network | None) -> str:
    """Why the network step cannot go on; "" when it can."""
    if network is None:
        return "This project has no network; create one or ask your cloud's support."
    return ""


# ---- review and launch ------------------------------------------------------------------------------
def key_label(key_name: str) -> str:
    """The key pair as the review names it ("" is the app's own)."""
    if not key_name:
        return "cades-tui's own (imported if needed)"
    if key_name.startswith(IMPORT_KEY_PREFIX):
        return f"import {key_name[len(IMPORT_KEY_PREFIX):]}"
    return key_name


def summary(p: Pick, q: Quota) -> Text:
    """The review: every choice, and what the quota has left after the launch."""
    assert p.image and p.flavor and p.network
    text = Text()
    for label, value in (("Name", p.name), ("Image", p.image.name),
                         ("Flavor", f"{p.flavor.name} — {p.flavor.vcpus} vCPU, {mb(p.flavor.ram_mb)} RAM"),
                         ("Boot volume", f"{p.volume_gb} GB"),
                         ("Key pair", key_label(p.key_name)),
                         ("Network", p.network.name)):
        text.append(f"{label:<12}", style="dim")
        text.append(f"{value}\n", style="bold")
    text.append("\nAfter launch your quota has left: ", style="dim")
    text.append(f"{leave_ram(q.ram_mb_free - p.flavor.ram_mb)} RAM, {q.cores_free - p.flavor.vcpus} cores"
                if q.ram_mb_limit >= 0 and q.cores_limit >= 0 else "plenty")
    text.append("\nThe instance uses quota until it is deleted (shut it down when idle).", style="dim")
    return text


def launch_spec(p: Pick, delete_volume_on_termination: bool) -> LaunchSpec:
    """The spec the wizard's choices launch."""
    assert p.image and p.flavor and p.network
    return LaunchSpec(
        name=p.name, image=p.image.id, flavor=p.flavor.id, key_name=p.key_name, network=p.network.id,
        volume_size_gb=p.volume_gb, delete_volume_on_termination=delete_volume_on_termination,
    )
