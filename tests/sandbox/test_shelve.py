"""Shelve, shelveOffload and unshelve in the sandbox through unmodified openstacksdk and plain Nova REST calls: the
states and task states as Nova reports them, the quota an offloaded server frees (and Nova's 403 when unshelving it
does not fit), and the SSH host stopping on shelve and coming back on unshelve with the same disk."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from tests.sandbox.conftest import connect, wait_for
from tui.sandbox import Delays, Sandbox


def _keypair(conn: Any) -> asyncssh.SSHKey:
    key = asyncssh.generate_private_key("ssh-ed25519")
    conn.compute.create_keypair(name="k", public_key=key.export_public_key().decode().strip())
    return key


def _server(conn: Any, name: str, flavor: str = "m1.tiny", volume: bool = False) -> Any:
    image = conn.image.find_image("Ubuntu 24.04")
    body: dict[str, Any] = {"name": name, "flavorRef": conn.compute.find_flavor(flavor).id, "key_name": "k",
                            "networks": [{"uuid": conn.network.find_network("sandbox-net").id}]}
    if volume:
        body["block_device_mapping_v2"] = [{"boot_index": 0, "uuid": image.id, "source_type": "image",
                                            "destination_type": "volume", "volume_size": 16}]
    else:
        body["imageRef"] = image.id
    sid = conn.compute.post("/servers", json={"server": body}).json()["server"]["id"]
    return conn.compute.wait_for_server(conn.compute.get_server(sid), interval=0.05, wait=20)


async def _ssh(sb: Sandbox, sid: str, key: asyncssh.SSHKey, command: str) -> str:
    host = sb.ssh_host(sid)
    assert host is not None and host.running
    async with asyncssh.connect(host.listen[0], host.port, username=host.user, client_keys=[key],
                                known_hosts=asyncssh.import_known_hosts(host.known_hosts_line())) as ssh:
        return str((await ssh.run(command, check=True)).stdout)


class Watch:
    """Every distinct (status, vm_state, task_state) a server shows, read every 20 ms in a thread."""

    def __init__(self, conn: Any, sid: str) -> None:
        self.conn, self.sid, self.seen = conn, sid, []  # type: list[tuple[str, str, str | None]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> None:
        s = self.conn.compute.get(f"/servers/{self.sid}").json()["server"]
        row = (s["status"], s["OS-EXT-STS:vm_state"], s["OS-EXT-STS:task_state"])
        if not self.seen or self.seen[-1] != row:
            self.seen.append(row)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._read()
            time.sleep(0.02)
        self._read()  # the state the waiting ended on

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[Sandbox]:
    """Steps long enough (0.4 s each) for a 20 ms watcher to see every task state."""
    sb = Sandbox(tmp_path / "sb", delays=Delays(build_s=0.1, shelve_s=0.8, unshelve_s=0.8, delete_s=0.05))
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()


async def test_image_backed_shelve_sequence_and_same_disk(slow: Sandbox) -> None:
    conn = connect(slow)
    key = _keypair(conn)
    server = _server(conn, "shelf")
    await _ssh(slow, server.id, key, "echo kept > notes.txt")
    port = int(conn.compute.get_server(server.id).metadata["sandbox_ssh_port"])

    with Watch(conn, server.id) as watch:  # a plain Nova REST call, as real Nova takes it
        resp = conn.compute.post(f"/servers/{server.id}/action", json={"shelve": None})
        assert resp.status_code == 202
        wait_for(lambda: conn.compute.get_server(server.id).status == "SHELVED_OFFLOADED", 20, "offloaded")
    assert [row for row in watch.seen if row[2]] == [  # (the first read may come before the API answered)
        ("ACTIVE", "active", "shelving"),
        ("ACTIVE", "active", "shelving_image_uploading"),
        ("SHELVED", "shelved", "shelving_offloading"),  # shelved_offload_time 0 (Nova's default): at once
    ]
    assert watch.seen[-1] == ("SHELVED_OFFLOADED", "shelved_offloaded", None)
    host = slow.ssh_host(server.id)
    assert host is not None and not host.running
    with pytest.raises(OSError):
        await asyncssh.connect(host.listen[0], port, username=host.user, client_keys=[key],
                               known_hosts=asyncssh.import_known_hosts(host.known_hosts_line()))
    shown = conn.compute.get(f"/servers/{server.id}").json()["server"]
    assert (shown["OS-EXT-STS:power_state"], shown["hostId"]) == (4, "")  # shut down, on no host
    limits = conn.compute.get_limits().absolute
    assert (limits.total_cores_used, limits.total_ram_used, limits.instances_used) == (0, 0, 1)

    with Watch(conn, server.id) as watch:
        conn.compute.unshelve_server(server)
        wait_for(lambda: conn.compute.get_server(server.id).status == "ACTIVE", 20, "unshelved")
    assert [row[2] for row in watch.seen if row[2]] == ["unshelving", "spawning"]
    assert (await _ssh(slow, server.id, key, "cat notes.txt")).strip() == "kept"
    limits = conn.compute.get_limits().absolute
    assert (limits.total_cores_used, limits.total_ram_used) == (1, 2048)

    slow.delays.shelved_offload_time = -1  # kept on its host: unshelving powers it on there (no spawn)
    conn.compute.shelve_server(server)
    wait_for(lambda: conn.compute.get_server(server.id).status == "SHELVED", 20, "shelved")
    with Watch(conn, server.id) as watch:
        conn.compute.unshelve_server(server)
        wait_for(lambda: conn.compute.get_server(server.id).status == "ACTIVE", 20, "unshelved")
    assert [row[2] for row in watch.seen if row[2]] == ["unshelving", "powering-on"]
    assert (await _ssh(slow, server.id, key, "cat notes.txt")).strip() == "kept"


def test_volume_backed_offloads_at_once_and_unshelve_checks_quota(sandbox: Sandbox, conn: Any) -> None:
    _keypair(conn)
    server = _server(conn, "vol", flavor="m1.medium", volume=True)  # 8 GB: the whole RAM quota
    conn.compute.shelve_server(server)
    conn.compute.wait_for_server(server, status="SHELVED_OFFLOADED", interval=0.05, wait=20)
    assert sandbox.server_state("vol")["vm_state"] == "shelved_offloaded"
    assert conn.compute.get_server(server.id).attached_volumes  # the boot volume stays the server's

    other = _server(conn, "other")  # fits only because the offloaded server holds no RAM now
    resp = conn.compute.post(f"/servers/{server.id}/action", json={"unshelve": None}, raise_exc=False)
    assert resp.status_code == 403
    assert resp.json() == {"forbidden": {"code": 403, "message": "Quota exceeded for resources: ['ram']"}}
    assert conn.compute.get_server(server.id).status == "SHELVED_OFFLOADED"

    conn.compute.delete_server(other)
    conn.compute.wait_for_delete(other, interval=0.05, wait=20)
    conn.compute.unshelve_server(server)
    conn.compute.wait_for_server(server, interval=0.05, wait=20)
    assert sandbox.ssh_host(server.id).running


def test_offload_time_and_wrong_states(tmp_path: Path) -> None:
    delays = Delays.fast()
    delays.shelved_offload_time = 0.6
    sb = Sandbox(tmp_path / "sb", delays=delays)
    sb.start()
    try:
        conn = connect(sb)
        _keypair(conn)
        server = _server(conn, "later")
        resp = conn.compute.post(f"/servers/{server.id}/action", json={"unshelve": None}, raise_exc=False)
        assert resp.status_code == 409
        assert resp.json()["conflictingRequest"]["message"] == (
            f"Cannot 'unshelve' instance {server.id} while it is in vm_state active")
        conn.compute.shelve_server(server)
        conn.compute.wait_for_server(server, status="SHELVED", interval=0.02, wait=20)
        assert conn.compute.get_server(server.id).power_state == 4
        resp = conn.compute.post(f"/servers/{server.id}/action", json={"os-start": None}, raise_exc=False)
        assert resp.status_code == 409 and "vm_state shelved" in resp.text
        conn.compute.wait_for_server(server, status="SHELVED_OFFLOADED", interval=0.02, wait=20)  # after 0.6 s

        conn.compute.unshelve_server(server)
        conn.compute.wait_for_server(server, interval=0.05, wait=20)
        sb.delays.shelved_offload_time = -1  # never offloaded by itself: shelveOffload does it
        conn.compute.stop_server(server)
        conn.compute.wait_for_server(server, status="SHUTOFF", interval=0.05, wait=20)
        conn.compute.shelve_server(server)  # from SHUTOFF too
        conn.compute.wait_for_server(server, status="SHELVED", interval=0.05, wait=20)
        conn.compute.shelve_offload_server(server)
        conn.compute.wait_for_server(server, status="SHELVED_OFFLOADED", interval=0.05, wait=20)
        resp = conn.compute.post(f"/servers/{server.id}/action", json={"shelveOffload": None}, raise_exc=False)
        assert resp.status_code == 409
    finally:
        sb.stop()
