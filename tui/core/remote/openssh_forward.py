"""OpenSSH as a tunnel's data path on Linux: C speed for the bytes, the app's guarantees kept.

Linux only (the hand-off of an accepted socket and the kernel's TCP_INFO/SIOCOUTQ byte counts); elsewhere, or
with CADES_TUI_FORWARDER=asyncssh, `openssh_usable` says no and tunnels use the asyncssh forwarder. The module
imports on every platform: `fcntl`/`termios` only under a Linux guard.

asyncssh moves ~0.5-0.7x of OpenSSH's bytes per CPU second here (Python work per 32 KiB packet), so a
tunnel hands its connections to OpenSSH when `ssh` is installed: one master connection per tunnel
(`ssh -M -N -S CONTROL`), and for each accepted local connection a multiplexing client
(`ssh -S CONTROL -W host:port`) that passes the accepted socket itself to the master (SCM_RIGHTS): the
master reads and writes the browser's socket directly — no relay, no copy through Python — and the
tunnel reads the socket's byte counts from the kernel (TCP_INFO) for its counters. Guarantees:
- the host key is the one asyncssh just verified (pinned, known or accepted), written to a private
  known_hosts read with StrictHostKeyChecking=yes (never disabled); no global/user known_hosts;
- our key only (-i, IdentitiesOnly=yes), no agent/X11 forwarding, no config file, BatchMode;
- the control socket lives in a private 0700 directory; no listener besides the tunnel's own 127.0.0.1 one;
- ServerAliveInterval/CountMax keepalives: a dead link ends the master, which the tunnel sees and reconnects;
- an ssh left behind by an app that was killed (SIGKILL: no chance to stop it) is stopped by the next start of
  the app or of any command (tui.core.remote.sshreap): each private directory names its owner (pid and start time),
  and the ssh is recognised by its control path.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import struct
import sys
import tempfile
from pathlib import Path

import asyncssh

from tui.core.platform import openssh_handoff_possible
from tui.core.remote.connection import ENCRYPTION_ALGS, SSHTarget
from tui.core.remote.hostkeys import key_line
from tui.core.remote.sshreap import PREFIX, owner_line, reap_orphans

if sys.platform == "linux":  # the kernel's byte counts of a socket (TIOCOUTQ = SIOCOUTQ): Linux only, as the hand-off
    import fcntl
    import termios

_ALIAS = "cades-tunnel-host"
_START_POLL_S = 0.02


_TCP_INFO_BYTES = struct.Struct("=QQ")  # tcpi_bytes_acked, tcpi_bytes_received (Linux >= 4.2)
_TCP_INFO_OFFSET = 120
_INT = struct.Struct("i")


def socket_bytes(sock: socket.socket) -> tuple[int, int]:
    """(bytes written, bytes received) on a TCP socket, from the kernel: written = acknowledged by the peer
    (TCP_INFO) + still queued or in flight (SIOCOUTQ). Exact while the connection is open; once it is closed each
    may include TCP's FIN (one byte). (0, 0) when unavailable (on every platform but Linux)."""
    if sys.platform == "linux":
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
            queued = _INT.unpack(fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * _INT.size))[0]
        except OSError:
            return 0, 0
        if len(info) >= _TCP_INFO_OFFSET + _TCP_INFO_BYTES.size:
            acked, received = _TCP_INFO_BYTES.unpack_from(info, _TCP_INFO_OFFSET)
            return int(acked) + max(0, int(queued)), int(received)
    return 0, 0


def direct_endpoint(conn: asyncssh.SSHClientConnection) -> tuple[str, int, str] | None:
    """(address, port, user) a verified connection went to over its own TCP socket; None when it went through a
    jump host or proxy (then OpenSSH, run without a config file, could not follow the same way)."""
    peer = conn.get_extra_info("peername")
    if conn.get_extra_info("socket") is None or not peer or not peer[1]:
        return None
    return str(peer[0]), int(peer[1]), str(conn.get_extra_info("username") or "")


def openssh_usable(target: SSHTarget | None) -> bool:
    """Whether `target` can be served by OpenSSH with every guarantee (our key file, no jump host) and its byte
    counts read from the kernel (Linux; not when CADES_TUI_FORWARDER=asyncssh forces the asyncssh forwarder, see
    tui.core.platform). With ~/.ssh/config in play, the tunnel also checks that the verified connection went
    straight to the VM (see `direct_endpoint`)."""
    return (
        target is not None
        and target.key_path is not None
        and not target.jump
        and target.via is None
        and openssh_handoff_possible()
        and shutil.which("ssh") is not None
    )


