"""The instances' tunnels, kept by (instance, purpose): opened, reused, closed, and remembered in the saved state.

`Tunnels` owns every `tui.core.remote.tunnel.Tunnel` of a `RemoteManager` — `jupyter` (its own rules live in
`tui.core.jupyter.lifecycle`: verified through the tunnel, following the server when it moves), `dask-dashboard`
or any other purpose opened with `forward`. A tunnel that was open is recorded (`TunnelRecord`) so that the next
start re-opens it on the same local port when that is free; the last local port of each (instance, purpose) is
preferred over the profile's.
Callers hold the instance's lock; failures are raised as `ManagerError`, whose text is meant for the user.

A tunnel may have a follower (`follow`): a task that keeps it pointed at what it reaches (Jupyter's, see
`tui.core.jupyter.follow`), ended when the tunnel is closed. While tunnels are open, a meter reads their byte counts
about once a second and reports those that moved as `TunnelTraffic` (nothing while idle), also into this process's
traffic file for `status` (`tui.core.traffic`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import asyncssh

from tui.core.config import Settings
from tui.core.errors import ManagerError
from tui.core.events import Emit, TunnelChanged, TunnelClosed, TunnelTraffic
from tui.core.models import TunnelInfo, TunnelState
from tui.core.remote.connection import ConnectionPool, RemoteError, connect
from tui.core.remote.openssh_forward import openssh_usable
from tui.core.remote.tunnel import LOOPBACK, PortBusyError, Tunnel, Verify
from tui.core.services import RemoteContext
from tui.core.state import JUPYTER, AppState, TunnelRecord
from tui.core.tasks import spawn
from tui.core.traffic import TrafficFile

METER_S = 1.0  # how often the byte counts are read (and reported when they moved)
RECONNECT_MAX_S = 4.0  # the longest wait between reconnects: back within seconds of the VM (and Jupyter)


class Tunnels:
    def __init__(self, settings: Settings, state: AppState, pool: ConnectionPool, emit: Emit) -> None:
        self.settings = settings
        self.state = state
        self.pool = pool
        self.emit = emit
        self._open: dict[tuple[str, str], Tunnel] = {}  # (instance id, purpose)
        self._followers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._meter: asyncio.Task[None] | None = None
        self.traffic = TrafficFile(state.path.parent)

    # -- what is open ------------------------------------------------------------------------------------------

    def get(self, instance_id: str, purpose: str = JUPYTER) -> Tunnel | None:
        return self._open.get((instance_id, purpose))

    def info(self, instance_id: str, purpose: str = JUPYTER) -> TunnelInfo | None:
        tunnel = self.get(instance_id, purpose)
        return tunnel.info if tunnel is not None else None

    def all(self) -> list[TunnelInfo]:
        return [t.info for t in self._open.values()]

    def purposes(self, instance_id: str) -> list[str]:
        return [purpose for iid, purpose in self._open if iid == instance_id]

    def __iter__(self) -> Iterator[Tunnel]:
        return iter(list(self._open.values()))

    def wanted_port(self, instance_id: str, purpose: str, local_port: int | None, default: int = 0) -> int:
        """The local port to ask for: `local_port` when given, else the last one used for (instance, purpose),
        else `default` (0: any free port)."""
        if local_port is not None:
            return local_port
        last = self.state.last_port(instance_id, purpose)
        return last if last else default

    def remember(self, tunnel: Tunnel) -> None:
        """Record the open tunnel: re-opened on the next start, on its local port when free."""
        self.state.put_tunnel(TunnelRecord(tunnel.instance, tunnel.purpose, tunnel.local_port, tunnel.remote_host,
                                           tunnel.remote_port))

    # -- open and close ----------------------------------------------------------------------------------------

    async def open(self, ctx: RemoteContext, remote_port: int, wanted: int, *, strict: bool = False,
                   purpose: str = JUPYTER, remote_host: str = LOOPBACK, verify: Verify | None = None) -> Tunnel:
        """A new tunnel 127.0.0.1:`wanted` (any free port when 0 or busy, unless `strict`) → remote_host:remote_port
        on the instance, kept under (instance, purpose). The one it replaces must be closed first."""
        iid, target = ctx.instance.id, ctx.target
        via_openssh = openssh_usable(target)

        async def factory() -> asyncssh.SSHClientConnection:
            if via_openssh:  # only a verified host key is needed: the pooled connection's (the pool owns it)
                return await self.pool.get(iid, target)
            return await connect(target)  # the asyncssh path carries the bytes on a connection of its own

        tunnel = Tunnel(iid, factory, remote_port, local_port=wanted or None, strict=strict,
                        on_change=lambda info: self.emit(TunnelChanged(info)),
                        keepalive_interval=float(self.settings.ssh.keepalive_s), openssh=target,
                        close_connection=not via_openssh, purpose=purpose, remote_host=remote_host,
                        max_backoff=RECONNECT_MAX_S)
        tunnel.verify = verify
        try:
            await tunnel.open()
        except PortBusyError as exc:
            raise ManagerError(f"{exc}; pick another with --local-port, or omit it") from exc
        except (RemoteError, OSError, asyncssh.Error, TimeoutError) as exc:
            raise ManagerError(f"tunnel to {ctx.instance.name}: {exc}") from exc
        self._open[(iid, purpose)] = tunnel
        if self._meter is None or self._meter.done():
            self._meter = spawn(self._metering(), name="counting the bytes of the tunnels", emit=self.emit)
        return tunnel

    def follow(self, instance_id: str, purpose: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `run()` as the follower of the tunnel (instance, purpose), unless one runs already; it is cancelled
        when the tunnel is closed (not when it is parked: the follower brings a parked tunnel back)."""
        key = (instance_id, purpose)
        task = self._followers.get(key)
        if task is None or task.done():
            self._followers[key] = spawn(run(), name=f"keeping the {purpose} tunnel on its server", emit=self.emit,
                                         instance_id=instance_id)

    async def _unfollow(self, key: tuple[str, str]) -> None:
        task = self._followers.get(key)
        if task is None or task is asyncio.current_task():  # a follower replacing its own tunnel goes on
            return
        del self._followers[key]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _metering(self) -> None:
        """Report the byte counts that moved, about once a second, while tunnels are open."""
        shown: dict[tuple[str, str], tuple[int, int]] = {}
        written: object = None
        try:
            while self._open:
                await asyncio.sleep(METER_S)
                infos = [t.info for t in list(self._open.values())]
                for info in infos:
                    counts = (info.bytes_in, info.bytes_out)
                    if shown.get(info.key, (0, 0)) != counts:
                        shown[info.key] = counts
                        self.emit(TunnelTraffic(info.instance, info.purpose, *counts))
                now = sorted((t.key, t.local_port, t.bytes_in, t.bytes_out) for t in infos)
                if now != written:
                    written = now
                    self.traffic.write(infos)
        finally:
            self.traffic.remove()

    async def forward(self, ctx: RemoteContext, purpose: str, remote_port: int, *, remote_host: str = LOOPBACK,
                      local_port: int | None = None, strict: bool = False) -> TunnelInfo:
        """The tunnel for (instance, purpose) to remote_host:remote_port: the open one when it goes there, else a
        new one on `local_port`, the last local port used for it, or any free one. Recorded."""
        iid = ctx.instance.id
        tunnel = self.get(iid, purpose)
        if (tunnel is None or tunnel.state is TunnelState.DOWN or tunnel.remote_port != remote_port
                or tunnel.remote_host != remote_host):
            await self.close(iid, purpose, forget=False)
            wanted = self.wanted_port(iid, purpose, local_port)
            tunnel = await self.open(ctx, remote_port, wanted, strict=strict, purpose=purpose,
                                     remote_host=remote_host)
        self.remember(tunnel)
        return tunnel.info

    async def stop(self, instance_id: str, purpose: str, reason: str) -> None:
        """Stop forwarding but keep the tunnel listed (DOWN, `reason` its error) and its record: the next open
        for it comes back on the same local port."""
        tunnel = self.get(instance_id, purpose)
        if tunnel is not None and tunnel.state is not TunnelState.DOWN:
            await tunnel.close(reason)

    async def close(self, instance_id: str, purpose: str = JUPYTER, *, forget: bool = True) -> None:
        """Close and drop the tunnel (reported as `TunnelClosed`); `forget`: its record too (not re-opened on the
        next start — its local port is still preferred next time)."""
        await self._unfollow((instance_id, purpose))
        tunnel = self._open.pop((instance_id, purpose), None)
        if tunnel is not None:
            await tunnel.close()
            self.emit(TunnelClosed(instance_id, purpose))
        if forget:
            self.state.drop_tunnel(instance_id, purpose)

    async def close_instance(self, instance_id: str) -> None:
        for purpose in self.purposes(instance_id):
            await self.close(instance_id, purpose)

    async def aclose(self) -> None:
        """Close every tunnel; the records stay, so the next start re-opens them."""
        for key in list(self._followers):
            await self._unfollow(key)
        tunnels, self._open = list(self._open.values()), {}
        for tunnel in tunnels:
            await tunnel.close()
        meter, self._meter = self._meter, None
        if meter is not None:
            meter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await meter
