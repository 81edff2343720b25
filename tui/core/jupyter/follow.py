"""The one logic that keeps a Jupyter tunnel on its server, whoever opened the tunnel (the app, or `cades-tui
tunnel|open` in the foreground): `JupyterLifecycle` starts a `JupyterFollower` with every Jupyter tunnel it opens, and
`Tunnels` ends it when the tunnel is closed.

While the tunnel is UP the follower watches the server's process on the VM (a shell loop over the pooled SSH
connection that ends the moment the process does; where the pid is unknown it checks every few seconds). When the
process ends, the tunnel is held at once — new connections wait, none is forwarded to the old port, whatever
program takes it — and the server is looked for (`JupyterServers.where`: recognised by its runtime file and token,
answering `GET /api` and an authenticated `GET /api/status` before any request is forwarded). Found on another port:
the tunnel forwards there (same local port). Gone: the tunnel turns DOWN ("Jupyter moved/stopped", its listener
closed) and the follower keeps looking, about every second or two, logging in again when the VM restarted; once a
server of this instance answers (verified the same way), the tunnel is opened again on its local port. The tunnel's
own reconnects (a lost SSH connection) verify the server the same way before it says UP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
from typing import TYPE_CHECKING, Protocol

import asyncssh

from tui.core.errors import ManagerError
from tui.core.jupyter.logparse import redact
from tui.core.jupyter.servers import FAILURES
from tui.core.models import TunnelState
from tui.core.remote.tunnel import GONE, Tunnel
from tui.core.services import RemoteContext
from tui.core.state import JUPYTER

if TYPE_CHECKING:
    from tui.core.jupyter.servers import JupyterServers
    from tui.core.remote.pool import InstanceConnections
    from tui.core.tunnels import Tunnels


class Lifecycle(Protocol):
    """What a follower uses of `tui.core.jupyter.lifecycle.JupyterLifecycle` (which starts followers: a protocol
    here keeps the two modules out of an import circle)."""

    connections: InstanceConnections
    tunnels: Tunnels
    servers: JupyterServers

    async def follow(self, ctx: RemoteContext, hold: bool = False) -> int | None: ...
    async def reopen(self, ctx: RemoteContext, tunnel: Tunnel) -> bool: ...

log = logging.getLogger("tui.core.manager")

CHECK_S = 3.0  # between checks of a server whose pid is unknown
SEARCH_S = (1.0, 2.0)  # between looks for a server while none answers: the first, and the most
REOPEN_FAILED_S = 10.0  # before trying again when the tunnel could not be opened again (said as a JupyterState)
HELD = "Jupyter's process ended: looking for the server"
# Ends the moment the process `$1` does (a pidfd where Python and Linux offer one, else a check every 50 ms), or when
# the SSH channel closes (stdin reaches its end): nothing is left behind on the VM. Without python3: bash, 4 checks/s.
_WATCH_PY = """
import os, select, sys, time
pid = int(sys.argv[1])
poll = select.poll()
poll.register(0, select.POLLIN)
try:
    poll.register(os.pidfd_open(pid), select.POLLIN)
    wait = None
except (AttributeError, OSError):
    wait = 50
while True:
    if any(fd == 0 for fd, _ in poll.poll(wait)) or wait is None:
        break
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break
    except OSError:
        pass
"""
_WATCH_SH = 'while kill -0 "$1" 2>/dev/null; do read -r -t 0.25 _; [ $? -gt 128 ] || exit 0; done'
_WATCH = ("if command -v python3 >/dev/null 2>&1; then exec python3 -c " + shlex.quote(_WATCH_PY) + " {pid}; "
          "else exec bash -c " + shlex.quote(_WATCH_SH) + " watch {pid}; fi")


class JupyterFollower:
    """Keeps the Jupyter tunnel of one instance on its server for as long as the tunnel is open."""

    def __init__(self, lifecycle: Lifecycle, ctx: RemoteContext) -> None:
        self.lifecycle = lifecycle
        self.ctx = ctx
        self.iid = ctx.instance.id

    async def run(self) -> None:
        """Until the tunnel is closed (this task is then cancelled; a tunnel replaced by `j` or `t` comes with a
        follower of its own)."""
        tunnels = self.lifecycle.tunnels
        while (tunnel := tunnels.get(self.iid, JUPYTER)) is not None:
            if tunnel.state is TunnelState.DOWN:
                await self._search(tunnel)
            elif tunnel.state is TunnelState.UP:
                ended = await self._watch(tunnel)
                if tunnel.state is TunnelState.UP:
                    await self.lifecycle.follow(self.ctx, hold=ended)
            else:  # starting, or reconnecting after a lost connection: the tunnel verifies the server itself
                await tunnel.wait_change(tunnel.state)

    async def _watch(self, tunnel: Tunnel) -> bool:
        """Until the server's process ends (True), or the tunnel is no longer UP or it is time to check (False)."""
        handle = self.lifecycle.servers.get(self.iid)
        pid = handle.pid if handle is not None and handle.port == tunnel.remote_port else None
        if pid is None:
            await tunnel.wait_change(TunnelState.UP, CHECK_S)
            return False
        try:
            conn = await self.lifecycle.connections.pool.get(self.iid, self.ctx.target)
            process = await conn.create_process(_WATCH.format(pid=int(pid)))
        except (*FAILURES, asyncssh.Error) as exc:
            log.info("watching Jupyter on %s: %s", self.ctx.instance.name, redact(str(exc)))
            await tunnel.wait_change(TunnelState.UP, CHECK_S)
            return False
        ended = asyncio.create_task(process.wait_closed())
        changed = asyncio.create_task(tunnel.wait_change(TunnelState.UP))
        try:
            await asyncio.wait({ended, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (ended, changed):
                task.cancel()
            process.close()
            with contextlib.suppress(asyncio.CancelledError, *FAILURES):
                await ended
        if ended.done() and not ended.cancelled():
            if process.exit_status == 0:
                return True
            await tunnel.wait_change(TunnelState.UP, CHECK_S)  # the watch cannot run there: check now and then
        return False

    async def _search(self, tunnel: Tunnel) -> None:
        """Look for the server every second or two while the tunnel is DOWN; have it forward again once one
        answers (verified)."""
        delay = SEARCH_S[0]
        while self.lifecycle.tunnels.get(self.iid, JUPYTER) is tunnel and tunnel.state is TunnelState.DOWN:
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, SEARCH_S[1])
            try:
                if await self.lifecycle.reopen(self.ctx, tunnel):
                    return
            except ManagerError as exc:  # e.g. its local port taken meanwhile: said (JupyterState), tried again
                log.info("reopening the Jupyter tunnel of %s: %s", self.ctx.instance.name, exc)
                await asyncio.sleep(REOPEN_FAILED_S)
                return
            except FAILURES as exc:  # the VM is not back yet
                log.debug("looking for Jupyter on %s: %s", self.ctx.instance.name, redact(str(exc)))


__all__ = ["GONE", "HELD", "JupyterFollower"]
