"""The project's own images in Glance v2 (as Glance shows them: extra properties at the top level; delete; the
`/v2/info/usage` quota) and Cinder v3's volume snapshots (list, show, delete) — what createImage makes."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from tui.sandbox import snapshot
from tui.sandbox.router import Request, Response, Route, Router, mount
from tui.sandbox.state import Record, now_usec
from tui.sandbox.volume import BASE as VOLUME_BASE
from tui.sandbox.volume import _headers, _project, cinder_error, microversion

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox

_INTERNAL = ("server_id", "disk", "pending", "pending_due", "properties")


def render_image(rec: Record) -> dict[str, Any]:
    """A project image as Glance v2 shows it."""
    out = {k: v for k, v in rec.items() if k not in _INTERNAL}
    out.update(rec.get("properties") or {})
    out.update(protected=False, os_hidden=False, tags=[], virtual_size=None,
               os_hash_algo="sha512" if rec["checksum"] else None,
               os_hash_value=(rec["checksum"] * 4) if rec["checksum"] else None,
               self=f"/v2/images/{rec['id']}", file=f"/v2/images/{rec['id']}/file", schema="/v2/schemas/image")
    return out


def glance_images(sb: Sandbox) -> list[dict[str, Any]]:
    """The project's images, rendered (the public ones are `data.IMAGES`)."""
    with sb.state.lock:
        return [render_image(r) for r in sb.state.table("images").values()]


def show(sb: Sandbox, image_id: str) -> dict[str, Any] | None:
    with sb.state.lock:
        rec = sb.state.table("images").get(image_id)
        return render_image(rec) if rec is not None else None


def delete_image(sb: Sandbox, req: Request) -> Response:
    """Glance's delete: the image and its data go at once; volume snapshots it maps stay (as Glance)."""
    from tui.sandbox.image import _not_found

    with sb.state.lock:
        rec = sb.state.table("images").pop(req.params["id"], None)
        if rec is None:
            raise _not_found(req.params["id"])
        sb.state.touch()
    threading.Thread(target=snapshot.drop_disk, args=(sb, rec), daemon=True).start()
    return Response(204, None)


def usage(sb: Sandbox, req: Request) -> Response:
    """Glance's `/v2/info/usage` (unified limits): the image quota and what the project uses of it."""
    q = sb.quota()
    with sb.state.lock:
        images = list(sb.state.table("images").values())
    size = sum(int(i["size"] or 0) for i in images)
    uploading = sum(1 for i in images if i["status"] in ("queued", "saving"))
    return Response(200, {"usage": {
        "image_size_total": {"limit": -1, "usage": size // (1024 * 1024)},
        "image_stage_total": {"limit": -1, "usage": 0},
        "image_count_total": {"limit": q["image_count_total"], "usage": len(images)},
        "image_count_uploading": {"limit": -1, "usage": uploading},
    }})


# -- Cinder snapshots -----------------------------------------------------------------------------------------


def render_snapshot(sb: Sandbox, snap: Record, mv: tuple[int, int]) -> dict[str, Any]:
    out = {k: snap[k] for k in ("id", "name", "description", "volume_id", "size", "status", "created_at",
                                "updated_at", "metadata")}
    out["os-extended-snapshot-attributes:progress"] = snap["progress"]
    out["os-extended-snapshot-attributes:project_id"] = sb.state.data["project_id"]
    if mv >= (3, 41):
        out["user_id"] = sb.state.data["user_id"]
    if mv >= (3, 65):
        out["consumes_quota"] = True
    return out


def _get(sb: Sandbox, req: Request) -> Record:
    _project(sb, req)
    snap = sb.state.table("snapshots").get(req.params["id"])
    if snap is None:
        raise cinder_error(404, f"Snapshot {req.params['id']} could not be found.")
    return snap


def list_snapshots(sb: Sandbox, req: Request) -> Response:
    _project(sb, req)
    mv = microversion(req)
    with sb.state.lock:
        snaps = sorted(sb.state.table("snapshots").values(), key=lambda s: (s["created_at"], s["id"]), reverse=True)
        for key in ("name", "status", "volume_id"):
            wanted = req.arg(key)
            if wanted is not None:
                snaps = [s for s in snaps if s[key] == wanted]
        return Response(200, {"snapshots": [render_snapshot(sb, s, mv) for s in snaps]}, _headers(mv))


def show_snapshot(sb: Sandbox, req: Request) -> Response:
    mv = microversion(req)
    with sb.state.lock:
        return Response(200, {"snapshot": render_snapshot(sb, _get(sb, req), mv)}, _headers(mv))


def delete_snapshot(sb: Sandbox, req: Request) -> Response:
    with sb.state.lock:
        snap = _get(sb, req)
        if snap["status"] not in ("available", "error"):
            raise cinder_error(400, "Invalid snapshot: Volume Snapshot status must be available or error and must "
                                    "not be part of a group.")
        snap["status"] = "deleting"
        snap["updated_at"] = now_usec()
        sb.later(sb.delays.volume_s, "snapshots", snap["id"], "delete")
        sb.state.touch()
    return Response(202, None, _headers(microversion(req)))


ROUTES = [
    Route("GET", VOLUME_BASE + r"/snapshots(?:/detail)?", list_snapshots),
    Route("GET", VOLUME_BASE + r"/snapshots/(?P<id>[^/]+)", show_snapshot),
    Route("DELETE", VOLUME_BASE + r"/snapshots/(?P<id>[^/]+)", delete_snapshot),
    Route("DELETE", r"/image/v2/images/(?P<id>[^/]+)", delete_image),
    Route("GET", r"/image/v2/info/usage", usage),
]


def register(router: Router, sb: Sandbox) -> None:
    mount(router, sb, ROUTES)