class OpenSSHForward:
    """One master `ssh -M -N` at a time (`start()` again after it exits); `attach()` hands it a connection."""

    def __init__(
        self, target: SSHTarget, remote_host: str, remote_port: int, keepalive: tuple[float, int]
    ) -> None:
        assert target.key_path is not None
        self.target = target
        self.remote_host = remote_host
        self.remote_port = remote_port
        self.keepalive = keepalive
        reap_orphans()
        self._dir = Path(tempfile.mkdtemp(prefix=PREFIX))  # 0700
        (self._dir / "owner").write_text(owner_line())
        self.control_path = self._dir / "control"
        self.endpoint: tuple[str, int, str] = (target.host, target.port, target.user or "")
        self._known_hosts = self._dir / "known_hosts"
        self._log = self._dir / "ssh.log"
        self._proc: asyncio.subprocess.Process | None = None

    def _common(self) -> list[str]:
        """What the master and every multiplexing client share: no config, our key, the pinned host key."""
        interval, count = self.keepalive
        options = {
            "BatchMode": "yes",
            "IdentitiesOnly": "yes",
            "IdentityAgent": "none",
            "UserKnownHostsFile": str(self._known_hosts),
            "GlobalKnownHostsFile": "/dev/null",
            "StrictHostKeyChecking": "yes",
            "HostKeyAlias": _ALIAS,
            "CheckHostIP": "no",
            "UpdateHostKeys": "no",
            "ServerAliveInterval": str(max(1, round(interval))),
            "ServerAliveCountMax": str(count),
            "ConnectTimeout": str(max(1, round(self.target.connect_timeout))),
            "Ciphers": ",".join(ENCRYPTION_ALGS),
            "Compression": "no",
            "ControlPath": str(self.control_path),
            "ForwardAgent": "no",
            "ForwardX11": "no",
            "PermitLocalCommand": "no",
            "LogLevel": "ERROR",
        }
        _, port, user = self.endpoint
        argv = ["-F", "/dev/null", "-p", str(port), "-i", str(self.target.key_path)]
        for name, value in options.items():
            argv += ["-o", f"{name}={value}"]
        if user:
            argv += ["-l", user]
        return argv

    def argv(self) -> list[str]:
        """The master: holds the SSH connection, serves the multiplexing clients on its control socket."""
        return ["ssh", "-N", *self._common(), "-o", "ControlMaster=yes", "--", self.endpoint[0]]

    def attach_argv(self) -> list[str]:
        """A multiplexing client: its stdin/stdout (the accepted socket) become a channel to the remote port."""
        return ["ssh", *self._common(), "-o", "ControlMaster=no", "-W", f"{self.remote_host}:{self.remote_port}",
                "--", self.endpoint[0]]

    async def attach(self, client: socket.socket) -> asyncio.subprocess.Process:
        """Hand `client` to the master as a new channel; the returned process ends when the channel does."""
        fd = client.fileno()
        return await asyncio.create_subprocess_exec(
            *self.attach_argv(), stdin=fd, stdout=fd, stderr=asyncio.subprocess.DEVNULL
        )

    async def start(self, host_key: asyncssh.SSHKey, timeout: float,
                    endpoint: tuple[str, int, str] | None = None) -> None:
        """Run the master trusting exactly `host_key`; return once it serves its control socket. Raises OSError
        with ssh's reason. `endpoint` (address, port, user): where the verified connection actually went (after
        ~/.ssh/config's HostName/Port/User) — ssh itself runs without a config file."""
        await self.stop()
        if endpoint is not None:
            self.endpoint = endpoint
        self._known_hosts.write_text(f"{_ALIAS} {key_line(host_key)}\n")
        self.control_path.unlink(missing_ok=True)
        with self._log.open("wb") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv(), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=log
            )
        (self._dir / "ssh.pid").write_text(str(self._proc.pid))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.control_path.exists():
            if self._proc.returncode is not None or loop.time() > deadline:
                await self.stop()
                raise OSError(f"ssh did not start: {self._reason()}")
            await asyncio.sleep(_START_POLL_S)

    async def wait_exit(self) -> None:
        """Until the current ssh process ends (at once when none runs)."""
        if self._proc is not None:
            await self._proc.wait()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def stop(self) -> None:
        """End the ssh process (terminate, then kill) and reap it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 2.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    async def close(self) -> None:
        """Stop and remove the private directory."""
        await self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _reason(self) -> str:
        try:
            text = self._log.read_text(errors="replace").strip()
        except OSError:
            text = ""
        return text.splitlines()[-1] if text else "no reason given (timed out or exited)"
