"""What the cloud answers, as our models: Nova's server JSON and openstacksdk's resources.

Pure functions: no call to the cloud, no openstacksdk import (its resources are read by attribute).
"""

from __future__ import annotations

import json
from typing import Any

from tui.core.cloud import rest
from tui.core.models import Address, Flavor, Image, Instance, Keypair, Network, Volume, VolumeSnapshot


def to_instance(s: dict[str, Any]) -> Instance:
    """A server as Nova's JSON (microversion >= 2.47) -> Instance."""
    flavor = s.get("flavor") or {}
    addresses = tuple(
        Address(network=net, addr=a.get("addr", ""), kind=a.get("OS-EXT-IPS:type", "fixed"),
                version=rest.as_int(a.get("version"), 4))
        for net, addrs in (s.get("addresses") or {}).items()
        for a in addrs
    )
    image = s.get("image") or {}
    fault = s.get("fault") or {}
    return Instance(
        id=s["id"],
        name=s.get("name") or s["id"],
        status=(s.get("status") or "UNKNOWN").upper(),
        flavor_name=flavor.get("original_name") or flavor.get("name") or flavor.get("id") or "",
        flavor_id=flavor.get("id") or "",
        vcpus=rest.as_int(flavor.get("vcpus")),
        ram_mb=rest.as_int(flavor.get("ram")),
        image_id=image.get("id", "") if isinstance(image, dict) else "",
        key_name=s.get("key_name") or "",
        addresses=addresses,
        created_at=rest.as_time(s.get("created")),
        launched_at=rest.as_time(s.get("OS-SRV-USG:launched_at")),
        task_state=s.get("OS-EXT-STS:task_state") or "",
        power_state=rest.as_int(s.get("OS-EXT-STS:power_state")),
        fault=fault.get("message", "") if isinstance(fault, dict) else str(fault),
        volume_ids=tuple(v["id"] for v in (s.get("os-extended-volumes:volumes_attached") or []) if v.get("id")),
        metadata=tuple(sorted((str(k), str(v)) for k, v in (s.get("metadata") or {}).items())),
    )


def to_flavor(f: Any) -> Flavor:
    return Flavor(id=f.id, name=f.name, vcpus=rest.as_int(f.vcpus), ram_mb=rest.as_int(f.ram),
                  disk_gb=rest.as_int(f.disk),
                  is_public=bool(f.is_public if f.is_public is not None else True))


def to_image(i: Any, project_id: str = "") -> Image:
    """An image; `own` when `project_id` owns it. A volume-backed snapshot's Cinder snapshots come from its
    `block_device_mapping` property (JSON, as Nova writes it)."""
    props = getattr(i, "properties", None) or {}
    raw = props.get("block_device_mapping") or getattr(i, "block_device_mapping", None)
    try:
        mapping = json.loads(raw) if isinstance(raw, str) else (raw or [])
    except ValueError:
        mapping = []
    snaps = tuple(str(m["snapshot_id"]) for m in mapping if isinstance(m, dict) and m.get("snapshot_id"))
    owner = getattr(i, "owner", None) or getattr(i, "owner_id", None) or ""
    return Image(id=i.id, name=i.name or i.id, status=i.status or "", min_disk_gb=rest.as_int(i.min_disk),
                 size_bytes=rest.as_int(i.size), os_distro=getattr(i, "os_distro", None) or "",
                 os_version=getattr(i, "os_version", None) or "", created_at=rest.as_time(i.created_at),
                 own=bool(project_id) and owner == project_id, visibility=getattr(i, "visibility", None) or "",
                 instance_id=getattr(i, "instance_uuid", None) or props.get("instance_uuid") or "",
                 snapshot_ids=snaps)


def to_snapshot(s: Any) -> VolumeSnapshot:
    return VolumeSnapshot(id=s.id, name=s.name or s.id, volume_id=s.volume_id or "", size_gb=rest.as_int(s.size),
                          status=s.status or "")


def to_volume(v: Any) -> Volume:
    attachments = v.attachments or []
    return Volume(
        id=v.id, name=v.name or v.id, size_gb=rest.as_int(v.size), status=v.status or "",
        attached_to=tuple(a.get("server_id", "") for a in attachments if a.get("server_id")),
        device=next((a.get("device", "") for a in attachments if a.get("device")), ""),
        bootable=str(v.is_bootable).lower() == "true", created_at=rest.as_time(v.created_at),
    )


def to_network(n: Any) -> Network:
    return Network(
        id=n.id,
        name=n.name or n.id,
        external=bool(n.is_router_external),
        subnets=tuple(n.subnet_ids or ()),
    )


def to_keypair(k: Any, public_key: str = "") -> Keypair:
    """A key pair; `public_key` stands in when the cloud's answer leaves its key out (as on import)."""
    return Keypair(name=k.name, fingerprint=k.fingerprint or "", type=k.type or "ssh",
                   public_key=k.public_key or public_key)
