"""`Cloud` implemented with openstacksdk.

openstacksdk is imported lazily (it costs ~0.6 s): building an `OpenStackCloud` is the first moment it loads,
and the app does that in a thread worker after its first frame. Every method blocks.

openstacksdk's pitfalls, each handled deliberately here:
- without a network, `create_server` sends ``networks: "auto"``, which many clouds refuse: launch always passes an
  explicit network;
- a boot volume outlives its server unless told otherwise: its lifetime is a choice
  (`LaunchSpec.delete_volume_on_termination`), reported to the user;
- the server `create_server` returns has no IP address yet: it is fetched again for its address;
- `compute.resize_server` takes a flavor *id*, not a name.

`OpenStackCloud` is put together from parts, each a module of its own:
- `openstack_base`: the connection, raw JSON reads, finding servers and volumes, waiting for a status;
- `openstack_reads`: the listings, the quota and the console log (and the token cache kept current);
- `openstack_servers`: launch, resize, stop, start, reboot, delete;
- `openstack_shelve`: shelve, shelve offload, unshelve;
- `openstack_volumes`: create, attach, detach, delete volumes;
- `openstack_access`: key pairs and security groups;
- `openstack_images`: images made from servers (createImage), their quota and volume snapshots;
- `openstack_convert`: what the cloud answers as our models; `openstack_errors`: its exceptions as CloudErrors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui.core.cloud import rest, signin
from tui.core.cloud.openstack_access import OpenStackAccess
from tui.core.cloud.openstack_base import auth_token
from tui.core.cloud.openstack_convert import to_instance
from tui.core.cloud.openstack_errors import translate_errors
from tui.core.cloud.openstack_images import OpenStackImages
from tui.core.cloud.openstack_reads import OpenStackReads
from tui.core.cloud.openstack_servers import OpenStackServers
from tui.core.cloud.openstack_shelve import OpenStackShelve
from tui.core.cloud.openstack_volumes import OpenStackVolumes
from tui.core.models import Instance

POLL_S = 1.0  # between two polls of a status; read at each poll (tests shorten it)
API_TIMEOUT_S = 30.0  # per HTTP request, unless clouds.yaml sets api_timeout


class OpenStackCloud(OpenStackReads, OpenStackServers, OpenStackShelve, OpenStackVolumes, OpenStackAccess,
                     OpenStackImages):
    """The real cloud, through openstacksdk."""

    def __init__(self, conn: Any, name: str, clouds_yaml: str | None = None, token: str | None = None) -> None:
        self.conn = conn
        self.name = name
        self.clouds_yaml = clouds_yaml
        self._cached_token = token  # the token in the cache file (tui.core.cloud.authcache)
        self._endpoints_noted = False
        self.answered = None  # the cloud's clock: the HTTP Date of its last answer
        self.watch = rest.ServerWatch(to_instance, lambda: self.answered)

    @classmethod
    def from_config(cls, cloud: str, clouds_yaml: str | Path | None = None,
                    api_timeout: float = API_TIMEOUT_S, ask: signin.Ask | None = None) -> OpenStackCloud:
        """Connect to the clouds.yaml entry `cloud` (from `clouds_yaml` when given, else the usual lookup), with any
        auth type (`tui.core.cloud.signin`); `ask` answers for a password or passcode clouds.yaml does not hold."""
        profile = signin.profile_path(clouds_yaml)
        with translate_errors(f"connecting to cloud '{cloud}'"):
            conn, restored = signin.connect(cloud, profile, api_timeout, ask)
        return cls(conn, cloud, profile, restored or auth_token(conn))

    def _poll_s(self) -> float:
        """POLL_S, read at each poll (tests shorten it)."""
        return POLL_S

    # A launch that did not wait owes its floating IP: the next listing that sees it ACTIVE attaches it.
    def list_instances(self) -> list[Instance]:
        return self.attach_pending_floating_ips(super().list_instances())

    def watch_instances(self, full: bool = False) -> tuple[list[Instance], bool]:
        instances, changed = super().watch_instances(full)
        done = self.attach_pending_floating_ips(instances)
        if done != instances:
            self.watch.known.update({i.id: i for i in done})
            return done, True
        return instances, changed

    def get_instance(self, name_or_id: str) -> Instance:
        return self.attach_pending_floating_ips([super().get_instance(name_or_id)])[0]
