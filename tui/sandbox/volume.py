"""Cinder v3: volumes (create/list/get/delete, attach state), types, limits."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tui.sandbox import data, snapshot
from tui.sandbox.router import HTTPError, Request, Response, Route, Router, mount
from tui.sandbox.state import Record, new_id, now_usec

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox

MAX_VERSION = "3.71"
VOLUME_TYPE = {
    "id": data.stable_id("volume-type:__DEFAULT__"),
    "name": "__DEFAULT__",
    "description": "Default Volume Type",
    "is_public": True,
    "extra_specs": {},
    "qos_specs_id": None,
    "os-volume-type-access:is_public": True,
}


def cinder_error(status: int, message: str) -> HTTPError:
    key = {400: "badRequest", 404: "itemNotFound", 409: "conflictingRequest", 413: "overLimit"}.get(status, "error")
    return HTTPError(status, {key: {"code": status, "message": message}})


def usage(sb: Sandbox) -> tuple[int, int]:
    """(volumes, gigabytes) in use."""
    vols = sb.state.table("volumes").values()
    snaps = sb.state.table("snapshots").values()  # snapshots count against gigabytes, as Cinder's default
    return len(vols), sum(int(v["size"]) for v in vols) + sum(int(s["size"]) for s in snaps)


def quota_error(sb: Sandbox, size: int) -> str | None:
    """Cinder's message when one more volume of `size` GB does not fit, else None."""
    q = sb.quota()
    count, gigabytes = usage(sb)
    if 0 <= q["volumes"] < count + 1:
        return f"VolumeLimitExceeded: Maximum number of volumes allowed ({q['volumes']}) exceeded for quota 'volumes'."
    if 0 <= q["gigabytes"] < gigabytes + size:
        return (
            "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. "
            f"Requested {size}G, quota is {q['gigabytes']}G and {gigabytes}G has been consumed."
        )
    return None


