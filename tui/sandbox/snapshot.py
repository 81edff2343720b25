"""Nova's createImage as Nova does it, and the frozen disks behind the images and volume snapshots it makes.

An image-backed server: a Glance image `queued` at once (owned by the project, `visibility: private`), the
server's task state `image_snapshot_pending`, then `image_uploading` while the image is `saving` (the disk is
copied then), then `active` with its size. A volume-backed server (nova/compute/api.py `snapshot_volume_backed`):
a Cinder snapshot of each attached volume (`snapshot for NAME`, `creating` → `available`) and an image with no
data (`size` 0, `active` at once) whose `block_device_mapping` property (JSON, `bdm_v2`) maps each snapshot back
to its device. Over the image quota (Glance's `image_count_total`) Glance answers 413 and Nova turns it into a 500,
as real Nova does (for a volume-backed server after its snapshots are made: they stay); over the snapshot quota
Nova answers 403 before anything is made.

The disk: a server's VM disk is its home directory; a snapshot copies it (`state_dir/disks/…`) and a server built
from the image or from a volume made of the snapshot starts with that copy — its absolute paths (a venv's scripts)
moved to the new home, as a real clone keeps `/home/ubuntu`. Deleting the image leaves the snapshots (as Glance).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.sandbox import data
from tui.sandbox.nova import nova_error, ok
from tui.sandbox.router import HTTPError, Response
from tui.sandbox.state import Record, new_id, now_iso, now_usec

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox

log = logging.getLogger("tui.sandbox")

REWRITE_MAX = 64 * 1024 * 1024  # files larger than this are copied as they are (no path inside is moved)


# -- lookups ------------------------------------------------------------------------------------------------


def find_image(sb: Sandbox, image_id: str, active: bool = True) -> Record | None:
    """A public image or one of the project's (only `active` ones unless told). Under the lock."""
    if image_id in data.IMAGES:
        return data.IMAGES[image_id]
    rec = sb.state.table("images").get(image_id)
    if rec is None or (active and rec["status"] != "active"):
        return None
    return rec


def image_bdms(image: Record) -> list[dict[str, Any]]:
    """The block device mappings a volume-backed snapshot image defines (empty for any other image)."""
    raw = (image.get("properties") or {}).get("block_device_mapping")
    try:
        return list(json.loads(raw)) if raw else []
    except ValueError:
        return []


def snapshots_of(sb: Sandbox, volume_id: str) -> list[Record]:
    return [s for s in sb.state.table("snapshots").values() if s["volume_id"] == volume_id]


def own_image_count(sb: Sandbox) -> int:
    return len(sb.state.table("images"))


# -- createImage (under the lock; from actions.action) --------------------------------------------------------


def create_image(sb: Sandbox, srv: Record, arg: Any, mv: tuple[int, int]) -> Response:
    """Nova's createImage: 202, `{"image_id": …}` from 2.45, a Location header before."""
    if not isinstance(arg, dict) or not isinstance(arg.get("name"), str) or not arg["name"].strip():
        raise nova_error(400, "Invalid input for field/attribute createImage. 'name' is a required property")
    name = arg["name"].strip()
    if len(name) > 255:
        raise nova_error(400, "Invalid input for field/attribute name. Value is too long")
    meta = arg.get("metadata") or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise nova_error(400, "Invalid input for field/attribute metadata.")
    if srv["task_state"] is not None or srv.get("pending"):
        raise nova_error(409, f"Cannot 'createImage' instance {srv['id']} while it is in task_state "
                              f"{srv['task_state'] or 'busy'}")
    if srv["status"] not in ("ACTIVE", "SHUTOFF"):
        raise nova_error(409, f"Cannot 'createImage' instance {srv['id']} while it is in vm_state {srv['vm_state']}")
    image = _image_backed(sb, srv, name, meta) if srv["image_id"] else _volume_backed(sb, srv, name, meta)
    sb.state.touch()
    if mv >= (2, 45):
        return ok(202, {"image_id": image["id"]}, mv)
    resp = ok(202, None, mv)
    resp.headers["Location"] = f"{sb.url}/image/v2/images/{image['id']}"
    return resp


def _check_image_quota(sb: Sandbox) -> None:
    limit = sb.quota()["image_count_total"]
    if 0 <= limit <= own_image_count(sb):
        log.info("sandbox: image_count_total %d reached: Glance 413, Nova 500", limit)
        raise HTTPError(500, {"computeFault": {"code": 500, "message": (
            "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API "
            "log if possible.\n<class 'glanceclient.exc.HTTPOverLimit'>")}})


