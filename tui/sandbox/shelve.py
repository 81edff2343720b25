"""Nova's shelve, shelveOffload and unshelve server actions and the transitions that finish them.

As nova/compute/api.py and nova/compute/manager.py do it: `shelve` (ACTIVE or SHUTOFF; task `shelving`) powers the
server off; an image-backed one is snapshotted (`shelving_image_uploading`) and becomes SHELVED, then — at once when
`shelved_offload_time` is 0 (Nova's default; task `shelving_offloading`), after that many seconds when it is more,
never when it is negative — SHELVED_OFFLOADED; a volume-backed one goes straight to SHELVED_OFFLOADED. `unshelve`
(task `unshelving`, then `spawning` on a new host when offloaded, `powering-on` when still SHELVED) brings it
back ACTIVE with the same disk. An offloaded server holds no cores or
RAM (quota counted from placement), so unshelving it checks the quota first: Nova's 403
`Quota exceeded for resources: ['cores']`. The server's SSH host stops on shelve and starts again on unshelve; its
home directory (the disk) is kept throughout.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tui.sandbox import data, network
from tui.sandbox.nova import nova_error, set_status, usage
from tui.sandbox.state import Record, now_iso, now_usec

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox

# The pending steps this module finishes (Sandbox.later → actions.advance → here).
STEPS = ("shelve", "shelve_upload", "shelve_offload", "unshelve", "unshelve_spawn")


def volume_backed(srv: Record) -> bool:
    """Booted from a volume (no image of its own): Nova offloads it at once, without a snapshot."""
    return not srv["image_id"]


def _need(srv: Record, name: str, *states: str) -> None:
    if srv["status"] not in states:
        raise nova_error(409, f"Cannot '{name}' instance {srv['id']} while it is in vm_state {srv['vm_state']}")


# -- actions (under the lock; each returns the HTTP status) ----------------------------------------------


def shelve(sb: Sandbox, srv: Record, arg: Any) -> int:
    if arg is not None:
        raise nova_error(400, "Invalid input for field/attribute shelve. Value: "
                              f"{arg}. {arg} is not of type 'null'")
    _need(srv, "shelve", "ACTIVE", "SHUTOFF")
    srv["task_state"] = "shelving"
    sb.later(sb.delays.shelve_s / 2, "servers", srv["id"], "shelve")
    return 202


def shelve_offload(sb: Sandbox, srv: Record, arg: Any) -> int:
    _need(srv, "shelveOffload", "SHELVED")
    srv["task_state"] = "shelving_offloading"
    sb.later(sb.delays.shelve_s / 2, "servers", srv["id"], "shelve_offload")
    return 202


def unshelve(sb: Sandbox, srv: Record, arg: Any) -> int:
    if arg is not None and not isinstance(arg, dict):
        raise nova_error(400, f"Invalid input for field/attribute unshelve. Value: {arg}.")
    _need(srv, "unshelve", "SHELVED", "SHELVED_OFFLOADED")
    if srv["status"] == "SHELVED_OFFLOADED":
        _check_quota(sb, srv)
    srv["task_state"] = "unshelving"
    srv["unshelve_from"] = srv["status"]
    sb.later(sb.delays.unshelve_s / 2, "servers", srv["id"], "unshelve")
    return 202


def _check_quota(sb: Sandbox, srv: Record) -> None:
    """Nova's `_check_quota_unshelve_offloaded`: the flavor's cores and RAM must fit (instances delta 0)."""
    flavor = data.FLAVORS[srv["flavor_id"]]
    q = sb.quota()
    limits = {"cores": q["cores"], "ram": q["ram_mb"]}
    used = usage(sb)
    wanted = {"cores": flavor["vcpus"], "ram": flavor["ram"]}
    overs = sorted(r for r, n in wanted.items() if 0 <= limits[r] < used[r] + n)
    if overs:
        raise nova_error(403, f"Quota exceeded for resources: {overs}")


ACTIONS = {"shelve": shelve, "shelveOffload": shelve_offload, "unshelve": unshelve}


# -- transitions (scheduler thread) ---------------------------------------------------------------------


def advance(sb: Sandbox, sid: str, step: str) -> None:
    """Finish one step of a shelve or unshelve. SSH host start/stop outside the lock."""
    with sb.state.lock:
        srv = sb.state.table("servers").get(sid)
        if srv is None or srv.get("pending") != step:
            return
    if step == "shelve":
        sb.vm_off(sid)
    error = sb.vm_on(sid) if step == "unshelve_spawn" else None
    with sb.state.lock:
        srv = sb.state.table("servers").get(sid)
        if srv is None or srv.get("pending") != step:
            return
        srv["pending"] = None
        _STEP[step](sb, srv, error)
        network.set_port_status(sb, srv["port_id"], srv["status"] == "ACTIVE")
        sb.state.touch()
    if error:
        sb.vm_off(sid)


def _powered_off(sb: Sandbox, srv: Record, error: str | None) -> None:
    if volume_backed(srv):
        _offloaded(sb, srv, error)
    else:
        srv["task_state"] = "shelving_image_uploading"
        srv["updated"] = now_iso()
        sb.later(sb.delays.shelve_s / 2, "servers", srv["id"], "shelve_upload")


def _shelved(sb: Sandbox, srv: Record, error: str | None) -> None:
    set_status(srv, "SHELVED")
    srv["shelved_at"] = time.time()
    offload = sb.delays.shelved_offload_time
    if offload == 0:
        srv["task_state"] = "shelving_offloading"
        sb.later(sb.delays.shelve_s / 2, "servers", srv["id"], "shelve_offload")
    elif offload > 0:
        _offload_later(sb, srv["id"], srv["shelved_at"], offload)


def _offload_later(sb: Sandbox, sid: str, shelved_at: float, delay: float) -> None:
    """Nova's periodic `_poll_shelved_instances`: offload a server SHELVED for `shelved_offload_time`."""

    def due() -> None:
        with sb.state.lock:
            srv = sb.state.table("servers").get(sid)
            if srv is None or srv["status"] != "SHELVED" or srv.get("shelved_at") != shelved_at or srv.get("pending"):
                return
            srv["task_state"] = "shelving_offloading"
            srv["updated"] = now_iso()
            sb.later(sb.delays.shelve_s / 2, "servers", sid, "shelve_offload")
            sb.state.touch()

    sb.scheduler.call_later(max(0.0, delay), due)


