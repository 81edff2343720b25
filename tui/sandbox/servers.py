"""Nova servers: rendering, creation (boot from image or volume), list/show/create/delete and metadata."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tui.conventions import META_SSH_PORT, META_SSH_USER
from tui.sandbox import boot as booting
from tui.sandbox import data, network, secgroups
from tui.sandbox.nova import (
    MAX_LIMIT,
    Version,
    get_server,
    links,
    microversion,
    nova_error,
    ok,
    quota_check,
    set_status,
)
from tui.sandbox.router import Request, Response
from tui.sandbox.state import Record, new_id, now_iso

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox


# -- rendering ----------------------------------------------------------------------------------------


def _flavor_ref(sb: Sandbox, srv: Record, mv: Version) -> dict[str, Any]:
    f = data.FLAVORS[srv["flavor_id"]]
    if mv >= (2, 47):
        return {
            "vcpus": f["vcpus"],
            "ram": f["ram"],
            "disk": f["disk"],
            "ephemeral": 0,
            "swap": 0,
            "original_name": f["name"],
            "extra_specs": {},
        }
    return {"id": f["id"], "links": [{"rel": "bookmark", "href": f"{sb.url}/compute/flavors/{f['id']}"}]}


# Nova shows `progress` only in these states (nova/api/openstack/compute/views/servers.py).
_PROGRESS_STATUSES = ("ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING")


def _versioned(srv: Record, mv: Version, show: bool) -> dict[str, Any]:
    """The fields later microversions add, as Nova's view builder adds them for a non-admin (host_status and
    OS-EXT-SRV-ATTR:* are admin-only by default policy, so never here). `show`: GET /servers/{id}, which alone
    carries server_groups (2.71+); GET /servers/detail never does."""
    out: dict[str, Any] = {}
    if mv >= (2, 9):
        out["locked"] = False
    if mv >= (2, 19):
        out["description"] = srv.get("description")
    if mv >= (2, 26):
        out["tags"] = []
    if mv >= (2, 63):
        out["trusted_image_certificates"] = None
    if show and mv >= (2, 71):
        out["server_groups"] = []
    if mv >= (2, 73):
        out["locked_reason"] = None
    if mv >= (2, 96):
        out["pinned_availability_zone"] = None
    return out


def render_server(
    sb: Sandbox, srv: Record, mv: Version, fips: dict[str, list[Record]], show: bool = False
) -> dict[str, Any]:
    image: Any = ""
    if srv["image_id"]:
        image = {
            "id": srv["image_id"],
            "links": [{"rel": "bookmark", "href": f"{sb.url}/compute/images/{srv['image_id']}"}],
        }
    out = {
        "id": srv["id"],
        "name": srv["name"],
        "status": srv["status"],
        "tenant_id": sb.state.data["project_id"],
        "user_id": sb.state.data["user_id"],
        "metadata": srv["metadata"],
        "hostId": "" if srv["status"] == "SHELVED_OFFLOADED" else srv["host_id"],  # on no host
        "image": image,
        "flavor": _flavor_ref(sb, srv, mv),
        "created": srv["created"],
        "updated": srv["updated"],
        "addresses": _addresses(sb, srv, fips),
        "accessIPv4": "",
        "accessIPv6": "",
        "links": links(sb, "servers", srv["id"]),
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": "nova",
        "config_drive": "",
        "key_name": srv["key_name"],
        "OS-SRV-USG:launched_at": srv["launched_at"],
        "OS-SRV-USG:terminated_at": None,
        "security_groups": group_names(sb, srv),
        "OS-EXT-STS:task_state": srv["task_state"],
        "OS-EXT-STS:vm_state": srv["vm_state"],
        "OS-EXT-STS:power_state": srv["power_state"],
        "os-extended-volumes:volumes_attached": [
            {"id": v["id"], **({"delete_on_termination": v["delete_on_termination"]} if mv >= (2, 3) else {})}
            for v in srv["volumes"]
        ],
    }
    out.update(_versioned(srv, mv, show))
    if srv["status"] in _PROGRESS_STATUSES:
        out["progress"] = 0
    if srv.get("fault"):
        out["fault"] = srv["fault"]
    return out


def _addresses(sb: Sandbox, srv: Record, fips: dict[str, list[Record]]) -> dict[str, list[dict[str, Any]]]:
    port = sb.state.table("ports").get(srv["port_id"] or "")
    if port is None or srv["status"] == "BUILD":
        return {}
    net = sb.state.table("networks")[port["network_id"]]["name"]
    mac = port["mac_address"]
    addrs = [
        {"version": 4, "addr": ip["ip_address"], "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": mac}
        for ip in port["fixed_ips"]
    ]
    addrs += [
        {"version": 4, "addr": f["floating_ip_address"], "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": mac}
        for f in fips.get(port["id"], [])
    ]
    return {net: addrs}


def fips_by_port(sb: Sandbox) -> dict[str, list[Record]]:
    index: dict[str, list[Record]] = {}
    for fip in sb.state.table("floatingips").values():
        if fip["port_id"]:
            index.setdefault(fip["port_id"], []).append(fip)
    return index


# -- creation -----------------------------------------------------------------------------------------


def _security_groups(sb: Sandbox, body: dict[str, Any]) -> list[str]:
    """The ids of the groups asked for (`default` when none), or Nova's 400 naming the first unknown one."""
    wanted = body.get("security_groups") or [{"name": "default"}]
    if not isinstance(wanted, list) or not all(isinstance(g, dict) and g.get("name") for g in wanted):
        raise nova_error(400, "Invalid input for field/attribute security_groups.")
    try:
        return secgroups.resolve(sb, [str(g["name"]) for g in wanted])
    except LookupError as e:
        raise nova_error(400, f"Security group {e.args[0]} not found.") from None


