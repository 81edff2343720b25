"""A guest's cron: `crontab` in a sandbox VM's session (the shim on its PATH) keeps the VM's own crontab in the VM's
folder (-l, - from stdin, FILE, -r; refused without a final newline, as cron's is), and every boot of the VM — a soft
and a hard reboot, a start after a stop and after the guest's own poweroff, an unshelve — runs its `@reboot` lines as
cron does: `/bin/sh -c`, in the VM's HOME, the VM's shims first on PATH, detached, processes of the VM (ended when it
stops). Driven through openstacksdk and a real SSH login with the pinned host key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from tests.sandbox.conftest import known_hosts_from_console, wait_for
from tui.conventions import META_SSH_PORT, META_SSH_USER
from tui.core.autostop import watchdog
from tui.sandbox import Sandbox, cron, procs
from tui.sandbox.sshhost import MARKER_ENV

# one line a boot in ~/boots: the job's pid and its session (field 6 of /proc/self/stat); then it stays (sleep)
JOB = ('@reboot echo "boot $$ $(cut -d" " -f6 /proc/self/stat)" >> "$HOME"/boots; echo "$PATH" > "$HOME"/path; '
       "exec sleep 600\n")


async def login(sandbox: Sandbox, conn: Any, server: Any, private_key: str) -> asyncssh.SSHClientConnection:
    server = conn.compute.get_server(server.id)
    port, user = int(server.metadata[META_SSH_PORT]), server.metadata[META_SSH_USER]
    console = conn.compute.get_server_console_output(server.id)["output"]
    known = asyncssh.import_known_hosts(known_hosts_from_console(console, port))
    return await asyncssh.connect("127.0.0.1", port, username=user, client_keys=[asyncssh.import_private_key(
        private_key)], known_hosts=known)


def vm_sleepers(root: Path) -> list[int]:
    return [p for p in procs.marked_pids(f"{MARKER_ENV}={root}") if procs.comm(p) == "sleep"]


async def test_crontab_shim_keeps_the_vms_own_crontab(sandbox: Sandbox, conn: Any) -> None:
    keypair = conn.compute.create_keypair(name="cr")
    server = conn.create_server("vm-cr", image="Ubuntu 24.04", flavor="m1.small", network="sandbox-net",
                                key_name="cr", wait=True, timeout=30)
    root = sandbox.instances_dir.resolve() / server.id
    async with await login(sandbox, conn, server, keypair.private_key) as ssh:
        assert str((await ssh.run("command -v crontab", check=True)).stdout).strip() == str(root / "bin" / "crontab")
        none = await ssh.run("crontab -l", check=False)
        assert none.exit_status == 1 and "no crontab for" in str(none.stderr)
        assert (await ssh.run("crontab -", input="A=1\n0 3 * * * true\n", check=False)).exit_status == 0
        assert (root / "spool" / "crontab").read_text() == "A=1\n0 3 * * * true\n"
        assert (root / "spool" / "crontab").stat().st_mode & 0o777 == 0o600
        assert str((await ssh.run("crontab -l", check=True)).stdout) == "A=1\n0 3 * * * true\n"
        bad = await ssh.run("printf 'no newline' | crontab -", check=False)
        assert bad.exit_status == 1 and "missing newline" in str(bad.stderr)
        assert str((await ssh.run("crontab -l", check=True)).stdout) == "A=1\n0 3 * * * true\n"  # unchanged
        await ssh.run("printf '@reboot true\\n' > mine && crontab mine", check=True)
        assert str((await ssh.run("crontab -l", check=True)).stdout) == "@reboot true\n"
        assert (await ssh.run("crontab -r && ! crontab -l", check=False)).exit_status == 0
        assert (await ssh.run("crontab -r", check=False)).exit_status == 1
        assert (await ssh.run("crontab -u root -l", check=False)).exit_status == 1  # no other user's
        assert not (root / "spool" / "crontab").exists()


async def test_every_boot_runs_the_reboot_lines(sandbox: Sandbox, conn: Any) -> None:
    keypair = conn.compute.create_keypair(name="cb")
    server = conn.create_server("vm-cb", image="Ubuntu 24.04", flavor="m1.small", network="sandbox-net",
                                key_name="cb", wait=True, timeout=30)
    root = sandbox.instances_dir.resolve() / server.id
    boots = root / "home" / "boots"

    def booted(n: int, what: str) -> None:
        wait_for(lambda: conn.compute.get_server(server.id).status == "ACTIVE", 20, f"ACTIVE after {what}")
        wait_for(lambda: boots.exists() and len(boots.read_text().splitlines()) == n and len(vm_sleepers(root)) == 1,
                 20, f"the @reboot job run once more after {what}")

    async with await login(sandbox, conn, server, keypair.private_key) as ssh:
        await ssh.run("crontab -", input="# mine\n" + JOB, check=True)
    assert not boots.exists()  # installing a crontab runs nothing
    conn.compute.reboot_server(server.id, "SOFT")
    booted(1, "a soft reboot")
    assert (root / "home" / "path").read_text().startswith(f"{root / 'bin'}:")
    first = vm_sleepers(root)[0]
    pid, session = map(int, boots.read_text().split()[1:3])
    assert pid == first and session == first  # detached: a session of its own
    conn.compute.reboot_server(server.id, "HARD")
    booted(2, "a hard reboot")
    assert first not in vm_sleepers(root) and not procs.alive(first)  # the reboot ended the job of the last boot
    conn.compute.stop_server(server.id)
    wait_for(lambda: conn.compute.get_server(server.id).status == "SHUTOFF", 20, "SHUTOFF")
    assert vm_sleepers(root) == []  # a stopped VM runs nothing
    conn.compute.start_server(server.id)
    booted(3, "a start")
    async with await login(sandbox, conn, server, keypair.private_key) as ssh:
        await ssh.run("poweroff", check=True)
    wait_for(lambda: conn.compute.get_server(server.id).status == "SHUTOFF", 20, "SHUTOFF after a guest poweroff")
    conn.compute.start_server(server.id)
    booted(4, "a start after the guest's poweroff")
    conn.compute.shelve_server(server.id)
    wait_for(lambda: (lambda s: s.status.startswith("SHELVED") and s.task_state is None)(
        conn.compute.get_server(server.id)), 20, "shelved")
    assert vm_sleepers(root) == []
    conn.compute.unshelve_server(server.id)
    booted(5, "an unshelve")


def test_a_crontab_not_in_utf8_comes_back_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The watchdog's `set_boot` (run here, in a VM's environment) through the shim: Latin-1 bytes of the user's
    lines survive adding and removing our line."""
    root = tmp_path / "vm"
    (root / "spool").mkdir(parents=True)
    cron.install_shim(root)
    users = b"# caf\xe9 \xff\n0 3 * * * true\n"
    (root / "spool" / "crontab").write_bytes(users)
    monkeypatch.setenv("CADES_SANDBOX_VM", str(root))
    monkeypatch.setenv("PATH", f"{root / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setattr(watchdog, "DIR", str(tmp_path / "autostop"))
    assert watchdog.set_boot(True) == "cron"
    assert (root / "spool" / "crontab").read_bytes() == users + watchdog.boot_line().encode() + b"\n"
    assert watchdog.set_boot(True) == "cron"  # again: still one line
    assert (root / "spool" / "crontab").read_bytes().count(b"# cades-tui autostop") == 1
    assert watchdog.set_boot(False) == "off"
    assert (root / "spool" / "crontab").read_bytes() == users
