"""asyncssh as a tunnel's data path: one SSH direct-tcpip channel per accepted local connection.

`ChannelPath` serves the tunnel's listener with `loop.create_server`; each accepted connection waits until the
tunnel is UP, opens a channel with `conn.create_connection` and moves data with protocol callbacks and flow
control, like asyncssh's own forwarder. Connections accepted while the tunnel reconnects wait for the new SSH
connection. The bytes are counted here as they move, to the byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import Callable

import asyncssh

from tui.core.remote.asyncssh_fast import install_fast_receive, install_lean_send, lean_sender
from tui.core.remote.datapath import PathContext

_LOCAL_WRITE_HIGH = 1 << 20  # local socket write buffer before pausing the SSH channel
_CHANNEL_WRITE_HIGH = 1 << 20  # SSH channel send buffer before pausing the local socket (asyncssh's default: 64 KB)
_CHANNEL_WINDOW = 4 << 20
_CHANNEL_MAX_PACKET = 256 << 10


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


_AEAD = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com")
_MSG_IGNORE = 2
_RECV_STEP = 48 << 10  # received bytes are parsed this much at a time (see _parse_in_steps)


def tune_for_bulk(conn: asyncssh.SSHClientConnection) -> None:
    """Make `conn` cheaper per byte for a tunnel's bulk data (measured with tests/benchmarks/bench_jupyter.py):

    - its socket writes coalesced (`coalesce_writes`);
    - no empty SSH_MSG_IGNORE before each packet when the cipher is an AEAD one (AES-GCM, ChaCha20-Poly1305):
      asyncssh sends one before every packet, a countermeasure for CBC modes that doubles the packets (and their
      encryption) on the upload path; an authenticated cipher has no use for it, so with any other cipher
      nothing changes;
    - with AES-GCM keys, the lean paths of `asyncssh_fast` for channel data both ways (reads into one kept buffer,
      packets decrypted in place, data framed and sealed with one join);
    - otherwise, received data parsed in steps of `_RECV_STEP` bytes: asyncssh slices the rest of its input buffer
      off after each packet, so a 256 KB read of 32 KB packets copied ~8x its size; in steps the rest stays small.

    Each is a no-op where asyncssh's internals differ from what they expect (they are checked, not assumed)."""
    coalesce_writes(conn)
    send_packet = getattr(conn, "send_packet", None)
    if conn.get_extra_info("send_cipher") in _AEAD and callable(send_packet) \
            and "send_packet" not in vars(conn):  # (an instance attribute: tuned already)
        def without_ignore(pkttype: int, *args: bytes, **kwargs: object) -> None:
            if pkttype == _MSG_IGNORE and args == (b"\0\0\0\0",):  # the inserted one: String(b'')
                return
            send_packet(pkttype, *args, **kwargs)

        setattr(conn, "send_packet", without_ignore)  # noqa: B010 (an instance attribute, asyncssh's own call)
        install_lean_send(conn)
    received = getattr(conn, "data_received", None)
    if isinstance(getattr(conn, "_inpbuf", None), bytes) and callable(received) \
            and "data_received" not in vars(conn):
        slow = _parse_in_steps(received)
        if not install_fast_receive(conn, slow):
            setattr(conn, "data_received", slow)  # noqa: B010


def _parse_in_steps(received: Callable[..., None]) -> Callable[..., None]:
    def in_steps(data: bytes, datatype: object = None) -> None:
        if len(data) <= _RECV_STEP:
            received(data)
            return
        view = memoryview(data)
        for start in range(0, len(data), _RECV_STEP):
            received(bytes(view[start:start + _RECV_STEP]))

    return in_steps


# -- the data path ------------------------------------------------------------------------------------