def group_names(sb: Sandbox, srv: Record) -> list[dict[str, str]]:
    """Nova's `security_groups` of a server: the names of its port's groups."""
    port = sb.state.table("ports").get(srv["port_id"] or "") or {}
    groups = sb.state.table("security_groups")
    names = [groups[g]["name"] for g in port.get("security_groups", []) if g in groups]
    return [{"name": n} for n in dict.fromkeys(names)]


def create_server(sb: Sandbox, body: dict[str, Any], enforce_quota: bool = True) -> Record:
    """Validate and create a server in BUILD (under the lock); raises Nova's errors."""
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise nova_error(400, "Invalid input for field/attribute server. Value: {}. 'name' is a required property")
    flavor = data.FLAVORS.get(str(body.get("flavorRef", "")).rsplit("/", 1)[-1])
    if flavor is None:
        raise nova_error(400, "Invalid flavorRef provided.")
    if int(body.get("max_count", 1) or 1) != 1 or int(body.get("min_count", 1) or 1) != 1:
        raise nova_error(400, "The sandbox creates one server per request (min_count = max_count = 1).")
    bdms = booting.parse_bdm(sb, body)
    image_id = str(body.get("imageRef") or "").rsplit("/", 1)[-1]
    boot = next((b for b in bdms if str(b["boot_index"]) == "0"), None)
    booting.check_image(sb, flavor, image_id, boot)
    key_name = body.get("key_name")
    keypair = sb.state.table("keypairs").get(key_name) if key_name else None
    if key_name and keypair is None:
        raise nova_error(400, "Invalid key_name provided.")
    network_id = booting.network_id(sb, body)
    group_ids = _security_groups(sb, body)
    metadata = body.get("metadata", {})  # present means an object: Nova's schema refuses `"metadata": null`
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise nova_error(400, f"Invalid input for field/attribute metadata. Value: {metadata}. "
                              f"{metadata} is not of type 'object'" if not isinstance(metadata, dict)
                         else "Invalid input for field/attribute metadata.")
    if enforce_quota:
        quota_check(sb, {"instances": 1, "cores": flavor["vcpus"], "ram": flavor["ram"]})

    sid = new_id()
    now = now_iso()
    fail = None
    if sb.faults.fail_next_create:
        sb.faults.fail_next_create = False
        fail = "No valid host was found. There are not enough hosts available."
    volumes, volume_fail = booting.boot_volumes(sb, sid, bdms)
    port = network.create_server_port(sb, sid, network_id, group_ids)
    srv: Record = {
        "id": sid,
        "name": name,
        "flavor_id": flavor["id"],
        "image_id": image_id if boot is None else "",
        "key_name": key_name,
        "public_key": keypair["public_key"] if keypair else None,
        "created": now,
        "updated": now,
        "launched_at": None,
        "metadata": dict(metadata),
        "port_id": port["id"],
        "volumes": volumes,
        "host_id": hashlib.sha224(sid.encode()).hexdigest(),
        "fault": None,
        "pending": None,
        "fail_build": fail or volume_fail,
        "ssh": sb.ssh_hosts,
        "ssh_port": 0,
        "boots": [],
        "description": body.get("description"),
        "boot_image_id": image_id or (boot or {}).get("uuid") or "",
    }
    set_status(srv, "BUILD", "spawning")
    sb.state.table("servers")[sid] = srv
    sb.later(sb.delays.build_s, "servers", sid, "build")
    sb.state.touch()
    return srv


