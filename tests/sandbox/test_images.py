"""createImage in the sandbox through unmodified openstacksdk: image- and volume-backed servers, the disk a clone
starts with (a file written before the snapshot, a venv's paths moved), Cinder snapshots, Glance's delete and quota."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.sandbox.conftest import wait_for
from tui.sandbox import Sandbox


def prop(image: Any, key: str) -> Any:
    """An image property, whether openstacksdk maps it to an attribute or leaves it in `properties`."""
    return image.properties.get(key, getattr(image, key, None))


def _server(conn: Any, name: str, *, volume: bool) -> Any:
    kwargs: dict[str, Any] = {"boot_from_volume": True, "volume_size": 16} if volume else {}
    server = conn.create_server(name, image="Ubuntu 24.04", flavor="m1.small", network="sandbox-net",
                                wait=True, timeout=30, auto_ip=False, **kwargs)
    return conn.compute.get_server(server.id)


def _write_disk(sandbox: Sandbox, server_id: str) -> None:
    """What setup leaves on a VM: a file, and a venv-style script naming its own absolute path."""
    host = sandbox.ssh_host(server_id)
    assert host is not None
    (host.home / "notes.txt").write_text("installed before the snapshot\n")
    (host.home / "env" / "bin").mkdir(parents=True)
    (host.home / "env" / "bin" / "jupyter").write_text(f"#!{host.home}/env/bin/python\n")
    (host.home / "env" / "bin" / "python").symlink_to(host.home / "env" / "bin" / "real-python")
    runtime = host.home / ".local" / "share" / "jupyter" / "runtime"
    runtime.mkdir(parents=True)
    (runtime / "jpserver-1.json").write_text('{"pid": 1}')  # a running server's record: not on the clone


def _clone_home_checks(sandbox: Sandbox, clone_id: str) -> None:
    host = wait_for(lambda: sandbox.ssh_host(clone_id), what="the clone's SSH host")
    assert (host.home / "notes.txt").read_text() == "installed before the snapshot\n"
    assert (host.home / "env" / "bin" / "jupyter").read_text() == f"#!{host.home}/env/bin/python\n"
    assert str((host.home / "env" / "bin" / "python").readlink()) == f"{host.home}/env/bin/real-python"
    assert not list((host.home / ".local" / "share" / "jupyter" / "runtime").iterdir())


def test_image_of_an_image_backed_server_then_a_clone_has_its_disk(sandbox: Sandbox, conn: Any) -> None:
    src = _server(conn, "src", volume=False)
    _write_disk(sandbox, src.id)
    sandbox.delays.image_s = 1.0  # slow enough to see queued/saving
    image = conn.compute.create_server_image(src.id, "frozen", metadata={"purpose": "test"})
    assert image.status in ("queued", "saving")
    assert conn.compute.get_server(src.id).task_state in ("image_snapshot_pending", "image_uploading")
    wait_for(lambda: conn.image.get_image(image.id).status == "saving", what="saving")
    image = wait_for(lambda: (i := conn.image.get_image(image.id)).status == "active" and i, what="active")
    assert image.size > 0 and image.visibility == "private"
    assert image.owner == conn.current_project_id
    assert prop(image, "image_type") == "snapshot" and prop(image, "purpose") == "test"
    assert prop(image, "instance_uuid") == src.id
    wait_for(lambda: conn.compute.get_server(src.id).task_state is None, what="the server's task state cleared")
    assert "frozen" in [i.name for i in conn.image.images(owner=conn.current_project_id)]

    flavor = conn.compute.find_flavor("m1.small").id
    clone = conn.compute.create_server(name="clone", image_id=image.id, flavor_id=flavor,
                                       networks=[{"uuid": conn.network.find_network("sandbox-net").id}])
    conn.compute.wait_for_server(clone, wait=30)
    _clone_home_checks(sandbox, clone.id)


def test_image_of_a_volume_backed_server_makes_snapshots_and_a_clone_has_its_disk(
        sandbox: Sandbox, conn: Any) -> None:
    src = _server(conn, "vsrc", volume=True)
    _write_disk(sandbox, src.id)
    image = conn.compute.create_server_image(src.id, "vfrozen")
    assert image.status == "active" and image.size == 0  # Nova force-activates the empty image
    mapping = json.loads(prop(image, "block_device_mapping"))
    assert prop(image, "bdm_v2") == "True" and prop(image, "root_device_name") == "/dev/vda"
    assert [m["source_type"] for m in mapping] == ["snapshot"] and mapping[0]["boot_index"] == 0
    snap = conn.block_storage.get_snapshot(mapping[0]["snapshot_id"])
    assert snap.name == "snapshot for vfrozen" and snap.volume_id == src.attached_volumes[0]["id"]
    wait_for(lambda: conn.block_storage.get_snapshot(snap.id).status == "available", what="snapshot available")
    assert conn.block_storage.get_limits().absolute.total_snapshots_used == 1

    # Launched the way the app launches (an image-to-volume root mapping): the image's snapshot mapping wins.
    clone = conn.create_server("vclone", image=image.id, flavor="m1.small", network="sandbox-net",
                               boot_from_volume=True, volume_size=16, wait=True, timeout=30, auto_ip=False)
    vol = conn.block_storage.get_volume(conn.compute.get_server(clone.id).attached_volumes[0]["id"])
    assert vol.snapshot_id == snap.id and vol.is_bootable
    _clone_home_checks(sandbox, clone.id)

    # The source volume has a snapshot: Cinder refuses to delete it. Deleting the image leaves the snapshot.
    conn.delete_server(src.id, wait=True, timeout=30)
    assert conn.block_storage.find_volume(src.attached_volumes[0]["id"]) is not None
    conn.image.delete_image(image.id)
    assert conn.image.find_image(image.id) is None
    assert conn.block_storage.get_snapshot(snap.id).status == "available"
    conn.block_storage.delete_snapshot(snap.id)
    wait_for(lambda: conn.block_storage.find_snapshot(snap.id) is None, what="snapshot deleted")


def test_create_image_answer_by_microversion_and_states(sandbox: Sandbox, conn: Any) -> None:
    src = _server(conn, "mv", volume=False)
    body = {"createImage": {"name": "old"}}
    old = conn.compute.post(f"/servers/{src.id}/action", json=body, microversion="2.44")
    assert old.status_code == 202 and "/image/v2/images/" in old.headers["Location"] and not old.content
    wait_for(lambda: conn.compute.get_server(src.id).task_state is None, what="snapshot done")
    new = conn.compute.post(f"/servers/{src.id}/action", json={"createImage": {"name": "new"}}, microversion="2.45")
    assert new.status_code == 202 and set(new.json()) == {"image_id"} and "Location" not in new.headers
    busy = conn.compute.post(f"/servers/{src.id}/action", json={"createImage": {"name": "again"}},
                             microversion="2.45")
    assert busy.status_code == 409 and "task_state image_snapshot_pending" in busy.text
    bad = conn.compute.post(f"/servers/{src.id}/action", json={"createImage": {}}, microversion="2.45")
    assert bad.status_code == 400


@pytest.mark.parametrize("volume", [False, True])
def test_image_and_snapshot_quotas(sandbox: Sandbox, conn: Any, volume: bool) -> None:
    src = _server(conn, "q", volume=volume)
    sandbox.set_quota(image_count_total=1, snapshots=1)
    usage = conn.image.get("/info/usage").json()["usage"]["image_count_total"]
    assert usage == {"limit": 1, "usage": 0}
    first = conn.compute.post(f"/servers/{src.id}/action", json={"createImage": {"name": "one"}},
                              microversion="2.45")
    assert first.status_code == 202
    wait_for(lambda: conn.compute.get_server(src.id).task_state is None, what="snapshot done")
    assert conn.image.get("/info/usage").json()["usage"]["image_count_total"] == {"limit": 1, "usage": 1}
    second = conn.compute.post(f"/servers/{src.id}/action", json={"createImage": {"name": "two"}},
                               microversion="2.45")
    if volume:  # the snapshot quota is checked first, by Nova: 403 before anything is made
        assert second.status_code == 403 and "Quota exceeded for resources: snapshots" in second.text
        sandbox.set_quota(snapshots=10)  # then Glance's image quota: Nova's 500 after the snapshot was made
        third = conn.compute.post(f"/servers/{src.id}/action", json={"createImage": {"name": "three"}},
                                  microversion="2.45")
        assert third.status_code == 500 and "HTTPOverLimit" in third.text
        assert sorted(s.name for s in conn.block_storage.snapshots()) == ["snapshot for one", "snapshot for three"]
    else:  # Glance's 413 surfaces from Nova as a 500, as real Nova does
        assert second.status_code == 500 and "HTTPOverLimit" in second.text
    assert len(list(conn.image.images(owner=conn.current_project_id))) == 1
