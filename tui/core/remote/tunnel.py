"""Self-healing local port forwards: 127.0.0.1:LOCAL → (over SSH) REMOTE_HOST:PORT on the VM.

The tunnel owns its local listener (so it keeps the same local port across reconnects and counts
bytes) and opens one SSH direct-tcpip channel per accepted connection with
`conn.create_connection`, moving data with protocol callbacks and flow control, like asyncssh's
own forwarder. When the SSH connection is lost (network cut, sshd restart, laptop sleep caught
by keepalive) the tunnel turns RECONNECTING, asks the `connect` factory for a new connection with
exponential backoff (capped), and turns UP again; the listener stays bound throughout, and
connections accepted meanwhile wait for the new SSH connection.

With `openssh=target` (and `ssh` installed on Linux, see `openssh_usable`), OpenSSH carries the bytes
instead (tui.core.remote.openssh_forward): asyncssh still makes each connection first, to verify the host key,
and an ssh master is then pinned to that very key; each accepted socket is handed to the master, which
serves it directly; its byte counts come from the kernel. The listener, states and reconnects are the same.

A tunnel may be told what it reaches (`verify`): after every reconnect, before it says UP again, `verify(conn,
remote_port)` says where the service answers now — the same port, the port it moved to (the tunnel follows it), or
None when it is gone: the tunnel then stops listening and turns DOWN with `GONE` as its error, so nothing is sent
to whatever program took the old port.

State changes are reported as `tui.core.models.TunnelInfo` through `on_change`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncssh

from tui.core.models import TunnelInfo, TunnelState
from tui.core.remote.connection import SSHTarget
from tui.core.remote.openssh_forward import OpenSSHForward, direct_endpoint, openssh_usable, socket_bytes

_ACCEPT_PAUSE_S = 1.0
ConnectFactory = Callable[[], Awaitable[asyncssh.SSHClientConnection]]
OnChange = Callable[[TunnelInfo], None]
Verify = Callable[[asyncssh.SSHClientConnection, int], Awaitable[int | None]]
GONE = "Jupyter moved/stopped"  # the error of a tunnel whose service is no longer where it forwarded to

LOOPBACK = "127.0.0.1"
# A port someone holds: EADDRINUSE; on Windows also WSAEACCES (a port held exclusively, or reserved by the system).
_IN_USE = {errno.EADDRINUSE, getattr(errno, "WSAEACCES", errno.EADDRINUSE)}
_LOCAL_WRITE_HIGH = 1 << 20  # local socket write buffer before pausing the SSH channel
_CHANNEL_WINDOW = 4 << 20
_CHANNEL_MAX_PACKET = 256 << 10


class PortBusyError(OSError):
    """The user asked for a local port that another process holds."""

    def __init__(self, port: int, holder: str | None) -> None:
        self.port = port
        self.holder = holder
        who = f"by {holder}" if holder else "by another process"
        super().__init__(errno.EADDRINUSE, f"local port {port} is already in use {who}")


# -- who holds a port (Linux /proc; None elsewhere or when not permitted) ----------------------------


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def find_port_holder(port: int) -> str | None:
    """"pid 1234 (python3 -m http.server)" for the process listening on TCP `port`, when discoverable."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}") in targets:
                    return f"pid {pid} ({_cmdline(pid)})"
            except OSError:
                continue
    return None


def _cmdline(pid: str) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
        text = raw.decode("utf-8", "replace") or Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"
    return text if len(text) <= 80 else text[:77] + "..."


# -- data pumps ---------------------------------------------------------------------------------------


class _Counters:
    __slots__ = ("bytes_in", "bytes_out")

    def __init__(self) -> None:
        self.bytes_in = 0  # VM → local client
        self.bytes_out = 0  # local client → VM


class _Coalescing:
    """Wraps a transport so that writes made in one event-loop turn leave in one send() call.

    asyncio sends at once whenever its buffer is empty, so an SSH connection writing one 16-32 KB
    packet after another costs one system call per packet; joining them roughly halves the CPU per
    byte on the upload path. Everything else is delegated; close() flushes first.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)


def coalesce_writes(conn: asyncssh.SSHClientConnection) -> None:
    """Make `conn` coalesce its socket writes (see _Coalescing). No-op if asyncssh's internals differ."""
    transport = getattr(conn, "_transport", None)
    if isinstance(transport, asyncio.Transport) and not isinstance(transport, _Coalescing):
        setattr(conn, "_transport", _Coalescing(transport))  # noqa: B010 (private by necessity)


class _RemoteSide(asyncssh.SSHTCPSession[bytes]):
    """The SSH channel end of one forwarded connection."""

    def __init__(self, local: _LocalSide) -> None:
        self.local = local

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.local.counters.bytes_in += len(data)
        self.local.write(data)

    def eof_received(self) -> bool:
        self.local.write_eof()
        return True

    def pause_writing(self) -> None:
        self.local.pause_reading()

    def resume_writing(self) -> None:
        self.local.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.local.close()