class ChannelPath:
    """The asyncssh data path of one tunnel: its listener, and the SSH connection its channels go over.

    destination: where new channels go now ((host, port), read at each connection: the tunnel may be retargeted);
    keepalive: (interval, count max) of each SSH connection adopted.
    """

    def __init__(
        self, context: PathContext, destination: Callable[[], tuple[str, int]], keepalive: tuple[float, int]
    ) -> None:
        self.context = context
        self.destination = destination
        self._keepalive = keepalive
        self._server: asyncio.Server | None = None
        self.conn: asyncssh.SSHClientConnection | None = None

    async def serve(self, lsock: socket.socket) -> None:
        """Accept on `lsock` (bound already)."""
        self._server = await asyncio.get_running_loop().create_server(lambda: _LocalSide(self), sock=lsock)

    def live_bytes(self) -> tuple[int, int]:
        """(0, 0): nothing is left uncounted here, the tunnel's counters take the bytes as they move."""
        return 0, 0

    def stop_serving(self) -> asyncio.Server | None:
        """Stop listening; the server just closed (to wait for), if any."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        return server

    async def adopt(self, conn: asyncssh.SSHClientConnection) -> None:
        """Make `conn` (host key verified) carry the channels from now on."""
        interval, count = self._keepalive
        conn.set_keepalive(interval, count)
        tune_for_bulk(conn)
        self.conn = conn

    async def wait_lost(self) -> None:
        """Return when the SSH connection ends."""
        assert self.conn is not None
        await self.conn.wait_closed()

    def drop(self) -> None:
        """Forget the lost SSH connection (aborting what is left of it)."""
        lost, self.conn = self.conn, None
        if lost is not None:
            with contextlib.suppress(Exception):
                lost.abort()

    async def close(self) -> None:
        """Close the SSH connection (when the tunnel owns it) and forget it."""
        if self.conn is not None and self.context.close_connection:
            self.conn.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.conn.wait_closed(), 2.0)
        self.conn = None

    async def connection(self) -> asyncssh.SSHClientConnection:
        """The SSH connection, once the tunnel is UP (TimeoutError after the accept wait, OSError while parked)."""
        if self.context.refusing():
            raise OSError("the tunnel forwards nothing now")
        await asyncio.wait_for(self.context.up.wait(), self.context.accept_wait)
        assert self.conn is not None
        return self.conn


# -- data pumps ---------------------------------------------------------------------------------------


class _RemoteSide(asyncssh.SSHTCPSession[bytes]):
    """The SSH channel end of one forwarded connection."""

    takes_views = True  # its data may come as memoryviews (asyncssh_fast): they are joined before they are sent

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

    def __init__(self, path: ChannelPath) -> None:
        self.path = path
        self.counters = path.context.counters
        self.transport: asyncio.Transport | None = None
        self.channel: asyncssh.SSHTCPChannel[bytes] | None = None
        self.pending: list[bytes] = []
        self.send: Callable[[bytes], None] = self.pending.append  # the channel's write, once it is open
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
        self.path.context.spawn(self._open_channel())

    async def _open_channel(self) -> None:
        try:
            conn = await self.path.connection()
            remote_host, remote_port = self.path.destination()
            channel, _ = await conn.create_connection(
                lambda: _RemoteSide(self),
                remote_host,
                remote_port,
                window=_CHANNEL_WINDOW,
                max_pktsize=_CHANNEL_MAX_PACKET,
            )
        except (OSError, asyncssh.Error, TimeoutError):
            self.close()
            return
        except asyncio.CancelledError:  # the tunnel closes or parks
            self.close()
            raise
        if self.transport is None:  # the client left meanwhile
            channel.close()
            return
        self.channel = channel
        channel.set_write_buffer_limits(high=_CHANNEL_WRITE_HIGH)
        sender = lean_sender(conn)
        self.send = channel.write if sender is None else functools.partial(sender.write, channel)
        for data in self.pending:
            self.send(data)
        self.pending.clear()
        if self.eof:
            channel.write_eof()
        self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.counters.bytes_out += len(data)
        if self.channel is not None:
            self.send(data)
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
