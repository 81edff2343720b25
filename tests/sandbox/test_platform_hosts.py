"""The sandbox's SSH hosts beyond Linux, checked on Linux:
- the process helpers read /proc on Linux and `ps` where there is none (macOS): both must see the same process
  tree, names and states — checked by hiding /proc from them;
- a host serves on the loopback addresses the machine has (macOS has only 127.0.0.1 unless more are added) —
  checked with a real sshd and the asyncssh server, the machine's addresses narrowed to macOS's.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncssh
import pytest

from tui.sandbox import procs, sshhost


@pytest.mark.parametrize("source", ["proc", "ps"])
def test_tree_names_and_states(source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if source == "ps":
        monkeypatch.setattr(procs, "PROC", tmp_path / "no-proc")  # as on macOS
    parent = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"])
    try:
        deadline = time.monotonic() + 5
        while len(procs.descendants(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        children = procs.descendants(parent.pid)
        assert len(children) == 2 and all(procs.comm(c) == "sleep" for c in children)
        assert procs.comm(parent.pid) == "sh" and procs.alive(parent.pid)
        assert parent.pid in procs.all_pids()
        procs.terminate_marked("CADES_SANDBOX_VM=/nowhere")  # marks nobody: nothing is signalled
        assert all(procs.alive(c) for c in children)
        for child in children:
            subprocess.run(["kill", str(child)], check=True)
        assert procs.wait_gone(children, 5)
        parent.wait(timeout=5)
        assert not procs.alive(parent.pid) and procs.stat(parent.pid) is None
    finally:
        if parent.poll() is None:
            for child in procs.descendants(parent.pid):
                subprocess.run(["kill", "-9", str(child)], check=False)
            parent.kill()
            parent.wait()


def test_no_process_table_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows: neither /proc nor ps — the helpers see nothing instead of failing."""
    monkeypatch.setattr(procs, "PROC", tmp_path / "no-proc")
    monkeypatch.setenv("PATH", str(tmp_path))  # no ps
    assert procs.all_pids() == [] and procs.descendants(1) == [] and procs.stat(1) is None
    assert procs.marked_pids("CADES_SANDBOX_VM=/x") == []
    assert procs.HARD_KILL is (procs.signal.SIGTERM if sys.platform == "win32" else procs.signal.SIGKILL)


def test_which_addresses_the_machine_has() -> None:
    assert sshhost._has_address("127.0.0.1") and sshhost._has_address("127.0.0.9")  # Linux: all of 127/8
    assert not sshhost._has_address("192.0.2.1")  # TEST-NET-1: on no interface here (EADDRNOTAVAIL)


@pytest.mark.parametrize("backend", ["openssh", "asyncssh"])
async def test_host_serves_where_the_machine_has_addresses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    monkeypatch.setattr(sshhost, "_has_address", lambda address: address == "127.0.0.1")  # as macOS's lo0
    key = asyncssh.generate_private_key("ssh-ed25519")
    host = sshhost.SSHHost(tmp_path / "vm", [key.export_public_key().decode()], listen=("127.0.0.7", "127.0.0.1"),
                           sshd_path=None if backend == "openssh" else "")
    assert host.backend == backend and host.listen == ["127.0.0.1"]  # the private address left out
    host.start()
    try:
        async with asyncssh.connect("127.0.0.1", host.port, username=host.user, client_keys=[key],
                                    known_hosts=asyncssh.import_known_hosts(host.known_hosts_line())) as conn:
            assert str((await conn.run("echo served", check=True)).stdout).strip() == "served"
        with pytest.raises(OSError), socket.create_connection(("127.0.0.7", host.port), timeout=2):
            pass  # nothing listens on the address "this machine does not have"
        host.set_listen(["127.0.0.8", "127.0.0.1"])  # a relisten keeps the same rule, and the host up
        assert host.listen == ["127.0.0.1"] and host.running
    finally:
        host.stop()
