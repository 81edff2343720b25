"""Nova v2.1's route table: which handler (flavors, keypairs, servers, actions, attachments) serves which URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.sandbox import actions, attachments, flavors, keypairs, servers
from tui.sandbox.router import Route, Router, mount

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox

BASE = r"/compute/v2\.1"
SERVER = BASE + r"/servers/(?P<id>[^/]+)"

ROUTES: list[Route] = [
    Route("GET", r"/compute", flavors.versions, auth=False),
    Route("GET", BASE, flavors.version, auth=False),
    Route("GET", BASE + r"/flavors(?:/detail)?", flavors.list_flavors),
    Route("GET", BASE + r"/flavors/(?P<fid>[^/]+)", flavors.show_flavor),
    Route("GET", BASE + r"/flavors/(?P<fid>[^/]+)/os-extra_specs", flavors.flavor_specs),
    Route("GET", BASE + r"/limits", flavors.limits),
    Route("GET", BASE + r"/os-availability-zone(?:/detail)?", flavors.zones),
    Route("GET", BASE + r"/os-keypairs", keypairs.list_keypairs),
    Route("POST", BASE + r"/os-keypairs", keypairs.create_keypair),
    Route("GET", BASE + r"/os-keypairs/(?P<name>[^/]+)", keypairs.show_keypair),
    Route("DELETE", BASE + r"/os-keypairs/(?P<name>[^/]+)", keypairs.delete_keypair),
    Route("GET", BASE + r"/servers(?:/detail)?", servers.list_servers),
    Route("POST", BASE + r"/servers", servers.post_server),
    Route("GET", SERVER, servers.show_server),
    Route("DELETE", SERVER, servers.delete_server),
    Route("POST", SERVER + r"/action", actions.action),
    Route("GET", SERVER + r"/metadata", servers.get_metadata),
    Route("POST", SERVER + r"/metadata", servers.set_metadata),
    Route("PUT", SERVER + r"/metadata", servers.set_metadata),
    Route("DELETE", SERVER + r"/metadata/(?P<key>[^/]+)", servers.delete_metadata),
    Route("GET", SERVER + r"/os-volume_attachments", attachments.list_attachments),
    Route("POST", SERVER + r"/os-volume_attachments", attachments.attach),
    Route("GET", SERVER + r"/os-volume_attachments/(?P<vid>[^/]+)", attachments.show_attachment),
    Route("DELETE", SERVER + r"/os-volume_attachments/(?P<vid>[^/]+)", attachments.detach),
]


def register(router: Router, sb: Sandbox) -> None:
    mount(router, sb, ROUTES)