def _new_image(sb: Sandbox, srv: Record, name: str, meta: dict[str, str], status: str) -> Record:
    base = data.IMAGES.get(srv.get("boot_image_id") or "") or sb.state.table("images").get(
        srv.get("boot_image_id") or "") or {}
    inherited = {k: base[k] for k in ("os_distro", "os_version", "os_codename", "architecture", "hw_disk_bus")
                 if k in base}
    inherited.update({k: v for k, v in (base.get("properties") or {}).items()
                      if k in ("os_distro", "os_version", "os_codename", "architecture")})
    now = now_iso()
    image: Record = {
        "id": new_id(), "name": name, "status": status, "visibility": "private",
        "owner": sb.state.data["project_id"], "created_at": now, "updated_at": now, "size": None,
        "min_disk": data.FLAVORS[srv["flavor_id"]]["disk"], "min_ram": 0, "disk_format": "qcow2",
        "container_format": "bare", "checksum": None, "server_id": srv["id"], "disk": None, "pending": None,
        "properties": {**inherited, "image_type": "snapshot", "instance_uuid": srv["id"],
                       "user_id": sb.state.data["user_id"], "owner_project_name": "sandbox",
                       "base_image_ref": srv.get("boot_image_id") or "", **meta},
    }
    sb.state.table("images")[image["id"]] = image
    return image


def _image_backed(sb: Sandbox, srv: Record, name: str, meta: dict[str, str]) -> Record:
    _check_image_quota(sb)
    image = _new_image(sb, srv, name, meta, "queued")
    srv["task_state"] = "image_snapshot_pending"
    srv["updated"] = now_iso()
    sb.later(sb.delays.image_s / 2, "images", image["id"], "snapshot")
    return image


def _volume_backed(sb: Sandbox, srv: Record, name: str, meta: dict[str, str]) -> Record:
    vols = [(att, sb.state.table("volumes").get(att["id"])) for att in srv["volumes"]]
    limit = sb.quota()["snapshots"]
    if 0 <= limit < len(sb.state.table("snapshots")) + len(vols):
        raise nova_error(403, "Quota exceeded for resources: snapshots")
    mapping = []
    for att, vol in vols:
        if vol is None:
            continue
        snap = new_snapshot(sb, vol, f"snapshot for {name}", home=srv["id"] if att.get("boot") else "")
        mapping.append({
            "source_type": "snapshot", "destination_type": "volume", "snapshot_id": snap["id"],
            "boot_index": 0 if att.get("boot") else None, "delete_on_termination": att["delete_on_termination"],
            "volume_size": vol["size"], "device_name": att["device"], "disk_bus": "virtio", "device_type": "disk",
            "tag": None, "volume_type": None, "image_id": None, "volume_id": None, "no_device": None,
            "guest_format": None,
        })
    _check_image_quota(sb)  # as Nova: Glance refuses the image after the snapshots are made, and they stay
    image = _new_image(sb, srv, name, meta, "active")  # size 0: Nova force-activates the empty image
    image.update(size=0, disk_format="raw", container_format="bare", min_disk=max(
        [int(v["size"]) for _a, v in vols if v is not None] or [0]))
    image["properties"].update(block_device_mapping=json.dumps(mapping), bdm_v2="True", root_device_name="/dev/vda")
    # Nova names the server only in an image-backed snapshot (`_create_image`); a volume-backed one is a bucket of
    # properties from `initialize_instance_snapshot_metadata`, without instance_uuid or user_id (the real tier)
    for key in ("instance_uuid", "user_id"):
        image["properties"].pop(key, None)
    return image


def new_snapshot(sb: Sandbox, vol: Record, name: str, home: str = "", description: str = "") -> Record:
    """A Cinder snapshot of `vol` in `creating` (scheduled here). `home`: the server whose disk it freezes."""
    now = now_usec()
    snap: Record = {
        "id": new_id(), "name": name, "description": description or vol.get("description") or "",
        "volume_id": vol["id"], "size": vol["size"], "status": "creating", "created_at": now, "updated_at": now,
        "metadata": {}, "progress": "0%", "from_server": home, "disk": None, "pending": None,
    }
    sb.state.table("snapshots")[snap["id"]] = snap
    sb.later(sb.delays.volume_s, "snapshots", snap["id"], "create")
    return snap


# -- transitions (scheduler thread) ---------------------------------------------------------------------------


def advance(sb: Sandbox, table: str, rid: str, action: str) -> None:
    """Finish a delayed image or snapshot transition. An image: `snapshot` (the disk is frozen, outside the
    lock; the image is `saving`), then `upload` (`active`). A volume snapshot: `create`, `delete`."""
    with sb.state.lock:
        rec = sb.state.table(table).get(rid)
        if rec is None or rec.get("pending") != action:
            return
        if action in ("delete", "upload"):
            _finish(sb, table, rec)
            return
        source = rec.get("server_id") if table == "images" else rec.get("from_server")
        if table == "images":
            rec["status"] = "saving"
            srv = sb.state.table("servers").get(source or "")
            if srv is not None:
                srv["task_state"] = "image_uploading"
        sb.state.touch()
    disk = _freeze(sb, f"{table}-{rid}", source or "")
    with sb.state.lock:
        rec = sb.state.table(table).get(rid)
        if rec is None or rec.get("pending") != action:  # deleted while copying
            shutil.rmtree(sb.state_dir / "disks" / f"{table}-{rid}", ignore_errors=True)
            return
        rec["disk"] = disk
        if table == "images":
            base = find_image(sb, rec["properties"].get("base_image_ref") or "", active=False) or {}
            rec["size"] = int(base.get("size") or 0) + (disk["bytes"] if disk else 0)  # the OS, then the home
            sb.later(sb.delays.image_s / 2, "images", rid, "upload")
        else:
            rec.update(pending=None, status="available", progress="100%", updated_at=now_usec())
        sb.state.touch()


