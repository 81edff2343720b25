"""The app's cloud layer (`OpenStackCloud`, opened as the app opens it) against the real services of the tier.

Every cloud call the app makes: the listings and the quota, key pairs, a launch from a volume on the project's
network with the SSH rule and a floating IP, the console log, stop/start/reboot, resize with confirm and revert,
volumes (create, attach, detach, delete), a cluster's security group, delete with the volumes. What the app sees is
checked against what the services themselves say (an admin openstacksdk connection).
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests._support import launch
from tests.realcloud import seed
from tests.realcloud.services import RealCloud
from tui.core.cloud.base import Conflict, NotFound
from tui.core.keys import KeyStore


def admin(realcloud: RealCloud) -> Any:
    return seed.connect(realcloud.layout)


def test_listings_quota_images_flavors_networks(rc_cloud: Any) -> None:
    flavors = {f.name: f for f in rc_cloud.list_flavors()}
    assert {n for n, *_ in seed.FLAVORS} <= set(flavors)
    assert (flavors["m1.small"].vcpus, flavors["m1.small"].ram_mb, flavors["m1.small"].disk_gb) == (1, 4096, 20)
    images = rc_cloud.list_images()
    assert [i.status for i in images if i.name == seed.IMAGE] == ["active"]
    assert next(i for i in images if i.name == seed.IMAGE).size_bytes == 1 << 20
    networks = {n.name: n for n in rc_cloud.list_networks()}
    assert not networks[seed.NETWORK].external and networks[seed.NETWORK].subnets
    quota = rc_cloud.get_quota()
    assert (quota.ram_mb_limit, quota.cores_limit) == (8192, 16)
    assert quota.instances_limit > 0 and quota.volumes_limit > 0 and quota.gigabytes_limit > 0
    assert isinstance(rc_cloud.list_instances(), list) and isinstance(rc_cloud.list_volumes(), list)


def test_key_pairs_import_list_delete(rc_cloud: Any, tmp_path: Path) -> None:
    _name, _path, public = KeyStore(tmp_path).app_key()
    name = f"rc-key-{uuid.uuid4().hex[:6]}"
    made = rc_cloud.import_keypair(name, public)
    try:
        listed = {k.name: k for k in rc_cloud.list_keypairs()}
        assert listed[name].fingerprint == made.fingerprint and made.fingerprint
    finally:
        rc_cloud.delete_keypair(name)
    assert name not in {k.name for k in rc_cloud.list_keypairs()}


def _ssh_rule(conn: Any, project_id: str) -> list[Any]:
    group = next(g for g in conn.network.security_groups(project_id=project_id) if g.name == "default")
    return [r for r in conn.network.security_group_rules(security_group_id=group.id)
            if r.direction == "ingress" and r.protocol == "tcp" and r.port_range_min == 22]


def test_launch_from_volume_then_every_server_action(rc_cloud: Any, realcloud: RealCloud, tmp_path: Path) -> None:
    """launch (boot volume, network, SSH rule, floating IP) → console → stop/start/reboot → resize confirm and
    revert → a data volume attached and detached → delete with volumes: nothing of it is left."""
    conn = admin(realcloud)
    name = f"rc-vm-{uuid.uuid4().hex[:6]}"
    inst = launch(rc_cloud, name, KeyStore(tmp_path))
    try:
        server = conn.compute.get_server(inst.id)
        assert server.status == "ACTIVE" and inst.flavor_name == "m1.tiny"  # the smallest m1 within the quota
        assert _ssh_rule(conn, realcloud.layout.extra["demo_project_id"]), "launch adds the SSH rule"
        assert inst.private_ip.startswith("10.0.0.") and inst.public_ip.startswith("172.24.4.")
        [boot] = inst.volume_ids
        assert conn.block_storage.get_volume(boot).status == "in-use"
        assert conn.block_storage.get_volume(boot).size == 16
        assert "FAKE CONSOLE OUTPUT" in rc_cloud.console_log(name)  # nova's fake driver's console
        assert rc_cloud.boot_image(name) == realcloud.seeded["image_id"]  # from the boot volume's image metadata
        listed, _ = rc_cloud.watch_instances(full=True)
        assert inst.id in {i.id for i in listed}
        assert rc_cloud.stop(name).status == "SHUTOFF"
        listed, changed = rc_cloud.watch_instances()  # only what Nova says changed since (changes-since)
        assert changed and {i.id: i.status for i in listed}[inst.id] == "SHUTOFF"
        assert rc_cloud.start(name).status == "ACTIVE"
        assert rc_cloud.reboot(name).status == "ACTIVE"
        assert rc_cloud.resize(name, "m1.small").status == "VERIFY_RESIZE"
        resized = rc_cloud.confirm_resize(name)
        assert (resized.status, resized.flavor_name) == ("ACTIVE", "m1.small")
        assert rc_cloud.resize(name, "m1.tiny").status == "VERIFY_RESIZE"
        reverted = rc_cloud.revert_resize(name)
        assert (reverted.status, reverted.flavor_name) == ("ACTIVE", "m1.small")
        _data_volume_round_trip(rc_cloud, conn, name, inst.id)
        fips = [ip.id for port in conn.network.ports(device_id=inst.id) for ip in conn.network.ips(port_id=port.id)]
        assert fips
    finally:
        rc_cloud.delete(name, delete_volumes=True)
    assert conn.compute.find_server(inst.id, ignore_missing=True) is None
    listed, changed = rc_cloud.watch_instances()  # Nova lists the deleted server as DELETED since then
    assert changed and inst.id not in {i.id for i in listed}
    assert conn.block_storage.find_volume(boot, ignore_missing=True) is None, "the boot volume is deleted too"
    assert all(conn.network.find_ip(f, ignore_missing=True) is None for f in fips), "its floating IP released"


def _data_volume_round_trip(rc_cloud: Any, conn: Any, server: str, server_id: str) -> None:
    vname = f"{server}-data"
    vol = rc_cloud.create_volume(vname, 2)
    assert (vol.status, vol.size_gb) == ("available", 2)
    attached = rc_cloud.attach_volume(server, vname)
    assert attached.status == "in-use" and attached.attached_to == (server_id,)
    assert vol.id in rc_cloud.get_instance(server).volume_ids
    with pytest.raises(Conflict):
        rc_cloud.delete_volume(vname)  # attached: refused before asking Cinder
    assert rc_cloud.detach_volume(vname).status == "available"
    assert conn.block_storage.get_volume(vol.id).attachments == []
    rc_cloud.delete_volume(vname)
    assert conn.block_storage.find_volume(vol.id, ignore_missing=True) is None
    with pytest.raises(NotFound):
        rc_cloud.delete_volume(vname)


def test_cluster_security_group_members_only(rc_cloud: Any, realcloud: RealCloud) -> None:
    """A cluster's group admits tcp from its own members (remote_group_id), idempotently; deleted when unused."""
    conn = admin(realcloud)
    name = f"cades-dask-rc-{uuid.uuid4().hex[:6]}"
    gid = rc_cloud.create_cluster_security_group(name)
    try:
        assert rc_cloud.create_cluster_security_group(name) == gid  # again: the same group, no double rules
        rules = [r for r in conn.network.security_group_rules(security_group_id=gid) if r.direction == "ingress"]
        # Neutron keeps the whole range 1-65535 as no range at all.
        assert sorted(((r.protocol, r.port_range_min, r.port_range_max, r.remote_group_id) for r in rules),
                      key=str) == [("tcp", 22, 22, gid), ("tcp", None, None, gid)]
        assert all(r.remote_ip_prefix is None for r in rules)
    finally:
        assert rc_cloud.delete_security_group(name) is True
    assert conn.network.find_security_group(gid, ignore_missing=True) is None
    assert rc_cloud.delete_security_group(name) is False


