"""What a Dask cluster needs from the sandbox: private-only servers reached through a head (jump host), security
groups admitting their own members, servers that never become ACTIVE; and responses true to the microversion."""

from __future__ import annotations

import socket
from typing import Any

import asyncssh
import openstack.exceptions
import pytest

from tests._support import eventually
from tests.sandbox.conftest import connect, known_hosts_from_console, wait_for
from tests.sandbox.test_openstackclient import OPENSTACK, osc
from tui.core.cloud import openstack_cloud
from tui.core.cloud.base import CloudError, Conflict, LaunchSpec
from tui.core.cloud.openstack_cloud import OpenStackCloud
from tui.sandbox import Sandbox
from tui.sandbox.sshhost import port_is_free

BASE = {"image": "Ubuntu 24.04", "flavor": "m1.tiny", "key_name": "k", "network": "sandbox-net", "volume_size_gb": 8}
NOKEY = {**BASE, "key_name": ""}


@pytest.fixture
def cloud(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(openstack_cloud, "POLL_S", 0.05)
    c = OpenStackCloud(connect(sandbox), "sandbox")
    yield c
    c.conn.close()


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


async def test_private_worker_is_reached_through_the_head(sandbox: Sandbox, cloud: OpenStackCloud) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    cloud.import_keypair("k", key.export_public_key().decode())
    sg = cloud.create_cluster_security_group("dask-c1")
    assert cloud.create_cluster_security_group("dask-c1") == sg  # idempotent
    head = cloud.launch(LaunchSpec(name="c1-head", security_groups=("default", "dask-c1"), **BASE))  # type: ignore[arg-type]
    worker = cloud.launch(LaunchSpec(name="c1-w1", public_ip=False, security_groups=("dask-c1",), **BASE))  # type: ignore[arg-type]

    # The head: floating 127.0.0.1 plus its own private 127.0.0.N; sshd on both. The worker: private only.
    assert head.public_ip == head.ip == "127.0.0.1" and head.private_ip == "127.0.0.2"
    assert worker.public_ip == "" and worker.private_ip == worker.ip == "127.0.0.3"
    assert [(a.kind, a.addr) for a in worker.addresses] == [("fixed", "127.0.0.3")]
    assert sandbox.ssh_host(head.id).listen == ["127.0.0.2", "127.0.0.1"]  # type: ignore[union-attr]
    assert sandbox.ssh_host(worker.id).listen == ["127.0.0.3"]  # type: ignore[union-attr]
    assert _listening("127.0.0.3", worker.ssh_port) and port_is_free(worker.ssh_port, "127.0.0.1")

    # SSH to the worker's private address with the head as jump host, both host keys pinned from the consoles.
    known = known_hosts_from_console(cloud.console_log(head.id), head.ssh_port) + known_hosts_from_console(
        cloud.console_log(worker.id), worker.ssh_port, worker.private_ip
    )
    opts: dict[str, Any] = {
        "username": head.ssh_user,
        "client_keys": [key],
        "known_hosts": asyncssh.import_known_hosts(known),
    }
    async with (
        asyncssh.connect("127.0.0.1", head.ssh_port, **opts) as jump,
        asyncssh.connect(worker.private_ip, worker.ssh_port, tunnel=jump, **opts) as ssh,
    ):
        result = await ssh.run('echo "$HOME"', check=True)
    assert str(result.stdout).strip() == str(sandbox.ssh_host(worker.id).home)  # type: ignore[union-attr]
    # The proof it went through the head: the head's sshd (LogLevel DEBUG1) logged the forwarded connection.
    log = sandbox.sshd_log_path("c1-head")
    wait_for(lambda: f"target 127.0.0.3 port {worker.ssh_port}" in log.read_text(), what="direct-tcpip in the log")
    assert "direct-tcpip" not in sandbox.sshd_log_path("c1-w1").read_text()

    # The private address stays across stop/start and resize; the security groups show on the server.
    worker = cloud.start(cloud.stop("c1-w1").id)
    assert worker.private_ip == "127.0.0.3" and _listening("127.0.0.3", worker.ssh_port)
    worker = cloud.resize("c1-w1", "m1.small")
    assert worker.status == "VERIFY_RESIZE" and worker.private_ip == "127.0.0.3"
    assert cloud.conn.compute.get_server(worker.id).security_groups == [{"name": "dask-c1"}]
    assert {g["name"] for g in cloud.conn.compute.get_server(head.id).security_groups} == {"default", "dask-c1"}

    # A group in use cannot go (Neutron's 409); once its servers are gone it can. The freed address is reused.
    resp = cloud.conn.network.delete(f"/security-groups/{sg}", raise_exc=False)
    assert resp.status_code == 409
    assert resp.json() == {
        "NeutronError": {"type": "SecurityGroupInUse", "message": f"Security Group {sg} in use.", "detail": ""}
    }
    with pytest.raises(Conflict):
        cloud.delete_security_group("dask-c1")
    cloud.delete("c1-w1")
    cloud.delete("c1-head")
    assert cloud.conn.network.ips() is not None and list(cloud.conn.network.ips()) == []  # released with the head
    assert cloud.delete_security_group("dask-c1") is True and cloud.delete_security_group("dask-c1") is False
    again = cloud.launch(LaunchSpec(name="c1-w2", public_ip=False, **BASE))  # type: ignore[arg-type]
    assert again.private_ip == "127.0.0.2"


async def test_floating_ip_moves_sshd_without_dropping_sessions(sandbox: Sandbox, conn: Any) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    conn.compute.create_keypair(name="k", public_key=key.export_public_key().decode())
    net, public = conn.network.find_network("sandbox-net"), conn.network.find_network("public")
    image, tiny = conn.image.find_image("Ubuntu 22.04"), conn.compute.find_flavor("m1.tiny")
    server = conn.compute.create_server(
        name="solo", image_id=image.id, flavor_id=tiny.id, key_name="k", networks=[{"uuid": net.id}]
    )
    server = conn.compute.wait_for_server(server, interval=0.05, wait=10)
    server = conn.compute.get_server(server.id)
    (fixed,) = server.addresses["sandbox-net"]
    host = sandbox.ssh_host(server.id)
    assert host is not None and host.listen == [fixed["addr"]]
    known = asyncssh.import_known_hosts(host.known_hosts_line())
    async with asyncssh.connect(
        fixed["addr"], host.port, username=host.user, client_keys=[key], known_hosts=known
    ) as ssh:
        (port,) = conn.network.ports(device_id=server.id)
        fip = conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
        assert host.listen == [fixed["addr"], "127.0.0.1"]
        # sshd re-binds on SIGHUP, a moment after the API answered (a real floating IP also takes a moment)
        assert await eventually(lambda: _listening("127.0.0.1", host.port), 15)
        assert [a["OS-EXT-IPS:type"] for a in conn.compute.get_server(server.id).addresses["sandbox-net"]] == [
            "fixed",
            "floating",
        ]
        conn.network.update_ip(fip, port_id=None)
        assert await eventually(lambda: not _listening("127.0.0.1", host.port), 15)
        assert (await ssh.run("echo still here", check=True)).stdout == "still here\n"  # SIGHUP kept the session
    with pytest.raises(openstack.exceptions.ConflictException):
        other = conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
        conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
    conn.network.delete_ip(other)


async def test_a_floating_ip_whose_port_is_taken_moves_the_host_to_a_free_one(sandbox: Sandbox, conn: Any) -> None:
    """127.0.0.1 is every process's: when another program holds the VM's port there, binding a floating IP moves
    the VM's sshd to a port free on all its addresses and the server publishes it (it used to keep the taken port:
    the app then reached the other program, "Connection lost")."""
    net, public = conn.network.find_network("sandbox-net"), conn.network.find_network("public")
    image, tiny = conn.image.find_image("Ubuntu 22.04"), conn.compute.find_flavor("m1.tiny")
    server = conn.compute.create_server(name="taken", image_id=image.id, flavor_id=tiny.id,
                                        networks=[{"uuid": net.id}])
    server = conn.compute.wait_for_server(server, interval=0.05, wait=10)
    host = sandbox.ssh_host(server.id)
    assert host is not None
    before = host.port
    squatter = socket.socket()
    try:
        squatter.bind(("127.0.0.1", before))
        squatter.listen()
        (port,) = conn.network.ports(device_id=server.id)
        conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
        assert host.port != before and host.listen[-1] == "127.0.0.1"
        assert await eventually(lambda: _listening("127.0.0.1", host.port), 15)
        meta = conn.compute.get_server(server.id).metadata
        assert str(host.port) in meta.values(), meta
    finally:
        squatter.close()


def test_security_group_rules_are_checked_like_neutron(sandbox: Sandbox, conn: Any) -> None:
    sg = conn.network.create_security_group(name="g")
    rule = conn.network.create_security_group_rule(
        security_group_id=sg.id,
        direction="ingress",
        protocol="tcp",
        port_range_min=8786,
        port_range_max=8787,
        remote_group_id=sg.id,
    )
    assert (rule.port_range_min, rule.port_range_max, rule.remote_group_id) == (8786, 8787, sg.id)
    bad = [
        ({"port_range_min": 9, "port_range_max": 8, "protocol": "tcp"}, 400, "SecurityGroupInvalidPortRange"),
        ({"port_range_min": 22, "port_range_max": 22}, 400, "SecurityGroupProtocolRequiredWithPorts"),
        ({"protocol": "tcp", "remote_group_id": "nope"}, 404, "SecurityGroupNotFound"),
        (
            {"protocol": "tcp", "remote_group_id": sg.id, "remote_ip_prefix": "10.0.0.0/8"},
            400,
            "SecurityGroupMultipleRemoteEntites",
        ),
    ]
    for fields, status, kind in bad:
        body = {"security_group_rule": {"security_group_id": sg.id, "direction": "ingress", **fields}}
        resp = conn.network.post("/security-group-rules", json=body, raise_exc=False)
        assert (resp.status_code, resp.json()["NeutronError"]["type"]) == (status, kind), fields
    # Deleting a group deletes the rules of other groups that name it as their remote group.
    other = conn.network.create_security_group(name="h")
    conn.network.create_security_group_rule(security_group_id=other.id, direction="ingress", remote_group_id=sg.id)
    conn.network.delete_security_group(sg)
    assert [r.direction for r in conn.network.security_group_rules(security_group_id=other.id)] == ["egress"] * 2
    # An unknown group on create is Nova's 400.
    body = {
        "server": {
            "name": "x",
            "flavorRef": conn.compute.find_flavor("m1.tiny").id,
            "imageRef": conn.image.find_image("Ubuntu 24.04").id,
            "networks": [{"uuid": conn.network.find_network("sandbox-net").id}],
            "security_groups": [{"name": "missing"}],
        }
    }
    resp = conn.compute.post("/servers", json=body, raise_exc=False)
    assert (resp.status_code, resp.json()) == (
        400,
        {"badRequest": {"code": 400, "message": "Security group missing not found."}},
    )


@pytest.mark.skipif(not OPENSTACK.exists(), reason="python-openstackclient is not installed in this venv")
def test_openstack_server_show_lists_security_groups(sandbox: Sandbox) -> None:
    osc(sandbox, "security group create dask", "security group rule create --protocol tcp --remote-group dask dask")
    osc(
        sandbox,
        "server create --image 'Ubuntu 24.04' --flavor m1.tiny --network sandbox-net "
        "--security-group default --security-group dask --wait sg-vm -f json",
    )
    (shown,), _, _ = osc(sandbox, "server show sg-vm -f json")
    assert sorted(g["name"] for g in shown["security_groups"]) == ["dask", "default"]
    _, _, err = osc(sandbox, "security group delete dask", check=False)
    assert "in use" in err


def test_never_active_knob(sandbox: Sandbox, cloud: OpenStackCloud) -> None:
    sandbox.faults.never_active = "*-w2"
    sandbox.faults.never_active_status = "ERROR"
    with pytest.raises(CloudError, match="Exceeded maximum number of retries"):
        cloud.launch(LaunchSpec(name="c-w2", public_ip=False, **NOKEY))  # type: ignore[arg-type]
    assert sandbox.ssh_host(cloud.get_instance("c-w2").id) is None
    sandbox.faults.never_active_status = "BUILD"
    stuck = cloud.launch(LaunchSpec(name="d-w2", public_ip=False, **NOKEY), wait=False)  # type: ignore[arg-type]
    fine = cloud.launch(LaunchSpec(name="d-w1", public_ip=False, **NOKEY))  # type: ignore[arg-type]
    assert fine.status == "ACTIVE"
    stuck = cloud.get_instance(stuck.id)
    assert (stuck.status, stuck.task_state, stuck.addresses) == ("BUILD", "spawning", ())
    cloud.delete("d-w2")  # a stuck build can still be deleted
    sandbox.faults.reset()
    assert sandbox.faults.never_active == ""


def test_responses_follow_the_requested_microversion(sandbox: Sandbox, conn: Any) -> None:
    net = conn.network.find_network("sandbox-net")
    server = conn.compute.create_server(
        name="mv",
        image_id=conn.image.find_image("Ubuntu 24.04").id,
        flavor_id=conn.compute.find_flavor("m1.tiny").id,
        networks=[{"uuid": net.id}],
    )
    conn.compute.wait_for_server(server, interval=0.05, wait=10)

    def nova(url: str, mv: str) -> dict[str, Any]:
        resp = conn.compute.get(url, microversion=mv)
        assert resp.headers["OpenStack-API-Version"] == f"compute {mv}"
        body: dict[str, Any] = resp.json()
        return body

    detail = nova("/servers/detail", "2.96")["servers"][0]
    assert "server_groups" not in detail and "host_status" not in detail
    assert detail["pinned_availability_zone"] is None and detail["locked_reason"] is None
    assert nova(f"/servers/{server.id}", "2.71")["server"]["server_groups"] == []
    old = nova(f"/servers/{server.id}", "2.70")["server"]
    assert "server_groups" not in old and "locked_reason" not in old and old["trusted_image_certificates"] is None
    oldest = nova(f"/servers/{server.id}", "2.1")["server"]
    for field in ("locked", "description", "tags", "trusted_image_certificates", "pinned_availability_zone"):
        assert field not in oldest, field
    assert oldest["progress"] == 0 and set(oldest["flavor"]) == {"id", "links"}

    vol = conn.block_storage.create_volume(size=1, name="v")
    late = ("group_id", "shared_targets", "service_uuid", "volume_type_id", "consumes_quota")
    admin_only = ("cluster_name", "provider_id", "migration_status")
    for mv, present in (("3.0", ()), ("3.13", late[:1]), ("3.48", late[:3]), ("3.63", late[:4]), ("3.65", late)):
        resp = conn.block_storage.get(f"/volumes/{vol.id}", microversion=mv)
        assert resp.headers["OpenStack-API-Version"] == f"volume {mv}"
        got = resp.json()["volume"]
        assert [f for f in late if f in got] == list(present), mv
        assert not [f for f in admin_only if f in got], mv
    assert (
        conn.block_storage.get("/volumes/detail", microversion="3.64").json()["volumes"][0].get("consumes_quota")
        is None
    )
    assert conn.block_storage.get("/volumes", microversion="3.99", raise_exc=False).status_code == 406