# -- HTTP ---------------------------------------------------------------------------------------------


DELETED_KEPT = 1000  # deleted servers remembered for changes-since (Nova keeps them until an archive job runs)


def remember_deleted(sb: Sandbox, srv: Record) -> None:
    """Keep what Nova shows of a deleted server: under `changes-since` it lists it with status DELETED. Under the
    lock."""
    gone = sb.state.table("deleted_servers")
    gone[srv["id"]] = {
        "id": srv["id"], "name": srv["name"], "status": "DELETED", "created": srv["created"], "updated": now_iso(),
        "metadata": dict(srv["metadata"]), "key_name": srv["key_name"], "OS-EXT-STS:vm_state": "deleted",
        "OS-EXT-STS:task_state": None, "OS-EXT-STS:power_state": 0, "addresses": {},
    }
    for old in sorted(gone, key=lambda i: gone[i]["updated"])[: max(0, len(gone) - DELETED_KEPT)]:
        del gone[old]


def changes_since(req: Request) -> str | None:
    """`changes-since` as Nova's timestamp text (fixed width: compares as text), None when not asked; 400 when
    it is not an ISO 8601 time."""
    raw = req.arg("changes-since")
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise nova_error(400, f"Invalid input for query parameters changes-since. Value: {raw}.") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _filtered(servers: list[Record], req: Request) -> list[Record]:
    name_re = req.arg("name")
    status = (req.arg("status") or "").upper()
    flavor_id = req.arg("flavor")
    marker = req.arg("marker")
    if name_re:
        try:
            pattern = re.compile(name_re)
        except re.error:
            raise nova_error(400, f"Invalid input for query parameters name. Value: {name_re}.") from None
        servers = [s for s in servers if pattern.search(s["name"])]
    if status:
        servers = [s for s in servers if s["status"] == status]
    if flavor_id:
        servers = [s for s in servers if s["flavor_id"] == flavor_id]
    if marker:
        ids = [s["id"] for s in servers]
        if marker not in ids:
            raise nova_error(400, f"marker [{marker}] not found")
        servers = servers[ids.index(marker) + 1 :]
    return servers


