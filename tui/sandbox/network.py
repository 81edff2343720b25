"""Neutron v2.0: networks, subnets, ports, floating IPs, security groups and rules."""

from __future__ import annotations

import ipaddress
import random
from typing import TYPE_CHECKING

from tui.sandbox import data, floatingips, secgroups
from tui.sandbox.neutron import base_record, neutron_error
from tui.sandbox.router import Request, Response, Route, Router, mount
from tui.sandbox.state import Record, now_iso

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox

# URL collection name -> (state table, JSON singular, JSON plural, Neutron error type prefix)
COLLECTIONS = {
    "networks": ("networks", "network", "networks", "Network"),
    "subnets": ("subnets", "subnet", "subnets", "Subnet"),
    "ports": ("ports", "port", "ports", "Port"),
    "floatingips": ("floatingips", "floatingip", "floatingips", "FloatingIP"),
    "security-groups": ("security_groups", "security_group", "security_groups", "SecurityGroup"),
    "security-group-rules": (
        "security_group_rules",
        "security_group_rule",
        "security_group_rules",
        "SecurityGroupRule",
    ),
}

# The project network's subnet: every server's fixed IP is its own loopback address 127.0.0.N (N >= 2), on which
# its sshd listens; 127.0.0.1 is the gateway and the one floating IP (data.FLOATING_IP).
_SUBNET_CIDR = "127.0.0.0/16"


def seed(sb: Sandbox) -> None:
    """The project's network, the external network and the default security group (once, under the lock)."""
    st = sb.state
    if st.table("networks"):
        return
    for name, cidr, external in ((data.PRIVATE_NET, _SUBNET_CIDR, False), (data.PUBLIC_NET, "127.0.0.0/8", True)):
        net = base_record(
            sb,
            name=name,
            status="ACTIVE",
            admin_state_up=True,
            shared=False,
            mtu=1450,
            port_security_enabled=True,
            availability_zones=["nova"],
            availability_zone_hints=[],
            ipv4_address_scope=None,
            ipv6_address_scope=None,
            is_default=external,
            **{"router:external": external},
        )
        hosts = ipaddress.ip_network(cidr)
        sub = base_record(
            sb,
            name=f"{name}-subnet",
            network_id=net["id"],
            ip_version=4,
            cidr=cidr,
            gateway_ip=str(hosts[1]),
            enable_dhcp=not external,
            dns_nameservers=[],
            host_routes=[],
            allocation_pools=[{"start": str(hosts[2 if not external else 10]), "end": str(hosts[-2])}],
            ipv6_ra_mode=None,
            ipv6_address_mode=None,
            subnetpool_id=None,
            service_types=[],
        )
        net["subnets"] = [sub["id"]]
        st.table("networks")[net["id"]] = net
        st.table("subnets")[sub["id"]] = sub
    secgroups.seed_default(sb)


def network_by_name(sb: Sandbox, name: str) -> Record | None:
    return next((n for n in sb.state.table("networks").values() if n["name"] == name), None)


def _allocate_ip(sb: Sandbox, taken: set[str] | None = None) -> str:
    """The lowest free address of the project subnet (127.0.0.2 up; never a .0 or .255). Under the lock."""
    if taken is None:
        taken = {ip["ip_address"] for p in sb.state.table("ports").values() for ip in p["fixed_ips"]}
    net = ipaddress.ip_network(_SUBNET_CIDR)
    for n in range(2, net.num_addresses - 1):
        addr = net[n]
        if addr.packed[-1] not in (0, 255) and str(addr) not in taken:
            return str(addr)
    raise neutron_error(409, "IpAddressGenerationFailure", "No more IP addresses available on network.")


_MACS = random.Random()  # its own generator: tests reseeding the global one must not repeat MACs


def create_server_port(sb: Sandbox, server_id: str, network_id: str, security_groups: list[str]) -> Record:
    """A port on `network_id` for a server, with its own fixed IP. Call under the lock."""
    net = sb.state.table("networks")[network_id]
    mac = "fa:16:3e:" + ":".join(f"{_MACS.randrange(256):02x}" for _ in range(3))
    port = base_record(
        sb,
        name="",
        network_id=network_id,
        mac_address=mac,
        admin_state_up=True,
        status="DOWN",
        device_id=server_id,
        device_owner="compute:nova",
        fixed_ips=[{"subnet_id": net["subnets"][0], "ip_address": _allocate_ip(sb)}],
        allowed_address_pairs=[],
        extra_dhcp_opts=[],
        security_groups=list(security_groups),
        port_security_enabled=True,
        dns_name="",
        **{"binding:vnic_type": "normal"},
    )
    sb.state.table("ports")[port["id"]] = port
    return port


