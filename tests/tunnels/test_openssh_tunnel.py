"""The tunnel's OpenSSH data path (an ssh master serving each accepted socket directly) against a real sshd:
bytes, kernel byte counts, host key pinning, reconnects, cleanup."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from tests._support import eventually
from tui.core.models import TunnelState
from tui.core.remote.connection import SSHTarget
from tui.core.remote.openssh_forward import OpenSSHForward, openssh_usable
from tui.core.remote.tunnel import Tunnel
from tui.sandbox.sshhost import SSHHost

pytestmark = pytest.mark.skipif(
    shutil.which("ssh") is None or not sys.platform.startswith("linux"), reason="needs the OpenSSH client, Linux"
)
RoundTrip = Callable[[int, bytes], Awaitable[bytes]]


@pytest.fixture
def target(tmp_path: Path, ssh_host: SSHHost, client_key: Any) -> SSHTarget:
    key_path = tmp_path / "id_ed25519"
    client_key.write_private_key(str(key_path))
    os.chmod(key_path, 0o600)
    return SSHTarget(host="127.0.0.1", port=ssh_host.port, user=ssh_host.user, key_path=key_path,
                     known_hosts=tmp_path / "known_hosts", connect_timeout=5)


def _argv_options(argv: list[str]) -> dict[str, str]:
    pairs = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    return dict(p.split("=", 1) for p in pairs)


def test_usable_only_with_every_guarantee(target: SSHTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    assert openssh_usable(target)
    assert not openssh_usable(None)
    assert not openssh_usable(replace(target, key_path=None))  # agent/default keys: IdentitiesOnly impossible
    assert not openssh_usable(replace(target, jump="bastion"))
    assert openssh_usable(replace(target, use_ssh_config=True))  # then the verified connection's endpoint decides
    monkeypatch.setenv("CADES_TUI_FORWARDER", "asyncssh")  # forced: the data path of macOS and Windows
    assert not openssh_usable(target)
    assert Tunnel("vm1", _never, 1, openssh=target).backend == "asyncssh"
    monkeypatch.setenv("CADES_TUI_FORWARDER", "openssh")
    assert openssh_usable(target)
    monkeypatch.setattr(sys, "platform", "darwin")  # elsewhere than Linux: never (no hand-off, no TCP_INFO)
    assert not openssh_usable(target)


async def _never() -> asyncssh.SSHClientConnection:
    raise AssertionError("not connected in this test")


async def test_bytes_and_counters_through_ssh(
    connect, ssh_host: SSHHost, target: SSHTarget, echo_port: int, roundtrip: RoundTrip
) -> None:
    seen: list[TunnelState] = []
    tunnel = Tunnel("vm1", connect, echo_port, openssh=target, on_change=lambda i: seen.append(i.state))
    assert tunnel.backend == "openssh"
    info = await tunnel.open()
    forward = tunnel._forward
    assert forward is not None and forward.running
    try:
        assert info.state is TunnelState.UP and tunnel.connection is None
        payload = os.urandom(3 << 20)
        assert await roundtrip(info.local_port, payload) == payload
        assert await roundtrip(info.local_port, b"hello") == b"hello"
        # the kernel's byte counts of the sockets the master served (a closed one's may include TCP's FIN: +1)
        sent = len(payload) + 5

        def counted(value: int, connections: int = 2) -> bool:
            return sent <= value <= sent + connections

        assert await eventually(lambda: not tunnel._attached  # both ended: their counts are final
                                and counted(tunnel.info.bytes_out) and counted(tunnel.info.bytes_in))
        before = tunnel.info
        # a live connection is counted while it runs, to the byte
        reader, writer = await asyncio.open_connection("127.0.0.1", info.local_port)
        writer.write(b"x" * 1000)
        assert await reader.readexactly(1000) == b"x" * 1000
        assert await eventually(lambda: (tunnel.info.bytes_in, tunnel.info.bytes_out)
                                == (before.bytes_in + 1000, before.bytes_out + 1000))
        writer.close()
        # the master's control socket is private: 0700 directory, 0600 socket; pinned to one host key, strictly
        assert stat.S_IMODE(forward.control_path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(forward.control_path.stat().st_mode) == 0o600
        for argv in (forward.argv(), forward.attach_argv()):
            options = _argv_options(argv)
            assert options["StrictHostKeyChecking"] == "yes" and options["IdentitiesOnly"] == "yes"
            assert options["ServerAliveInterval"] == "15" and options["ControlPath"] == str(forward.control_path)
            known = Path(options["UserKnownHostsFile"]).read_text().split()
            assert known[1:] == ssh_host.known_hosts_line().split()[1:]  # exactly the VM's verified key
        assert not any(a.startswith(("-L", "-R", "-D")) for a in forward.argv())  # no listener of its own
    finally:
        await tunnel.close()
    assert not forward.running and not forward.control_path.parent.exists()
    assert seen[-2:] == [TunnelState.UP, TunnelState.DOWN]


async def test_ssh_refuses_a_host_key_other_than_the_verified_one(target: SSHTarget, echo_port: int) -> None:
    forward = OpenSSHForward(target, "127.0.0.1", echo_port, (15.0, 3))
    other = asyncssh.generate_private_key("ssh-ed25519")  # not the VM's key
    try:
        with pytest.raises(OSError, match="(?i)host key"):
            await forward.start(other, timeout=10)
        assert not forward.running and not forward.control_path.exists()
    finally:
        await forward.close()


async def test_openssh_path_survives_sshd_kill_and_restart(
    connect, ssh_host: SSHHost, target: SSHTarget, echo_port: int, roundtrip: RoundTrip
) -> None:
    states: list[TunnelState] = []
    tunnel = Tunnel("vm1", connect, echo_port, openssh=target, max_backoff=0.5,
                    on_change=lambda i: states.append(i.state))
    info = await tunnel.open()
    try:
        assert await roundtrip(info.local_port, b"before") == b"before"
        await asyncio.to_thread(ssh_host.kill)  # sshd and its connections die: ssh exits
        assert await tunnel.wait_state(TunnelState.RECONNECTING, 5)
        waiting = asyncio.create_task(roundtrip(info.local_port, b"during"))  # accepted, waits for ssh
        seen = states.count(TunnelState.RECONNECTING)  # each failed attempt says "reconnecting" again
        assert await eventually(lambda: states.count(TunnelState.RECONNECTING) >= seen + 2, 10)  # two, backing off
        assert tunnel.info.error.startswith("reconnecting")
        await asyncio.to_thread(ssh_host.start)
        assert ssh_host.port == target.port
        assert await tunnel.wait_state(TunnelState.UP, 10)
        assert await waiting == b"during"
        assert await roundtrip(info.local_port, b"after") == b"after"
        assert tunnel.local_port == info.local_port and tunnel.reconnects == 1
    finally:
        await tunnel.close()
    assert TunnelState.RECONNECTING in states and states[-2:] == [TunnelState.UP, TunnelState.DOWN]


async def test_ssh_config_alias_is_followed_and_a_proxyjump_falls_back(
    tmp_path: Path, ssh_host: SSHHost, target: SSHTarget, echo_port: int, roundtrip: RoundTrip,
    gateway: tuple[str, SSHHost],
) -> None:
    """With ~/.ssh/config: an alias (HostName/Port/User) → ssh, run without a config file, goes where the verified
    connection went; a ProxyJump → the asyncssh path (ssh could not follow the same way)."""
    from dataclasses import replace

    from tui.core.remote.connection import HostKeyUnknown
    from tui.core.remote.connection import connect as ssh_connect

    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host labvm\n  HostName 127.0.0.1\n  Port {ssh_host.port}\n  User {ssh_host.user}\n{gateway[0]}"
        f"Host jumpvm\n  HostName 127.0.0.1\n  Port {ssh_host.port}\n  User {ssh_host.user}\n  ProxyJump gateway\n"
    )
    for alias, backend in (("labvm", "openssh"), ("jumpvm", "asyncssh")):
        via = replace(target, host=alias, port=22, user="", use_ssh_config=True, ssh_config=config)
        with pytest.raises(HostKeyUnknown) as unknown:  # trusted once, as the user would
            await ssh_connect(via)
        unknown.value.accept()

        async def factory(via: SSHTarget = via) -> asyncssh.SSHClientConnection:
            return await ssh_connect(via)

        tunnel = Tunnel("vm1", factory, echo_port, openssh=via)
        info = await tunnel.open()
        try:
            assert tunnel.backend == backend, alias
            assert await roundtrip(info.local_port, b"through " + alias.encode()) == b"through " + alias.encode()
            if backend == "openssh":
                assert tunnel._forward is not None
                assert tunnel._forward.endpoint == ("127.0.0.1", ssh_host.port, ssh_host.user)
        finally:
            await tunnel.close()


def test_orphaned_ssh_of_a_killed_app_is_stopped_by_the_next(tmp_path: Path) -> None:
    """An app killed with SIGKILL leaves its ssh running; the next tunnel's start stops it (and only it)."""
    import subprocess
    import sys

    from tui.core.remote.openssh_forward import reap_orphans

    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan_dir, live_dir = tmp_path / "cades-fwd-orphan", tmp_path / "cades-fwd-live"
    for d, owner in ((orphan_dir, dead.pid), (live_dir, os.getpid())):
        d.mkdir()
        (d / "owner").write_text(str(owner))
        (d / "ssh").symlink_to(shutil.which("sleep") or "/bin/sleep")  # an "ssh" whose command line names d
    orphan = subprocess.Popen([str(orphan_dir / "ssh"), "60"])
    kept = subprocess.Popen([str(live_dir / "ssh"), "60"])
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (orphan_dir / "ssh.pid").write_text(str(orphan.pid))
    (live_dir / "ssh.pid").write_text(str(kept.pid))
    try:
        stray_dir = tmp_path / "cades-fwd-stray"  # names a pid that is not its ssh: never signalled
        stray_dir.mkdir()
        (stray_dir / "owner").write_text(str(dead.pid))
        (stray_dir / "ssh.pid").write_text(str(bystander.pid))
        assert reap_orphans(tmp_path) == 1
        assert orphan.wait(timeout=5) == -15
        assert kept.poll() is None and bystander.poll() is None
        assert not orphan_dir.exists() and not stray_dir.exists() and live_dir.exists()
    finally:
        for p in (orphan, kept, bystander):
            p.kill()
            p.wait()


def test_an_orphaned_ssh_is_found_by_its_control_path_and_a_reused_owner_pid_is_no_owner(tmp_path: Path) -> None:
    """SIGKILL may come before the ssh's pid is written down: the ssh is then found by the control path on its
    command line. An owner pid that now belongs to another process (another start time) counts as gone; only the
    ssh of that very directory is ended."""
    import subprocess
    import sys

    from tui.core.remote.sshreap import owner_line, reap_orphans

    reused, live = tmp_path / "cades-fwd-reused", tmp_path / "cades-fwd-live"
    procs = []
    try:
        for d, owner in ((reused, f"{os.getpid()} 1"), (live, owner_line())):
            d.mkdir()
            (d / "owner").write_text(owner)
            (d / "ssh").symlink_to(sys.executable)  # an "ssh" (by its name) naming its control path
            procs.append(subprocess.Popen([str(d / "ssh"), "-c", "import time; time.sleep(60)", "-o",
                                           f"ControlPath={d / 'control'}"]))
        orphan, kept = procs
        assert reap_orphans(tmp_path) == 1
        assert orphan.wait(timeout=5) == -15
        assert kept.poll() is None and live.exists() and not reused.exists()
    finally:
        for p in procs:
            p.kill()
            p.wait()
