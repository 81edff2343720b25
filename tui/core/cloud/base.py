"""The cloud interface the app and the CLI program against, and its error family.

`tui.core.cloud.openstack_cloud.OpenStackCloud` implements it with openstacksdk (imported lazily).
Every method blocks: call it from a thread worker, never from the UI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tui.core.models import Flavor, Image, Instance, Keypair, Network, Quota, Volume, VolumeSnapshot


class CloudError(Exception):
    """Any failure talking to the cloud: a message for the user and what to do about it."""

    def __init__(self, message: str, hint: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.status = status

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class AuthError(CloudError):
    """Bad or expired credentials (401)."""


class CloudUnreachable(CloudError):
    """The API cannot be reached (connection refused, DNS, timeout)."""


class NotFound(CloudError):
    """No such instance/flavor/image/volume/key pair."""


class QuotaExceeded(CloudError):
    """The project's quota does not allow it (403/413 from Nova or Cinder)."""


class Conflict(CloudError):
    """The resource is in the wrong state for the action (409)."""


class RateLimited(CloudError):
    """429 Too Many Requests."""


class InvalidInput(CloudError):
    """Refused before any API call: a bad name, size, flavor..."""


class NoCloudConfigured(InvalidInput):
    """No clouds.yaml anywhere: nothing to connect to (the user wants `--demo` or a clouds.yaml)."""


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    name: str
    image: str  # name or id
    flavor: str  # name or id
    key_name: str
    network: str  # name or id; always explicit (openstacksdk would send "auto")
    volume_size_gb: int = 16
    delete_volume_on_termination: bool = False
    security_groups: tuple[str, ...] = ("default",)  # names or ids; Nova's default when empty
    # True: the instance gets a public address (a floating IP from the external network when the cloud has one
    # and Nova gave none), as the Jupyter VM needs. False: private only (a cluster worker), reached through a
    # jump host on its private address (Instance.private_ip).
    public_ip: bool = True


Progress = Callable[[str], None]


class Cloud(Protocol):
    name: str

    def list_instances(self) -> list[Instance]: ...
    def get_instance(self, name_or_id: str) -> Instance: ...
    def list_flavors(self) -> list[Flavor]: ...
    def list_images(self) -> list[Image]: ...
    def list_networks(self) -> list[Network]: ...
    def list_keypairs(self) -> list[Keypair]: ...
    def list_volumes(self) -> list[Volume]: ...
    def get_quota(self) -> Quota: ...

    def launch(self, spec: LaunchSpec, progress: Progress | None = None, wait: bool = True) -> Instance: ...
    def resize(self, name_or_id: str, flavor: str, wait: bool = True) -> Instance: ...
    def confirm_resize(self, name_or_id: str) -> Instance: ...
    def revert_resize(self, name_or_id: str) -> Instance: ...
    def stop(self, name_or_id: str, wait: bool = True) -> Instance: ...
    def start(self, name_or_id: str, wait: bool = True) -> Instance: ...
    def reboot(self, name_or_id: str, wait: bool = True) -> Instance: ...
    def delete(self, name_or_id: str, delete_volumes: bool = False, wait: bool = True) -> None: ...
    def console_log(self, name_or_id: str, lines: int | None = None) -> str: ...

    def import_keypair(self, name: str, public_key: str) -> Keypair: ...
    def delete_keypair(self, name: str) -> None: ...
    def create_volume(self, name: str, size_gb: int) -> Volume: ...
    def attach_volume(self, server: str, volume: str) -> Volume: ...
    def detach_volume(self, volume: str) -> Volume: ...
    def delete_volume(self, volume: str) -> None: ...
    def ensure_ssh_rule(self, security_group: str = "default") -> bool: ...
    def create_cluster_security_group(self, name: str) -> str: ...
    def list_security_groups(self) -> list[str]: ...
    def delete_security_group(self, name_or_id: str) -> bool: ...
    def add_security_group(self, server: str, group: str) -> None: ...
    def remove_security_group(self, server: str, group: str) -> None: ...
    def boot_image(self, server: str) -> str: ...

    # images made from servers (tui.core.images)
    def create_image(self, server: str, name: str) -> Image: ...
    def get_image(self, name_or_id: str) -> Image: ...
    def delete_image(self, image_id: str) -> None: ...
    def image_quota(self) -> tuple[int, int] | None: ...
    def list_snapshots(self) -> list[VolumeSnapshot]: ...
    def delete_snapshot(self, snapshot_id: str, wait: bool = True) -> None: ...
