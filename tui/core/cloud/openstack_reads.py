"""The reads of `OpenStackCloud`: instances (as Nova's JSON, `tui.core.cloud.rest`), flavors, images, networks,
key pairs, volumes, the quota and the console log; and the token cache kept current after each listing.
"""

from __future__ import annotations

import contextlib

from tui.core.cloud import authcache, rest
from tui.core.cloud.openstack_base import OpenStackBase, auth_token
from tui.core.cloud.openstack_convert import to_flavor, to_image, to_instance, to_keypair, to_network
from tui.core.cloud.openstack_errors import translate_errors
from tui.core.models import Flavor, Image, Instance, Keypair, Network, Quota, Volume


class OpenStackReads(OpenStackBase):
    """What the app polls and the CLI lists. Nothing here changes the cloud."""

    name: str  # the clouds.yaml entry
    clouds_yaml: str | None  # the clouds.yaml named by the profile (None: the usual lookup)
    watch: rest.ServerWatch
    _cached_token: str | None  # the token in the cache file (tui.core.cloud.authcache)
    _endpoints_noted: bool

    def list_instances(self) -> list[Instance]:
        """All servers, read as plain JSON and paged by Nova's `next` links.

        openstacksdk's Server resources cost ~7 ms each to build (7 s for 1,000 servers); the JSON is the same
        data, so the hot path (polling, `cades-tui list`) skips them."""
        with translate_errors("listing instances"):
            servers = rest.servers(self._json)
        self._note_cache()
        return [to_instance(s) for s in servers]

    def watch_instances(self, full: bool = False) -> tuple[list[Instance], bool]:
        """Every instance, and whether any changed since the last call — between full listings only the servers
        Nova says changed (`changes-since`) are read (`rest.ServerWatch`)."""
        with translate_errors("listing instances"):
            found = self.watch.instances(self._json, full)
        self._note_cache()
        return found

    def list_flavors(self) -> list[Flavor]:
        with translate_errors("listing flavors"):
            flavors = [to_flavor(f) for f in self.conn.compute.flavors(details=True)]
        return sorted(flavors, key=lambda f: (f.family.value, f.vcpus, f.ram_mb, f.name))

    def list_images(self) -> list[Image]:
        with translate_errors("listing images"):
            project = self.conn.current_project_id or ""
            images = [to_image(i, project) for i in self.conn.image.images()]
        return sorted(images, key=lambda i: i.name)

    def list_networks(self) -> list[Network]:
        with translate_errors("listing networks"):
            return [to_network(n) for n in self.conn.network.networks()]

    def list_keypairs(self) -> list[Keypair]:
        with translate_errors("listing key pairs"):
            return [to_keypair(k) for k in self.conn.compute.keypairs()]

    def list_volumes(self) -> list[Volume]:
        with translate_errors("listing volumes"):
            return rest.volumes(self._json)

    def get_quota(self) -> Quota:
        """Nova's and Cinder's absolute limits, as JSON (an old Cinder without /limits: counted from the volumes)."""
        with translate_errors("reading the quota"):
            return rest.quota(self._json)

    def console_log(self, name_or_id: str, lines: int | None = None) -> str:
        server = self._server(name_or_id)
        with translate_errors(f"reading the console log of '{server.name}'"):
            out = self.conn.compute.get_server_console_output(server.id, length=lines)
        return str(out.get("output", ""))

    def _note_cache(self) -> None:
        """After a read: keep the token cache current (keystoneauth may have re-authenticated, say after a 401
        on a revoked token) and record the endpoints the app's first listing goes straight to."""
        token = auth_token(self.conn)
        if token != self._cached_token:
            authcache.remember(self.conn, self.name, self.clouds_yaml, self._cached_token)
            self._cached_token, self._endpoints_noted = token, False
        if not self._endpoints_noted:
            self._endpoints_noted = True
            with contextlib.suppress(Exception):  # a cloud without a block-storage service: the cache does without
                for service in ("compute", "block_storage"):
                    authcache.note_endpoint(self.name, self.clouds_yaml, service,
                                            getattr(self.conn, service).get_endpoint())