def list_servers(sb: Sandbox, req: Request) -> Response:
    mv = microversion(req)
    detail = req.path.endswith("/detail")
    try:
        limit = min(int(req.arg("limit") or MAX_LIMIT), MAX_LIMIT)
    except ValueError:
        raise nova_error(400, "Invalid input for query parameters limit.") from None
    since = changes_since(req)
    with sb.state.lock:
        servers = list(sb.state.table("servers").values())
        if since is not None:  # changed servers only, and the deleted ones (status DELETED) since then
            servers = [s for s in servers if s["updated"] >= since]
            servers += [s for s in sb.state.table("deleted_servers").values() if s["updated"] >= since]
        servers = _filtered(sorted(servers, key=lambda s: (s["created"], s["id"]), reverse=True), req)
        more = len(servers) > limit
        servers = servers[:limit]
        if detail:
            fips = fips_by_port(sb)
            items = [_deleted(sb, s) if s["status"] == "DELETED" else render_server(sb, s, mv, fips) for s in servers]
        else:
            items = [{"id": s["id"], "name": s["name"], "links": links(sb, "servers", s["id"])} for s in servers]
    body: dict[str, Any] = {"servers": items}
    if more and items:
        params = [f"{k}={v[-1]}" for k, v in req.query.items() if k not in ("marker", "limit")]
        params += [f"limit={limit}", f"marker={items[-1]['id']}"]
        body["servers_links"] = [{"rel": "next", "href": f"{sb.url}{req.path}?{'&'.join(params)}"}]
    return ok(200, body, mv)


def _deleted(sb: Sandbox, srv: Record) -> dict[str, Any]:
    return {**srv, "tenant_id": sb.state.data["project_id"], "user_id": sb.state.data["user_id"],
            "links": links(sb, "servers", srv["id"])}


def show_server(sb: Sandbox, req: Request) -> Response:
    mv = microversion(req)
    with sb.state.lock:
        srv = get_server(sb, req)
        return ok(200, {"server": render_server(sb, srv, mv, fips_by_port(sb), show=True)}, mv)


def post_server(sb: Sandbox, req: Request) -> Response:
    mv = microversion(req)
    body = (req.body or {}).get("server")
    if not isinstance(body, dict):
        raise nova_error(400, "Invalid input for field/attribute server.")
    with sb.state.lock:
        srv = create_server(sb, body)
    out = {
        "id": srv["id"],
        "links": links(sb, "servers", srv["id"]),
        "OS-DCF:diskConfig": "MANUAL",
        "security_groups": group_names(sb, srv),
        "adminPass": secrets.token_urlsafe(9),
    }
    resp = ok(202, {"server": out}, mv)
    resp.headers["Location"] = f"{sb.url}/compute/v2.1/servers/{srv['id']}"
    return resp


def delete_server(sb: Sandbox, req: Request) -> Response:
    mv = microversion(req)
    with sb.state.lock:
        srv = get_server(sb, req)
        if srv["task_state"] != "deleting":
            srv["task_state"] = "deleting"
            srv["updated"] = now_iso()
            sb.later(sb.delays.delete_s, "servers", srv["id"], "delete")
            sb.state.touch()
    return ok(204, None, mv)


def get_metadata(sb: Sandbox, req: Request) -> Response:
    with sb.state.lock:
        return ok(200, {"metadata": dict(get_server(sb, req)["metadata"])}, microversion(req))


def set_metadata(sb: Sandbox, req: Request) -> Response:
    meta = (req.body or {}).get("metadata")
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise nova_error(400, "Malformed request body")
    with sb.state.lock:
        srv = get_server(sb, req)
        if req.method == "PUT":
            srv["metadata"] = {k: v for k, v in srv["metadata"].items() if k in (META_SSH_PORT, META_SSH_USER)}
        srv["metadata"].update(meta)
        sb.state.touch()
        return ok(200, {"metadata": dict(srv["metadata"])}, microversion(req))


def delete_metadata(sb: Sandbox, req: Request) -> Response:
    with sb.state.lock:
        srv = get_server(sb, req)
        if srv["metadata"].pop(req.params["key"], None) is None:
            raise nova_error(404, "Metadata item was not found")
        sb.state.touch()
    return ok(204, None, microversion(req))