def migrate_fixed_ips(sb: Sandbox) -> None:
    """State saved before private addresses (10.0.x.y): give every port a 127.0.0.N and the subnet its CIDR."""
    net = network_by_name(sb, data.PRIVATE_NET)
    if net is None:
        return
    sub = sb.state.table("subnets")[net["subnets"][0]]
    if sub["cidr"] == _SUBNET_CIDR:
        return
    hosts = ipaddress.ip_network(_SUBNET_CIDR)
    sub.update(
        cidr=_SUBNET_CIDR, gateway_ip=str(hosts[1]), allocation_pools=[{"start": str(hosts[2]), "end": str(hosts[-2])}]
    )
    taken: set[str] = set()
    for port in sb.state.table("ports").values():
        if port["network_id"] == net["id"]:
            ip = _allocate_ip(sb, taken)
            taken.add(ip)
            port["fixed_ips"] = [{"subnet_id": sub["id"], "ip_address": ip}]
            for fip in sb.state.table("floatingips").values():
                if fip["port_id"] == port["id"]:
                    fip["fixed_ip_address"] = ip
    sb.state.touch()


def listen_addresses(sb: Sandbox, port_id: str) -> list[str]:
    """Where a server's sshd listens: its fixed IP, and 127.0.0.1 while a floating IP is bound. Under the lock."""
    port = sb.state.table("ports").get(port_id or "")
    if port is None:
        return [data.FLOATING_IP]
    out = [ip["ip_address"] for ip in port["fixed_ips"]]
    if any(f["port_id"] == port_id for f in sb.state.table("floatingips").values()):
        out.append(data.FLOATING_IP)
    return out


def port_server(sb: Sandbox, port_id: str | None) -> str | None:
    """The server a port belongs to (its device_id), if any. Under the lock."""
    port = sb.state.table("ports").get(port_id or "")
    return port["device_id"] if port and port["device_owner"].startswith("compute:") else None


def set_port_status(sb: Sandbox, port_id: str, up: bool) -> None:
    status = "ACTIVE" if up else "DOWN"
    if port_id in sb.state.table("ports"):
        sb.state.table("ports")[port_id]["status"] = status
    for fip in sb.state.table("floatingips").values():
        if fip["port_id"] == port_id:
            fip["status"] = status


def delete_server_port(sb: Sandbox, port_id: str) -> None:
    """Delete a server's port and the floating IPs bound to it. Call under the lock."""
    sb.state.table("ports").pop(port_id, None)
    fips = sb.state.table("floatingips")
    for fid in [f["id"] for f in fips.values() if f["port_id"] == port_id]:
        del fips[fid]


# -- HTTP ---------------------------------------------------------------------------------------------


def _render(sb: Sandbox, table: str, rec: Record) -> Record:
    out = dict(rec)
    if table == "security_groups":
        out["security_group_rules"] = [
            r for r in sb.state.table("security_group_rules").values() if r["security_group_id"] == rec["id"]
        ]
    if table == "floatingips" and rec["port_id"]:
        port = sb.state.table("ports").get(rec["port_id"])
        if port:
            out["port_details"] = {
                k: port[k]
                for k in ("name", "network_id", "mac_address", "admin_state_up", "status", "device_id", "device_owner")
            }
    return out


def _matches(rec: Record, query: dict[str, list[str]]) -> bool:
    for key, wanted in query.items():
        if key in ("fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse") or key not in rec:
            continue
        value = rec[key]
        got = str(value).lower() if isinstance(value, bool) else ("" if value is None else str(value))
        if got not in [w.lower() if isinstance(value, bool) else w for w in wanted]:
            return False
    return True


def _fields(rec: Record, fields: list[str]) -> Record:
    return {k: v for k, v in rec.items() if k in fields} if fields else rec


BASE = r"/network/v2\.0/(?P<coll>" + "|".join(COLLECTIONS) + ")"


def versions(sb: Sandbox, req: Request) -> Response:
    doc = {"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": f"{sb.url}/network/v2.0/"}]}
    return Response(200, {"versions": [doc]})


def root(sb: Sandbox, req: Request) -> Response:
    resources = [
        {"name": singular, "collection": coll, "links": [{"rel": "self", "href": f"{sb.url}/network/v2.0/{coll}"}]}
        for coll, (_, singular, _, _) in COLLECTIONS.items()
    ]
    return Response(200, {"resources": resources})