class _LocalSide(asyncio.Protocol):
    """The accepted local TCP connection of one forwarded connection."""

    def __init__(self, tunnel: Tunnel) -> None:
        self.tunnel = tunnel
        self.counters = tunnel._counters
        self.transport: asyncio.Transport | None = None
        self.channel: asyncssh.SSHTCPChannel[bytes] | None = None
        self.pending: list[bytes] = []
        self.eof = False
        self.out: list[bytes] = []  # VM → client data of this loop turn, sent in one call

    # local socket events
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=_LOCAL_WRITE_HIGH)
        transport.pause_reading()
        self.tunnel._spawn(self._open_channel())

    async def _open_channel(self) -> None:
        try:
            conn = await self.tunnel._wait_connection()
            channel, _ = await conn.create_connection(
                lambda: _RemoteSide(self),
                self.tunnel.remote_host,
                self.tunnel.remote_port,
                window=_CHANNEL_WINDOW,
                max_pktsize=_CHANNEL_MAX_PACKET,
            )
        except (OSError, asyncssh.Error, TimeoutError):
            self.close()
            return
        if self.transport is None:  # the client left meanwhile
            channel.close()
            return
        self.channel = channel
        for data in self.pending:
            channel.write(data)
        self.pending.clear()
        if self.eof:
            channel.write_eof()
        self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.counters.bytes_out += len(data)
        if self.channel is not None:
            self.channel.write(data)
        else:
            self.pending.append(data)

    def eof_received(self) -> bool:
        self.eof = True
        if self.channel is not None:
            self.channel.write_eof()
        return True

    def pause_writing(self) -> None:
        if self.channel is not None:
            self.channel.pause_reading()

    def resume_writing(self) -> None:
        if self.channel is not None:
            self.channel.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.channel is not None:
            self.channel.close()
            self.channel = None

    # called by the remote side
    def write(self, data: bytes) -> None:
        if not self.out:
            asyncio.get_running_loop().call_soon(self.flush)
        self.out.append(data)

    def flush(self) -> None:
        if self.out:
            data = b"".join(self.out)
            self.out.clear()
            if self.transport is not None:
                self.transport.write(data)

    def write_eof(self) -> None:
        self.flush()
        if self.transport is not None and self.transport.can_write_eof():
            self.transport.write_eof()

    def pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def close(self) -> None:
        self.flush()
        if self.transport is not None:
            self.transport.close()


# -- the tunnel ---------------------------------------------------------------------------------------


