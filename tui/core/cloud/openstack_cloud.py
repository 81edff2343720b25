"""`Cloud` implemented with openstacksdk.

openstacksdk is imported lazily (it costs ~0.6 s): building an `OpenStackCloud` is the first moment it loads,
and the app does that in a thread worker after its first frame. Every method blocks.

The pitfalls of DESIGN.md §4 are handled deliberately here:
- launch always passes an explicit network (openstacksdk would send ``networks: "auto"``);
- the boot volume's lifetime is a choice (`LaunchSpec.delete_volume_on_termination`), reported to the user;
- after create the server is fetched again for its address;
- resize takes the flavor *id*.

`OpenStackCloud` is put together from parts, each a module of its own:
- `openstack_base`: the connection, raw JSON reads, finding servers and volumes, waiting for a status;
- `openstack_reads`: the listings, the quota and the console log (and the token cache kept current);
- `openstack_servers`: launch, resize, stop, start, reboot, delete;
- `openstack_volumes`: create, attach, detach, delete volumes;
- `openstack_access`: key pairs and security groups;
- `openstack_convert`: what the cloud answers as our models; `openstack_errors`: its exceptions as CloudErrors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui.core.cloud import authcache, rest
from tui.core.cloud.openstack_access import OpenStackAccess
from tui.core.cloud.openstack_base import auth_token
from tui.core.cloud.openstack_convert import to_instance
from tui.core.cloud.openstack_errors import no_such_cloud, translate_errors
from tui.core.cloud.openstack_reads import OpenStackReads
from tui.core.cloud.openstack_servers import OpenStackServers
from tui.core.cloud.openstack_volumes import OpenStackVolumes
from tui.core.models import Instance

POLL_S = 1.0  # between two polls of a status; read at each poll (tests shorten it)
API_TIMEOUT_S = 30.0  # per HTTP request, unless clouds.yaml sets api_timeout


class OpenStackCloud(OpenStackReads, OpenStackServers, OpenStackVolumes, OpenStackAccess):
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
                    api_timeout: float = API_TIMEOUT_S) -> OpenStackCloud:
        """Connect to the clouds.yaml entry `cloud` (from `clouds_yaml` when given, else the usual lookup)."""
        with translate_errors(f"connecting to cloud '{cloud}'"):
            import openstack.config
            import openstack.connection

            files = [str(Path(clouds_yaml).expanduser())] if clouds_yaml else None
            loader = openstack.config.OpenStackConfig(config_files=files)
            try:
                config = loader.get_one(cloud=cloud)
                if not config.config.get("api_timeout"):  # a stuck API call must end (clouds.yaml may set it)
                    config.config["api_timeout"] = api_timeout
            except openstack.exceptions.ConfigException as exc:
                raise no_such_cloud(cloud, loader, exc, files) from None
            conn = openstack.connection.Connection(config=config, app_name="cades-tui")
            profile = str(Path(clouds_yaml).expanduser()) if clouds_yaml else None
            restored = authcache.restore(conn, cloud, profile)  # a token still good: no keystone round trip
            conn.authorize()  # fail now, with a clear message, rather than on the first poll
            authcache.remember(conn, cloud, profile, restored)
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
