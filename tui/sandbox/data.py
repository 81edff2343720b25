"""The sandbox cloud's fixed catalogue: CADES-like flavors, Ubuntu images, default quota."""

from __future__ import annotations

import uuid
from typing import Any

_NS = uuid.UUID("6c0a1f3e-6a55-4c1e-9d4e-5ad6b0c0ffee")


def stable_id(name: str) -> str:
    return str(uuid.uuid5(_NS, name))


# name, vCPUs, RAM MB, root disk GB. m1.* memory-heavy (4 GB per core and up), c1.* compute-heavy (1 GB per
# core). With the default quota (8 GB RAM, 16 cores) m1.large/m1.xlarge and c1.xlarge do not fit.
_FLAVORS = [
    ("m1.tiny", 1, 2048, 10),
    ("m1.small", 1, 4096, 20),
    ("m1.medium", 2, 8192, 40),
    ("m1.large", 4, 16384, 80),
    ("m1.xlarge", 8, 32768, 160),
    ("c1.small", 2, 2048, 20),
    ("c1.medium", 4, 4096, 40),
    ("c1.large", 8, 8192, 80),
    ("c1.xlarge", 16, 16384, 160),
]

FLAVORS: dict[str, dict[str, Any]] = {
    stable_id(f"flavor:{name}"): {
        "id": stable_id(f"flavor:{name}"),
        "name": name,
        "vcpus": vcpus,
        "ram": ram,
        "disk": disk,
        "description": ("memory-heavy" if name.startswith("m1") else "compute-heavy")
        + f" {vcpus} vCPU / {ram // 1024} GB",
    }
    for name, vcpus, ram, disk in _FLAVORS
}

# name, os_version, codename, size bytes, created
_IMAGES = [
    ("Ubuntu 24.04", "24.04", "noble", 583_400_448, "2024-04-25T12:00:00Z"),
    ("Ubuntu 22.04", "22.04", "jammy", 662_372_352, "2022-04-21T12:00:00Z"),
    ("Ubuntu 20.04", "20.04", "focal", 618_463_232, "2020-04-23T12:00:00Z"),
]

IMAGES: dict[str, dict[str, Any]] = {}
for _name, _ver, _code, _size, _created in _IMAGES:
    _id = stable_id(f"image:{_name}")
    IMAGES[_id] = {
        "id": _id,
        "name": _name,
        "status": "active",
        "visibility": "public",
        "protected": False,
        "os_hidden": False,
        "owner": stable_id("project:admin").replace("-", ""),
        "size": _size,
        "virtual_size": 3_758_096_384,
        "min_disk": 8,
        "min_ram": 0,
        "disk_format": "qcow2",
        "container_format": "bare",
        "checksum": uuid.uuid5(_NS, f"md5:{_name}").hex,
        "os_hash_algo": "sha512",
        "os_hash_value": (uuid.uuid5(_NS, f"sha:{_name}").hex * 4),
        "created_at": _created,
        "updated_at": _created,
        "tags": [],
        "os_distro": "ubuntu",
        "os_version": _ver,
        "os_codename": _code,
        "architecture": "x86_64",
        "hw_disk_bus": "virtio",
        "self": f"/v2/images/{_id}",
        "file": f"/v2/images/{_id}/file",
        "schema": "/v2/schemas/image",
    }

DEFAULT_QUOTA = {
    "ram_mb": 8192,
    "cores": 16,
    "instances": 10,
    "key_pairs": 100,
    "metadata_items": 128,
    "server_groups": 10,
    "server_group_members": 10,
    "volumes": 10,
    "gigabytes": 100,
    "snapshots": 10,
    "image_count_total": 10,  # Glance unified limits: the project's own images
    "backups": 10,
    "backup_gigabytes": 1000,
}

PRIVATE_NET = "sandbox-net"
PUBLIC_NET = "public"
FLOATING_IP = "127.0.0.1"


def flavor_by_ref(ref: str) -> dict[str, Any] | None:
    """A flavor by id or name."""
    if ref in FLAVORS:
        return FLAVORS[ref]
    return next((f for f in FLAVORS.values() if f["name"] == ref), None)