class Tunnel:
    """One local forward for one instance. `await open()`, read `info`, `await close()`.

    local_port: the port wanted locally (the profile's, e.g. 8889); when busy another free one is
    chosen and reported, unless `strict` (the user asked for exactly this port), in which case
    `open()` raises PortBusyError naming the holder. When SSH reaches this very machine (a one-host
    rig), the remote port number is never used locally.
    """

    def __init__(
        self,
        instance: str,
        connect: ConnectFactory,
        remote_port: int,
        *,
        local_port: int | None = None,
        strict: bool = False,
        remote_host: str = LOOPBACK,
        on_change: OnChange | None = None,
        keepalive_interval: float = 15.0,
        keepalive_count_max: int = 3,
        max_backoff: float = 10.0,
        connect_timeout: float = 15.0,
        accept_wait: float = 20.0,
        close_connection: bool = True,
        openssh: SSHTarget | None = None,
        purpose: str = "jupyter",
    ) -> None:
        self.instance = instance
        self.purpose = purpose
        self.remote_host = remote_host
        self.remote_port = remote_port
        self.requested_port = local_port
        self.strict = strict
        self._connect = connect
        self._on_change = on_change
        self._keepalive = (keepalive_interval, keepalive_count_max)
        self._max_backoff = max_backoff
        self._connect_timeout = connect_timeout
        self._accept_wait = accept_wait
        self._close_connection = close_connection
        self._counters = _Counters()
        self._forward = (
            OpenSSHForward(openssh, remote_host, remote_port, self._keepalive)
            if openssh is not None and openssh_usable(openssh)
            else None
        )
        self._server: asyncio.Server | None = None
        self._lsock: socket.socket | None = None
        self._attached: set[socket.socket] = set()  # local connections the ssh master is serving
        self._conn: asyncssh.SSHClientConnection | None = None
        self._up = asyncio.Event()
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        self.verify: Verify | None = None  # set once the service answered (see the module's docstring)
        self.gone_reason = GONE
        self.local_port = 0
        self.state = TunnelState.STARTING
        self.since = datetime.now(UTC)
        self.error = ""
        self.reconnects = 0

    # -- public -------------------------------------------------------------------------------------

    @property
    def info(self) -> TunnelInfo:
        return TunnelInfo(
            instance=self.instance,
            local_port=self.local_port,
            remote_host=self.remote_host,
            remote_port=self.remote_port,
            state=self.state,
            since=self.since,
            bytes_in=self._counters.bytes_in + sum(socket_bytes(c)[0] for c in self._attached),
            bytes_out=self._counters.bytes_out + sum(socket_bytes(c)[1] for c in self._attached),
            error=self.error,
            purpose=self.purpose,
        )

    @property
    def connection(self) -> asyncssh.SSHClientConnection | None:
        """The current SSH connection while UP (None with the OpenSSH data path)."""
        return self._conn if self._up.is_set() else None

    def retarget(self, remote_port: int) -> None:
        """Forward new connections to `remote_port` (a server that moved off its configured port); reported."""
        if remote_port == self.remote_port:
            return
        self.remote_port = remote_port
        if self._forward is not None:
            self._forward.remote_port = remote_port
        self._set_state(self.state)

    @property
    def backend(self) -> str:
        """"openssh" when an ssh process carries the bytes, else "asyncssh"."""
        return "openssh" if self._forward is not None else "asyncssh"

    async def open(self) -> TunnelInfo:
        """Connect, bind the local port and start serving. Raises PortBusyError, OSError, asyncssh.Error."""
        self._set_state(TunnelState.STARTING)
        conn = await asyncio.wait_for(self._connect(), self._connect_timeout)
        if self._forward is not None and direct_endpoint(conn) is None:  # via a jump/proxy from ~/.ssh/config
            await self._forward.close()
            self._forward = None
        try:
            lsock = self._bind(conn)
            try:
                await self._serve(lsock)
                await self._adopt(conn)
            except BaseException:
                self._stop_serving()
                raise
        except BaseException:
            if self._close_connection:
                conn.close()
            if self._forward is not None:
                await self._forward.close()
            raise
        self._supervisor = asyncio.create_task(self._supervise())
        return self.info

    async def close(self, reason: str = "") -> None:
        """Stop listening, drop forwarded connections and the SSH connection; state DOWN (`reason` its error)."""
        self._closing = True
        if self._supervisor is not None and self._supervisor is not asyncio.current_task():
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await self._shut(reason)

    async def _shut(self, reason: str) -> None:
        server = self._server
        self._stop_serving()
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        if self._forward is not None:
            await self._forward.close()
        if self._conn is not None and self._close_connection:
            self._conn.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._conn.wait_closed(), 2.0)
        self._conn = None
        self._up.clear()
        self.error = reason
        self._set_state(TunnelState.DOWN)

    async def wait_state(self, state: TunnelState, timeout: float) -> bool:
        """Poll until the tunnel is in `state`; False after `timeout` seconds."""
        async def _poll() -> None:
            while self.state is not state:
                await asyncio.sleep(0.02)

        try:
            await asyncio.wait_for(_poll(), timeout)
        except TimeoutError:
            return False
        return True

    # -- internals ----------------------------------------------------------------------------------

    def _bind(self, conn: asyncssh.SSHClientConnection) -> socket.socket:
        avoid = {self.remote_port} if _is_loopback_peer(conn) else set()
        candidates: list[int] = []
        if self.requested_port:
            if self.strict and self.requested_port in avoid:
                raise PortBusyError(self.requested_port, "the remote server itself (SSH host is this machine)")
            if self.requested_port not in avoid:
                candidates.append(self.requested_port)
        candidates.append(0)
        for port in candidates:
            for _attempt in range(5):
                try:
                    lsock = _listen(port)
                except OSError as exc:
                    if exc.errno not in _IN_USE:
                        raise
                    if port and self.strict:
                        raise PortBusyError(port, find_port_holder(port)) from exc
                    break
                bound = lsock.getsockname()[1]
                if bound in avoid:  # the OS handed out the remote port number: try again
                    lsock.close()
                    continue
                self.local_port = int(bound)
                return lsock
        raise OSError(errno.EADDRINUSE, "no free local port on 127.0.0.1")

    async def _serve(self, lsock: socket.socket) -> None:
        if self._forward is None:
            self._server = await asyncio.get_running_loop().create_server(lambda: _LocalSide(self), sock=lsock)
        else:
            asyncio.get_running_loop().add_reader(lsock.fileno(), self._accept)
            self._lsock = lsock

    def _stop_serving(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._lsock is not None:
            asyncio.get_running_loop().remove_reader(self._lsock.fileno())
            self._lsock.close()
            self._lsock = None

    def _accept(self) -> None:
        lsock = self._lsock
        assert lsock is not None
        while True:
            try:
                client, _ = lsock.accept()
            except BlockingIOError:  # all taken
                return
            except OSError:  # e.g. EMFILE: pause accepting for a second instead of spinning (as asyncio does)
                loop = asyncio.get_running_loop()
                loop.remove_reader(lsock.fileno())
                loop.call_later(_ACCEPT_PAUSE_S, self._resume_accept, lsock)
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._spawn(self._attach(client))

    def _resume_accept(self, lsock: socket.socket) -> None:
        if self._lsock is lsock:  # still serving on it
            asyncio.get_running_loop().add_reader(lsock.fileno(), self._accept)

    async def _attach(self, client: socket.socket) -> None:
        """One accepted connection on the OpenSSH path: wait for UP, hand the socket itself to the ssh master
        (it then reads and writes it directly), count its bytes from the kernel when it ends."""
        assert self._forward is not None
        try:
            await asyncio.wait_for(self._up.wait(), self._accept_wait)
            proc = await self._forward.attach(client)
        except (OSError, TimeoutError):
            client.close()
            return
        self._attached.add(client)
        try:
            await proc.wait()
        finally:
            if proc.returncode is None:  # the tunnel is closing: end the channel
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            self._attached.discard(client)
            sent, received = socket_bytes(client)
            self._counters.bytes_in += sent  # sent to the local client = from the VM
            self._counters.bytes_out += received
            client.close()

    async def _adopt(self, conn: asyncssh.SSHClientConnection) -> None:
        """Make `conn` (host key verified) carry the tunnel, or start ssh pinned to its host key."""
        if self._forward is not None:
            try:
                key, endpoint = conn.get_server_host_key(), direct_endpoint(conn)
                if key is None or endpoint is None:
                    raise OSError("the SSH connection has no verified host key or went through a proxy")
                await self._forward.start(key, self._connect_timeout, endpoint)
            finally:
                if self._close_connection:
                    conn.close()
        else:
            interval, count = self._keepalive
            conn.set_keepalive(interval, count)
            coalesce_writes(conn)
            self._conn = conn
        self.error = ""
        self._up.set()
        self._set_state(TunnelState.UP)

    async def _supervise(self) -> None:
        while not self._closing:
            if self._forward is not None:
                await self._forward.wait_exit()
            else:
                assert self._conn is not None
                await self._conn.wait_closed()
            if self._closing:
                return
            self._up.clear()
            lost, self._conn = self._conn, None
            if lost is not None:
                with contextlib.suppress(Exception):
                    lost.abort()
            self.error = "connection lost"
            self._set_state(TunnelState.RECONNECTING)
            if not await self._reconnect():
                self._closing = True
                await self._shut(self.gone_reason)
                return

    async def _reconnect(self) -> bool:
        """Connect again (backing off); False when `verify` says the service is gone."""
        delay = 0.25
        while True:
            try:
                conn = await asyncio.wait_for(self._connect(), self._connect_timeout)
                if self.verify is not None:
                    port = await self._verified(conn)
                    if port is None:
                        return False
                    self.retarget(port)
                await self._adopt(conn)
            except Exception as exc:  # any factory failure (its own error family too), ssh failing: retry
                self.error = f"reconnecting: {exc or type(exc).__name__}"
                self._set_state(TunnelState.RECONNECTING)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)
                continue
            self.reconnects += 1
            return True

    async def _verified(self, conn: asyncssh.SSHClientConnection) -> int | None:
        """Where the service answers now (see `verify`); the connection is closed when not kept."""
        assert self.verify is not None
        try:
            port = await self.verify(conn, self.remote_port)
        except BaseException:
            if self._close_connection:
                conn.close()
            raise
        if port is None and self._close_connection:
            conn.close()
        return port

    async def _wait_connection(self) -> asyncssh.SSHClientConnection:
        await asyncio.wait_for(self._up.wait(), self._accept_wait)
        assert self._conn is not None
        return self._conn

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _set_state(self, state: TunnelState) -> None:
        if state is not self.state:
            self.since = datetime.now(UTC)
            self.state = state
        if self._on_change is not None:
            self._on_change(self.info)


def _listen(port: int) -> socket.socket:
    """A non-blocking TCP listener on 127.0.0.1:port (0: any free port)."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if sys.platform == "win32":  # Windows' SO_REUSEADDR would let another program bind the same port too
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        else:  # POSIX: rebind at once after a restart (TIME_WAIT), never alongside a listener
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((LOOPBACK, port))
        lsock.listen(128)
        lsock.setblocking(False)
    except BaseException:
        lsock.close()
        raise
    return lsock


def _is_loopback_peer(conn: asyncssh.SSHClientConnection) -> bool:
    peer = conn.get_extra_info("peername")
    host = str(peer[0]) if peer else ""
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")