def test_server_joins_and_leaves_a_cluster_group(rc_cloud: Any, realcloud: RealCloud, tmp_path: Path) -> None:
    conn = admin(realcloud)
    name = f"rc-head-{uuid.uuid4().hex[:6]}"
    group = f"cades-dask-{name}"
    inst = launch(rc_cloud, name, KeyStore(tmp_path))
    try:
        rc_cloud.create_cluster_security_group(group)
        rc_cloud.add_security_group(name, group)
        rc_cloud.add_security_group(name, group)  # already in: nothing
        assert group in {g["name"] for g in conn.compute.get_server(inst.id).security_groups}
        with pytest.raises(Conflict):
            rc_cloud.delete_security_group(group)  # Neutron's 409 while a port uses it
        rc_cloud.remove_security_group(name, group)
        assert group not in {g["name"] for g in conn.compute.get_server(inst.id).security_groups or []}
    finally:
        rc_cloud.delete(name, delete_volumes=True)
        rc_cloud.delete_security_group(group)
    assert conn.network.find_security_group(group, ignore_missing=True) is None


def test_create_volume_answer_has_no_tenant_attr(realcloud: RealCloud) -> None:
    """What tests/sandbox/test_volume_views.py holds the sandbox to, seen on real Cinder."""
    conn = seed.connect(realcloud.layout, seed.USER, seed.PROJECT, realcloud.layout.extra["demo_password"])
    made = conn.block_storage.post("/volumes", json={"volume": {"size": 1, "name": "rc-probe"}},
                                   headers={"OpenStack-API-Version": "volume 3.0"})
    body = made.json()["volume"]
    try:
        assert made.status_code == 202 and "os-vol-tenant-attr:tenant_id" not in body
        conn.block_storage.wait_for_status(conn.block_storage.get_volume(body["id"]), "available", wait=120)
        shown = conn.block_storage.get(f"/volumes/{body['id']}").json()["volume"]
        assert shown["os-vol-tenant-attr:tenant_id"] == realcloud.layout.extra["demo_project_id"]
    finally:
        conn.block_storage.delete_volume(body["id"], ignore_missing=True)


