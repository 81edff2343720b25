"""Seeding the sandbox: the demo's key pair and server, and many servers at once for benchmarks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.conventions import DEMO_KEY
from tui.sandbox import actions, data, floatingips, keypairs, network, servers, volume
from tui.sandbox.nova import set_status
from tui.sandbox.state import now_iso, now_usec, write_private

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox

DEMO_SERVER = "analytics-1"


def seed_servers(sb: Sandbox, n: int, ssh_hosts: bool = False, public_ip: bool = True) -> list[str]:
    """Create `n` ACTIVE servers at once (quota not enforced); returns their ids."""
    net = network.network_by_name(sb, data.PRIVATE_NET)
    assert net is not None
    flavor = data.flavor_by_ref("m1.tiny")
    image_id = data.stable_id("image:Ubuntu 22.04")
    assert flavor is not None
    ids = []
    with sb.state.lock:
        start = len(sb.state.table("servers"))
        for i in range(n):
            body = {
                "name": f"bench-{start + i:04d}",
                "flavorRef": flavor["id"],
                "imageRef": image_id,
                "networks": [{"uuid": net["id"]}],
            }
            srv = servers.create_server(sb, body, enforce_quota=False)
            if public_ip:
                floatingips.bind_new(sb, srv["port_id"])
            srv["ssh"] = ssh_hosts and sb.ssh_hosts
            srv["pending"] = None
            ids.append(srv["id"])
            if not srv["ssh"]:
                set_status(srv, "ACTIVE")
                srv["launched_at"] = now_usec()
                srv["boots"].append(now_iso())
                network.set_port_status(sb, srv["port_id"], True)
            else:
                srv["pending"] = "build"
        sb.state.touch()
    for sid in ids:
        if sb.server_state(sid)["pending"] == "build":
            actions.advance(sb, sid, "build")
    return ids


def seed_demo(sb: Sandbox) -> None:
    """The demo's key pair (private key in the state dir) and its server, ACTIVE at once."""
    private, public = sb.generate_keypair(DEMO_KEY)
    write_private(sb.demo_key_path, private)
    net = network.network_by_name(sb, data.PRIVATE_NET)
    flavor = data.flavor_by_ref("m1.small")
    assert net is not None and flavor is not None
    with sb.state.lock:
        keypairs.new_keypair(sb.state.table("keypairs"), DEMO_KEY, public)
        srv = servers.create_server(
            sb,
            {
                "name": DEMO_SERVER,
                "flavorRef": flavor["id"],
                "imageRef": "",
                "key_name": DEMO_KEY,
                "networks": [{"uuid": net["id"]}],
                "block_device_mapping_v2": [
                    {
                        "boot_index": 0,
                        "uuid": data.stable_id("image:Ubuntu 24.04"),
                        "source_type": "image",
                        "destination_type": "volume",
                        "volume_size": 16,
                        "delete_on_termination": False,
                    }
                ],
            },
        )
        floatingips.bind_new(sb, srv["port_id"])  # the Jupyter VM has a public address
        vol_ids = [v["id"] for v in srv["volumes"]]
        sb.state.data["demo_seeded"] = True
    for vid in vol_ids:
        volume.advance(sb, vid, "create")
    actions.advance(sb, srv["id"], "build")
