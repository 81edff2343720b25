"""SSHHost: a real unprivileged sshd (and the asyncssh fallback) reached with asyncssh."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import asyncssh
import pytest

from tui.sandbox.sshhost import SSHHost, fingerprint_sha256


@pytest.fixture
def client_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


async def _connect(host: SSHHost, key: asyncssh.SSHKey) -> asyncssh.SSHClientConnection:
    return await asyncssh.connect(
        "127.0.0.1",
        host.port,
        username=host.user,
        client_keys=[key],
        known_hosts=asyncssh.import_known_hosts(host.known_hosts_line()),
    )


@pytest.mark.parametrize("backend", ["openssh", "asyncssh"])
async def test_session_lives_in_the_vm_home(tmp_path: Path, client_key: asyncssh.SSHKey, backend: str) -> None:
    host = SSHHost(
        tmp_path / "vm", [client_key.export_public_key().decode()], sshd_path=None if backend == "openssh" else ""
    )
    assert host.backend == backend
    host.start()
    try:
        async with await _connect(host, client_key) as conn:
            r = await conn.run('echo $HOME; pwd; echo "$SCREENDIR|$TMUX_TMPDIR"; touch on-disk', check=True)
            home, cwd, dirs = str(r.stdout).splitlines()
            assert home == cwd == str(host.home)
            assert dirs == f"{host.screendir}|{host.tmuxdir}"
            assert (host.home / "on-disk").exists()
            assert host.screendir.stat().st_mode & 0o777 == 0o700
            assert len(str(host.screendir / "99999.jupyter")) < 100  # fits a unix socket path
            async with conn.start_sftp_client() as sftp:
                await sftp.mkdir("via-sftp")
            assert (host.home / "via-sftp").is_dir()
    finally:
        host.stop()
    assert not host.running


async def test_host_key_is_stable_and_pinned(tmp_path: Path, client_key: asyncssh.SSHKey) -> None:
    host = SSHHost(tmp_path / "vm", [client_key.export_public_key().decode()])
    again = SSHHost(tmp_path / "vm", [])
    assert host.host_public_key == again.host_public_key
    assert host.host_public_key.startswith("ssh-ed25519 AAAA")
    out = subprocess.run(
        ["ssh-keygen", "-lf", str(host.host_key_path) + ".pub"], capture_output=True, text=True, check=True
    ).stdout
    assert host.host_key_fingerprint == fingerprint_sha256(host.host_public_key) == out.split()[1]
    host.start()
    try:
        assert host.known_hosts_line().startswith(f"[127.0.0.1]:{host.port} ssh-ed25519 AAAA")
        wrong = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()
        bad_known = f"[127.0.0.1]:{host.port} {wrong[0]} {wrong[1]}"
        with pytest.raises(asyncssh.HostKeyNotVerifiable):
            await asyncssh.connect(
                "127.0.0.1",
                host.port,
                username=host.user,
                client_keys=[client_key],
                known_hosts=asyncssh.import_known_hosts(bad_known),
            )
        other = asyncssh.generate_private_key("ssh-ed25519")
        with pytest.raises(asyncssh.PermissionDenied):
            await _connect(host, other)
    finally:
        host.stop()


async def test_kill_cuts_connections_and_restart_keeps_port(tmp_path: Path, client_key: asyncssh.SSHKey) -> None:
    host = SSHHost(tmp_path / "vm", [client_key.export_public_key().decode()])
    host.start()
    port = host.port
    try:
        conn = await _connect(host, client_key)
        await conn.run("screen -dmS keep sleep 600", check=True)
        host.kill()
        with pytest.raises((asyncssh.Error, OSError)):
            await asyncio.wait_for(conn.run("true", check=True), 5)
        conn.close()
        # A network cut leaves the VM's processes running ...
        marker = f"CADES_SANDBOX_VM={host.root}".encode()
        assert any(_has_env(pid, marker) for pid in _pids())
        host.start()
        assert host.port == port
        async with await _connect(host, client_key) as conn2:
            r = await conn2.run("screen -ls", check=False)
            assert "keep" in str(r.stdout)
    finally:
        host.stop()
    # ... while stop() powers the VM off: nothing started inside it survives.
    assert not any(_has_env(pid, marker) for pid in _pids())


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _has_env(pid: int, needle: bytes) -> bool:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z" and needle in env.split(b"\0")
