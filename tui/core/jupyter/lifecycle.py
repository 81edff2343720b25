"""The Jupyter server's lifecycle on an instance: started (or adopted), reached through its tunnel, followed, stopped.

`JupyterLifecycle` starts Jupyter in a detached screen/tmux session while the tunnel to it is opened ahead, verifies
the server through the tunnel before reporting it running, keeps the tunnel pointed at the server when it moves
(after each reconnect and each poll), stops it (refusing while kernels are busy unless forced), and on app start
reattaches the servers recorded in the state. Each operation holds the instance's lock; the servers themselves are
kept by `JupyterServers`, the tunnels by `Tunnels`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tui.core.api import ManagerError
from tui.core.config import Settings
from tui.core.events import Emit, JupyterState, StopOutcome
from tui.core.jupyter import http
from tui.core.jupyter.logfollow import LogFollower
from tui.core.jupyter.logparse import redact
from tui.core.jupyter.server import ServerHandle, answers
from tui.core.jupyter.servers import FAILURES, JupyterServers
from tui.core.models import TunnelState
from tui.core.remote.pool import InstanceConnections
from tui.core.remote.tunnel import GONE, Tunnel
from tui.core.services import RemoteContext
from tui.core.state import JUPYTER, AppState
from tui.core.tunnels import Tunnels

if TYPE_CHECKING:
    from tui.core.options import ManagerOptions

log = logging.getLogger("tui.core.manager")  # where these lines were always logged


class JupyterLifecycle:
    def __init__(self, settings: Settings, state: AppState, emit: Emit, connections: InstanceConnections,
                 tunnels: Tunnels, servers: JupyterServers, logs: LogFollower, options: ManagerOptions) -> None:
        self.settings = settings
        self.state = state
        self.emit = emit
        self.connections = connections
        self.tunnels = tunnels
        self.servers = servers
        self.logs = logs
        self.options = options  # replaced with the manager's

    async def start(self, ctx: RemoteContext, local_port: int | None = None) -> JupyterState:
        """Start Jupyter in a detached screen/tmux session (or adopt the one already running), open the
        tunnel, and return once the server answers through it."""
        iid = ctx.instance.id
        async with self.connections.lock(iid):
            self.emit(JupyterState(iid, "starting"))
            try:
                conn = await self.connections.conn(ctx)
                control = await self.servers.control(conn, iid)
                handle = await control.find()
                checked: list[Tunnel] = []  # the tunnel the start's readiness check went through, if any
                if handle is None:
                    s = control.settings
                    started, t0 = datetime.now(UTC), time.monotonic()
                    command = control.start_command()  # under the VM's start lock: one server of two starts
                    ahead = asyncio.create_task(self._tunnel_ahead(ctx, s.port, local_port))
                    try:
                        handle = await control.start(lambda port: self._through(ahead, port, checked))
                    finally:
                        self.connections.command_log(ctx).record(command, 0 if handle else 1, time.monotonic() - t0,
                                                                 started)
                        tunnel = await ahead
                        if tunnel is not None and handle is None:
                            await self.tunnels.close(iid, forget=False)
                    if tunnel is not None:
                        tunnel.retarget(handle.port)  # port retries may have moved Jupyter
            except ManagerError as exc:
                self.emit(JupyterState(iid, "error", error=str(exc)))
                raise
            except FAILURES as exc:
                raise self.servers.failed(iid, f"starting Jupyter on {ctx.instance.name}: {exc}") from exc
            self.servers.adopt(ctx, handle, control.settings)
            return await self._open_tunnel(ctx, handle, local_port, strict=False, answered=checked)

    async def stop(self, ctx: RemoteContext, force: bool = False) -> StopOutcome:
        """Stop the server and verify it is gone; close its tunnel and forget it. With busy kernels and not
        `force`: stop nothing and return them (`StopOutcome(stopped=False, busy=...)`)."""
        iid = ctx.instance.id
        async with self.connections.lock(iid):
            try:
                conn = await self.connections.conn(ctx)
                control = await self.servers.control(conn, iid)
                handle = self.servers.get(iid)
                if handle is None:
                    record = self.state.servers.get(iid)
                    handle = await control.find(port=record.remote_port if record else None)
                if handle is not None and not force:
                    busy = tuple(k for k in await control.kernels(handle) if k.busy)
                    if busy:
                        return StopOutcome(stopped=False, busy=busy)
                self.emit(JupyterState(iid, "stopping"))
                started = datetime.now(UTC)
                result = await control.stop(handle)
                self.connections.command_log(ctx).record(
                    f"# stop Jupyter session {control.settings.session}: {result.method}", 0, result.seconds, started)
            except ManagerError as exc:
                self.emit(JupyterState(iid, "error", error=str(exc)))
                raise
            except FAILURES as exc:
                raise self.servers.failed(iid, f"stopping Jupyter on {ctx.instance.name}: {exc}") from exc
            await self.tunnels.close(iid, JUPYTER, forget=True)
            await self.logs.unfollow(iid)
            self.servers.drop(iid)
            self.state.forget(iid)
            self.emit(JupyterState(iid, "stopped"))
            return StopOutcome(stopped=True)

    async def open_tunnel(self, ctx: RemoteContext, local_port: int | None = None,
                          strict: bool = False) -> JupyterState:
        """A tunnel 127.0.0.1:local → the server's actual port, verified by a request through it (see
        `RemoteManager.open_tunnel`)."""
        iid = ctx.instance.id
        async with self.connections.lock(iid):
            handle = await self.servers.find(ctx)
            if handle is None:
                raise ManagerError(f"no Jupyter server is running on {ctx.instance.name}: start it first "
                                   f"(j, or `cades-tui jupyter start {ctx.instance.name}`)")
            return await self._open_tunnel(ctx, handle, local_port, strict)

    async def follow(self, ctx: RemoteContext) -> int | None:
        """Keep the Jupyter tunnel pointed at the server (see `RemoteManager.follow_jupyter`): the port the tunnel
        forwards to, or None."""
        iid = ctx.instance.id
        tunnel = self.tunnels.get(iid, JUPYTER)
        if (tunnel is None or tunnel.state is not TunnelState.UP or not self.connections.pool.is_connected(iid)
                or self.connections.lock(iid).locked()):
            return None
        try:
            port = await self.servers.where(ctx, await self.connections.pool.get(iid), tunnel.remote_port)
        except FAILURES as exc:
            log.info("following Jupyter on %s: %s", ctx.instance.name, redact(str(exc)))
            return None
        if self.tunnels.get(iid, JUPYTER) is not tunnel:  # replaced meanwhile (j, t)
            return None
        if port is None:
            await self.tunnels.stop(iid, JUPYTER, GONE)
            return None
        tunnel.retarget(port)
        self.tunnels.remember(tunnel)
        return port

    async def reattach_all(self, contexts: Iterable[RemoteContext]) -> list[str]:
        """On app start: the servers recorded in the state found again, reported, their tunnels re-opened (see
        `RemoteManager.reattach_all`). The ids of instances with a running server."""
        known = [c for c in contexts if c.instance.id in self.state.servers]
        found = await asyncio.gather(*(self._reattach(c) for c in known))
        return [c.instance.id for c, ok in zip(known, found, strict=True) if ok]

    async def _reattach(self, ctx: RemoteContext) -> bool:
        iid = ctx.instance.id
        async with self.connections.lock(iid):
            record = self.state.servers.get(iid)
            try:
                handle = await self.servers.find(ctx)
            except ManagerError:
                return False
            if handle is None or record is None:
                self.emit(JupyterState(iid, "stopped"))
                return False
            tunnel = self.state.tunnel(iid, JUPYTER)
            if self.settings.jupyter.auto_reopen_tunnels and tunnel is not None:
                try:  # reported once, with its tunnel (or why there is none)
                    await self._open_tunnel(ctx, handle, tunnel.local_port, strict=False)
                except ManagerError as exc:
                    self.emit(JupyterState(iid, "running", handle.public_url(), 0, handle.port, error=str(exc)))
            else:
                self.emit(JupyterState(iid, "running", handle.public_url(), 0, handle.port))
            return True

    async def _tunnel_ahead(self, ctx: RemoteContext, port: int, local_port: int | None) -> Tunnel | None:
        """The tunnel to Jupyter's configured port, opened while Jupyter boots (its ssh handshake then costs no
        wait); None when that fails — the tunnel is then opened, and any error reported, after the start."""
        iid = ctx.instance.id
        tunnel = self.tunnels.get(iid, JUPYTER)
        if tunnel is not None and tunnel.state is not TunnelState.DOWN:
            return None
        await self.tunnels.close(iid, forget=False)  # one left down when Jupyter went away: same local port
        wanted = self.tunnels.wanted_port(iid, JUPYTER, local_port, self.settings.jupyter.local_port)
        try:
            return await self.tunnels.open(ctx, port, wanted)
        except ManagerError:
            return None

    @staticmethod
    def _through(ahead: asyncio.Task[Tunnel | None], port: int, checked: list[Tunnel]) -> http.Opener | None:
        """The tunnel opened ahead, as the way to ask a new server whether it is ready — when it is up and goes to
        the port the server announced (port retries may have moved it): one check then covers the server and
        the tunnel. Noted in `checked`."""
        checked.clear()
        tunnel = ahead.result() if ahead.done() and not ahead.cancelled() and not ahead.exception() else None
        if tunnel is None or tunnel.state is not TunnelState.UP or tunnel.remote_port != port:
            return None
        checked.append(tunnel)
        return http.tcp_opener("127.0.0.1", tunnel.local_port)

    async def _open_tunnel(
        self, ctx: RemoteContext, handle: ServerHandle, local_port: int | None, strict: bool,
        answered: Sequence[Tunnel] = (),
    ) -> JupyterState:
        """The tunnel to a running server (the one in use when it fits), once the server answers through it —
        already known when it is in `answered` (the start's readiness check went through it)."""
        iid = ctx.instance.id
        tunnel = self.tunnels.get(iid, JUPYTER)
        # the last port used for this instance, else the profile's
        wanted = self.tunnels.wanted_port(iid, JUPYTER, local_port, self.settings.jupyter.local_port)
        reusable = (tunnel is not None and tunnel.state is not TunnelState.DOWN and tunnel.remote_port == handle.port
                    and (not strict or tunnel.local_port == wanted))
        if not reusable:
            await self.tunnels.close(iid, forget=False)
            try:
                tunnel = await self.tunnels.open(ctx, handle.port, wanted, strict=strict)
            except ManagerError as exc:
                raise self.servers.failed(iid, str(exc)) from exc
        assert tunnel is not None
        if tunnel not in answered and not await self._answers_through(tunnel, handle):
            await self.tunnels.close(iid, forget=False)
            self.servers.drop(iid)
            raise self.servers.failed(iid, f"Jupyter on {ctx.instance.name} does not answer through the tunnel "
                                           f"within {self.options.ready_timeout:g} s")
        tunnel.verify = lambda conn, port: self.servers.where(ctx, conn, port)  # checked after each reconnect
        self.tunnels.remember(tunnel)
        state = JupyterState(iid, "running", handle.public_url(tunnel.local_port), tunnel.local_port, handle.port)
        self.emit(state)
        return state

    async def _answers_through(self, tunnel: Tunnel, handle: ServerHandle) -> bool:
        opener = http.tcp_opener("127.0.0.1", tunnel.local_port)
        deadline = time.monotonic() + self.options.ready_timeout
        while not await answers(opener, handle.token, timeout=min(5.0, self.options.ready_timeout)):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.1)
        return True
