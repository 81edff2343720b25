"""Turn what the user asked for (flags, wizard, profile) into a checked `LaunchSpec` — before any API call.

The choices follow the guide: Ubuntu, a boot volume of 16 GB or more, `m1.*` when memory matters and `c1.*`
for many small parallel jobs, and nothing that the remaining quota cannot hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tui.core.cloud.base import InvalidInput, LaunchSpec, NotFound, QuotaExceeded
from tui.core.config import MIN_VOLUME_GB as MIN_VOLUME_GB
from tui.core.hints import command
from tui.core.models import Family, Flavor, Image, Network, Quota
from tui.core.units import left, ram

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
RECOMMENDED_VOLUME_GB = MIN_VOLUME_GB  # the guide's boot volume: 16 GB or more; smaller is refused


def check_name(name: str, kind: str = "instance") -> str:
    """The instance (or volume) name, or InvalidInput saying why it cannot be used."""
    if not NAME_RE.match(name):
        raise InvalidInput(
            f"{kind} name {name!r} is not allowed",
            "use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit "
            "(no spaces or shell characters)",
        )
    return name


def check_volume_name(name: str) -> str:
    return check_name(name, "volume")


def check_volume_size(size_gb: int) -> int:
    """A boot volume size the guide's setup fits on, or InvalidInput saying why not."""
    if size_gb < MIN_VOLUME_GB:
        raise InvalidInput(f"boot volume of {size_gb} GB is too small: the guide asks for at least {MIN_VOLUME_GB} GB "
                           "(Ubuntu, Python and Jupyter, and room for your work)",
                           f"use --volume-size {MIN_VOLUME_GB} or more, or leave it out for {MIN_VOLUME_GB} GB")
    return size_gb


def no_flavor_fits(flavors: list[Flavor], quota: Quota, volume_gb: int) -> QuotaExceeded:
    """Why no flavor fits, naming the quota that is short, with numbers."""
    if volume_gb > quota.gigabytes_free:
        free = quota.gigabytes_free
        fix = (f"use --volume-size {free} or less, or " if free >= MIN_VOLUME_GB else "") + \
            f"delete volumes you no longer need (`{command('volume', 'list')}`), or ask for more volume quota"
        return QuotaExceeded(f"a {volume_gb} GB boot volume does not fit the volume quota (gigabytes): "
                             f"{quota.gigabytes_used} of {quota.gigabytes_limit} GB used, {left(free, f'{free} GB')}",
                             fix)
    if quota.instances_free < 1:
        return QuotaExceeded(f"the instance quota is used up ({quota.instances_used} of {quota.instances_limit})",
                             "delete an instance you no longer need, or ask for more quota")
    smallest = min(flavors, key=lambda f: (f.ram_mb, f.vcpus, f.name), default=None)
    why = f": the smallest, {smallest.name}, " + "; ".join(quota.misfit(smallest, volume_gb)) if smallest else ""
    return QuotaExceeded(f"no flavor fits the remaining quota{why}",
                         "stop or delete an instance, resize one down, or ask for more quota")


def _version_key(image: Image) -> tuple[float, ...]:
    numbers = re.findall(r"\d+(?:\.\d+)?", image.os_version or image.name)
    return tuple(float(n) for n in numbers) or (0.0,)


def is_ubuntu(image: Image) -> bool:
    return "ubuntu" in (image.os_distro or image.name).lower()


def pick_image(images: list[Image], wanted: str = "") -> Image:
    usable = [i for i in images if i.status.lower() == "active"]
    if wanted:
        for image in usable:
            if wanted in (image.id, image.name):
                return image
        names = ", ".join(i.name for i in usable) or "none"
        raise NotFound(f"image {wanted!r} not found", f"available images: {names}")
    ubuntu = [i for i in usable if is_ubuntu(i) and not i.own] or [i for i in usable if is_ubuntu(i)]  # the cloud's
    if not ubuntu:
        raise NotFound("no Ubuntu image on this cloud", "name an image with --image")
    return max(ubuntu, key=_version_key)


def pick_flavor(flavors: list[Flavor], quota: Quota, volume_gb: int, wanted: str = "") -> Flavor:
    if wanted:
        for flavor in flavors:
            if wanted in (flavor.id, flavor.name):
                reasons = quota.misfit(flavor, volume_gb)
                if reasons:
                    raise QuotaExceeded(f"flavor {flavor.name} does not fit the remaining quota: " + "; ".join(reasons),
                                        "pick a smaller flavor, free resources, or ask for more quota")
                return flavor
        names = ", ".join(f.name for f in flavors) or "none"
        raise NotFound(f"flavor {wanted!r} not found", f"available flavors: {names}")
    fitting = [f for f in flavors if f.family is Family.MEMORY and quota.fits(f, volume_gb)]
    fitting = fitting or [f for f in flavors if quota.fits(f, volume_gb)]
    if not fitting:
        raise no_flavor_fits(flavors, quota, volume_gb)
    return min(fitting, key=lambda f: (f.ram_mb, f.vcpus, f.name))


def pick_network(networks: list[Network], wanted: str = "") -> Network:
    if wanted:
        for net in networks:
            if wanted in (net.id, net.name):
                return net
        raise NotFound(f"network {wanted!r} not found",
                       "available networks: " + (", ".join(n.name for n in networks) or "none"))
    internal = [n for n in networks if not n.external]
    if not internal:
        raise NotFound("the project has no network to attach the instance to", "create one, or name one with --network")
    return internal[0]


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    spec: LaunchSpec
    flavor: Flavor
    image: Image
    network: Network
    notes: tuple[str, ...] = field(default_factory=tuple)  # what was chosen for the user, and why


def plan_launch(
    name: str,
    *,
    flavors: list[Flavor],
    images: list[Image],
    networks: list[Network],
    quota: Quota,
    key_name: str,
    flavor: str = "",
    image: str = "",
    network: str = "",
    volume_size_gb: int = RECOMMENDED_VOLUME_GB,
    delete_volume_on_termination: bool = False,
) -> LaunchPlan:
    """Check everything that can be checked locally and fill in the guide's defaults."""
    check_name(name)
    notes: list[str] = []
    check_volume_size(volume_size_gb)
    img = pick_image(images, image)
    if not image:
        notes.append(f"image: {img.name} (the newest Ubuntu)")
    if img.min_disk_gb and volume_size_gb < img.min_disk_gb:
        raise InvalidInput(f"boot volume of {volume_size_gb} GB is smaller than image {img.name} needs "
                           f"({img.min_disk_gb} GB)",
                           f"use --volume-size {max(img.min_disk_gb, RECOMMENDED_VOLUME_GB)}")
    flv = pick_flavor(flavors, quota, volume_size_gb, flavor)
    if not flavor:
        notes.append(f"flavor: {flv.name} ({flv.vcpus} vCPU, {ram(flv.ram_mb)} RAM; the smallest that fits)")
    net = pick_network(networks, network)
    if not network:
        notes.append(f"network: {net.name}")
    spec = LaunchSpec(name=name, image=img.id, flavor=flv.id, key_name=key_name, network=net.id,
                      volume_size_gb=volume_size_gb, delete_volume_on_termination=delete_volume_on_termination)
    return LaunchPlan(spec=spec, flavor=flv, image=img, network=net, notes=tuple(notes))
