"""The sandbox through unmodified openstacksdk (cloud and proxy layers), then SSH into what it built."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import asyncssh
import pytest

from tests.sandbox.conftest import known_hosts_from_console
from tui.core.models import META_SSH_PORT, META_SSH_USER
from tui.sandbox import Sandbox


async def test_boot_from_volume_then_ssh_with_pinned_host_key(sandbox: Sandbox, conn: Any) -> None:
    keypair = conn.compute.create_keypair(name="analytics")  # no public key: the cloud generates one
    assert keypair.private_key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    server = conn.create_server(
        "vm-sdk",
        image="Ubuntu 24.04",
        flavor="m1.small",
        boot_from_volume=True,
        volume_size=16,
        network="sandbox-net",
        key_name="analytics",
        wait=True,
        timeout=30,
    )  # (the cloud layer polls every 5 s: this test takes ~7 s)
    server = conn.compute.get_server(server.id)
    assert server.status == "ACTIVE" and server.launched_at
    assert server.vm_state == "active" and server.power_state == 1 and server.task_state is None
    addrs = server.addresses["sandbox-net"]
    assert [a["OS-EXT-IPS:type"] for a in addrs] == ["fixed", "floating"]
    # The fixed IP is the server's own loopback address; openstacksdk's cloud layer (auto_ip) added the floating IP.
    assert re.fullmatch(r"127\.0\.\d+\.\d+", addrs[0]["addr"]) and addrs[0]["addr"] != "127.0.0.1"
    assert addrs[1]["addr"] == "127.0.0.1"
    port, user = int(server.metadata[META_SSH_PORT]), server.metadata[META_SSH_USER]

    # The boot volume: a 16 GB Cinder volume, in-use on /dev/vda, kept on delete (openstacksdk's default).
    (attached,) = server.attached_volumes
    vol = conn.block_storage.get_volume(attached["id"])
    assert (vol.size, vol.status, vol.is_bootable) == (16, "in-use", True)
    assert vol.attachments[0]["device"] == "/dev/vda" and vol.attachments[0]["server_id"] == server.id

    # The console prints the host key cloud-init style; pin it and log in with the generated key.
    console = conn.compute.get_server_console_output(server.id)["output"]
    host = sandbox.ssh_host(server.id)
    assert host is not None and host.port == port
    assert f"256 {host.host_key_fingerprint} root@vm-sdk (ED25519)" in console
    assert "-----BEGIN SSH HOST KEY FINGERPRINTS-----" in console
    known = asyncssh.import_known_hosts(known_hosts_from_console(console, port))
    sandbox.faults.console_host_keys = False  # the knob for clouds that print no host keys: the block is gone
    bare = conn.compute.get_server_console_output(server.id)["output"]
    assert "SSH HOST KEY" not in bare and "Cloud-init" in bare and host.host_key_fingerprint not in bare
    sandbox.faults.console_host_keys = True
    key = asyncssh.import_private_key(keypair.private_key)
    async with asyncssh.connect("127.0.0.1", port, username=user, client_keys=[key], known_hosts=known) as ssh:
        result = await ssh.run('echo "$HOME"; pwd; echo "$SCREENDIR"', check=True)
    assert str(result.stdout).split() == [str(host.home), str(host.home), str(host.screendir)]

    conn.delete_server(server.id, wait=True, timeout=30)
    assert conn.compute.find_server("vm-sdk") is None
    assert not (sandbox.instances_dir / server.id).exists()
    assert conn.block_storage.get_volume(vol.id).status == "available"
    with pytest.raises(OSError):
        await asyncssh.connect("127.0.0.1", port, username=user, client_keys=[key], known_hosts=known)


def test_lifecycle_stop_start_resize_reboot(sandbox: Sandbox, conn: Any) -> None:
    conn.compute.create_keypair(name="k", public_key=_public_key())
    image = conn.image.find_image("Ubuntu 22.04")
    net = conn.network.find_network("sandbox-net")
    tiny, small = conn.compute.find_flavor("m1.tiny"), conn.compute.find_flavor("m1.small")
    server = conn.compute.create_server(
        name="life",
        image_id=image.id,
        flavor_id=tiny.id,
        key_name="k",
        networks=[{"uuid": net.id}],
        metadata={"owner": "tests"},
    )
    assert conn.compute.get_server(server.id).status == "BUILD"
    server = conn.compute.wait_for_server(server, interval=0.05, wait=10)
    assert sandbox.ssh_host(server.id).running

    conn.compute.stop_server(server)
    assert conn.compute.get_server(server.id).task_state == "powering-off"
    conn.compute.wait_for_server(server, status="SHUTOFF", interval=0.05, wait=10)
    assert not sandbox.ssh_host(server.id).running
    assert conn.compute.get_server(server.id).power_state == 4
    conn.compute.start_server(server)
    conn.compute.wait_for_server(server, interval=0.05, wait=10)
    assert sandbox.ssh_host(server.id).running

    conn.compute.resize_server(server, small.id)
    conn.compute.wait_for_server(server, status="VERIFY_RESIZE", interval=0.05, wait=10)
    assert conn.compute.get_server(server.id).flavor.name == "m1.small"
    conn.compute.revert_server_resize(server)
    conn.compute.wait_for_server(server, interval=0.05, wait=10)
    assert conn.compute.get_server(server.id).flavor.name == "m1.tiny"
    conn.compute.resize_server(server, small.id)
    conn.compute.wait_for_server(server, status="VERIFY_RESIZE", interval=0.05, wait=10)
    conn.compute.confirm_server_resize(server)
    assert conn.compute.get_server(server.id).status == "ACTIVE"

    conn.compute.reboot_server(server, "HARD")
    assert conn.compute.get_server(server.id).status == "HARD_REBOOT"
    conn.compute.wait_for_server(server, interval=0.05, wait=10)
    console = conn.compute.get_server_console_output(server.id)["output"]
    # boots: build, start, resize, revert, resize, reboot
    assert console.count("-----BEGIN SSH HOST KEY KEYS-----") == 6
    assert conn.compute.get_server_console_output(server.id, length=3)["output"].count("\n") == 3

    limits = conn.compute.get_limits().absolute
    assert (limits.total_ram_used, limits.total_cores_used, limits.instances_used) == (4096, 1, 1)
    state = sandbox.server_state("life")
    assert state["metadata"]["owner"] == "tests" and state["flavor_id"] == small.id


def test_quota_exceeded_is_novas_403(sandbox: Sandbox, conn: Any) -> None:
    net = conn.network.find_network("sandbox-net")
    large = conn.compute.find_flavor("m1.large")
    body = {
        "server": {
            "name": "big",
            "flavorRef": large.id,
            "imageRef": conn.image.find_image("Ubuntu 24.04").id,
            "networks": [{"uuid": net.id}],
        }
    }
    resp = conn.compute.post("/servers", json=body, raise_exc=False)
    assert resp.status_code == 403
    assert resp.json() == {
        "forbidden": {"code": 403, "message": "Quota exceeded for ram: Requested 16384, but already used 0 of 8192 ram"}
    }
    sandbox.faults.set_quota(cores=1, ram_mb=1024)
    body["server"]["flavorRef"] = conn.compute.find_flavor("c1.small").id
    resp = conn.compute.post("/servers", json=body, raise_exc=False)
    assert resp.json()["forbidden"]["message"] == (
        "Quota exceeded for cores, ram: Requested 2, 2048, but already used 0, 0 of 1, 1024 cores, ram"
    )
    assert conn.compute.get_limits().absolute.total_cores == 1
    # networks "auto" (openstacksdk's default without network=) is refused the way many clouds do.
    sandbox.faults.quota.clear()
    body["server"]["networks"] = "auto"
    resp = conn.compute.post("/servers", json=body, raise_exc=False, microversion="2.37")
    assert resp.status_code == 400 and "Unable to automatically allocate a network" in resp.text
    assert list(conn.compute.servers()) == []


def test_credentials_tokens_and_app_credentials(sandbox: Sandbox) -> None:
    import requests
    from keystoneauth1.exceptions.http import Unauthorized

    from tests.sandbox.conftest import connect

    bad = connect(sandbox, auth={"password": "wrong"})
    with pytest.raises(Unauthorized) as err:
        list(bad.compute.flavors())
    assert err.value.http_status == 401
    resp = requests.post(
        f"{sandbox.auth_url}/v3/auth/tokens",
        timeout=5,
        json={
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"name": "demo", "domain": {"name": "Default"}, "password": "wrong"}},
                }
            }
        },
    )
    assert resp.status_code == 401 and resp.json()["error"]["title"] == "Unauthorized"
    assert requests.get(f"{sandbox.url}/compute/v2.1/flavors", timeout=5).status_code == 401
    assert (
        requests.get(f"{sandbox.url}/compute/v2.1/flavors", headers={"X-Auth-Token": "nope"}, timeout=5).status_code
        == 401
    )
    app = connect(sandbox, cloud="sandbox-appcred")
    assert len(list(app.compute.flavors())) == 9
    catalog = {s["type"] for s in app.session.auth.get_access(app.session).service_catalog.catalog}
    assert {"identity", "compute", "image", "network", "volumev3", "block-storage"} <= catalog


def test_fault_knobs(sandbox: Sandbox, conn: Any) -> None:
    import time

    list(conn.compute.flavors())  # authenticate before the knobs
    sandbox.faults.error_rate = 1.0
    resp = conn.compute.get("/flavors", raise_exc=False)
    assert resp.status_code == 500 and "computeFault" in resp.json()
    sandbox.faults.error_rate = 0.0
    sandbox.faults.rate_limit_rate = 1.0
    resp = conn.compute.get("/flavors", raise_exc=False)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "1"
    sandbox.faults.rate_limit_rate = 0.0
    sandbox.faults.latency_s = 0.3
    t0 = time.monotonic()
    assert conn.compute.get("/flavors").status_code == 200
    assert time.monotonic() - t0 >= 0.3
    sandbox.faults.latency_s = 0.0

    sandbox.faults.fail_next_create = True
    net = conn.network.find_network("sandbox-net")
    image = conn.image.find_image("Ubuntu 24.04")
    tiny = conn.compute.find_flavor("m1.tiny")
    bad = conn.compute.create_server(name="doomed", image_id=image.id, flavor_id=tiny.id, networks=[{"uuid": net.id}])
    bad = conn.compute.wait_for_server(bad, status="ERROR", failures=[], interval=0.05, wait=10)
    assert bad.fault["message"] == "No valid host was found. There are not enough hosts available."
    assert sandbox.ssh_host(bad.id) is None
    good = conn.compute.create_server(name="fine", image_id=image.id, flavor_id=tiny.id, networks=[{"uuid": net.id}])
    conn.compute.wait_for_server(good, interval=0.05, wait=10)


def test_images_networks_volumes(sandbox: Sandbox, conn: Any) -> None:
    names = [i.name for i in conn.image.images(limit=1)]  # follows Glance's `next` links
    assert names == ["Ubuntu 24.04", "Ubuntu 22.04", "Ubuntu 20.04"]
    page = conn.image.get("/images?limit=2").json()
    assert len(page["images"]) == 2 and page["next"].startswith("/v2/images?")
    assert [i["name"] for i in conn.image.get("/images?name=Ubuntu 22.04").json()["images"]] == ["Ubuntu 22.04"]

    public = conn.network.find_network("public")
    assert public.is_router_external and not conn.network.find_network("sandbox-net").is_router_external
    sg = conn.network.find_security_group("default")
    ssh_from_anywhere = {"security_group_id": sg.id, "direction": "ingress", "protocol": "tcp",
                         "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}
    rule = conn.network.create_security_group_rule(**ssh_from_anywhere)
    import openstack.exceptions

    with pytest.raises(openstack.exceptions.ConflictException):  # the very same rule again
        conn.network.create_security_group_rule(**ssh_from_anywhere)
    conn.network.delete_security_group_rule(rule)
    fip = conn.network.create_ip(floating_network_id=public.id)
    assert fip.floating_ip_address == "127.0.0.1"
    conn.network.delete_ip(fip)

    vol = conn.block_storage.create_volume(size=5, name="data")
    conn.block_storage.wait_for_status(vol, "available", interval=0.05, wait=10)
    assert [v.name for v in conn.block_storage.volumes()] == ["data"]
    conn.block_storage.delete_volume(vol)
    conn.block_storage.wait_for_delete(vol, interval=0.05, wait=10)
    sandbox.faults.set_quota(gigabytes=10)
    with pytest.raises(openstack.exceptions.HttpException) as err:
        conn.block_storage.create_volume(size=11)
    assert err.value.status_code == 413 and "VolumeSizeExceedsAvailableQuota" in str(err.value)


def _public_key() -> str:
    return asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()


def test_md5_fingerprint_like_nova(conn: Any) -> None:
    pub = _public_key()
    kp = conn.compute.create_keypair(name="fp", public_key=pub)
    digest = hashlib.md5(base64.b64decode(pub.split()[1])).hexdigest()
    assert kp.fingerprint == ":".join(digest[i : i + 2] for i in range(0, 32, 2))
    assert kp.private_key is None
