"""OpenSSH as a tunnel's data path: each accepted local socket is handed to the tunnel's ssh master.

`HandoffPath` accepts on the tunnel's listener itself (a reader on its socket), waits until the tunnel is UP,
and passes the socket to the master (tui.core.remote.openssh_forward), which then reads and writes it directly.
The master is started pinned to the host key asyncssh just verified; the bytes of a socket are counted from the
kernel, live while it is served and into the tunnel's counters when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import asyncssh

from tui.core.remote.datapath import PathContext
from tui.core.remote.openssh_forward import OpenSSHForward, direct_endpoint, socket_bytes

_ACCEPT_PAUSE_S = 1.0


class HandoffPath:
    """The OpenSSH data path of one tunnel: its listener, and the ssh master `forward` that serves it.

    connect_timeout: how long the master may take to start.
    """

    conn: asyncssh.SSHClientConnection | None = None  # the bytes never go over an asyncssh connection here

    def __init__(self, context: PathContext, forward: OpenSSHForward, connect_timeout: float) -> None:
        self.context = context
        self.forward = forward
        self._connect_timeout = connect_timeout
        self._lsock: socket.socket | None = None
        self.attached: set[socket.socket] = set()  # local connections the ssh master is serving

    def live_bytes(self) -> tuple[int, int]:
        """(in, out) so far of the connections being served (the kernel's counts)."""
        counts = [socket_bytes(c) for c in self.attached]
        return sum(sent for sent, _ in counts), sum(received for _, received in counts)

    async def serve(self, lsock: socket.socket) -> None:
        """Accept on `lsock` (bound already)."""
        asyncio.get_running_loop().add_reader(lsock.fileno(), self._accept)
        self._lsock = lsock

    def stop_serving(self) -> asyncio.Server | None:
        """Stop listening and close the listener (None: there is no asyncio server to wait for)."""
        if self._lsock is not None:
            asyncio.get_running_loop().remove_reader(self._lsock.fileno())
            self._lsock.close()
            self._lsock = None
        return None

    async def adopt(self, conn: asyncssh.SSHClientConnection) -> None:
        """Start ssh pinned to the host key `conn` verified; `conn` itself is then done with."""
        try:
            key, endpoint = conn.get_server_host_key(), direct_endpoint(conn)
            if key is None or endpoint is None:
                raise OSError("the SSH connection has no verified host key or went through a proxy")
            await self.forward.start(key, self._connect_timeout, endpoint)
        finally:
            if self.context.close_connection:
                conn.close()

    async def wait_lost(self) -> None:
        """Return when the ssh master ends."""
        await self.forward.wait_exit()

    def drop(self) -> None:
        """Nothing to forget: the master that ended is restarted by the next `adopt`."""

    async def close(self) -> None:
        """Stop the ssh master."""
        await self.forward.close()

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
            self.context.spawn(self._attach(client))

    def _resume_accept(self, lsock: socket.socket) -> None:
        if self._lsock is lsock:  # still serving on it
            asyncio.get_running_loop().add_reader(lsock.fileno(), self._accept)

    async def _attach(self, client: socket.socket) -> None:
        """One accepted connection: wait for UP, hand the socket itself to the ssh master (it then reads and
        writes it directly), count its bytes from the kernel when it ends."""
        try:
            if self.context.refusing():
                raise OSError("the tunnel forwards nothing now")
            await asyncio.wait_for(self.context.up.wait(), self.context.accept_wait)
            proc = await self.forward.attach(client)
        except (OSError, TimeoutError, asyncio.CancelledError) as exc:
            client.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self.attached.add(client)
        try:
            await proc.wait()
        finally:
            if proc.returncode is None:  # the tunnel is closing: end the channel
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            self.attached.discard(client)
            sent, received = socket_bytes(client)
            self.context.counters.bytes_in += sent  # sent to the local client = from the VM
            self.context.counters.bytes_out += received
            client.close()
