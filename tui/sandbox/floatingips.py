"""Neutron floating IPs: every one is 127.0.0.1, and binding one to a server's port makes sshd listen there."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tui.sandbox import data
from tui.sandbox.neutron import base_record, neutron_error
from tui.sandbox.state import Record

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox


def new_fip(sb: Sandbox, network_id: str, description: str = "") -> Record:
    rec = base_record(
        sb,
        floating_ip_address=data.FLOATING_IP,
        floating_network_id=network_id,
        router_id=None,
        port_id=None,
        fixed_ip_address=None,
        status="DOWN",
        dns_name="",
        dns_domain="",
        qos_policy_id=None,
        port_forwardings=[],
        description=description,
    )
    sb.state.table("floatingips")[rec["id"]] = rec
    return rec


def create_fip(sb: Sandbox, body: dict[str, Any]) -> Record:
    """POST /floatingips (under the lock)."""
    net = sb.state.table("networks").get(body.get("floating_network_id", ""))
    if net is None or not net["router:external"]:
        raise neutron_error(
            404,
            "ExternalNetworkNotFound" if net is None else "BadRequest",
            f"Network {body.get('floating_network_id')} is not a valid external network.",
        )
    if body.get("port_id") and body["port_id"] not in sb.state.table("ports"):
        raise neutron_error(404, "PortNotFound", f"Port {body['port_id']} could not be found.")
    rec = new_fip(sb, net["id"], body.get("description", ""))
    if body.get("port_id"):
        associate(sb, rec, body["port_id"])
    return rec


def associate(sb: Sandbox, fip: Record, port_id: str | None) -> None:
    """Bind `fip` to a port (None: unbind). Under the lock; the caller re-points the server's sshd after it."""
    if not port_id:
        fip.update(port_id=None, fixed_ip_address=None, status="DOWN")
        return
    port = sb.state.table("ports").get(port_id)
    if port is None:
        raise neutron_error(404, "PortNotFound", f"Port {port_id} could not be found.")
    taken = next((f for f in sb.state.table("floatingips").values() if f["port_id"] == port_id), None)
    if taken is not None and taken["id"] != fip["id"]:
        raise neutron_error(
            409,
            "FloatingIPPortAlreadyAssociated",
            f"Cannot associate floating IP {fip['floating_ip_address']} ({fip['id']}) with port {port_id} using "
            f"fixed IP {port['fixed_ips'][0]['ip_address']}, as that fixed IP already has a floating IP on external "
            f"network {taken['floating_network_id']}.",
        )
    fip.update(port_id=port_id, fixed_ip_address=port["fixed_ips"][0]["ip_address"], status=port["status"])


def bind_new(sb: Sandbox, port_id: str) -> Record:
    """A floating IP from the external network, bound to `port_id` (seeding; under the lock)."""
    public = next(n for n in sb.state.table("networks").values() if n["name"] == data.PUBLIC_NET)
    rec = new_fip(sb, public["id"])
    associate(sb, rec, port_id)
    return rec