def _offloaded(sb: Sandbox, srv: Record, error: str | None) -> None:
    set_status(srv, "SHELVED_OFFLOADED")
    srv.setdefault("shelved_at", time.time())


def _unshelving(sb: Sandbox, srv: Record, error: str | None) -> None:
    """nova/conductor/manager.py unshelve_instance: a SHELVED server is powered on where it is, an offloaded one
    scheduled and spawned."""
    srv["task_state"] = "powering-on" if srv.pop("unshelve_from", "") == "SHELVED" else "spawning"
    srv["updated"] = now_iso()
    sb.later(sb.delays.unshelve_s / 2, "servers", srv["id"], "unshelve_spawn")


def _spawned(sb: Sandbox, srv: Record, error: str | None) -> None:
    srv.pop("shelved_at", None)
    if error:
        set_status(srv, "ERROR")
        srv["fault"] = {"code": 500, "created": now_iso(), "message": error}
        return
    set_status(srv, "ACTIVE")
    srv["launched_at"] = now_usec()
    srv["boots"].append(now_iso())


_STEP = {"shelve": _powered_off, "shelve_upload": _shelved, "shelve_offload": _offloaded,
         "unshelve": _unshelving, "unshelve_spawn": _spawned}


def restore(sb: Sandbox) -> None:
    """At start: re-arm the offload of servers left SHELVED (those already due are offloaded at once)."""
    offload = sb.delays.shelved_offload_time
    if offload < 0:
        return
    with sb.state.lock:
        for srv in sb.state.table("servers").values():
            if srv["status"] == "SHELVED" and not srv.get("pending") and srv.get("shelved_at"):
                at = float(srv["shelved_at"])
                _offload_later(sb, srv["id"], at, at + offload - time.time())
