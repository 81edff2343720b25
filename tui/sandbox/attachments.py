"""Nova volume attachments: list, show, attach and detach a Cinder volume on a server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tui.sandbox import data, volume
from tui.sandbox.nova import Version, get_server, microversion, nova_error, ok
from tui.sandbox.router import Request, Response
from tui.sandbox.state import Record

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox


def render_attachment(sb: Sandbox, srv: Record, att: dict[str, Any], mv: Version) -> dict[str, Any]:
    out: dict[str, Any] = {"id": att["id"], "volumeId": att["id"], "serverId": srv["id"], "device": att["device"]}
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


def _find(srv: Record, vid: str) -> dict[str, Any]:
    att: dict[str, Any] | None = next((a for a in srv["volumes"] if a["id"] == vid), None)
    if att is None:
        raise nova_error(404, f"Volume {vid} is not attached to the instance")
    return att


def list_attachments(sb: Sandbox, req: Request) -> Response:
    mv = microversion(req)
    with sb.state.lock:
        srv = get_server(sb, req)
        return ok(200, {"volumeAttachments": [render_attachment(sb, srv, a, mv) for a in srv["volumes"]]}, mv)


def show_attachment(sb: Sandbox, req: Request) -> Response:
    mv = microversion(req)
    with sb.state.lock:
        srv = get_server(sb, req)
        return ok(200, {"volumeAttachment": render_attachment(sb, srv, _find(srv, req.params["vid"]), mv)}, mv)


def attach(sb: Sandbox, req: Request) -> Response:
    mv = microversion(req)
    body = (req.body or {}).get("volumeAttachment") or {}
    vid = body.get("volumeId", "")
    with sb.state.lock:
        srv = get_server(sb, req)
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
        return ok(200, {"volumeAttachment": render_attachment(sb, srv, att, mv)}, mv)


def detach(sb: Sandbox, req: Request) -> Response:
    mv = microversion(req)
    with sb.state.lock:
        srv = get_server(sb, req)
        att = _find(srv, req.params["vid"])
        if att["boot"]:
            raise nova_error(400, "Can't detach root device volume")
        srv["volumes"].remove(att)
        vol = sb.state.table("volumes").get(att["id"])
        if vol is not None:
            vol["status"] = "detaching"
            sb.later(sb.delays.volume_s, "volumes", vol["id"], "detach")
        sb.state.touch()
    return ok(202, None, mv)