def _finish(sb: Sandbox, table: str, rec: Record) -> None:
    """An image's upload ends (`active`, the server's task state cleared) or a snapshot is gone. Under the lock."""
    if rec["pending"] == "delete":
        del sb.state.table(table)[rec["id"]]
        drop_disk(sb, rec)
        sb.state.touch()
        return
    rec.update(pending=None, status="active", updated_at=now_iso(),
               checksum=hashlib.md5(f"{rec['id']}:{rec['size']}".encode(), usedforsecurity=False).hexdigest())
    srv = sb.state.table("servers").get(rec.get("server_id") or "")
    if srv is not None and srv["task_state"] == "image_uploading":
        srv["task_state"] = None
        srv["updated"] = now_iso()
    sb.state.touch()


def _freeze(sb: Sandbox, key: str, server_id: str) -> dict[str, Any] | None:
    """Copy the server's disk (its home) to `disks/key`; None when it has none (no SSH host)."""
    if not server_id:
        return None
    home = sb.instances_dir / server_id / "home"
    if not home.is_dir():
        return None
    dest = sb.state_dir / "disks" / key / "home"
    shutil.rmtree(dest.parent, ignore_errors=True)
    dest.parent.mkdir(parents=True, mode=0o700)
    copied = copy_tree(home, dest, b"", b"")
    return {"path": str(dest), "home": str(home), "bytes": copied}


def drop_disk(sb: Sandbox, rec: Record) -> None:
    disk = rec.get("disk")
    if disk:
        shutil.rmtree(Path(disk["path"]).parent, ignore_errors=True)


# -- a new server's disk ------------------------------------------------------------------------------------


def disk_source(sb: Sandbox, srv: Record) -> dict[str, Any] | None:
    """The frozen disk a new server starts with: its image's, or its boot volume's (made from an image or a
    snapshot). Under the lock."""
    image = sb.state.table("images").get(srv.get("image_id") or "")
    if image is not None:
        return image.get("disk")
    for att in srv["volumes"]:
        vol = sb.state.table("volumes").get(att["id"])
        if att.get("boot") and vol is not None:
            return vol.get("disk_from")
    return None


def volume_disk(sb: Sandbox, image_id: str | None, snapshot_id: str | None) -> dict[str, Any] | None:
    """What a new volume made from this image or snapshot holds. Under the lock."""
    if snapshot_id:
        snap = sb.state.table("snapshots").get(snapshot_id)
        return snap.get("disk") if snap else None
    image = sb.state.table("images").get(image_id or "")
    return image.get("disk") if image else None


def seed_disk(sb: Sandbox, sid: str) -> None:
    """Before a server's first boot: its home starts as the frozen disk it was made from (if any)."""
    with sb.state.lock:
        srv = sb.state.table("servers").get(sid)
        source = disk_source(sb, srv) if srv is not None else None
    home = sb.instances_dir / sid / "home"
    if source is None or home.exists() or not Path(source["path"]).is_dir():
        return
    home.parent.mkdir(parents=True, exist_ok=True)
    copy_tree(Path(source["path"]), home, source["home"].encode(), str(home).encode())
    # Processes do not come along: on a real clone Jupyter's runtime records name dead processes; here every VM
    # shares one machine, so a record copied from the source would name its live server. Dropped instead.
    for stale in (home / ".local" / "share" / "jupyter" / "runtime").glob("*.json"):
        stale.unlink(missing_ok=True)


def copy_tree(src: Path, dst: Path, old: bytes, new: bytes) -> int:
    """Copy a directory tree (regular files, directories and symbolic links; sockets and pipes are left out),
    with `old` replaced by `new` in file contents and link targets when given (same length: binary-safe).
    Returns the bytes copied."""
    total = 0
    rewrite = bool(old) and len(old) == len(new)
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        out = dst / rel
        out.mkdir(parents=True, exist_ok=True)
        shutil.copymode(root, out)
        for name in [*files, *[d for d in dirs if (Path(root) / d).is_symlink()]]:
            total += _copy_one(Path(root) / name, out / name, old, new, rewrite)
    return total


def _copy_one(path: Path, target: Path, old: bytes, new: bytes, rewrite: bool) -> int:
    st = path.lstat()
    if path.is_symlink():
        link = os.readlink(path)
        if rewrite:
            link = link.replace(old.decode(), new.decode())
        os.symlink(link, target)
        return 0
    if not path.is_file():
        return 0
    if rewrite and st.st_size <= REWRITE_MAX:
        body = path.read_bytes()
        if old in body:
            target.write_bytes(body.replace(old, new))
            shutil.copystat(path, target)
            return st.st_size
    shutil.copy2(path, target)
    return st.st_size
