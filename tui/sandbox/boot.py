"""What a new server boots from and on: block device mappings, image, network — checked as Nova does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tui.sandbox import data, snapshot, volume
from tui.sandbox.nova import nova_error

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox


def _parse_one_bdm(sb: Sandbox, bdm: dict[str, Any]) -> dict[str, Any]:
    source = bdm.get("source_type")
    size = int(bdm.get("volume_size") or 0)
    if source == "image":
        image = snapshot.find_image(sb, bdm.get("uuid", ""))
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
    elif source == "snapshot":
        snap = sb.state.table("snapshots").get(bdm.get("snapshot_id") or bdm.get("uuid") or "")
        if snap is None:
            raise nova_error(400, f"Block Device Mapping is Invalid: failed to get snapshot "
                                  f"{bdm.get('snapshot_id') or bdm.get('uuid')}.")
        if snap["status"] != "available":
            raise nova_error(400, f"Invalid snapshot: Originating snapshot {snap['id']} status must be 'available' "
                                  f"(it is {snap['status']}).")
        size = max(size, int(snap["size"]))
    elif source == "blank":
        if size <= 0:
            raise nova_error(400, "Block Device Mapping is Invalid: blank volumes need a size.")
    else:
        raise nova_error(400, f"Block Device Mapping is Invalid: source_type {source!r} is not supported here.")
    dot = bdm.get("delete_on_termination", False)
    return {
        "source": source,
        "uuid": bdm.get("snapshot_id") or bdm.get("uuid") if source == "snapshot" else bdm.get("uuid"),
        "size": size,
        "boot_index": bdm.get("boot_index"),
        "delete_on_termination": dot in (True, "true", "True", "1", 1),
    }


def parse_bdm(sb: Sandbox, body: dict[str, Any]) -> list[dict[str, Any]]:
    wanted = [bdm for bdm in body.get("block_device_mapping_v2") or []
              if bdm.get("destination_type", "volume") == "volume"]
    return [_parse_one_bdm(sb, bdm) for bdm in _with_image_bdms(sb, body, wanted)]


def _with_image_bdms(sb: Sandbox, body: dict[str, Any], wanted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A volume-backed snapshot image defines the server's volumes (from its snapshots): as Nova's
    `_check_and_transform_bdm`, the request's image-to-volume root mapping gives way to the image's."""
    root = next((b for b in wanted if str(b.get("boot_index")) == "0" and b.get("source_type") == "image"), None)
    ref = root.get("uuid") if root else str(body.get("imageRef") or "").rsplit("/", 1)[-1]
    image = snapshot.find_image(sb, ref or "")
    defined = snapshot.image_bdms(image) if image else []
    if not defined:
        return wanted
    kept = [b for b in wanted if b is not root]
    return [*defined, *kept]


def network_id(sb: Sandbox, body: dict[str, Any]) -> str:
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


def check_image(sb: Sandbox, flavor: dict[str, Any], image_id: str, boot: dict[str, Any] | None) -> None:
    image = snapshot.find_image(sb, image_id) if image_id else None
    if boot is None:
        if image is None:
            raise nova_error(
                400,
                "Can not find requested image"
                if image_id
                else "Block Device Mapping is Invalid: You specified more local devices than the limit allows",
            )
        if flavor["disk"] < image["min_disk"]:
            raise nova_error(400, "Flavor's disk is too small for requested image.")
    elif image_id and image is None:
        raise nova_error(400, "Can not find requested image")


def boot_volumes(sb: Sandbox, sid: str, bdms: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """Reserve or create the server's volumes: (attachments, a build failure or None). Under the lock."""
    fail = None
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
            if b["source"] == "snapshot":
                snap = sb.state.table("snapshots")[b["uuid"]]
                source = sb.state.table("volumes").get(snap["volume_id"]) or {}
                vol.update(snapshot_id=snap["id"], image_id=source.get("image_id"), bootable=True)
            vol["disk_from"] = snapshot.volume_disk(sb, vol["image_id"], vol.get("snapshot_id"))
            sb.later(sb.delays.volume_s, "volumes", vol["id"], "create")
        volumes.append(
            {
                "id": vol["id"],
                "device": device,
                "delete_on_termination": b["delete_on_termination"],
                "boot": str(b["boot_index"]) == "0",
            }
        )
    return volumes, fail
