"""Freeze an instance's environment as an image, list the project's images, delete one — for the app and the CLI.

Creating is Nova's createImage: an image-backed server's disk is uploaded to Glance (`queued` → `saving` →
`active`); a volume-backed one (the app's default launch) gets a Cinder snapshot of each volume and an image of
size 0 that maps them. Refused up front, with the numbers: a name the project's images already use, an image
quota (Glance's `image_count_total`) that is full. Deleting the image leaves its volume snapshots unless asked
(Glance never deletes them; they hold the frozen disk). Blocking: call from a thread.

A running instance's secrets (Jupyter's token files, the autostop credential) are taken off its disk before the
snapshot and put back once the cloud has its copy (`tui.core.imagesecrets`); a stopped one is imaged as it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tui.core.cloud.base import Cloud, CloudError, Conflict, InvalidInput, NotFound, QuotaExceeded
from tui.core.hints import command
from tui.core.models import Image, Instance, VolumeSnapshot
from tui.core.units import plural


class HeldSecrets(Protocol):
    """Secrets taken off an instance's disk (`tui.core.imagesecrets.Held`: not imported here — the UI imports
    this module, and that one reaches asyncssh)."""

    def __bool__(self) -> bool: ...
    def close(self) -> None: ...
    def put_back(self, say: Say, captured: bool) -> None: ...


class SecretKeeper(Protocol):
    """What takes them (`tui.core.imagesecrets.SecretsAside`)."""

    def take(self, inst: Instance, say: Say) -> HeldSecrets: ...

Say = Callable[[str], None]
WAIT_S = 1800.0  # a large disk can take many minutes to upload
SNAPSHOT_PREFIX = "snapshot for "  # how Nova names the volume snapshots of createImage


def size(n: int) -> str:
    """Bytes, humanized (binary units)."""
    import humanize

    return str(humanize.naturalsize(n, binary=True, format="%.1f"))


@dataclass(frozen=True, slots=True)
class ImageQuota:
    limit: int  # -1: unlimited
    used: int

    @property
    def full(self) -> bool:
        return 0 <= self.limit <= self.used

    def text(self) -> str:
        return f"{self.used} of {'unlimited' if self.limit < 0 else self.limit} images"


@dataclass(frozen=True, slots=True)
class ImageListing:
    images: tuple[Image, ...]  # the project's own first (newest first), then the others by name
    quota: ImageQuota | None
    snapshots: tuple[VolumeSnapshot, ...] = ()  # those the own images map
    kept: tuple[VolumeSnapshot, ...] = ()  # snapshots createImage made that no image maps any more (they bill)

    def snapshots_of(self, image: Image) -> list[VolumeSnapshot]:
        return [s for s in self.snapshots if s.id in image.snapshot_ids]


@dataclass(frozen=True, slots=True)
class ImageMade:
    image: Image
    instance: Instance
    snapshots: tuple[VolumeSnapshot, ...]
    quota: ImageQuota | None
    seconds: float


@dataclass(frozen=True, slots=True)
class ImageDeletion:
    """What deleting an image loses, said before it happens; `image` None: volume snapshots no image maps."""

    image: Image | None
    snapshots: tuple[VolumeSnapshot, ...]

    def text(self) -> str:
        img = self.image
        if img is None:
            names = ", ".join(f"{s.name} ({s.size_gb} GB)" for s in self.snapshots)
            return f"Delete volume snapshot {names}: no image maps it; the frozen disk it holds is lost for good."
        what = (f"Delete image {img.name} ({size(img.size_bytes)}): its data is lost; servers launched from it "
                "keep their disks, but no new one can start from it.")
        if not self.snapshots:
            return what
        gb = sum(s.size_gb for s in self.snapshots)
        names = ", ".join(f"{s.name} ({s.size_gb} GB, {s.status})" for s in self.snapshots)
        return (f"Delete image {img.name} (volume-backed): no new server can start from it. Its "
                f"{plural(len(self.snapshots), 'volume snapshot')} ({names}; {gb} GB of the volume quota) hold the "
                "frozen disk: kept unless you delete them too, which loses that disk for good.")


def check_image_name(name: str) -> None:
    """Bad input, refused before asking the cloud (exit 2)."""
    if not name.strip():
        raise InvalidInput("--name '': an image needs a name", "e.g. --name my-env-2026-01")
    if len(name) > 255 or any(ord(c) < 32 for c in name):
        raise InvalidInput(f"--name {name[:40]!r}: at most 255 printable characters", "e.g. --name my-env-2026-01")


def secrets_note() -> str:
    """Said before a stopped instance is imaged (the app's dialog shows it too)."""
    return ("Jupyter's token files and the autostop credential on it are included; start it first to leave them "
            "out (the app takes them off a running instance's disk for the snapshot)")


def ordered(images: Sequence[Image]) -> list[Image]:
    """The project's own images first (newest first), then the others by name."""
    own = sorted((i for i in images if i.own), reverse=True,
                 key=lambda i: i.created_at.timestamp() if i.created_at else float("-inf"))
    return [*own, *sorted((i for i in images if not i.own), key=lambda i: i.name)]


class Images:
    """The project's images on `cloud` (see the module docstring)."""

    def __init__(self, cloud: Cloud, poll_s: float = 1.0, secrets: SecretKeeper | None = None) -> None:
        self.cloud = cloud
        self.poll_s = poll_s
        self.secrets = secrets  # None: the disk is imaged as it is

    def quota(self) -> ImageQuota | None:
        got = self.cloud.image_quota()
        return ImageQuota(*got) if got is not None else None

    def listing(self) -> ImageListing:
        images = ordered(self.cloud.list_images())
        mapped = {s for i in images if i.own for s in i.snapshot_ids}
        every = self.cloud.list_snapshots()
        kept = tuple(s for s in every if s.id not in mapped and s.name.startswith(SNAPSHOT_PREFIX))
        return ImageListing(tuple(images), self.quota(), tuple(s for s in every if s.id in mapped), kept)

    def create(self, ref: str, name: str, say: Say, wait: bool = True) -> ImageMade:
        """createImage of instance `ref`, checked first (name, state, quota); waits for `active` when `wait`."""
        check_image_name(name)
        started = time.monotonic()
        inst = self.cloud.get_instance(ref)
        if inst.status not in ("ACTIVE", "SHUTOFF"):
            raise Conflict(f"{inst.name} is {inst.status}: an image is made of an ACTIVE or SHUTOFF instance",
                           f"wait for it, or see `{command('show', inst.name)}`")
        taken = next((i for i in self.cloud.list_images() if i.own and i.name == name), None)
        if taken is not None:
            raise Conflict(f"image name {name!r} is taken by one of this project's images ({taken.status})",
                           f"pick another --name, or delete it: `{command('image', 'delete', name)}`")
        quota = self.quota()
        if quota is not None and quota.full:
            raise QuotaExceeded(f"image quota full: {quota.text()} used",
                                f"delete one (`{command('image', 'list')}`), or ask your cloud for more")
        backed = "volume-backed: Cinder snapshots of its volumes" if not inst.image_id else "its disk is uploaded"
        held = self._take_secrets(inst, say)
        captured = False
        try:
            say(f"Creating image {name} of {inst.name} ({backed})")
            image = self.cloud.create_image(inst.id, name)
            snaps = self._snapshots(image)
            for s in snaps:
                say(f"volume snapshot {s.name} of volume {s.volume_id[:8]} ({s.size_gb} GB): {s.status}")
            if wait or held:  # the secrets go back only once the cloud has copied the disk
                image = self.wait_active(image, say, started)
                snaps = self._wait_snapshots(snaps, say)
                captured = True
        finally:
            if held is not None:
                held.put_back(say, captured)
        return ImageMade(image, inst, tuple(snaps), self.quota(), time.monotonic() - started)

    def _take_secrets(self, inst: Instance, say: Say) -> HeldSecrets | None:
        if inst.status != "ACTIVE":
            say(f"{inst.name} is {inst.status}: its disk is imaged as it is — {secrets_note()}")
            return None
        if self.secrets is None:
            return None
        held = self.secrets.take(inst, say)
        if held:
            return held
        held.close()  # nothing of the kind on it
        return None

    def _snapshots(self, image: Image) -> list[VolumeSnapshot]:
        if not image.snapshot_ids:
            return []
        by_id = {s.id: s for s in self.cloud.list_snapshots()}
        return [by_id[i] for i in image.snapshot_ids if i in by_id]

    def wait_active(self, image: Image, say: Say, started: float | None = None) -> Image:
        """Poll Glance until the image is `active` (each status said, with the time so far)."""
        t0 = time.monotonic() if started is None else started
        last = ""
        while True:
            if image.status != last:
                took = f" after {time.monotonic() - t0:.0f} s" if last else ""
                say(f"image {image.name}: {image.status}{took}"
                    + (f", {size(image.size_bytes)}" if image.status == "active" and image.size_bytes else ""))
                last = image.status
            if image.status == "active":
                return image
            if image.status in ("killed", "deleted", "pending_delete"):
                raise CloudError(f"image {image.name} ended {image.status}: the cloud could not save it",
                                 f"delete it (`{command('image', 'delete', image.id)}`) and try again")
            if time.monotonic() - t0 > WAIT_S:
                raise CloudError(f"image {image.name} not active after {WAIT_S:.0f} s (still {image.status})",
                                 f"it may still finish: see `{command('image', 'list')}`")
            time.sleep(self.poll_s)
            image = self.cloud.get_image(image.id)

    def _wait_snapshots(self, snaps: list[VolumeSnapshot], say: Say) -> list[VolumeSnapshot]:
        deadline = time.monotonic() + WAIT_S
        while snaps and any(s.status != "available" for s in snaps) and time.monotonic() < deadline:
            if any(s.status == "error" for s in snaps):
                raise CloudError("a volume snapshot ended in error: " + ", ".join(s.name for s in snaps
                                                                                  if s.status == "error"))
            time.sleep(self.poll_s)
            by_id = {s.id: s for s in self.cloud.list_snapshots()}
            snaps = [by_id.get(s.id, s) for s in snaps]
        for s in snaps:
            say(f"volume snapshot {s.name}: {s.status}")
        return snaps

    def plan_delete(self, ref: str) -> ImageDeletion:
        """What deleting `ref` loses: an image (and the snapshots it maps), or a kept snapshot no image maps."""
        try:
            image = self.cloud.get_image(ref)
        except NotFound:
            kept = [s for s in self.listing().kept if ref in (s.id, s.name)]
            if len(kept) != 1:
                raise
            return ImageDeletion(None, (kept[0],))
        if not image.own:
            raise Conflict(f"image {image.name} is not this project's ({image.visibility or 'shared'})",
                           "only the project's own images can be deleted here")
        return ImageDeletion(image, tuple(self._snapshots(image)))

    def delete(self, plan: ImageDeletion, delete_snapshots: bool, say: Say) -> list[str]:
        """Delete the image, then (when asked) its volume snapshots. The names of what was deleted."""
        gone = []
        if plan.image is not None:
            try:
                self.cloud.delete_image(plan.image.id)
            except NotFound:
                say(f"image {plan.image.name} was already gone")
            gone.append(plan.image.name)
            say(f"Deleted image {plan.image.name}")
        for s in plan.snapshots:
            if delete_snapshots or plan.image is None:
                self.cloud.delete_snapshot(s.id)
                gone.append(s.name)
                say(f"Deleted volume snapshot {s.name} ({s.size_gb} GB)")
            else:
                say(f"Kept volume snapshot {s.name} ({s.size_gb} GB, id {s.id})")
        return gone

    def frozen(self, head: Instance, name: str, say: Say, make: bool = True) -> Image:
        """The image workers start from: the project's image `name` when there is one, else (`make`) made now
        from `head` and waited for, else NotFound."""
        for image in self.cloud.list_images():
            if image.own and name in (image.name, image.id):
                if image.status != "active":
                    return self.wait_active(image, say)
                say(f"workers start from image {image.name} (made {_when(image)})")
                return image
        if not make:
            raise NotFound(f"image {name!r} is not one of this project's images",
                           f"see `{command('image', 'list')}`, or leave IMAGE out: --from-image alone makes "
                           f"{head.name}'s")
        return self.create(head.id, name, say, wait=True).image


def _when(image: Image) -> str:
    return image.created_at.strftime("%Y-%m-%d %H:%M UTC") if image.created_at else "earlier"
