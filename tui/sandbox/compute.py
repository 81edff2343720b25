"""Nova v2.1: versions, flavors, key pairs, limits, servers and their actions, volume attachments."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import TYPE_CHECKING, Any

from tui.conventions import META_SSH_PORT, META_SSH_USER
from tui.sandbox import data, network, volume
from tui.sandbox.console import console_log
from tui.sandbox.router import HTTPError, Request, Response, Router
from tui.sandbox.state import Record, new_id, now_iso, now_usec

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 96)
MAX_LIMIT = 1000  # osapi_max_limit
# status -> (vm_state, power_state)
_STATES = {
    "BUILD": ("building", 0),
    "ACTIVE": ("active", 1),
    "SHUTOFF": ("stopped", 4),
    "ERROR": ("error", 0),
    "REBOOT": ("active", 1),
    "HARD_REBOOT": ("active", 1),
    "RESIZE": ("active", 1),
    "VERIFY_RESIZE": ("resized", 1),
    "REVERT_RESIZE": ("resized", 1),
}


def nova_error(status: int, message: str) -> HTTPError:
    key = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest", 413: "overLimit"}.get(
        status, "computeFault"
    )
    return HTTPError(status, {key: {"code": status, "message": message}})


def _set(srv: Record, status: str, task: str | None = None) -> None:
    srv["status"] = status
    srv["vm_state"], srv["power_state"] = _STATES[status]
    srv["task_state"] = task
    srv["updated"] = now_iso()


def microversion(req: Request) -> tuple[int, int]:
    raw = req.headers.get("openstack-api-version", "")
    value = (
        raw.split()[1]
        if raw.startswith("compute ") and len(raw.split()) > 1
        else req.headers.get("x-openstack-nova-api-version", "")
    )
    if not value:
        return MIN_VERSION
    if value == "latest":
        return MAX_VERSION
    m = re.fullmatch(r"(\d+)\.(\d+)", value.strip())
    if not m:
        raise nova_error(400, f"API Version String {value} is of invalid format. Must be of format MajorNum.MinorNum.")
    got = (int(m[1]), int(m[2]))
    if not MIN_VERSION <= got <= MAX_VERSION:
        raise HTTPError(
            406,
            {
                "computeFault": {
                    "code": 406,
                    "message": f"Version {value} is not supported by the API. Minimum is 2.1 and maximum is 2.96.",
                }
            },
        )
    return got


def _fingerprint(public_key: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_key.split()[1]), usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def usage(sb: Sandbox) -> dict[str, int]:
    servers = sb.state.table("servers").values()
    flavors = [data.FLAVORS[s["flavor_id"]] for s in servers]
    return {"instances": len(flavors), "cores": sum(f["vcpus"] for f in flavors), "ram": sum(f["ram"] for f in flavors)}


def quota_check(sb: Sandbox, wanted: dict[str, int]) -> None:
    """Nova's 403 when `wanted` (instances/cores/ram deltas) does not fit. Call under the lock."""
    q = sb.quota()
    limits = {"instances": q["instances"], "cores": q["cores"], "ram": q["ram_mb"]}
    used = usage(sb)
    overs = sorted(r for r, n in wanted.items() if n > 0 and 0 <= limits[r] < used[r] + n)
    if overs:

        def join(values: list[Any]) -> str:
            return ", ".join(str(v) for v in values)

        raise nova_error(
            403,
            f"Quota exceeded for {join(overs)}: Requested {join([wanted[r] for r in overs])}, "
            f"but already used {join([used[r] for r in overs])} of "
            f"{join([limits[r] for r in overs])} {join(overs)}",
        )


# -- rendering ----------------------------------------------------------------------------------------


def _links(sb: Sandbox, kind: str, rid: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": f"{sb.url}/compute/v2.1/{kind}/{rid}"},
        {"rel": "bookmark", "href": f"{sb.url}/compute/{kind}/{rid}"},
    ]


def render_flavor(sb: Sandbox, f: dict[str, Any], mv: tuple[int, int]) -> dict[str, Any]:
    out = {
        "id": f["id"],
        "name": f["name"],
        "ram": f["ram"],
        "disk": f["disk"],
        "vcpus": f["vcpus"],
        "swap": 0 if mv >= (2, 75) else "",
        "OS-FLV-EXT-DATA:ephemeral": 0,
        "OS-FLV-DISABLED:disabled": False,
        "os-flavor-access:is_public": True,
        "rxtx_factor": 1.0,
        "links": _links(sb, "flavors", f["id"]),
    }
    if mv >= (2, 55):
        out["description"] = f["description"]
    if mv >= (2, 61):
        out["extra_specs"] = {}
    return out


