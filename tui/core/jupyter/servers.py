"""The Jupyter servers the remote manager knows, one per instance: how each is found, recognised and reached.

`JupyterServers` keeps the handle (with its token, in memory only) of each server found or started in this session.
A server is found from what was known in this session, else from the saved state (reattach, token re-read from the
VM), else by its screen/tmux session; a found server is adopted (recorded without its token, the token added to the
command log's secrets). Failures are reported as `JupyterState("error")` and raised as `ManagerError` with any token
redacted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncssh

from tui.core.config import Settings
from tui.core.errors import ManagerError
from tui.core.events import Emit, JupyterState
from tui.core.jupyter.logparse import redact
from tui.core.jupyter.reattach import control_for, reattach, record_for
from tui.core.jupyter.server import JupyterControl, JupyterError, JupyterSpec, ServerHandle, answers
from tui.core.models import KernelInfo, TunnelState
from tui.core.remote.connection import RemoteError
from tui.core.remote.pool import InstanceConnections
from tui.core.remote.session import SessionError
from tui.core.services import RemoteContext
from tui.core.state import JUPYTER, AppState
from tui.core.tunnels import Tunnels

if TYPE_CHECKING:
    from tui.core.options import ManagerOptions

# what remote work on an instance may raise, turned into ManagerError (or ignored) by its caller
FAILURES = (JupyterError, SessionError, RemoteError, asyncssh.Error, OSError, TimeoutError)


class JupyterServers:
    def __init__(self, settings: Settings, state: AppState, emit: Emit, connections: InstanceConnections,
                 tunnels: Tunnels, options: ManagerOptions) -> None:
        self.settings = settings
        self.state = state
        self.emit = emit
        self.connections = connections
        self.tunnels = tunnels
        self.options = options  # replaced with the manager's
        self._servers: dict[str, ServerHandle] = {}

    def jupyter_spec(self) -> JupyterSpec:
        o = self.options
        return JupyterSpec.from_settings(self.settings, command=o.jupyter_command, logfile=o.jupyter_logfile,
                                             port_retries=o.port_retries, start_timeout=o.start_timeout)

    def get(self, instance_id: str) -> ServerHandle | None:
        """The running server found or started in this session (None when unknown or stopped)."""
        return self._servers.get(instance_id)

    def drop(self, instance_id: str) -> None:
        """Forget the instance's server in this session (the saved state is the caller's)."""
        self._servers.pop(instance_id, None)

    def token_url(self, instance_id: str) -> str | None:
        """The tokenized URL through the open tunnel (memory only: show it, never store or log it)."""
        handle, tunnel = self._servers.get(instance_id), self.tunnels.get(instance_id, JUPYTER)
        if handle is None or tunnel is None or tunnel.state is TunnelState.DOWN or not tunnel.local_port:
            return None
        return handle.url(tunnel.local_port)

    async def control(self, conn: asyncssh.SSHClientConnection, instance_id: str) -> JupyterControl:
        """Jupyter on the instance: the recorded session (name, log, multiplexer) if any, else the profile's."""
        record = self.state.servers.get(instance_id)
        if record is not None:
            return control_for(conn, record, self.jupyter_spec())
        return await JupyterControl.create(conn, self.jupyter_spec())

    async def find(self, ctx: RemoteContext) -> ServerHandle | None:
        """The running server: known in this session, else recorded (reattach), else found by its session."""
        iid = ctx.instance.id
        if iid in self._servers:
            return self._servers[iid]
        try:
            conn = await self.connections.conn(ctx)
            if iid in self.state.servers:
                handle = await reattach(self.state, iid, conn, self.jupyter_spec())
            else:
                control = await self.control(conn, iid)
                handle = await control.find()
                if handle is not None:
                    self.adopt(ctx, handle, control.settings)
        except ManagerError as exc:
            self.emit(JupyterState(iid, "error", error=str(exc)))
            raise
        except FAILURES as exc:
            raise self.failed(iid, f"looking for Jupyter on {ctx.instance.name}: {exc}") from exc
        if handle is not None:
            self._servers[iid] = handle
            self.connections.command_log(ctx).add_secret(handle.token)
        return handle

    def adopt(self, ctx: RemoteContext, handle: ServerHandle, settings: JupyterSpec) -> None:
        iid = ctx.instance.id
        self._servers[iid] = handle
        self.connections.command_log(ctx).add_secret(handle.token)
        self.state.put(record_for(iid, handle, settings, auto_reopen=self.settings.jupyter.auto_reopen_tunnels))

    def failed(self, instance_id: str, message: str) -> ManagerError:
        """Report a failure as `JupyterState("error")` (tokens redacted) and return it as ManagerError."""
        message = redact(message)
        self.emit(JupyterState(instance_id, "error", error=message))
        return ManagerError(message)

    async def where(self, ctx: RemoteContext, conn: asyncssh.SSHClientConnection, port: int) -> int | None:
        """Where the instance's Jupyter answers now: `port` (the known server, recognised by its runtime file before
        any token is sent), the port it moved to (the server found again by its session, adopted with its new
        token and reported running), or None when none runs (reported stopped; the tunnel's record is kept)."""
        iid = ctx.instance.id
        control = await self.control(conn, iid)
        handle = self._servers.get(iid)
        if handle is not None and handle.port == port:
            ours = any(i.get("port") == port and i.get("token") == handle.token for i in await control.runtime_files())
            if ours and await answers(control.opener(port), handle.token):
                return port
        found = await control.find()
        if found is None:
            self._servers.pop(iid, None)
            self.state.forget(iid)
            self.emit(JupyterState(iid, "stopped"))
            return None
        self.adopt(ctx, found, control.settings)
        tunnel = self.tunnels.get(iid, JUPYTER)
        local = tunnel.local_port if tunnel is not None else 0
        moved = f"Jupyter on {ctx.instance.name} was restarted on port {found.port} of the VM: the tunnel follows it"
        self.emit(JupyterState(iid, "running", found.public_url(local or None), local, found.port, error=moved))
        return found.port

    async def kernels(self, ctx: RemoteContext) -> list[KernelInfo]:
        """The server's kernels (busy or idle); [] when no server runs."""
        iid = ctx.instance.id
        try:
            handle = await self.find(ctx)
            if handle is None:
                return []
            return await (await self.control(await self.connections.conn(ctx), iid)).kernels(handle)
        except FAILURES as exc:
            raise ManagerError(f"listing kernels on {ctx.instance.name}: {exc}") from exc

    async def read_log(self, ctx: RemoteContext, lines: int = 200) -> list[str]:
        """The last `lines` lines of the server log (cleaned, tokens redacted)."""
        iid = ctx.instance.id
        try:
            control = await self.control(await self.connections.conn(ctx), iid)
            return [redact(x) for x in await control.read_log()][-lines:]
        except FAILURES as exc:
            raise ManagerError(f"reading the Jupyter log on {ctx.instance.name}: {exc}") from exc
