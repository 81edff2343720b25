"""The Jupyter server's lifecycle on an instance: started (or adopted), reached through its tunnel, followed, stopped.

`JupyterLifecycle` starts Jupyter in a detached screen/tmux session while the tunnel to it is opened ahead, verifies
the server through the tunnel before reporting it running, keeps the tunnel pointed at the server when it moves or
comes back (a `JupyterFollower` with every tunnel it opens — the app's and the CLI's alike —, after each reconnect,
and after each poll), stops it (refusing while kernels are busy unless forced), and on app start
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

from tui.core.config import Settings
from tui.core.errors import ManagerError
from tui.core.events import Emit, JupyterState, StopOutcome
from tui.core.hints import command
from tui.core.jupyter import http
from tui.core.jupyter.follow import HELD, JupyterFollower
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
        `force`: stop nothing and return them (`StopOutcome(stopped=False, busy=...)`); when the kernels cannot be
        listed, stop nothing either and say why (`StopOutcome(stopped=False, unknown=...)`)."""
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
                    try:
                        busy = tuple(k for k in await control.kernels(handle) if k.busy)
                    except FAILURES as exc:  # unknown is not "none busy": nothing is stopped, the caller asks
                        reason = redact(str(exc)) or type(exc).__name__
                        log.warning("listing the kernels on %s before stopping Jupyter: %s", ctx.instance.name, reason)
                        return StopOutcome(stopped=False, unknown=reason)
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
        """A tunnel 127.0.0.1:local → the server's actual port, verified by a request through it.

        `local_port` None: the profile's port when free, else any free one. `strict`: exactly `local_port`
        (ManagerError naming the process that holds it)."""
        iid = ctx.instance.id
        async with self.connections.lock(iid):
            handle = await self.servers.find(ctx)
            if handle is None:
                raise ManagerError(f"no Jupyter server is running on {ctx.instance.name}: start it first "
                                   f"(j, or `{command('jupyter', 'start', ctx.instance.name)}`)")
            return await self._open_tunnel(ctx, handle, local_port, strict)

    async def follow(self, ctx: RemoteContext, hold: bool = False) -> int | None:
        """Keep the Jupyter tunnel pointed at the server (tui.core.jupyter.follow): when it no longer answers where
        the tunnel forwards to (restarted, moved to another port), the tunnel follows it, or turns DOWN ("Jupyter
        moved/stopped") when none runs. Over the pooled connection only (never logs in). The port the tunnel
        forwards to, or None. `hold`: the server's process ended —
        nothing is forwarded until the server is found (the instance's lock waited for, a failing look retried);
        else the check is skipped while the instance is busy or not connected."""
        iid = ctx.instance.id
        tunnel = self.tunnels.get(iid, JUPYTER)
        if tunnel is None or tunnel.state is not TunnelState.UP:
            return None
        if not hold and (not self.connections.pool.is_connected(iid) or self.connections.lock(iid).locked()):
            return None
        if hold:
            tunnel.hold(HELD)
        try:
            async with self.connections.lock(iid):
                port = await self._where(ctx, tunnel, hold)
                if port is None or self.tunnels.get(iid, JUPYTER) is not tunnel or _down(tunnel):
                    return None  # (replaced meanwhile: j, t)
                if port < 0:  # none runs: forward nothing, keep the local port (the follower looks on)
                    await tunnel.park(GONE)
                    return None
                tunnel.retarget(port)
                self.tunnels.remember(tunnel)
                return port
        finally:
            tunnel.release()

    async def _where(self, ctx: RemoteContext, tunnel: Tunnel, retry: bool) -> int | None:
        """Where the server answers now (`JupyterServers.where`); -1 when none runs; None when it cannot be told
        (after `retry`ing while the tunnel is still the one in use)."""
        iid = ctx.instance.id
        while self.tunnels.get(iid, JUPYTER) is tunnel and not _down(tunnel):
            try:
                conn = await self.connections.pool.get(iid, ctx.target)
                port = await self.servers.where(ctx, conn, tunnel.remote_port)
            except FAILURES as exc:
                log.info("following Jupyter on %s: %s", ctx.instance.name, redact(str(exc)))
                if not retry:
                    return None
                await asyncio.sleep(1.0)
                continue
            return -1 if port is None else port
        return None

    async def reopen(self, ctx: RemoteContext, tunnel: Tunnel) -> bool:
        """The Jupyter tunnel `tunnel` (DOWN) forwarding again, on its local port, once a server of this instance
        answers — found by its session, runtime file and token, then verified through the tunnel. False while none
        runs; True when done (or when the tunnel was replaced meanwhile). Raises FAILURES while the VM cannot be
        reached, ManagerError when the tunnel cannot be opened."""
        iid = ctx.instance.id
        async with self.connections.lock(iid):
            if self.tunnels.get(iid, JUPYTER) is not tunnel or not _down(tunnel):
                return True
            conn = await self.connections.pool.get(iid, ctx.target)
            control = await self.servers.control(conn, iid)
            handle = await control.find()
            if handle is None:
                return False
            self.servers.adopt(ctx, handle, control.settings)
            if not tunnel.parked:  # closed (not kept by a follower): a new one on its local port
                await self._open_tunnel(ctx, handle, tunnel.local_port or None, tunnel.strict)
                return True
            await tunnel.resume(handle.port)
            if not await self._answers_through(tunnel, handle):
                await tunnel.park(GONE)
                return False
            self._running(ctx, tunnel, handle)
            return True

    async def reattach_all(self, contexts: Iterable[RemoteContext]) -> list[str]:
        """On app start: find the servers recorded in the state on these instances (tokens re-read from the VMs),
        report them, and re-open the tunnels that were open when `settings.jupyter.auto_reopen_tunnels`. The ids
        of instances with a running server; failures are reported as events."""
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
        return self._running(ctx, tunnel, handle)

    def _running(self, ctx: RemoteContext, tunnel: Tunnel, handle: ServerHandle) -> JupyterState:
        """The tunnel to `handle` answers: verified after each reconnect, followed, recorded, reported."""
        iid = ctx.instance.id
        tunnel.verify = lambda conn, port: self.servers.where(ctx, conn, port)  # checked after each reconnect
        self.tunnels.remember(tunnel)
        self.tunnels.follow(iid, JUPYTER, JupyterFollower(self, ctx).run)  # kept on the server from now on
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


def _down(tunnel: Tunnel) -> bool:
    """(A function: the state changes while awaiting, which a type checker cannot see.)"""
    return tunnel.state is TunnelState.DOWN