def render_server(sb: Sandbox, srv: Record, mv: tuple[int, int], fips: dict[str, list[Record]]) -> dict[str, Any]:
    f = data.FLAVORS[srv["flavor_id"]]
    pid = sb.state.data["project_id"]
    if mv >= (2, 47):
        flavor: dict[str, Any] = {
            "vcpus": f["vcpus"],
            "ram": f["ram"],
            "disk": f["disk"],
            "ephemeral": 0,
            "swap": 0,
            "original_name": f["name"],
            "extra_specs": {},
        }
    else:
        flavor = {"id": f["id"], "links": [{"rel": "bookmark", "href": f"{sb.url}/compute/flavors/{f['id']}"}]}
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
        "tenant_id": pid,
        "user_id": sb.state.data["user_id"],
        "metadata": srv["metadata"],
        "hostId": srv["host_id"],
        "image": image,
        "flavor": flavor,
        "created": srv["created"],
        "updated": srv["updated"],
        "addresses": _addresses(sb, srv, fips),
        "accessIPv4": "",
        "accessIPv6": "",
        "links": _links(sb, "servers", srv["id"]),
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": "nova",
        "config_drive": "",
        "key_name": srv["key_name"],
        "OS-SRV-USG:launched_at": srv["launched_at"],
        "OS-SRV-USG:terminated_at": None,
        "security_groups": [{"name": "default"}],
        "OS-EXT-STS:task_state": srv["task_state"],
        "OS-EXT-STS:vm_state": srv["vm_state"],
        "OS-EXT-STS:power_state": srv["power_state"],
        "os-extended-volumes:volumes_attached": [
            {"id": v["id"], "delete_on_termination": v["delete_on_termination"]} for v in srv["volumes"]
        ],
        "locked": False,
        "description": srv.get("description"),
        "tags": [],
        "trusted_image_certificates": None,
        "locked_reason": None,
        "server_groups": [],
        "host_status": "UP",
        "pinned_availability_zone": None,
    }
    if srv["status"] in ("BUILD", "RESIZE"):
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


def render_keypair(kp: Record, mv: tuple[int, int], sb: Sandbox, full: bool = False) -> dict[str, Any]:
    out = {"name": kp["name"], "public_key": kp["public_key"], "fingerprint": kp["fingerprint"]}
    if mv >= (2, 2):
        out["type"] = kp["type"]
    if full:
        out.update(
            user_id=sb.state.data["user_id"],
            deleted=False,
            created_at=kp["created_at"],
            deleted_at=None,
            updated_at=None,
            id=kp["id"],
        )
    return out


# -- state transitions (scheduler thread) ---------------------------------------------------------------


def advance(sb: Sandbox, sid: str, action: str) -> None:
    """Finish a delayed server transition. Runs SSH host start/stop outside the lock."""
    with sb.state.lock:
        srv = sb.state.table("servers").get(sid)
        if srv is None or srv.get("pending") != action:
            return
        was = srv.get("resize_from", "ACTIVE")
        fail = srv.get("fail_build")
    if action == "delete":
        sb.vm_destroy(sid)
        with sb.state.lock:
            _finish_delete(sb, sid)
        return
    if action in ("stop", "reboot", "resize", "revert"):
        sb.vm_off(sid)
    error = fail if action == "build" else None
    if not error and (action in ("build", "start", "reboot") or (action in ("resize", "revert") and was == "ACTIVE")):
        error = sb.vm_on(sid)
    with sb.state.lock:
        srv = sb.state.table("servers").get(sid)
        if srv is None or srv.get("pending") != action:
            return
        srv["pending"] = None
        if error:
            _set(srv, "ERROR")
            srv["fault"] = {"code": 500, "created": now_iso(), "message": error}
        elif action == "stop":
            _set(srv, "SHUTOFF")
        elif action == "resize":
            _set(srv, "VERIFY_RESIZE")
        elif action == "revert":
            srv["flavor_id"] = srv.pop("old_flavor_id", srv["flavor_id"])
            _set(srv, was)
        else:
            _set(srv, "ACTIVE")
        if srv["status"] in ("ACTIVE", "VERIFY_RESIZE") and not error:
            if action == "build":
                srv["launched_at"] = now_usec()
                for att in srv["volumes"]:
                    vol = sb.state.table("volumes").get(att["id"])
                    if vol is not None:
                        volume.attach(vol, sid, att["device"])
            srv["boots"].append(now_iso())
        network.set_port_status(sb, srv["port_id"], srv["status"] in ("ACTIVE", "VERIFY_RESIZE"))
        sb.state.touch()
    if error:
        sb.vm_off(sid)


