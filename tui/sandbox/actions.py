"""Nova server actions (stop/start/reboot/resize/console) and the delayed transitions that finish them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tui.sandbox import data, identity, network, secgroups, servers, shelve, snapshot, volume
from tui.sandbox.console import console_log
from tui.sandbox.nova import get_server, microversion, nova_error, ok, quota_check, set_status
from tui.sandbox.router import Request, Response
from tui.sandbox.state import Record, now_iso, now_usec

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox

# -- state transitions (scheduler thread) ---------------------------------------------------------------


def advance(sb: Sandbox, sid: str, action: str) -> None:
    """Finish a delayed server transition. Runs SSH host start/stop outside the lock."""
    if action in shelve.STEPS:
        shelve.advance(sb, sid, action)
        return
    with sb.state.lock:
        srv = sb.state.table("servers").get(sid)
        if srv is None or srv.get("pending") != action:
            return
        was = srv.get("resize_from", "ACTIVE")
        fail = srv.get("fail_build")
        if action == "build" and not fail:
            blocked = sb.faults.blocks_build(srv["name"])
            if blocked == "BUILD":  # stuck: nothing more will happen until it is deleted
                srv["pending"] = None
                sb.state.touch()
                return
            if blocked == "ERROR":
                fail = (
                    "Exceeded maximum number of retries. Exhausted all hosts available for retrying build "
                    f"failures for instance {sid}."
                )
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
        _finish(sb, srv, action, was, error)
    if error:
        sb.vm_off(sid)


def _finish(sb: Sandbox, srv: Record, action: str, was: str, error: str | None) -> None:
    """The state a finished transition leaves the server in. Under the lock."""
    srv["pending"] = None
    if error:
        set_status(srv, "ERROR")
        srv["fault"] = {"code": 500, "created": now_iso(), "message": error}
    elif action == "stop":
        set_status(srv, "SHUTOFF")
    elif action == "resize":
        set_status(srv, "VERIFY_RESIZE")
    elif action == "revert":
        srv["flavor_id"] = srv.pop("old_flavor_id", srv["flavor_id"])
        set_status(srv, was)
    else:
        set_status(srv, "ACTIVE")
    if srv["status"] in ("ACTIVE", "VERIFY_RESIZE") and not error:
        if action == "build":
            srv["launched_at"] = now_usec()
            for att in srv["volumes"]:
                vol = sb.state.table("volumes").get(att["id"])
                if vol is not None:
                    volume.attach(vol, srv["id"], att["device"])
        srv["boots"].append(now_iso())
    network.set_port_status(sb, srv["port_id"], srv["status"] in ("ACTIVE", "VERIFY_RESIZE"))
    sb.state.touch()


def _finish_delete(sb: Sandbox, sid: str) -> None:
    srv = sb.state.table("servers").pop(sid, None)
    if srv is None:
        return
    servers.remember_deleted(sb, srv)
    if srv["port_id"]:
        network.delete_server_port(sb, srv["port_id"])
    for att in srv["volumes"]:
        vol = sb.state.table("volumes").get(att["id"])
        if vol is None:
            continue
        if att["delete_on_termination"] and not snapshot.snapshots_of(sb, att["id"]):  # Cinder keeps those
            del sb.state.table("volumes")[att["id"]]
        else:
            volume.detach(vol)
    sb.state.touch()


# -- actions (under the lock; each returns the HTTP status) ----------------------------------------------


def _need(srv: Record, name: str, *states: str) -> None:
    if srv["status"] not in states:
        raise nova_error(409, f"Cannot '{name}' instance {srv['id']} while it is in vm_state {srv['vm_state']}")


def _stop(sb: Sandbox, srv: Record, arg: Any) -> int:
    _need(srv, "os-stop", "ACTIVE", "ERROR")
    srv["task_state"] = "powering-off"
    sb.later(sb.delays.stop_s, "servers", srv["id"], "stop")
    return 202


def _start(sb: Sandbox, srv: Record, arg: Any) -> int:
    _need(srv, "os-start", "SHUTOFF")
    srv["task_state"] = "powering-on"
    sb.later(sb.delays.start_s, "servers", srv["id"], "start")
    return 202


def _reboot(sb: Sandbox, srv: Record, arg: Any) -> int:
    _need(srv, "reboot", "ACTIVE", "SHUTOFF", "ERROR")
    hard = str((arg or {}).get("type", "SOFT")).upper() == "HARD"
    set_status(srv, "HARD_REBOOT" if hard else "REBOOT", "reboot_started_hard" if hard else "reboot_started")
    sb.later(sb.delays.reboot_s, "servers", srv["id"], "reboot")
    return 202


def _resize(sb: Sandbox, srv: Record, arg: Any) -> int:
    _need(srv, "resize", "ACTIVE", "SHUTOFF")
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
    set_status(srv, "RESIZE", "resize_migrating")
    sb.later(sb.delays.resize_s, "servers", srv["id"], "resize")
    return 202


def _confirm_resize(sb: Sandbox, srv: Record, arg: Any) -> int:
    _need(srv, "confirmResize", "VERIFY_RESIZE")
    srv.pop("old_flavor_id", None)
    set_status(srv, srv.pop("resize_from", "ACTIVE"))
    return 204


def _revert_resize(sb: Sandbox, srv: Record, arg: Any) -> int:
    _need(srv, "revertResize", "VERIFY_RESIZE")
    set_status(srv, "REVERT_RESIZE", "resize_reverting")
    sb.later(sb.delays.resize_s, "servers", srv["id"], "revert")
    return 202


def _group_arg(sb: Sandbox, name: str, arg: Any) -> str:
    ref = str((arg or {}).get("name", "")) if isinstance(arg, dict) else ""
    if not ref:
        raise nova_error(400, f"Invalid input for field/attribute {name}.")
    try:
        return secgroups.resolve(sb, [ref])[0]
    except LookupError:
        raise nova_error(404, f"Security group {ref} not found for project {identity.PROJECT}.") from None


def _add_security_group(sb: Sandbox, srv: Record, arg: Any) -> int:
    """Nova's addSecurityGroup: the group joins the server's port (Neutron shows it at once)."""
    gid = _group_arg(sb, "addSecurityGroup", arg)
    port = sb.state.table("ports").get(srv["port_id"] or "")
    if port is not None and gid not in port["security_groups"]:
        port["security_groups"].append(gid)
    return 202


def _remove_security_group(sb: Sandbox, srv: Record, arg: Any) -> int:
    gid = _group_arg(sb, "removeSecurityGroup", arg)
    port = sb.state.table("ports").get(srv["port_id"] or "")
    if port is None or gid not in port["security_groups"]:
        raise nova_error(404, f"Security group {arg.get('name')} not associated with the instance {srv['id']}")
    port["security_groups"].remove(gid)
    return 202


ACTIONS: dict[str, Callable[[Sandbox, Record, Any], int]] = {
    "addSecurityGroup": _add_security_group,
    "removeSecurityGroup": _remove_security_group,
    "os-stop": _stop,
    "os-start": _start,
    "reboot": _reboot,
    "resize": _resize,
    "confirmResize": _confirm_resize,
    "revertResize": _revert_resize,
    **shelve.ACTIONS,
}


def action(sb: Sandbox, req: Request) -> Response:
    mv = microversion(req)
    body = req.body if isinstance(req.body, dict) else {}
    if len(body) != 1:
        raise nova_error(400, "There is no such action: " + ",".join(body) if body else "Malformed request body")
    name, arg = next(iter(body.items()))
    with sb.state.lock:
        srv = get_server(sb, req)
        if name == "os-getConsoleOutput":
            if sb.faults.console_unavailable:
                raise nova_error(409, "Guest does not have a console available.")
            length = (arg or {}).get("length")
            return ok(200, {"output": console(sb, srv, None if length is None else int(length))}, mv)
        if name == "createImage":  # its body is validated before the server's state, as Nova's schema does
            return snapshot.create_image(sb, srv, arg, mv)
        if srv["task_state"] is not None or srv.get("pending"):
            raise nova_error(
                409, f"Cannot '{name}' instance {srv['id']} while it is in task_state {srv['task_state'] or 'busy'}"
            )
        handler = ACTIONS.get(name)
        if handler is None:
            raise nova_error(400, f"There is no such action: {name}")
        status = handler(sb, srv, arg)
        if status == 202:
            srv["updated"] = now_iso()
        sb.state.touch()
    return ok(status, None, mv)


def console(sb: Sandbox, srv: Record, length: int | None) -> str:
    image = snapshot.find_image(sb, srv.get("boot_image_id") or "", active=False) or next(iter(data.IMAGES.values()))
    port = sb.state.table("ports").get(srv["port_id"] or "")
    ip = port["fixed_ips"][0]["ip_address"] if port else ""
    host_key = sb.host_public_key(srv["id"]) if sb.faults.console_host_keys else None
    return console_log(srv, image, data.FLAVORS[srv["flavor_id"]], ip, host_key, length)
