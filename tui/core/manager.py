"""One async object for everything remote — setup, Jupyter, tunnels, live logs, load, idle checks — per instance.

The app and the headless CLI drive the same `RemoteManager`. It reports through one callback, `emit`, with
small frozen events from `tui.core.events` (the app turns them into Textual messages, the CLI prints them); methods
return their results and raise only `ManagerError`, whose text is meant for the user. Instances are independent:
each has its own lock, SSH connection, server handle, log follower and tunnels, keyed by (instance, purpose).

Host keys: an unknown key (nothing pinned from the console log, nothing in known_hosts) is put to the user as a
`HostKeyQuestion`; the operation waits until `accept()` or `refuse()` is called. A changed key is refused.

Secrets: Jupyter's token lives only in memory (`token_url`); state records, events (`public_url`), log lines
and the command log never carry it.

`RemoteManager` is a facade over its parts: the logins (`tui.core.remote.pool`), the Jupyter servers and their
lifecycle (`tui.core.jupyter.servers`, `tui.core.jupyter.lifecycle`), the live log (`tui.core.jupyter.logfollow`),
idle checks (`tui.core.jupyter.idlecheck`, whose `IdleReport` is importable from here too) and the tunnels'
bookkeeping (`tui.core.tunnels`). Load and memory (`read_metrics`, `parse_metrics`) are read here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime

import asyncssh

from tui.core.config import Settings
from tui.core.errors import ManagerError
from tui.core.events import Emit, JupyterState, Metrics, SetupProgress, StopOutcome
from tui.core.guide import PipelineFinished, SetupRunner, SSHExecutor
from tui.core.guide.steps import ApproveFormat
from tui.core.jupyter.idlecheck import IdleCheck, IdleReport
from tui.core.jupyter.lifecycle import JupyterLifecycle
from tui.core.jupyter.logfollow import LogFollower
from tui.core.jupyter.server import JupyterSpec, ServerHandle
from tui.core.jupyter.servers import FAILURES, JupyterServers
from tui.core.models import KernelInfo, TunnelInfo
from tui.core.options import ManagerOptions
from tui.core.remote.pool import InstanceConnections
from tui.core.services import RemoteContext, Services
from tui.core.state import JUPYTER, AppState
from tui.core.tunnels import Tunnels

# -- the manager --------------------------------------------------------------------------------------------


class RemoteManager:
    """The facade the engine (`tui.core.engine.CoreEngine`) calls; the work is done by its parts —
    `connections` (logins, locks, command logs), `jupyter` (the server's lifecycle over `servers`), `logs` (live
    log followers), `idle` (idle checks) — and the tunnels' bookkeeping (`tui.core.tunnels`). A method that only
    hands over to a part has no docstring: the part's says what it does."""

    def __init__(
        self,
        settings: Settings,
        services: Services,
        state: AppState,
        emit: Emit,
        options: ManagerOptions | None = None,
    ) -> None:
        self.services = services
        self.state = state
        self.emit = emit
        self._options = options = options or ManagerOptions()
        self.connections = InstanceConnections(services, emit)
        self.pool = self.connections.pool
        self._tunnels = Tunnels(settings, state, self.pool, emit)  # by (instance id, purpose)
        self.servers = JupyterServers(settings, state, emit, self.connections, self._tunnels, options)
        self.logs = LogFollower(self.connections, state, emit, options)
        self.jupyter = JupyterLifecycle(settings, state, emit, self.connections, self._tunnels, self.servers,
                                        self.logs, options)
        self.idle = IdleCheck(settings, state, emit, self.connections, self.servers)

    @property
    def options(self) -> ManagerOptions:
        return self._options

    @options.setter
    def options(self, options: ManagerOptions) -> None:
        """New options reach every part at once (e.g. other setup steps, a shorter ready timeout)."""
        self._options = self.servers.options = self.logs.options = self.jupyter.options = options

    # -- what is known ---------------------------------------------------------------------------------

    def jupyter_spec(self) -> JupyterSpec:
        return self.servers.jupyter_spec()

    def token_url(self, instance_id: str) -> str | None:
        return self.servers.token_url(instance_id)

    def tunnel_info(self, instance_id: str, purpose: str = JUPYTER) -> TunnelInfo | None:
        return self._tunnels.info(instance_id, purpose)

    def tunnels(self) -> list[TunnelInfo]:
        return self._tunnels.all()

    def server(self, instance_id: str) -> ServerHandle | None:
        return self.servers.get(instance_id)

    # -- setup (issue 4) -------------------------------------------------------------------------------

    async def connect(self, ctx: RemoteContext) -> None:
        """Log in once: settles the host key (pinned, or the user's answer to HostKeyQuestion) before anything
        else uses it — e.g. before handing over to OpenSSH for an interactive shell. Raises ManagerError."""
        await self.connections.conn(ctx)

    async def connection(self, ctx: RemoteContext) -> asyncssh.SSHClientConnection:
        """The instance's pooled connection (for work the manager does not do itself, e.g. a Dask cluster): host
        key settled as in `connect`. The caller never closes it. Raises ManagerError."""
        return await self.connections.conn(ctx)

    async def run_setup(self, ctx: RemoteContext, approve_format: ApproveFormat | None = None) -> PipelineFinished:
        """The guide's setup pipeline; its events arrive as `SetupProgress`. The result says ok or not."""
        iid = ctx.instance.id
        async with self.connections.lock(iid):
            with contextlib.suppress(ManagerError):  # settles the host key first; a booting VM is waited for
                await self.connections.conn(ctx)
            settings = self.services.setup_spec(ctx, env=self.options.remote_env)
            executor = SSHExecutor(self.pool, iid, ctx.target, self.connections.command_log(ctx), settings.env)
            runner = SetupRunner(settings, executor, lambda e: self.emit(SetupProgress(iid, e)),
                                 steps=self.options.setup_steps, approve_format=approve_format)
            return await runner.run()

    # -- Jupyter ---------------------------------------------------------------------------------------

    async def start_jupyter(self, ctx: RemoteContext, local_port: int | None = None) -> JupyterState:
        return await self.jupyter.start(ctx, local_port)

    async def stop_jupyter(self, ctx: RemoteContext, force: bool = False) -> StopOutcome:
        return await self.jupyter.stop(ctx, force)

    async def find_jupyter(self, ctx: RemoteContext) -> ServerHandle | None:
        return await self.servers.find(ctx)

    async def kernels(self, ctx: RemoteContext) -> list[KernelInfo]:
        return await self.servers.kernels(ctx)

    # -- tunnels ---------------------------------------------------------------------------------------

    async def open_tunnel(
        self, ctx: RemoteContext, local_port: int | None = None, strict: bool = False
    ) -> JupyterState:
        return await self.jupyter.open_tunnel(ctx, local_port, strict)

    async def close_tunnel(self, instance_id: str, purpose: str = JUPYTER) -> None:
        """Close the instance's tunnel for `purpose` (what it reaches keeps running); not re-opened on the next
        start."""
        async with self.connections.lock(instance_id):
            await self._tunnels.close(instance_id, purpose, forget=True)

    async def open_forward(self, ctx: RemoteContext, purpose: str, remote_port: int, *,
                           remote_host: str = "127.0.0.1", local_port: int | None = None,
                           strict: bool = False) -> TunnelInfo:
        """A self-healing tunnel 127.0.0.1:local → remote_host:remote_port on the instance, kept under
        (instance, purpose) and re-opened on the next start (e.g. `dask-dashboard`). An open one is reused."""
        async with self.connections.lock(ctx.instance.id):
            return await self._tunnels.forward(ctx, purpose, remote_port, remote_host=remote_host,
                                               local_port=local_port, strict=strict)

    # -- per-instance signals, refreshed after each poll ----------------------------------------------------

    async def refresh(self, ctx: RemoteContext) -> None:
        """Read every per-instance signal (each emits its event): called after each poll for ACTIVE instances.
        Load and memory log in quietly when needed (host key pinned or known; nothing asked); the rest only use
        an open connection. A new signal's reader is listed here."""
        await self.read_metrics(ctx, connect=True)
        await self.follow_jupyter(ctx)

    async def read_metrics(self, ctx: RemoteContext, connect: bool = False) -> Metrics | None:
        """The VM's load (1-minute average per vCPU) and memory in use, from /proc over the pooled connection;
        emitted as `Metrics`. None (nothing emitted) when the instance has no connection — with `connect`, after
        a quiet login (`InstanceConnections.quiet`: only with a pinned or known host key, never a question)."""
        iid = ctx.instance.id
        if not self.pool.is_connected(iid) and not (connect and await self.connections.quiet(ctx)):
            return None
        try:
            conn = await self.pool.get(iid)
            result = await conn.run("cat /proc/loadavg /proc/meminfo", check=False, timeout=10)
        except FAILURES:
            return None
        metrics = parse_metrics(iid, str(result.stdout or ""), max(1, ctx.instance.vcpus))
        if metrics is not None:
            self.emit(metrics)
        return metrics

    async def follow_jupyter(self, ctx: RemoteContext) -> int | None:
        return await self.jupyter.follow(ctx)

    async def forget_instance(self, instance_id: str) -> None:
        """The instance is gone (deleted): its connection dropped and no new login made (none may race the
        deletion: the server's end would be reported as a lost connection), its tunnels and log follower closed,
        its state dropped."""
        await self.pool.forget(instance_id)
        await self._tunnels.close_instance(instance_id)
        await self.unfollow_log(instance_id)
        self.servers.drop(instance_id)
        self.state.forget_instance(instance_id)

    # -- live log --------------------------------------------------------------------------------------

    async def follow_log(self, ctx: RemoteContext) -> None:
        await self.logs.follow(ctx)

    async def unfollow_log(self, instance_id: str) -> None:
        await self.logs.unfollow(instance_id)

    async def read_log(self, ctx: RemoteContext, lines: int = 200) -> list[str]:
        return await self.servers.read_log(ctx, lines)

    # -- reattach and idle -----------------------------------------------------------------------------

    async def reattach_all(self, contexts: Iterable[RemoteContext]) -> list[str]:
        return await self.jupyter.reattach_all(contexts)

    async def check_idle(self, ctx: RemoteContext, now: datetime | None = None) -> IdleReport:
        return await self.idle.check(ctx, now)

    def snooze(self, instance_id: str, hours: float = 24.0, now: datetime | None = None) -> datetime:
        return self.idle.snooze(instance_id, hours, now)

    # -- shutdown --------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close log followers, tunnels and connections. Jupyter keeps running on the VMs, and the state
        keeps the tunnels' ports so the next start re-opens them."""
        self.connections.cancel_questions()
        await self.logs.aclose()
        await self._tunnels.aclose()
        await self.pool.close_all()


def parse_metrics(instance_id: str, text: str, vcpus: int) -> Metrics | None:
    """`/proc/loadavg` followed by `/proc/meminfo` → Metrics (None when either is missing)."""
    lines = text.splitlines()
    try:
        load1 = float(lines[0].split()[0])
        mem = {k.strip(): int(v.split()[0]) for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
        total, available = mem["MemTotal"], mem["MemAvailable"]
    except (IndexError, ValueError, KeyError):
        return None
    used = 100.0 * (total - available) / total if total else 0.0
    return Metrics(instance_id, round(load1 / vcpus, 2), round(used, 1))