def _finish_delete(sb: Sandbox, sid: str) -> None:
    srv = sb.state.table("servers").pop(sid, None)
    if srv is None:
        return
    if srv["port_id"]:
        network.delete_server_port(sb, srv["port_id"])
    for att in srv["volumes"]:
        vol = sb.state.table("volumes").get(att["id"])
        if vol is None:
            continue
        if att["delete_on_termination"]:
            del sb.state.table("volumes")[att["id"]]
        else:
            volume.detach(vol)
    sb.state.touch()


# -- server creation ----------------------------------------------------------------------------------


def _parse_bdm(sb: Sandbox, body: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for bdm in body.get("block_device_mapping_v2") or []:
        source, dest = bdm.get("source_type"), bdm.get("destination_type", "volume")
        if dest != "volume":
            continue
        size = int(bdm.get("volume_size") or 0)
        if source == "image":
            image = data.IMAGES.get(bdm.get("uuid", ""))
            if image is None:
                raise nova_error(400, f"Image {bdm.get('uuid')} could not be found.")
            if size <= 0:
                raise nova_error(400, "Images with destination_type 'volume' need to have a non-zero size specified")
            if size < image["min_disk"]:
                raise nova_error(
                    400, f"Volume size {size}GiB is smaller than the image's minimum disk {image['min_disk']}GiB."
                )
        elif source == "volume":
            vol = sb.state.table("volumes").get(bdm.get("uuid", ""))
            if vol is None:
                raise nova_error(400, f"Block Device Mapping is Invalid: failed to get volume {bdm.get('uuid')}.")
            if vol["status"] != "available":
                raise nova_error(
                    400,
                    f"Invalid volume: volume '{vol['id']}' status must be 'available'. Currently in '{vol['status']}'",
                )
        elif source == "blank":
            if size <= 0:
                raise nova_error(400, "Block Device Mapping is Invalid: blank volumes need a size.")
        else:
            raise nova_error(400, f"Block Device Mapping is Invalid: source_type {source!r} is not supported here.")
        dot = bdm.get("delete_on_termination", False)
        out.append(
            {
                "source": source,
                "uuid": bdm.get("uuid"),
                "size": size,
                "boot_index": bdm.get("boot_index"),
                "delete_on_termination": dot in (True, "true", "True", "1", 1),
            }
        )
    return out


def _network_id(sb: Sandbox, body: dict[str, Any]) -> str:
    nets = body.get("networks")
    pid = sb.state.data["project_id"]
    if nets == "auto":
        raise nova_error(400, f"Unable to automatically allocate a network for project {pid}")
    if nets == "none" or nets is None or nets == []:
        raise nova_error(
            400,
            'Instances in this cloud need a network: pass networks=[{"uuid": <network id>}] '
            f"(the project's network is {data.PRIVATE_NET!r}).",
        )
    if not isinstance(nets, list) or len(nets) != 1:
        raise nova_error(400, "The sandbox supports exactly one network per server.")
    net = nets[0]
    if "port" in net:
        raise nova_error(400, "Booting with a pre-created port is not supported by the sandbox; pass a network uuid.")
    net_rec = sb.state.table("networks").get(net.get("uuid", ""))
    if net_rec is None:
        raise nova_error(400, f"Network {net.get('uuid')} could not be found.")
    if net_rec["router:external"]:
        raise nova_error(
            403,
            f"Network {net_rec['id']} is not available for project {pid}: it is an external "
            "network; use a floating IP.",
        )
    return str(net_rec["id"])


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
    bdms = _parse_bdm(sb, body)
    image_id = str(body.get("imageRef") or "").rsplit("/", 1)[-1]
    boot = next((b for b in bdms if str(b["boot_index"]) == "0"), None)
    if boot is None:
        if image_id not in data.IMAGES:
            raise nova_error(
                400,
                "Can not find requested image"
                if image_id
                else "Block Device Mapping is Invalid: You specified more local devices than the limit allows",
            )
        if flavor["disk"] < data.IMAGES[image_id]["min_disk"]:
            raise nova_error(400, "Flavor's disk is too small for requested image.")
    elif image_id and image_id not in data.IMAGES:
        raise nova_error(400, "Can not find requested image")
    key_name = body.get("key_name")
    keypair = sb.state.table("keypairs").get(key_name) if key_name else None
    if key_name and keypair is None:
        raise nova_error(400, "Invalid key_name provided.")
    network_id = _network_id(sb, body)
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise nova_error(400, "Invalid input for field/attribute metadata.")
    if enforce_quota:
        quota_check(sb, {"instances": 1, "cores": flavor["vcpus"], "ram": flavor["ram"]})

    sid = new_id()
    now = now_iso()
    fail = None
    if sb.faults.fail_next_create:
        sb.faults.fail_next_create = False
        fail = "No valid host was found. There are not enough hosts available."
    volumes = []
    for i, b in enumerate(sorted(bdms, key=lambda b: int(b["boot_index"]) if str(b["boot_index"]).isdigit() else 99)):
        device = f"/dev/vd{chr(ord('a') + i)}"
        if b["source"] == "volume":
            vol = sb.state.table("volumes")[b["uuid"]]
            vol["status"] = "reserved"
        else:
            msg = volume.quota_error(sb, b["size"])
            if msg:
                fail = fail or f"Build of instance {sid} aborted: {msg}"
                continue
            vol = volume.new_volume(sb, b["size"], image_id=b["uuid"] if b["source"] == "image" else None)
            sb.later(sb.delays.volume_s, "volumes", vol["id"], "create")
        volumes.append(
            {
                "id": vol["id"],
                "device": device,
                "delete_on_termination": b["delete_on_termination"],
                "boot": str(b["boot_index"]) == "0",
            }
        )
    port = network.create_server_port(sb, sid, network_id)
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
        "fail_build": fail,
        "ssh": sb.ssh_hosts,
        "ssh_port": 0,
        "boots": [],
        "description": body.get("description"),
        "boot_image_id": image_id or (boot or {}).get("uuid") or "",
    }
    _set(srv, "BUILD", "spawning")
    sb.state.table("servers")[sid] = srv
    sb.later(sb.delays.build_s, "servers", sid, "build")
    sb.state.touch()
    return srv