EXTENSIONS = [
    "external-net",
    "router",
    "security-group",
    "quotas",
    "port-security",
    "standard-attr-tag",
    "fip-port-details",
    "binding",
    "agent",
    "subnet_allocation",
]


def extensions(sb: Sandbox, req: Request) -> Response:
    exts = [
        {"alias": n, "name": n, "description": "", "links": [], "updated": "2013-01-01T00:00:00-00:00"}
        for n in EXTENSIONS
    ]
    return Response(200, {"extensions": exts})


def list_(sb: Sandbox, req: Request) -> Response:
    table, _, plural, _ = COLLECTIONS[req.params["coll"]]
    fields = req.query.get("fields", [])
    with sb.state.lock:
        items = [
            _fields(_render(sb, table, r), fields) for r in sb.state.table(table).values() if _matches(r, req.query)
        ]
    return Response(200, {plural: items})


def _get(sb: Sandbox, req: Request) -> tuple[str, str, Record]:
    table, singular, _, kind = COLLECTIONS[req.params["coll"]]
    rec = sb.state.table(table).get(req.params["id"])
    if rec is None:
        raise neutron_error(
            404,
            f"{kind}NotFound",
            f"{kind.replace('FloatingIP', 'Floating IP')} {req.params['id']} could not be found.",
        )
    return table, singular, rec


def show(sb: Sandbox, req: Request) -> Response:
    with sb.state.lock:
        table, singular, rec = _get(sb, req)
        return Response(200, {singular: _fields(_render(sb, table, rec), req.query.get("fields", []))})


def create(sb: Sandbox, req: Request) -> Response:
    coll = req.params["coll"]
    table, singular, _, _ = COLLECTIONS[coll]
    body = (req.body or {}).get(singular)
    if not isinstance(body, dict):
        raise neutron_error(400, "BadRequest", f"Resource body required: '{singular}'")
    makers = {
        "security-groups": secgroups.create_group,
        "security-group-rules": secgroups.create_rule,
        "floatingips": floatingips.create_fip,
    }
    if coll not in makers:
        raise neutron_error(
            403, "PolicyNotAuthorized", f"rule:create_{singular} is disallowed by policy in the sandbox"
        )
    with sb.state.lock:
        rec = makers[coll](sb, body)
        sb.state.touch()
        out = _render(sb, table, rec)
        moved = port_server(sb, rec.get("port_id")) if table == "floatingips" else None
    if moved:
        sb.vm_relisten(moved)  # before answering: once the client sees the address, sshd serves on it
    return Response(201, {singular: out})


def update(sb: Sandbox, req: Request) -> Response:
    moved: list[str | None] = []
    with sb.state.lock:
        table, singular, rec = _get(sb, req)
        body = (req.body or {}).get(singular) or {}
        if table == "floatingips" and "port_id" in body:
            moved = [port_server(sb, rec["port_id"])]
            floatingips.associate(sb, rec, body["port_id"])
            moved.append(port_server(sb, rec["port_id"]))
        for key in ("name", "description"):
            if key in body:
                rec[key] = body[key]
        rec["updated_at"] = now_iso()
        rec["revision_number"] += 1
        sb.state.touch()
        out = _render(sb, table, rec)
    for sid in dict.fromkeys(moved):
        if sid:
            sb.vm_relisten(sid)
    return Response(200, {singular: out})


def delete(sb: Sandbox, req: Request) -> Response:
    with sb.state.lock:
        table, singular, rec = _get(sb, req)
        if table in ("networks", "subnets", "ports"):
            raise neutron_error(409, "InUse", f"Unable to complete operation on {singular} {rec['id']}: in use.")
        moved = port_server(sb, rec.get("port_id")) if table == "floatingips" else None
        if table == "security_groups":
            secgroups.delete_group(sb, rec)
        else:
            del sb.state.table(table)[rec["id"]]
        sb.state.touch()
    if moved:
        sb.vm_relisten(moved)
    return Response(204)


ROUTES = [
    Route("GET", r"/network", versions, auth=False),
    Route("GET", r"/network/v2\.0", root),
    Route("GET", r"/network/v2\.0/extensions", extensions),
    Route("GET", BASE, list_),
    Route("POST", BASE, create),
    Route("GET", BASE + r"/(?P<id>[^/]+)", show),
    Route("PUT", BASE + r"/(?P<id>[^/]+)", update),
    Route("DELETE", BASE + r"/(?P<id>[^/]+)", delete),
]


def register(router: Router, sb: Sandbox) -> None:
    mount(router, sb, ROUTES)
