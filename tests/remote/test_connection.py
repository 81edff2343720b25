"""Connections against a real OpenSSH sshd (SSHHost): host key policies, errors, pool, jump host, hand-off."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
from pathlib import Path

import asyncssh
import pytest

from tests._support import never
from tui.core.remote.commands import run
from tui.core.remote.connection import (
    AuthFailed,
    ConnectionPool,
    HostKeyChanged,
    HostKeyUnknown,
    RemoteError,
    SSHTarget,
    SSHUnreachable,
    connect,
    openssh_argv,
)
from tui.core.remote.hostkeys import ConsoleHostKeys, KnownHosts, fingerprint, key_line, parse_console_host_keys
from tui.sandbox.sshhost import SSHHost, free_port

from .test_hostkeys import console_log


def _other_key() -> str:
    return key_line(asyncssh.generate_private_key("ssh-ed25519").convert_to_public())


async def test_tofu_refuses_unknown_key_until_accepted(ssh_host: SSHHost, target: SSHTarget) -> None:
    with pytest.raises(HostKeyUnknown) as info:
        await connect(target)
    err = info.value
    assert err.fingerprint == ssh_host.host_key_fingerprint
    assert ssh_host.host_key_fingerprint in str(err)
    assert not target.known_hosts.exists()  # nothing trusted before the user says so
    err.accept()
    assert target.known_hosts.read_text().strip() == ssh_host.known_hosts_line()
    conn = await connect(target)
    try:
        assert (await run(conn, "echo $HOME")).output.strip() == str(ssh_host.home)
    finally:
        conn.close()


async def test_pinned_from_console_log(ssh_host: SSHHost, target: SSHTarget) -> None:
    pinned = parse_console_host_keys(console_log([ssh_host.host_public_key]))
    conn = await connect(dataclasses.replace(target, pinned=pinned))
    conn.close()
    # the pinned key is remembered for later sessions (and the OpenSSH hand-off)
    assert target.known_hosts.read_text().strip() == ssh_host.known_hosts_line()


async def test_pinned_by_fingerprint_only(ssh_host: SSHHost, target: SSHTarget) -> None:
    pinned = ConsoleHostKeys(fingerprints=(ssh_host.host_key_fingerprint,))
    conn = await connect(dataclasses.replace(target, pinned=pinned))
    conn.close()


async def test_console_key_mismatch_refused(ssh_host: SSHHost, target: SSHTarget) -> None:
    other = _other_key()
    pinned = parse_console_host_keys(console_log([other]))
    with pytest.raises(HostKeyChanged) as info:
        await connect(dataclasses.replace(target, pinned=pinned))
    assert info.value.old_fingerprints == (fingerprint(other),)
    assert info.value.new_fingerprint == ssh_host.host_key_fingerprint
    assert "console" in str(info.value)
    assert not target.known_hosts.exists()


async def test_changed_key_refused_with_both_fingerprints(ssh_host: SSHHost, target: SSHTarget) -> None:
    old = _other_key()
    KnownHosts(target.known_hosts).add("127.0.0.1", ssh_host.port, old)
    before = target.known_hosts.read_text()
    with pytest.raises(HostKeyChanged) as info:
        await connect(target)
    message = str(info.value)
    assert fingerprint(old) in message and ssh_host.host_key_fingerprint in message
    assert "WARNING" in message
    assert target.known_hosts.read_text() == before  # never silently replaced


async def test_known_key_cipher_and_keepalive(ssh_host: SSHHost, target: SSHTarget) -> None:
    KnownHosts(target.known_hosts).add("127.0.0.1", ssh_host.port, ssh_host.host_public_key)
    conn = await connect(target)
    try:
        assert conn.get_extra_info("send_cipher") == "aes128-gcm@openssh.com"
        assert conn._keepalive_interval == 15  # the option reached the connection
    finally:
        conn.close()


async def test_auth_failed_and_unreachable(ssh_host: SSHHost, target: SSHTarget, tmp_path: Path) -> None:
    KnownHosts(target.known_hosts).add("127.0.0.1", ssh_host.port, ssh_host.host_public_key)
    wrong = tmp_path / "wrong_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(wrong))
    with pytest.raises(AuthFailed, match="refused"):
        await connect(dataclasses.replace(target, key_path=wrong))
    with pytest.raises(AuthFailed, match="not found"):
        await connect(dataclasses.replace(target, key_path=tmp_path / "missing"))
    with pytest.raises(SSHUnreachable, match="cannot reach"):
        await connect(dataclasses.replace(target, port=free_port()))


async def test_pool_reports_and_remakes_dropped_connection(ssh_host: SSHHost, target: SSHTarget) -> None:
    KnownHosts(target.known_hosts).add("127.0.0.1", ssh_host.port, ssh_host.host_public_key)
    lost: list[str] = []
    pool = ConnectionPool(on_lost=lambda key, exc: lost.append(key))
    try:
        first = await pool.get("i-1", target)
        assert await pool.get("i-1") is first
        ssh_host.kill()  # network cut
        await asyncio.wait_for(first.wait_closed(), 5)
        assert lost == ["i-1"] and not pool.is_connected("i-1")
        with pytest.raises(SSHUnreachable):
            await pool.get("i-1")
        ssh_host.start()  # same port
        second = await pool.get("i-1")
        assert second is not first
        assert (await run(second, "echo back")).output == "back\n"
    finally:
        await pool.close_all()
    assert lost == ["i-1"]  # our own close is not reported as a drop


async def test_a_forgotten_instance_gets_no_new_connection_and_no_loss_report(ssh_host: SSHHost,
                                                                              target: SSHTarget) -> None:
    """An instance being deleted: its connection closed, a login racing the deletion refused (not made, then cut
    when the server goes and reported lost); after a failed deletion `allow` lets it connect again."""
    KnownHosts(target.known_hosts).add("127.0.0.1", ssh_host.port, ssh_host.host_public_key)
    lost: list[str] = []
    pool = ConnectionPool(on_lost=lambda key, exc: lost.append(key))
    try:
        first = await pool.get("i-1", target)
        await pool.forget("i-1")
        assert first.is_closed() and not pool.is_connected("i-1")
        with pytest.raises(RemoteError, match="being deleted"):
            await pool.get("i-1", target)
        racing = asyncio.ensure_future(pool.get("i-2", target))  # a login under way when the deletion starts
        await asyncio.sleep(0)
        await pool.forget("i-2")
        with contextlib.suppress(RemoteError):
            await racing
        assert not pool.is_connected("i-2")  # made or not, it is not kept
        pool.allow("i-1")  # the deletion failed
        second = await pool.get("i-1", target)
        assert (await run(second, "echo back")).output == "back\n"
        assert lost == []  # nothing the deletion closed is reported as a lost connection
    finally:
        await pool.close_all()


async def test_pool_never_reports_a_connection_that_was_never_made(
    ssh_host: SSHHost, target: SSHTarget, tmp_path: Path
) -> None:
    """A refused key, an unknown or changed host key, a closed port: the login fails (raised, 'could not
    connect'), and nothing is reported 'lost' — there was no connection to lose."""
    lost: list[tuple[str, Exception | None]] = []
    pool = ConnectionPool(on_lost=lambda key, exc: lost.append((key, exc)))
    wrong = tmp_path / "wrong_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(wrong))
    try:
        with pytest.raises(HostKeyUnknown):
            await pool.get("unknown-key", target)
        KnownHosts(target.known_hosts).add("127.0.0.1", ssh_host.port, ssh_host.host_public_key)
        with pytest.raises(AuthFailed):
            await pool.get("refused", dataclasses.replace(target, key_path=wrong))
        with pytest.raises(SSHUnreachable):
            await pool.get("closed-port", dataclasses.replace(target, port=free_port()))
        assert await never(lambda: lost != [], within=0.2)
        assert not any(pool.is_connected(k) for k in ("unknown-key", "refused", "closed-port"))
    finally:
        await pool.close_all()


async def test_pool_reconnect_waits_for_the_host(ssh_host: SSHHost, target: SSHTarget) -> None:
    KnownHosts(target.known_hosts).add("127.0.0.1", ssh_host.port, ssh_host.host_public_key)
    pool = ConnectionPool()
    ssh_host.kill()
    loop = asyncio.get_running_loop()
    loop.call_later(0.8, ssh_host.start)
    try:
        conn = await pool.reconnect("i-1", 10, target)
        assert not conn.is_closed()
    finally:
        await pool.close_all()


async def test_jump_host(tmp_path: Path, client_key_file: tuple[Path, str], ssh_host: SSHHost) -> None:
    bastion = SSHHost(tmp_path / "bastion", [client_key_file[1]])
    bastion.start()
    try:
        known = tmp_path / "kh"
        known.write_text(bastion.known_hosts_line() + "\n" + ssh_host.known_hosts_line() + "\n")
        target = SSHTarget(
            "127.0.0.1",
            ssh_host.port,
            ssh_host.user,
            client_key_file[0],
            known,
            jump=f"{bastion.user}@127.0.0.1:{bastion.port}",
        )
        conn = await connect(target)
        try:
            assert (await run(conn, "echo $HOME")).output.strip() == str(ssh_host.home)
        finally:
            conn.close()
        bad = dataclasses.replace(target, jump=f"127.0.0.1:{free_port()}")
        with pytest.raises(SSHUnreachable, match="jump host"):
            await connect(bad)
    finally:
        bastion.stop()


def test_openssh_handoff_same_identity_and_host_key(ssh_host: SSHHost, target: SSHTarget) -> None:
    KnownHosts(target.known_hosts).add("127.0.0.1", ssh_host.port, ssh_host.host_public_key)
    argv = openssh_argv(target, "echo hi from $HOME; exit 7", tty=False)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout.strip() == f"hi from {ssh_host.home}"
    # strict checking: an unknown host is refused, not added
    KnownHosts(target.known_hosts).remove("127.0.0.1", ssh_host.port)
    proc = subprocess.run([*argv[:-1], "true"], capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert proc.returncode == 255 and "Host key verification failed" in proc.stderr
    assert target.known_hosts.read_text() == ""


async def test_ssh_config_alias_and_proxyjump(tmp_path: Path, client_key_file: tuple[Path, str],
                                              ssh_host: SSHHost, gateway: tuple[str, SSHHost]) -> None:
    """~/.ssh/config support, as labs use it: an alias with HostName/Port/User/IdentityFile and a ProxyJump."""
    config = tmp_path / "ssh_config"
    config.write_text(
        f"{gateway[0]}Host labvm\n  HostName 127.0.0.1\n  Port {ssh_host.port}\n  User {ssh_host.user}\n"
        f"  IdentityFile {client_key_file[0]}\n  ProxyJump gateway\n"
    )
    target = SSHTarget("labvm", known_hosts=tmp_path / "kh", use_ssh_config=True, ssh_config=config)
    with pytest.raises(HostKeyUnknown) as info:  # the app's own known_hosts still decides for the VM
        await connect(target)
    assert info.value.fingerprint == ssh_host.host_key_fingerprint
    info.value.accept()
    conn = await connect(target)
    try:
        assert (await run(conn, "echo $HOME")).output.strip() == str(ssh_host.home)
    finally:
        conn.close()
    assert gateway[1].log_path.read_text().count("Accepted publickey") >= 1  # went through the jump host


def test_target_for_instance() -> None:
    from tui.core.models import META_SSH_PORT, META_SSH_USER, Address, Instance

    inst = Instance(
        "id-1",
        "vm",
        "ACTIVE",
        addresses=(Address("net", "10.0.0.5", "fixed"), Address("net", "172.22.3.50", "floating")),
        metadata=((META_SSH_PORT, "2222"), (META_SSH_USER, "root")),
    )
    target = SSHTarget.for_instance(inst, "cades", known_hosts=Path("/k"))
    assert (target.host, target.port, target.user) == ("172.22.3.50", 2222, "root")
    real = SSHTarget.for_instance(Instance("id-2", "vm", "ACTIVE", addresses=inst.addresses[:1]), "cades")
    assert (real.host, real.port, real.user) == ("10.0.0.5", 22, "cades")
    assert dataclasses.replace(target, jump="me@bastion:2200").jump_target() == dataclasses.replace(
        target, host="bastion", port=2200, user="me", jump=None
    )