def new_volume(
    sb: Sandbox,
    size: int,
    name: str = "",
    description: str = "",
    image_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Record:
    """A volume in `creating`; the caller schedules it. Call under the lock."""
    now = now_usec()
    vol: Record = {
        "id": new_id(),
        "name": name,
        "description": description,
        "size": size,
        "status": "creating",
        "created_at": now,
        "updated_at": now,
        "bootable": image_id is not None,
        "image_id": image_id,
        "attachments": [],
        "metadata": metadata or {},
        "pending": None,
    }
    sb.state.table("volumes")[vol["id"]] = vol
    return vol


def attach(vol: Record, server_id: str, device: str) -> None:
    vol["attachments"] = [
        {"server_id": server_id, "attachment_id": new_id(), "device": device, "attached_at": now_usec()}
    ]
    vol["status"] = "in-use"
    vol["updated_at"] = now_usec()


def detach(vol: Record) -> None:
    vol["attachments"] = []
    vol["status"] = "available"
    vol["updated_at"] = now_usec()


def advance(sb: Sandbox, vid: str, action: str) -> None:
    """Finish a delayed volume transition (scheduler thread)."""
    with sb.state.lock:
        vol = sb.state.table("volumes").get(vid)
        if vol is None or vol.get("pending") != action:
            return
        vol["pending"] = None
        if action == "create":
            vol["status"] = "available"
        elif action == "attach":
            vol["status"] = "in-use"
        elif action == "detach":
            detach(vol)
        elif action == "delete":
            del sb.state.table("volumes")[vid]
        vol["updated_at"] = now_usec()
        sb.state.touch()


def microversion(req: Request) -> tuple[int, int]:
    """The Cinder microversion asked for (3.0 when none), or Cinder's 400/406."""
    raw = req.headers.get("openstack-api-version", "")
    parts = raw.split()
    value = parts[1] if len(parts) > 1 and parts[0] == "volume" else ""
    if not value:
        return (3, 0)
    if value == "latest":
        value = MAX_VERSION
    m = re.fullmatch(r"3\.(\d+)", value.strip())
    if not m:
        raise cinder_error(400, f"Invalid API version request: {value}")
    got = (3, int(m[1]))
    if got > _MAX:
        message = f"Version {value} is not supported by the API. Minimum is 3.0 and maximum is {MAX_VERSION}."
        raise HTTPError(406, {"computeFault": {"code": 406, "message": message}})
    return got


def _headers(mv: tuple[int, int]) -> dict[str, str]:
    return {"OpenStack-API-Version": f"volume {mv[0]}.{mv[1]}", "Vary": "OpenStack-API-Version"}


def render(sb: Sandbox, vol: Record, mv: tuple[int, int] = (3, 0)) -> dict[str, Any]:
    """A volume as Cinder shows it to its (non-admin) owner at microversion `mv`: the v3 view builder adds
    group_id (3.13), shared_targets and service_uuid (3.48), volume_type_id (3.63), consumes_quota (3.65);
    provider_id (3.21), cluster_name (3.61), migration_status and os-vol-host-attr are admin-only."""
    pid = sb.state.data["project_id"]
    out = {
        "id": vol["id"],
        "name": vol["name"],
        "description": vol["description"],
        "size": vol["size"],
        "status": vol["status"],
        "created_at": vol["created_at"],
        "updated_at": vol["updated_at"],
        "availability_zone": "nova",
        "bootable": "true" if vol["bootable"] else "false",
        "encrypted": False,
        "multiattach": False,
        "volume_type": VOLUME_TYPE["name"],
        "snapshot_id": vol.get("snapshot_id"),
        "source_volid": None,
        "metadata": vol["metadata"],
        "user_id": sb.state.data["user_id"],
        "os-vol-tenant-attr:tenant_id": pid,
        "replication_status": None,
        "consistencygroup_id": None,
        "links": [{"rel": "self", "href": f"{sb.url}/volume/v3/{pid}/volumes/{vol['id']}"}],
        "attachments": [
            {
                "id": vol["id"],
                "attachment_id": a["attachment_id"],
                "volume_id": vol["id"],
                "server_id": a["server_id"],
                "host_name": None,
                "device": a["device"],
                "attached_at": a["attached_at"],
            }
            for a in vol["attachments"]
        ],
    }
    if mv >= (3, 13):
        out["group_id"] = None
    if mv >= (3, 48):
        out["shared_targets"] = True
        out["service_uuid"] = data.stable_id("cinder-volume:sandbox@lvm")
    if mv >= (3, 63):
        out["volume_type_id"] = VOLUME_TYPE["id"]
    if mv >= (3, 65):
        out["consumes_quota"] = True
    image = snapshot.find_image(sb, vol["image_id"] or "", active=False)
    if image is not None:
        props = {**image, **(image.get("properties") or {})}
        out["volume_image_metadata"] = {
            "image_id": image["id"],
            "image_name": image["name"],
            "os_distro": props.get("os_distro", ""),
            "os_version": props.get("os_version", ""),
            "min_disk": str(image["min_disk"]),
            "size": str(image["size"] or 0),
        }
    return out


BASE = r"/volume/v3/(?P<pid>[0-9a-f]+)"
_MAX = (3, int(MAX_VERSION.split(".")[1]))


def versions(sb: Sandbox, req: Request) -> Response:
    doc = {
        "id": "v3.0",
        "status": "CURRENT",
        "version": MAX_VERSION,
        "min_version": "3.0",
        "updated": "2023-08-31T00:00:00Z",
        "links": [{"rel": "self", "href": f"{sb.url}/volume/v3/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}],
    }
    return Response(300, {"versions": [doc]})


def _project(sb: Sandbox, req: Request) -> None:
    if req.params["pid"] != sb.state.data["project_id"]:
        raise HTTPError(403, {"forbidden": {"code": 403, "message": "Policy doesn't allow this project."}})


def _get(sb: Sandbox, req: Request) -> Record:
    _project(sb, req)
    vol = sb.state.table("volumes").get(req.params["id"])
    if vol is None:
        raise cinder_error(404, f"Volume {req.params['id']} could not be found.")
    return vol


def list_volumes(sb: Sandbox, req: Request) -> Response:
    _project(sb, req)
    mv = microversion(req)
    pid = req.params["pid"]
    with sb.state.lock:
        vols = sorted(sb.state.table("volumes").values(), key=lambda v: (v["created_at"], v["id"]), reverse=True)
        for key in ("name", "status"):
            wanted = req.arg(key)
            if wanted is not None:
                vols = [v for v in vols if v[key] == wanted]
        if req.path.endswith("/detail"):
            return Response(200, {"volumes": [render(sb, v, mv) for v in vols]}, _headers(mv))
        brief = [
            {
                "id": v["id"],
                "name": v["name"],
                "links": [{"rel": "self", "href": f"{sb.url}/volume/v3/{pid}/volumes/{v['id']}"}],
            }
            for v in vols
        ]
        return Response(200, {"volumes": brief}, _headers(mv))


def show_volume(sb: Sandbox, req: Request) -> Response:
    mv = microversion(req)
    with sb.state.lock:
        return Response(200, {"volume": render(sb, _get(sb, req), mv)}, _headers(mv))


def _size(body: dict[str, Any]) -> int:
    try:
        size = int(body.get("size", ""))
    except (TypeError, ValueError):
        raise cinder_error(
            400, f"Invalid input received: Volume size '{body.get('size')}' must be an integer and greater than 0."
        ) from None
    if size <= 0:
        raise cinder_error(400, f"Invalid input received: Volume size '{size}' must be an integer and greater than 0.")
    return size


def create_volume(sb: Sandbox, req: Request) -> Response:
    _project(sb, req)
    body = (req.body or {}).get("volume")
    if not isinstance(body, dict):
        raise cinder_error(400, "Missing required element 'volume' in request body.")
    size = _size(body)
    mv = microversion(req)
    image_id = body.get("imageRef") or body.get("image_id")
    with sb.state.lock:
        unknown = bool(image_id) and snapshot.find_image(sb, str(image_id)) is None
    if unknown:
        raise cinder_error(400, "Invalid image identifier or unable to access requested image. (HTTP 400)")
    with sb.state.lock:
        msg = quota_error(sb, size)
        if msg:
            raise HTTPError(413, {"overLimit": {"code": 413, "message": msg, "retryAfter": "0"}})
        vol = new_volume(
            sb, size, body.get("name") or "", body.get("description") or "", image_id, body.get("metadata") or {}
        )
        sb.later(sb.delays.volume_s, "volumes", vol["id"], "create")
        sb.state.touch()
        shown = render(sb, vol, mv)
        del shown["os-vol-tenant-attr:tenant_id"]  # real Cinder adds it to show and list only, not to create's answer
        return Response(202, {"volume": shown}, _headers(mv))


def delete_volume(sb: Sandbox, req: Request) -> Response:
    with sb.state.lock:
        vol = _get(sb, req)
        if vol["status"] not in ("available", "error") or vol["attachments"] or snapshot.snapshots_of(sb, vol["id"]):
            raise cinder_error(
                400,
                "Invalid volume: Volume status must be available or error or error_restoring "
                "or error_extending or error_managing and must not be migrating, attached, "
                "belong to a group, have snapshots, awaiting a transfer, or be disassociated "
                "from snapshots after volume transfer.",
            )
        vol["status"] = "deleting"
        sb.later(sb.delays.volume_s, "volumes", vol["id"], "delete")
        sb.state.touch()
    return Response(202, None, _headers(microversion(req)))


def types(sb: Sandbox, req: Request) -> Response:
    return Response(200, {"volume_types": [VOLUME_TYPE]}, _headers(microversion(req)))


def default_type(sb: Sandbox, req: Request) -> Response:
    return Response(200, {"volume_type": VOLUME_TYPE}, _headers(microversion(req)))


def limits(sb: Sandbox, req: Request) -> Response:
    q = sb.quota()
    with sb.state.lock:
        count, gigabytes = usage(sb)
        snapshots = len(sb.state.table("snapshots"))
    absolute = {
        "maxTotalVolumes": q["volumes"],
        "maxTotalVolumeGigabytes": q["gigabytes"],
        "maxTotalSnapshots": q["snapshots"],
        "maxTotalBackups": q["backups"],
        "maxTotalBackupGigabytes": q["backup_gigabytes"],
        "totalVolumesUsed": count,
        "totalGigabytesUsed": gigabytes,
        "totalSnapshotsUsed": snapshots,
        "totalBackupsUsed": 0,
        "totalBackupGigabytesUsed": 0,
    }
    return Response(200, {"limits": {"rate": [], "absolute": absolute}}, _headers(microversion(req)))


def zones(sb: Sandbox, req: Request) -> Response:
    return Response(
        200,
        {"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True}}]},
        _headers(microversion(req)),
    )


ROUTES = [
    Route("GET", r"/volume", versions, auth=False),
    Route("GET", r"/volume/v3", versions, auth=False),
    Route("GET", BASE + r"/volumes(?:/detail)?", list_volumes),
    Route("POST", BASE + r"/volumes", create_volume),
    Route("GET", BASE + r"/volumes/(?P<id>[^/]+)", show_volume),
    Route("DELETE", BASE + r"/volumes/(?P<id>[^/]+)", delete_volume),
    Route("GET", BASE + r"/types", types),
    Route("GET", BASE + r"/types/default", default_type),
    Route("GET", BASE + r"/limits", limits),
    Route("GET", BASE + r"/os-availability-zone", zones),
]


def register(router: Router, sb: Sandbox) -> None:
    mount(router, sb, ROUTES)
