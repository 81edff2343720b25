"""A guest that powers itself off: `poweroff` in a sandbox VM's session (the shim on its PATH) turns the server
SHUTOFF as Nova does when a guest shuts down — task `powering-off`, then SHUTOFF with its SSH host stopped; `os-start`
brings it back. Seen through openstacksdk and a real SSH login with the pinned host key."""

from __future__ import annotations

from typing import Any

import asyncssh

from tests.sandbox.conftest import known_hosts_from_console, wait_for
from tui.conventions import META_SSH_PORT, META_SSH_USER
from tui.sandbox import Sandbox


async def test_poweroff_inside_the_vm_shuts_the_server_off(sandbox: Sandbox, conn: Any) -> None:
    keypair = conn.compute.create_keypair(name="gp")
    server = conn.create_server("vm-gp", image="Ubuntu 24.04", flavor="m1.small", boot_from_volume=True,
                                volume_size=16, network="sandbox-net", key_name="gp", wait=True, timeout=30)
    server = conn.compute.get_server(server.id)
    port, user = int(server.metadata[META_SSH_PORT]), server.metadata[META_SSH_USER]
    console = conn.compute.get_server_console_output(server.id)["output"]
    known = asyncssh.import_known_hosts(known_hosts_from_console(console, port))
    key = asyncssh.import_private_key(keypair.private_key)
    async with asyncssh.connect("127.0.0.1", port, username=user, client_keys=[key], known_hosts=known) as ssh:
        found = await ssh.run("command -v poweroff", check=True)
        assert str(found.stdout).strip() == str(sandbox.instances_dir.resolve() / server.id / "bin" / "poweroff")
        said = await ssh.run("poweroff", check=False)
    assert said.exit_status == 0 and "powers this VM off" in str(said.stdout)
    wait_for(lambda: conn.compute.get_server(server.id).status == "SHUTOFF", what="SHUTOFF after a guest poweroff")
    host = sandbox.ssh_host(server.id)
    assert host is not None and not host.running
    assert conn.compute.get_server(server.id).task_state is None
    conn.compute.start_server(server.id)
    wait_for(lambda: conn.compute.get_server(server.id).status == "ACTIVE", what="ACTIVE after os-start")