# -- HTTP ---------------------------------------------------------------------------------------------


def register(router: Router, sb: Sandbox) -> None:
    base = r"/compute/v2\.1"
    srv_path = base + r"/servers/(?P<id>[^/]+)"

    def version_doc() -> dict[str, Any]:
        return {
            "id": "v2.1",
            "status": "CURRENT",
            "version": f"{MAX_VERSION[0]}.{MAX_VERSION[1]}",
            "min_version": "2.1",
            "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{sb.url}/compute/v2.1/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}],
        }

    def versions(req: Request) -> Response:
        v20 = {
            "id": "v2.0",
            "status": "SUPPORTED",
            "version": "",
            "min_version": "",
            "updated": "2011-01-21T11:33:21Z",
            "links": [{"rel": "self", "href": f"{sb.url}/compute/v2/"}],
        }
        return Response(300, {"versions": [v20, version_doc()]})

    def version(req: Request) -> Response:
        return Response(200, {"version": version_doc()})

    def ok(status: int, body: Any, mv: tuple[int, int]) -> Response:
        v = f"{mv[0]}.{mv[1]}"
        return Response(
            status,
            body,
            {
                "OpenStack-API-Version": f"compute {v}",
                "X-OpenStack-Nova-API-Version": v,
                "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
            },
        )

    def get_server(req: Request) -> Record:
        srv = sb.state.table("servers").get(req.params["id"])
        if srv is None:
            raise nova_error(404, f"Instance {req.params['id']} could not be found.")
        return srv

    # flavors
    def flavors(req: Request) -> Response:
        mv = microversion(req)
        flist = sorted(data.FLAVORS.values(), key=lambda f: f["name"])
        if req.path.endswith("/detail"):
            return ok(200, {"flavors": [render_flavor(sb, f, mv) for f in flist]}, mv)
        return ok(
            200,
            {
                "flavors": [
                    {
                        "id": f["id"],
                        "name": f["name"],
                        "links": _links(sb, "flavors", f["id"]),
                        **({"description": f["description"]} if mv >= (2, 55) else {}),
                    }
                    for f in flist
                ]
            },
            mv,
        )

    def flavor(req: Request) -> Response:
        mv = microversion(req)
        f = data.FLAVORS.get(req.params["fid"])
        if f is None:
            raise nova_error(404, f"Flavor {req.params['fid']} could not be found.")
        return ok(200, {"flavor": render_flavor(sb, f, mv)}, mv)

    def flavor_specs(req: Request) -> Response:
        if req.params["fid"] not in data.FLAVORS:
            raise nova_error(404, f"Flavor {req.params['fid']} could not be found.")
        return ok(200, {"extra_specs": {}}, microversion(req))

    # keypairs
    def keypairs(req: Request) -> Response:
        mv = microversion(req)
        with sb.state.lock:
            kps = sorted(sb.state.table("keypairs").values(), key=lambda k: k["name"])
            return ok(200, {"keypairs": [{"keypair": render_keypair(k, mv, sb)} for k in kps]}, mv)

    def keypair(req: Request) -> Response:
        mv = microversion(req)
        kp = sb.state.table("keypairs").get(req.params["name"])
        if kp is None:
            raise nova_error(404, f"Keypair {req.params['name']} not found for user {sb.state.data['user_id']}")
        return ok(200, {"keypair": render_keypair(kp, mv, sb, full=True)}, mv)

    def create_keypair(req: Request) -> Response:
        mv = microversion(req)
        body = (req.body or {}).get("keypair") or {}
        name = body.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9 _.@-]{1,255}", name):
            raise nova_error(400, "Keypair data is invalid: Keypair name contains unsafe characters")
        public_key = body.get("public_key")
        private_key = None
        if public_key is None:
            if mv >= (2, 92):
                raise nova_error(
                    400, "Invalid input for field/attribute keypair. Value: {}. 'public_key' is a required property"
                )
            private_key, public_key = sb.generate_keypair(name)
        try:
            fingerprint = _fingerprint(public_key)
        except (IndexError, ValueError):
            raise nova_error(400, "Keypair data is invalid: failed to generate fingerprint") from None
        with sb.state.lock:
            kps = sb.state.table("keypairs")
            if name in kps:
                raise nova_error(409, f"Key pair '{name}' already exists.")
            if 0 <= sb.quota()["key_pairs"] <= len(kps):
                raise nova_error(403, "Quota exceeded, too many key pairs.")
            kp = {
                "name": name,
                "public_key": public_key.strip(),
                "fingerprint": fingerprint,
                "type": body.get("type", "ssh"),
                "created_at": now_usec(),
                "id": len(kps) + 1,
            }
            kps[name] = kp
            sb.state.touch()
        out = render_keypair(kp, mv, sb)
        out["user_id"] = sb.state.data["user_id"]
        if private_key:
            out["private_key"] = private_key
        return ok(201 if mv >= (2, 2) else 200, {"keypair": out}, mv)

    def delete_keypair(req: Request) -> Response:
        mv = microversion(req)
        with sb.state.lock:
            if sb.state.table("keypairs").pop(req.params["name"], None) is None:
                raise nova_error(404, f"Keypair {req.params['name']} not found for user {sb.state.data['user_id']}")
            sb.state.touch()
        return ok(204 if mv >= (2, 2) else 202, None, mv)

    # limits, zones
    def limits(req: Request) -> Response:
        mv = microversion(req)
        q = sb.quota()
        with sb.state.lock:
            used = usage(sb)
        absolute = {
            "maxTotalRAMSize": q["ram_mb"],
            "maxTotalCores": q["cores"],
            "maxTotalInstances": q["instances"],
            "maxServerMeta": q["metadata_items"],
            "maxTotalKeypairs": q["key_pairs"],
            "maxServerGroups": q["server_groups"],
            "maxServerGroupMembers": q["server_group_members"],
            "totalRAMUsed": used["ram"],
            "totalCoresUsed": used["cores"],
            "totalInstancesUsed": used["instances"],
            "totalServerGroupsUsed": 0,
        }
        if mv < (2, 57):
            absolute.update(maxPersonality=5, maxPersonalitySize=10240)
        if mv < (2, 36):
            absolute.update(
                maxTotalFloatingIps=-1,
                maxSecurityGroups=-1,
                maxSecurityGroupRules=-1,
                totalFloatingIpsUsed=0,
                totalSecurityGroupsUsed=0,
            )
        return ok(200, {"limits": {"rate": [], "absolute": absolute}}, mv)

    def zones(req: Request) -> Response:
        return ok(
            200,
            {"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]},
            microversion(req),
        )

    # servers
    def list_servers(req: Request) -> Response:
        mv = microversion(req)
        detail = req.path.endswith("/detail")
        try:
            limit = min(int(req.arg("limit") or MAX_LIMIT), MAX_LIMIT)
        except ValueError:
            raise nova_error(400, "Invalid input for query parameters limit.") from None
        name_re = req.arg("name")
        status = (req.arg("status") or "").upper()
        flavor_id = req.arg("flavor")
        marker = req.arg("marker")
        with sb.state.lock:
            servers = sorted(sb.state.table("servers").values(), key=lambda s: (s["created"], s["id"]), reverse=True)
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
            more = len(servers) > limit
            servers = servers[:limit]
            if detail:
                fips = fips_by_port(sb)
                items = [render_server(sb, s, mv, fips) for s in servers]
            else:
                items = [{"id": s["id"], "name": s["name"], "links": _links(sb, "servers", s["id"])} for s in servers]
        body: dict[str, Any] = {"servers": items}
        if more and items:
            params = [f"{k}={v[-1]}" for k, v in req.query.items() if k not in ("marker", "limit")]
            params += [f"limit={limit}", f"marker={items[-1]['id']}"]
            body["servers_links"] = [{"rel": "next", "href": f"{sb.url}{req.path}?{'&'.join(params)}"}]
        return ok(200, body, mv)

    def show_server(req: Request) -> Response:
        mv = microversion(req)
        with sb.state.lock:
            srv = get_server(req)
            return ok(200, {"server": render_server(sb, srv, mv, fips_by_port(sb))}, mv)

    def post_server(req: Request) -> Response:
        mv = microversion(req)
        body = (req.body or {}).get("server")
        if not isinstance(body, dict):
            raise nova_error(400, "Invalid input for field/attribute server.")
        with sb.state.lock:
            srv = create_server(sb, body)
        out = {
            "id": srv["id"],
            "links": _links(sb, "servers", srv["id"]),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": "default"}],
            "adminPass": secrets.token_urlsafe(9),
        }
        resp = ok(202, {"server": out}, mv)
        resp.headers["Location"] = f"{sb.url}/compute/v2.1/servers/{srv['id']}"
        return resp

    def delete_server(req: Request) -> Response:
        mv = microversion(req)
        with sb.state.lock:
            srv = get_server(req)
            if srv["task_state"] != "deleting":
                srv["task_state"] = "deleting"
                srv["updated"] = now_iso()
                sb.later(sb.delays.delete_s, "servers", srv["id"], "delete")
                sb.state.touch()
        return ok(204, None, mv)

    def action(req: Request) -> Response:
        mv = microversion(req)
        body = req.body if isinstance(req.body, dict) else {}
        if len(body) != 1:
            raise nova_error(400, "There is no such action: " + ",".join(body) if body else "Malformed request body")
        name, arg = next(iter(body.items()))
        with sb.state.lock:
            srv = get_server(req)
            if name == "os-getConsoleOutput":
                length = (arg or {}).get("length")
                return ok(200, {"output": _console(sb, srv, None if length is None else int(length))}, mv)
            if srv["task_state"] is not None or srv.get("pending"):
                raise nova_error(
                    409, f"Cannot '{name}' instance {srv['id']} while it is in task_state {srv['task_state'] or 'busy'}"
                )

            def need(*states: str) -> None:
                if srv["status"] not in states:
                    raise nova_error(
                        409, f"Cannot '{name}' instance {srv['id']} while it is in vm_state {srv['vm_state']}"
                    )

            if name == "os-stop":
                need("ACTIVE", "ERROR")
                srv["task_state"] = "powering-off"
                sb.later(sb.delays.stop_s, "servers", srv["id"], "stop")
            elif name == "os-start":
                need("SHUTOFF")
                srv["task_state"] = "powering-on"
                sb.later(sb.delays.start_s, "servers", srv["id"], "start")
            elif name == "reboot":
                need("ACTIVE", "SHUTOFF", "ERROR")
                hard = str((arg or {}).get("type", "SOFT")).upper() == "HARD"
                _set(srv, "HARD_REBOOT" if hard else "REBOOT", "reboot_started_hard" if hard else "reboot_started")
                sb.later(sb.delays.reboot_s, "servers", srv["id"], "reboot")
            elif name == "resize":
                need("ACTIVE", "SHUTOFF")
                ref = str((arg or {}).get("flavorRef", "")).rsplit("/", 1)[-1]
                new = data.FLAVORS.get(ref)
                if new is None:
                    raise nova_error(400, f"Flavor {ref} could not be found." if ref else "Invalid flavorRef provided.")
                old = data.FLAVORS[srv["flavor_id"]]
                if new["id"] == old["id"]:
                    raise nova_error(400, "When resizing, instances must change flavor!")
                if srv["image_id"] and new["disk"] < old["disk"]:
                    raise nova_error(400, "Resize error: Unable to resize disk down.")
                quota_check(sb, {"cores": new["vcpus"] - old["vcpus"], "ram": new["ram"] - old["ram"]})
                srv["resize_from"] = srv["status"]
                srv["old_flavor_id"] = old["id"]
                srv["flavor_id"] = new["id"]
                _set(srv, "RESIZE", "resize_migrating")
                sb.later(sb.delays.resize_s, "servers", srv["id"], "resize")
            elif name == "confirmResize":
                need("VERIFY_RESIZE")
                srv.pop("old_flavor_id", None)
                _set(srv, srv.pop("resize_from", "ACTIVE"))
                sb.state.touch()
                return ok(204, None, mv)
            elif name == "revertResize":
                need("VERIFY_RESIZE")
                _set(srv, "REVERT_RESIZE", "resize_reverting")
                sb.later(sb.delays.resize_s, "servers", srv["id"], "revert")
            else:
                raise nova_error(400, f"There is no such action: {name}")
            srv["updated"] = now_iso()
            sb.state.touch()
        return ok(202, None, mv)

    # metadata
    def get_metadata(req: Request) -> Response:
        with sb.state.lock:
            return ok(200, {"metadata": dict(get_server(req)["metadata"])}, microversion(req))

    def set_metadata(req: Request) -> Response:
        meta = (req.body or {}).get("metadata")
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise nova_error(400, "Malformed request body")
        with sb.state.lock:
            srv = get_server(req)
            if req.method == "PUT":
                srv["metadata"] = {k: v for k, v in srv["metadata"].items() if k in (META_SSH_PORT, META_SSH_USER)}
            srv["metadata"].update(meta)
            sb.state.touch()
            return ok(200, {"metadata": dict(srv["metadata"])}, microversion(req))

    def delete_metadata(req: Request) -> Response:
        with sb.state.lock:
            srv = get_server(req)
            if srv["metadata"].pop(req.params["key"], None) is None:
                raise nova_error(404, "Metadata item was not found")
            sb.state.touch()
        return ok(204, None, microversion(req))

    # volume attachments
    def render_att(srv: Record, att: dict[str, Any], mv: tuple[int, int]) -> dict[str, Any]:
        out = {"id": att["id"], "volumeId": att["id"], "serverId": srv["id"], "device": att["device"]}
        if mv >= (2, 70):
            out["tag"] = None
        if mv >= (2, 79):
            out["delete_on_termination"] = att["delete_on_termination"]
        if mv >= (2, 89):
            vol = sb.state.table("volumes").get(att["id"]) or {}
            out["attachment_id"] = next((a["attachment_id"] for a in vol.get("attachments", [])), None)
            out["bdm_uuid"] = data.stable_id(f"bdm:{srv['id']}:{att['id']}")
            del out["id"]
        return out

    def list_attachments(req: Request) -> Response:
        mv = microversion(req)
        with sb.state.lock:
            srv = get_server(req)
            return ok(200, {"volumeAttachments": [render_att(srv, a, mv) for a in srv["volumes"]]}, mv)

    def show_attachment(req: Request) -> Response:
        mv = microversion(req)
        with sb.state.lock:
            srv = get_server(req)
            att = next((a for a in srv["volumes"] if a["id"] == req.params["vid"]), None)
            if att is None:
                raise nova_error(404, f"Volume {req.params['vid']} is not attached to the instance")
            return ok(200, {"volumeAttachment": render_att(srv, att, mv)}, mv)

    def attach(req: Request) -> Response:
        mv = microversion(req)
        body = (req.body or {}).get("volumeAttachment") or {}
        vid = body.get("volumeId", "")
        with sb.state.lock:
            srv = get_server(req)
            if srv["status"] not in ("ACTIVE", "SHUTOFF") or srv["task_state"]:
                raise nova_error(
                    409, f"Cannot 'attach_volume' instance {srv['id']} while it is in vm_state {srv['vm_state']}"
                )
            vol = sb.state.table("volumes").get(vid)
            if vol is None:
                raise nova_error(404, f"Volume {vid} could not be found.")
            if vol["status"] != "available":
                raise nova_error(
                    400, f"Invalid volume: volume '{vid}' status must be 'available'. Currently in '{vol['status']}'"
                )
            used = {a["device"] for a in srv["volumes"]}
            device = next(f"/dev/vd{c}" for c in "abcdefghijklmnopqrstuvwxyz" if f"/dev/vd{c}" not in used)
            att = {
                "id": vid,
                "device": device,
                "boot": False,
                "delete_on_termination": bool(body.get("delete_on_termination", False)),
            }
            srv["volumes"].append(att)
            volume.attach(vol, srv["id"], device)
            vol["status"] = "attaching"
            sb.later(sb.delays.volume_s, "volumes", vid, "attach")
            sb.state.touch()
            return ok(200, {"volumeAttachment": render_att(srv, att, mv)}, mv)

    def detach(req: Request) -> Response:
        mv = microversion(req)
        with sb.state.lock:
            srv = get_server(req)
            att = next((a for a in srv["volumes"] if a["id"] == req.params["vid"]), None)
            if att is None:
                raise nova_error(404, f"Volume {req.params['vid']} is not attached to the instance")
            if att["boot"]:
                raise nova_error(400, "Can't detach root device volume")
            srv["volumes"].remove(att)
            vol = sb.state.table("volumes").get(att["id"])
            if vol is not None:
                vol["status"] = "detaching"
                sb.later(sb.delays.volume_s, "volumes", vol["id"], "detach")
            sb.state.touch()
        return ok(202, None, mv)

    router.add("GET", r"/compute", versions, auth=False)
    router.add("GET", base, version, auth=False)
    router.add("GET", base + r"/flavors(?:/detail)?", flavors)
    router.add("GET", base + r"/flavors/(?P<fid>[^/]+)", flavor)
    router.add("GET", base + r"/flavors/(?P<fid>[^/]+)/os-extra_specs", flavor_specs)
    router.add("GET", base + r"/os-keypairs", keypairs)
    router.add("POST", base + r"/os-keypairs", create_keypair)
    router.add("GET", base + r"/os-keypairs/(?P<name>[^/]+)", keypair)
    router.add("DELETE", base + r"/os-keypairs/(?P<name>[^/]+)", delete_keypair)
    router.add("GET", base + r"/limits", limits)
    router.add("GET", base + r"/os-availability-zone(?:/detail)?", zones)
    router.add("GET", base + r"/servers(?:/detail)?", list_servers)
    router.add("POST", base + r"/servers", post_server)
    router.add("GET", srv_path, show_server)
    router.add("DELETE", srv_path, delete_server)
    router.add("POST", srv_path + r"/action", action)
    router.add("GET", srv_path + r"/metadata", get_metadata)
    router.add("POST", srv_path + r"/metadata", set_metadata)
    router.add("PUT", srv_path + r"/metadata", set_metadata)
    router.add("DELETE", srv_path + r"/metadata/(?P<key>[^/]+)", delete_metadata)
    router.add("GET", srv_path + r"/os-volume_attachments", list_attachments)
    router.add("POST", srv_path + r"/os-volume_attachments", attach)
    router.add("GET", srv_path + r"/os-volume_attachments/(?P<vid>[^/]+)", show_attachment)
    router.add("DELETE", srv_path + r"/os-volume_attachments/(?P<vid>[^/]+)", detach)


def _console(sb: Sandbox, srv: Record, length: int | None) -> str:
    image = data.IMAGES.get(srv.get("boot_image_id") or "") or next(iter(data.IMAGES.values()))
    port = sb.state.table("ports").get(srv["port_id"] or "")
    ip = port["fixed_ips"][0]["ip_address"] if port else ""
    host_key = sb.host_public_key(srv["id"]) if sb.faults.console_host_keys else None
    return console_log(srv, image, data.FLAVORS[srv["flavor_id"]], ip, host_key, length)
