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
None when it is gone: the tunnel then turns DOWN with `GONE` as its error and forwards nothing (`park`: it keeps
its local port, and closes the connections it accepts), so nothing is sent to whatever program took the old port;
`resume` makes it forward again. `hold` / `release` pause forwarding while what it reaches is being checked.

State changes are reported as `tui.core.models.TunnelInfo` through `on_change`.

The parts: the tunnel keeps the states and the reconnects; its listener comes from tui.core.remote.localport,
and its data path is `asyncssh_forward.ChannelPath` or `openssh_handoff.HandoffPath` (see datapath).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncssh

from tui.core.models import TunnelInfo, TunnelState
from tui.core.remote.asyncssh_forward import ChannelPath
from tui.core.remote.connection import SSHTarget
from tui.core.remote.datapath import Counters, PathContext
from tui.core.remote.localport import LOOPBACK, PortBusyError, bind_loopback, find_port_holder, is_loopback_peer
from tui.core.remote.openssh_forward import OpenSSHForward, direct_endpoint, openssh_usable
from tui.core.remote.openssh_handoff import HandoffPath
from tui.core.tasks import spawn

__all__ = [
    "GONE",
    "LOOPBACK",
    "ConnectFactory",
    "OnChange",
    "PortBusyError",
    "Tunnel",
    "Verify",
    "find_port_holder",
]