def test_delete_keeps_the_boot_volume_unless_asked(rc_cloud: Any, realcloud: RealCloud, tmp_path: Path) -> None:
    """Deleting without --delete-volumes leaves the boot volume (delete_on_termination=False), detached and whole;
    the app then deletes it as a volume of its own."""
    conn = admin(realcloud)
    name = f"rc-keep-{uuid.uuid4().hex[:6]}"
    inst = launch(rc_cloud, name, KeyStore(tmp_path))
    [boot] = inst.volume_ids
    try:
        rc_cloud.delete(name)
        assert conn.compute.find_server(inst.id, ignore_missing=True) is None
        kept = conn.block_storage.wait_for_status(conn.block_storage.get_volume(boot), "available", wait=120)
        assert kept.size == 16 and kept.attachments == [] and kept.is_bootable
        assert boot in {v.id for v in rc_cloud.list_volumes()}
    finally:
        rc_cloud.delete_volume(boot)
    assert conn.block_storage.find_volume(boot, ignore_missing=True) is None


def test_first_listing_from_the_token_cache(rc_cloud: Any, realcloud: RealCloud) -> None:
    """The app's first listing (standard library, the cached token and endpoints) reads real Nova and Cinder."""
    from tui.core.cloud.quick import first_poll

    instances, volumes = rc_cloud.list_instances(), rc_cloud.list_volumes()  # a run that noted the endpoints
    polled: list[Any] = []
    assert first_poll("realcloud", str(realcloud.clouds_yaml()), polled.append) is True
    [first] = polled
    assert (first.quota.ram_mb_limit, first.quota.cores_limit) == (8192, 16)
    assert first.quota.volumes_limit > 0
    assert {i.id for i in first.instances} == {i.id for i in instances}
    assert {v.id for v in first.volumes} == {v.id for v in volumes}


def _listening(pid: int) -> list[str]:
    """The TCP addresses process `pid` listens on, from /proc (state 0A = LISTEN), as 'a.b.c.d:port' or '[v6]:port'."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:
                continue
            addr, port = fields[1].split(":")
            host = ".".join(str(b) for b in reversed(bytes.fromhex(addr))) if table == "tcp" else f"[{addr}]"
            found.append(f"{host}:{int(port, 16)}")
    return found


def test_every_service_listens_on_loopback_only(realcloud: RealCloud) -> None:
    if not realcloud.procs:
        pytest.skip("attached to services started elsewhere (CADES_REALCLOUD_ATTACH)")
    for service, proc in realcloud.procs.items():
        assert _listening(proc.pid) == [f"127.0.0.1:{realcloud.layout.ports[service]}"], service


def test_create_image_of_a_volume_backed_server_list_delete(rc_cloud: Any, realcloud: RealCloud,
                                                            tmp_path: Path) -> None:
    """Nova's createImage of the app's kind of server (boot from volume): a Cinder snapshot and an image of size 0
    mapping it, active at once; the project's own, private, listed first; deleted without then with the snapshot."""
    from tui.core.images import Images

    conn = admin(realcloud)
    name = f"rc-img-{uuid.uuid4().hex[:6]}"
    inst = launch(rc_cloud, name, KeyStore(tmp_path))
    images = Images(rc_cloud, poll_s=0.5)
    said: list[str] = []
    snap_ids: tuple[str, ...] = ()
    try:
        quota = images.quota()
        assert quota is None or quota.limit != 0  # Glance without unified limits publishes none (404)
        made = images.create(name, f"{name}-env", said.append, wait=True)
        image, snap_ids = made.image, made.image.snapshot_ids
        # a volume-backed snapshot does not name its server (Nova's snapshot_volume_backed; the sandbox does the same)
        assert (image.status, image.own, image.visibility, image.instance_id) == ("active", True, "private", "")
        assert len(snap_ids) == 1 and [s.status for s in made.snapshots] == ["available"]
        snap = conn.block_storage.get_snapshot(snap_ids[0])
        assert snap.volume_id == inst.volume_ids[0] and snap.name == f"snapshot for {name}-env"
        assert conn.image.get_image(image.id).owner == realcloud.layout.extra["demo_project_id"]
        listing = images.listing()
        assert listing.images[0].id == image.id and [s.id for s in listing.snapshots_of(image)] == list(snap_ids)
        with pytest.raises(Conflict):
            images.create(name, f"{name}-env", said.append)  # the name is taken: refused before Nova
        gone = images.delete(images.plan_delete(image.id), delete_snapshots=False, say=said.append)
        assert gone == [f"{name}-env"] and conn.image.find_image(image.id, ignore_missing=True) is None
        assert conn.block_storage.get_snapshot(snap_ids[0]).status == "available"  # Glance leaves it
        with pytest.raises(NotFound):
            images.plan_delete(image.id)
    finally:
        for sid in snap_ids:
            rc_cloud.delete_snapshot(sid)
        rc_cloud.delete(name, delete_volumes=True)
    assert all(conn.block_storage.find_snapshot(s, ignore_missing=True) is None for s in snap_ids)
