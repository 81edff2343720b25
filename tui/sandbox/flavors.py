"""Nova's read-only catalogue: API versions, flavors, limits and availability zones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tui.sandbox import data
from tui.sandbox.nova import MAX_VERSION, links, microversion, nova_error, ok, usage
from tui.sandbox.router import Request, Response

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox


def _version_doc(sb: Sandbox) -> dict[str, Any]:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": f"{MAX_VERSION[0]}.{MAX_VERSION[1]}",
        "min_version": "2.1",
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": f"{sb.url}/compute/v2.1/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}],
    }


def versions(sb: Sandbox, req: Request) -> Response:
    v20 = {
        "id": "v2.0",
        "status": "SUPPORTED",
        "version": "",
        "min_version": "",
        "updated": "2011-01-21T11:33:21Z",
        "links": [{"rel": "self", "href": f"{sb.url}/compute/v2/"}],
    }
    return Response(300, {"versions": [v20, _version_doc(sb)]})


def version(sb: Sandbox, req: Request) -> Response:
    return Response(200, {"version": _version_doc(sb)})


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
        "links": links(sb, "flavors", f["id"]),
    }
    if mv >= (2, 55):
        out["description"] = f["description"]
    if mv >= (2, 61):
        out["extra_specs"] = {}
    return out


def list_flavors(sb: Sandbox, req: Request) -> Response:
    mv = microversion(req)
    flist = sorted(data.FLAVORS.values(), key=lambda f: f["name"])
    if req.path.endswith("/detail"):
        return ok(200, {"flavors": [render_flavor(sb, f, mv) for f in flist]}, mv)
    brief = [
        {
            "id": f["id"],
            "name": f["name"],
            "links": links(sb, "flavors", f["id"]),
            **({"description": f["description"]} if mv >= (2, 55) else {}),
        }
        for f in flist
    ]
    return ok(200, {"flavors": brief}, mv)


def show_flavor(sb: Sandbox, req: Request) -> Response:
    mv = microversion(req)
    f = data.FLAVORS.get(req.params["fid"])
    if f is None:
        raise nova_error(404, f"Flavor {req.params['fid']} could not be found.")
    return ok(200, {"flavor": render_flavor(sb, f, mv)}, mv)


def flavor_specs(sb: Sandbox, req: Request) -> Response:
    if req.params["fid"] not in data.FLAVORS:
        raise nova_error(404, f"Flavor {req.params['fid']} could not be found.")
    return ok(200, {"extra_specs": {}}, microversion(req))


def limits(sb: Sandbox, req: Request) -> Response:
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


def zones(sb: Sandbox, req: Request) -> Response:
    return ok(
        200,
        {"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]},
        microversion(req),
    )