ConnectFactory = Callable[[], Awaitable[asyncssh.SSHClientConnection]]
OnChange = Callable[[TunnelInfo], None]
Verify = Callable[[asyncssh.SSHClientConnection, int], Awaitable[int | None]]
GONE = "Jupyter moved/stopped"  # the error of a tunnel whose service is no longer where it forwarded to


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
        self._close_connection = close_connection
        self._counters = Counters()
        self._up = asyncio.Event()
        self._changed = asyncio.Event()  # set (and replaced) at every report
        self._tasks: set[asyncio.Task[None]] = set()
        self.parked = False  # see `park()`
        self._context = PathContext(self._counters, self._spawn, self._up, accept_wait, close_connection,
                                    lambda: self.parked)
        if openssh is not None and openssh_usable(openssh):
            forward = OpenSSHForward(openssh, remote_host, remote_port, self._keepalive)
            self._path: ChannelPath | HandoffPath = HandoffPath(self._context, forward, connect_timeout)
        else:
            self._path = self._channel_path()
        self._closing = False
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
        live_in, live_out = self._path.live_bytes()
        return TunnelInfo(
            instance=self.instance,
            local_port=self.local_port,
            remote_host=self.remote_host,
            remote_port=self.remote_port,
            state=self.state,
            since=self.since,
            bytes_in=self._counters.bytes_in + live_in,
            bytes_out=self._counters.bytes_out + live_out,
            error=self.error,
            purpose=self.purpose,
        )

    @property
    def connection(self) -> asyncssh.SSHClientConnection | None:
        """The current SSH connection while UP (None with the OpenSSH data path)."""
        return self._path.conn if self._up.is_set() else None

    def retarget(self, remote_port: int) -> None:
        """Forward new connections to `remote_port` (a server that moved off its configured port); reported."""
        if remote_port == self.remote_port:
            return
        self.remote_port = remote_port
        if self._forward is not None:
            self._forward.remote_port = remote_port
        self._set_state(self.state)

    def hold(self, reason: str) -> None:
        """Stop handing new connections on (they wait, as during a reconnect) until `release()`: what the tunnel
        reaches may have gone, and is being checked. Reported as RECONNECTING with `reason`."""
        if self._closing or self.state is not TunnelState.UP:
            return
        self._up.clear()
        self.error = reason
        self._set_state(TunnelState.RECONNECTING)

    def release(self) -> None:
        """Forward again after `hold()` (what it reaches was verified meanwhile)."""
        if self._closing or self._up.is_set() or self.state is not TunnelState.RECONNECTING or not self._held():
            return
        self._up.set()
        self.error = ""
        self._set_state(TunnelState.UP)

    def _held(self) -> bool:
        """Whether the path is still there to forward on (a hold, not a lost connection)."""
        return self._path.conn is not None if isinstance(self._path, ChannelPath) else self._path.forward.running

    async def park(self, reason: str) -> None:
        """Stop forwarding but keep the local port (no other program takes it meanwhile): the data path ends,
        connections accepted meanwhile are closed at once; DOWN with `reason`, until `resume()`."""
        await self._unsupervise()
        self.parked = True
        self._up.clear()
        await self._drop_tasks()
        if self._forward is not None:
            await self._forward.stop()  # (its private directory stays for the next master)
        else:
            await self._path.close()
        self.error = reason
        self._set_state(TunnelState.DOWN)

    async def resume(self, remote_port: int) -> None:
        """Forward again after `park()`, to `remote_port` (verified by the caller). Raises OSError, asyncssh.Error,
        TimeoutError, or the connect factory's errors; the tunnel then stays parked."""
        conn = await asyncio.wait_for(self._connect(), self._connect_timeout)
        self.retarget(remote_port)
        self.parked = False
        try:
            await self._adopt(conn)
        except BaseException:
            self.parked = True
            if self._close_connection:
                conn.close()
            raise
        self._start_supervisor()

    async def wait_change(self, state: TunnelState, timeout: float | None = None) -> None:
        """Until the tunnel is no longer in `state` (or `timeout` seconds passed)."""
        await _until(self, lambda: self.state is not state, timeout)

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
            self._path = self._channel_path()
        try:
            lsock = self._bind(conn)
            try:
                await self._path.serve(lsock)
                await self._adopt(conn)
            except BaseException:
                self._path.stop_serving()
                raise
        except BaseException:
            if self._close_connection:
                conn.close()
            if self._forward is not None:
                await self._forward.close()
            raise
        self._start_supervisor()
        return self.info

    async def close(self, reason: str = "") -> None:
        """Stop listening, drop forwarded connections and the SSH connection; state DOWN (`reason` its error)."""
        self._closing = True
        await self._unsupervise()
        await self._shut(reason)

    async def _unsupervise(self) -> None:
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None and supervisor is not asyncio.current_task():
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor

    async def _drop_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)

    async def _shut(self, reason: str) -> None:
        server = self._path.stop_serving()
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        await self._drop_tasks()
        await self._path.close()
        self._up.clear()
        self.error = reason
        self._set_state(TunnelState.DOWN)

    async def wait_state(self, state: TunnelState, timeout: float) -> bool:
        """Until the tunnel is in `state`; False after `timeout` seconds."""
        return await _until(self, lambda: self.state is state, timeout)

    # -- internals ----------------------------------------------------------------------------------

    @property
    def _forward(self) -> OpenSSHForward | None:
        """The ssh master while OpenSSH carries the bytes, else None."""
        return self._path.forward if isinstance(self._path, HandoffPath) else None

    @property
    def _attached(self) -> set[socket.socket]:
        """The local connections the ssh master is serving (none on the asyncssh path)."""
        return self._path.attached if isinstance(self._path, HandoffPath) else set()

    def _channel_path(self) -> ChannelPath:
        return ChannelPath(self._context, lambda: (self.remote_host, self.remote_port), self._keepalive)

    def _bind(self, conn: asyncssh.SSHClientConnection) -> socket.socket:
        avoid = {self.remote_port} if is_loopback_peer(conn) else set()
        lsock = bind_loopback(self.requested_port, strict=self.strict, avoid=avoid)
        self.local_port = int(lsock.getsockname()[1])
        return lsock

    async def _adopt(self, conn: asyncssh.SSHClientConnection) -> None:
        """Make `conn` (host key verified) carry the tunnel, or start ssh pinned to its host key."""
        await self._path.adopt(conn)
        self.error = ""
        self._up.set()
        self._set_state(TunnelState.UP)

    async def _supervise(self) -> None:
        while not self._closing:
            await self._path.wait_lost()
            if self._closing:
                return
            self._up.clear()
            self._path.drop()
            self.error = "connection lost"
            self._set_state(TunnelState.RECONNECTING)
            if not await self._reconnect():  # what it reached is gone: keep the port, forward nothing
                await self.park(self.gone_reason)
                return

    async def _reconnect(self) -> bool:
        """Connect again (backing off); False when `verify` says the service is gone."""
        delay = 0.25
        while True:
            try:
                conn = await asyncio.wait_for(self._connect(), self._connect_timeout)
                if self.verify is not None:
                    port = await _verified(self.verify, conn, self.remote_port, self._close_connection)
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

    def _start_supervisor(self) -> None:
        """The task that keeps the tunnel up (keepalives, reconnects). Should it die of an error, the tunnel says so:
        DOWN with the reason (a TunnelChanged the user sees), and the app log has the traceback."""
        self._supervisor = spawn(self._supervise(), name=f"keeping the {self.purpose} tunnel to {self.instance} up",
                                 emit=None, instance_id=self.instance, on_error=lambda exc: _died(self, exc))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = spawn(_awaited(coro), name=f"a connection through the {self.purpose} tunnel",
                                         emit=None, instance_id=self.instance)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _set_state(self, state: TunnelState) -> None:
        if state is not self.state:
            self.since = datetime.now(UTC)
            self.state = state
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()  # (wakes `wait_state` / `wait_change`)
        if self._on_change is not None:
            self._on_change(self.info)


async def _verified(
    verify: Verify, conn: asyncssh.SSHClientConnection, remote_port: int, close_connection: bool
) -> int | None:
    """Where the service answers now (see `Tunnel.verify`); `conn` is closed when not kept (if the tunnel owns it)."""
    try:
        port = await verify(conn, remote_port)
    except BaseException:
        if close_connection:
            conn.close()
        raise
    if port is None and close_connection:
        conn.close()
    return port


async def _awaited(aw: Awaitable[None]) -> None:
    await aw


async def _until(tunnel: Tunnel, done: Callable[[], bool], timeout: float | None) -> bool:
    """Wake at each state change until `done()` (or `timeout` seconds passed); whether it is done."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while not done():
                await tunnel._changed.wait()
    return done()


def _died(tunnel: Tunnel, exc: BaseException) -> None:
    """The supervisor died of an error: the tunnel says so (DOWN with the reason, a TunnelChanged the user sees)."""
    tunnel.error = f"the tunnel stopped reconnecting: {exc or type(exc).__name__}"
    tunnel._set_state(TunnelState.DOWN)
