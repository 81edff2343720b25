"""Tunnels against a real OpenSSH sshd: forwarding, counters, port choice, reconnect after sshd dies.

The tests taking `forwarder` run twice: with the OpenSSH hand-off (Linux) and with the asyncssh forwarder forced
(CADES_TUI_FORWARDER=asyncssh) — the data path macOS and Windows use, exercised here on Linux too.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable

import pytest

from tests._support import eventually
from tui.core.models import TunnelInfo, TunnelState
from tui.core.remote.connection import SSHTarget
from tui.core.remote.tunnel import PortBusyError, Tunnel, find_port_holder
from tui.sandbox.sshhost import SSHHost

RoundTrip = Callable[[int, bytes], Awaitable[bytes]]


def _listening_socket() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


async def test_forwards_and_counts_bytes(
    connect, echo_port: int, roundtrip: RoundTrip, forwarder: str, tunnel_target: SSHTarget
) -> None:
    seen: list[TunnelInfo] = []
    tunnel = Tunnel("vm1", connect, echo_port, on_change=seen.append, openssh=tunnel_target)
    assert tunnel.backend == forwarder
    info = await tunnel.open()
    try:
        assert info.state is TunnelState.UP
        assert info.local_port not in (0, echo_port)
        payload = bytes(range(256)) * 4096  # 1 MiB
        assert await roundtrip(info.local_port, payload) == payload
        # several connections at once, each independent
        many = await asyncio.gather(*(roundtrip(info.local_port, b"x%d" % i) for i in range(20)))
        assert many == [b"x%d" % i for i in range(20)]
        sent = len(payload) + sum(len(b"x%d" % i) for i in range(20))
        if forwarder == "asyncssh":  # counted by the forwarder itself, to the byte
            after = tunnel.info
            assert after.bytes_out == after.bytes_in == sent
        else:  # the kernel's counts of the sockets ssh served; a closed one's may include TCP's FIN (+1 each)
            assert await eventually(lambda: not tunnel._attached and all(
                sent <= n <= sent + 21 for n in (tunnel.info.bytes_out, tunnel.info.bytes_in)))
        after = tunnel.info
        assert after.instance == "vm1" and after.remote_port == echo_port and after.remote_host == "127.0.0.1"
    finally:
        await tunnel.close()
    assert [i.state for i in seen][:2] == [TunnelState.STARTING, TunnelState.UP]
    assert seen[-1].state is TunnelState.DOWN
    with socket.socket() as s:  # the local port is released
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", info.local_port))


async def test_requested_port_is_used_when_free(
    connect, echo_port: int, roundtrip: RoundTrip, forwarder: str, tunnel_target: SSHTarget
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        wanted = s.getsockname()[1]
    tunnel = Tunnel("vm1", connect, echo_port, local_port=wanted, strict=True, openssh=tunnel_target)
    assert tunnel.backend == forwarder
    try:
        assert (await tunnel.open()).local_port == wanted
        assert await roundtrip(wanted, b"hello") == b"hello"
    finally:
        await tunnel.close()


async def test_busy_profile_port_chooses_another_and_reports_it(
    connect, echo_port: int, roundtrip: RoundTrip, forwarder: str, tunnel_target: SSHTarget
) -> None:
    with _listening_socket() as busy:
        busy_port = busy.getsockname()[1]
        tunnel = Tunnel("vm1", connect, echo_port, local_port=busy_port, openssh=tunnel_target)
        assert tunnel.backend == forwarder
        try:
            info = await tunnel.open()
            assert info.local_port not in (busy_port, echo_port, 0)
            assert await roundtrip(info.local_port, b"ping") == b"ping"
        finally:
            await tunnel.close()


async def test_user_requested_busy_port_names_the_holder(connect, echo_port: int) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import socket,sys,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen();"
         "print(s.getsockname()[1], flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        port = int(holder.stdout.readline())
        assert find_port_holder(port) is not None
        tunnel = Tunnel("vm1", connect, echo_port, local_port=port, strict=True)
        with pytest.raises(PortBusyError) as err:
            await tunnel.open()
        assert err.value.port == port
        assert f"pid {holder.pid} (" in str(err.value)
        assert "python" in str(err.value)
        assert tunnel.connection is None
    finally:
        holder.kill()
        holder.wait()


async def test_never_binds_the_remote_port_number_on_a_one_host_rig(connect, echo_port: int) -> None:
    tunnel = Tunnel("vm1", connect, echo_port, local_port=echo_port, strict=True)
    with pytest.raises(PortBusyError):
        await tunnel.open()
    tunnel = Tunnel("vm1", connect, echo_port, local_port=echo_port)
    try:
        assert (await tunnel.open()).local_port != echo_port
    finally:
        await tunnel.close()


def test_port_holder_unknown_for_a_free_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, not listening
        assert find_port_holder(s.getsockname()[1]) is None


async def test_survives_sshd_kill_and_restart(
    connect, ssh_host: SSHHost, echo_port: int, roundtrip: RoundTrip, forwarder: str, tunnel_target: SSHTarget
) -> None:
    states: list[TunnelState] = []
    tunnel = Tunnel("vm1", connect, echo_port, on_change=lambda i: states.append(i.state), max_backoff=0.5,
                    openssh=tunnel_target)
    assert tunnel.backend == forwarder
    info = await tunnel.open()
    try:
        assert await roundtrip(info.local_port, b"before") == b"before"
        await asyncio.to_thread(ssh_host.kill)  # network cut: sshd and its connections die
        assert await tunnel.wait_state(TunnelState.RECONNECTING, 5)
        assert tunnel.connection is None
        waiting = asyncio.create_task(roundtrip(info.local_port, b"during"))  # accepted, waits for SSH
        seen = states.count(TunnelState.RECONNECTING)  # each failed attempt says "reconnecting" again
        assert await eventually(lambda: states.count(TunnelState.RECONNECTING) >= seen + 2, 10)  # two, backing off
        assert tunnel.info.error.startswith("reconnecting")
        await asyncio.to_thread(ssh_host.start)
        assert await tunnel.wait_state(TunnelState.UP, 10)
        assert await waiting == b"during"
        assert await roundtrip(info.local_port, b"after") == b"after"
        assert tunnel.local_port == info.local_port  # the same local port
        assert tunnel.reconnects == 1
        assert tunnel.info.error == ""
    finally:
        await tunnel.close()
    assert TunnelState.RECONNECTING in states and states[-2:] == [TunnelState.UP, TunnelState.DOWN]


async def test_held_then_parked_then_resumed_on_the_same_local_port(
    connect, echo_port: int, roundtrip: RoundTrip, forwarder: str, tunnel_target: SSHTarget
) -> None:
    """What the Jupyter follower does with a tunnel: `hold` (connections wait, nothing forwarded), `park` (DOWN,
    the local port kept, connections closed at once, unanswered), `resume` to a port (forwarding again)."""
    tunnel = Tunnel("vm1", connect, echo_port, openssh=tunnel_target)
    assert tunnel.backend == forwarder
    info = await tunnel.open()
    try:
        tunnel.hold("checking")
        assert (tunnel.state, tunnel.error) == (TunnelState.RECONNECTING, "checking")
        waiting = asyncio.create_task(roundtrip(info.local_port, b"held"))
        assert not await eventually(waiting.done, timeout=0.5)  # waits: nothing forwarded meanwhile
        tunnel.release()
        assert await waiting == b"held" and tunnel.state is TunnelState.UP
        await tunnel.park("gone")
        assert (tunnel.info.state, tunnel.info.error, tunnel.info.local_port) == (TunnelState.DOWN, "gone",
                                                                                  info.local_port)
        assert await _unanswered(info.local_port)  # accepted and closed at once: nothing reached
        with socket.socket() as s, pytest.raises(OSError):  # the port stays the tunnel's
            s.bind(("127.0.0.1", info.local_port))
        await tunnel.resume(echo_port)
        assert tunnel.state is TunnelState.UP and tunnel.local_port == info.local_port
        assert await roundtrip(info.local_port, b"after") == b"after"
    finally:
        await tunnel.close()


async def _unanswered(port: int) -> bool:
    """A connection to 127.0.0.1:port is closed without a byte of answer (within 5 s)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await asyncio.wait_for(reader.read(), 5) == b""
    except ConnectionResetError:
        return True
    finally:
        writer.close()
