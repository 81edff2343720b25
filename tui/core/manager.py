"""One async object for everything remote — setup, Jupyter, tunnels, live logs, idle checks — per instance.

The app and the headless CLI drive the same `RemoteManager`. It reports through one callback, `emit`, with
small frozen events (the app turns them into Textual messages, the CLI prints them); methods raise only
`ManagerError`, whose text is meant for the user. Instances are independent: each has its own lock, SSH
connection, server handle, tunnel and log follower.

Host keys: an unknown key (nothing pinned from the console log, nothing in known_hosts) is put to the user as a
`HostKeyQuestion`; the operation waits until `accept()` or `refuse()` is called. A changed key is refused.

Secrets: Jupyter's token lives only in memory (`token_url`); state records, events (`public_url`), log lines
and the command log never carry it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, cast

import asyncssh

from tui.core.config import Settings
from tui.core.guide import PipelineFinished, SetupEvent, SetupRunner, SSHExecutor
from tui.core.guide.steps import ApproveFormat, Step
from tui.core.jupyter import http, idle
from tui.core.jupyter.logparse import redact
from tui.core.jupyter.logtail import LogTail
from tui.core.jupyter.reattach import control_for, reattach, record_for
from tui.core.jupyter.server import (
    JupyterControl,
    JupyterError,
    JupyterSettings,
    KernelInfo,
    Kind,
    ServerHandle,
    answers,
)
from tui.core.models import TunnelInfo, TunnelState
from tui.core.remote.commands import CommandLog
from tui.core.remote.connection import (
    ConnectionDropped,
    ConnectionPool,
    HostKeyUnknown,
    RemoteError,
    Unreachable,
    connect,
)
from tui.core.remote.openssh_forward import openssh_usable
from tui.core.remote.session import SessionError
from tui.core.remote.tunnel import PortBusyError, Tunnel
from tui.core.services import RemoteContext, Services
from tui.core.state import AppState

# -- events -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetupProgress:
    """A setup pipeline event (`tui.core.guide` StepStarted / OutputLines / ... / PipelineFinished)."""

    instance_id: str
    event: SetupEvent


@dataclass(frozen=True, slots=True)
class HostKeyQuestion:
    """Trust on first use: show the fingerprint, then call `accept()` or `refuse()` (exactly once)."""

    instance_id: str
    host: str
    port: int
    key_type: str
    fingerprint: str
    answer: Callable[[bool], None] = field(repr=False, compare=False)

    def accept(self) -> None:
        self.answer(True)

    def refuse(self) -> None:
        self.answer(False)


ConnPhase = Literal["connecting", "connected", "lost", "failed"]
JupyterPhase = Literal["starting", "running", "stopping", "stopped", "error"]


@dataclass(frozen=True, slots=True)
class ConnectionState:
    instance_id: str
    state: ConnPhase
    error: str = ""


@dataclass(frozen=True, slots=True)
class JupyterState:
    """`public_url` has no token: through the tunnel when `local_port`, else the VM-side URL."""

    instance_id: str
    state: JupyterPhase
    public_url: str = ""
    local_port: int = 0
    remote_port: int = 0
    error: str = ""


@dataclass(frozen=True, slots=True)
class LogLines:
    """New lines of the server log (cleaned, tokens redacted), batched."""

    instance_id: str
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TunnelChanged:
    """A tunnel's state or counters changed; `info.instance` is the instance id."""

    info: TunnelInfo


@dataclass(frozen=True, slots=True)
class IdleNudge:
    instance_id: str
    tier: idle.Tier
    key: str
    message: str


@dataclass(frozen=True, slots=True)
class BusyKernels:
    """Stopping was refused: these kernels are running code (pass force=True to stop anyway)."""

    instance_id: str
    kernels: tuple[KernelInfo, ...]


ManagerEvent = (
    SetupProgress | HostKeyQuestion | ConnectionState | JupyterState | LogLines | TunnelChanged | IdleNudge
    | BusyKernels
)
Emit = Callable[[ManagerEvent], None]


class ManagerError(Exception):
    """An operation failed; `str()` is a message for the user (already emitted as an event where one fits)."""


@dataclass(frozen=True, slots=True)
class IdleReport:
    """What `check_idle` found: VM uptime, Jupyter idle time (None: no server), kernels, and the nudge."""

    instance_id: str
    uptime_s: float | None
    jupyter_idle_s: float | None
    kernels: int
    busy_kernels: int
    nudge: idle.Nudge | None


@dataclass(frozen=True, slots=True)
class ManagerOptions:
    """Knobs beyond the profile. `remote_env` is exported in setup commands (e.g. UV_CACHE_DIR);
    `jupyter_command` replaces `<setup.env_path>/bin/jupyter`; `setup_steps` replaces the guide's steps."""

    remote_env: tuple[tuple[str, str], ...] = ()
    jupyter_command: str = ""
    jupyter_logfile: str = "~/.cades-tui/jupyter.log"
    port_retries: int = 50
    start_timeout: float = 90.0
    ready_timeout: float = 15.0  # the server answering through a new tunnel
    log_history: int = 200
    setup_steps: tuple[Step, ...] | None = None


# -- the manager --------------------------------------------------------------------------------------------

_FAILURES = (JupyterError, SessionError, RemoteError, asyncssh.Error, OSError, TimeoutError)


class RemoteManager:
    def __init__(
        self,
        settings: Settings,
        services: Services,
        state: AppState,
        emit: Emit,
        options: ManagerOptions | None = None,
    ) -> None:
        self.settings = settings
        self.services = services
        self.state = state
        self.emit = emit
        self.options = options or ManagerOptions()
        self.pool = ConnectionPool(on_lost=self._lost)
        self._locks: dict[str, asyncio.Lock] = {}
        self._conn_locks: dict[str, asyncio.Lock] = {}
        self._servers: dict[str, ServerHandle] = {}
        self._tunnels: dict[str, Tunnel] = {}
        self._follows: dict[str, asyncio.Task[None]] = {}
        self._logs: dict[str, CommandLog] = {}
        self._questions: set[asyncio.Future[bool]] = set()

    # -- what is known ---------------------------------------------------------------------------------

    def jupyter_settings(self) -> JupyterSettings:
        j, o = self.settings.jupyter, self.options
        command = o.jupyter_command or f"{self.services.setup_settings().prefix.rstrip('/')}/bin/jupyter"
        return JupyterSettings(kind=cast(Kind, j.app), command=command, workspace=j.workspace, port=j.port,
                               port_retries=o.port_retries, session=j.session_name, logfile=o.jupyter_logfile,
                               start_timeout=o.start_timeout)

    def token_url(self, instance_id: str) -> str | None:
        """The tokenized URL through the open tunnel (memory only: show it, never store or log it)."""
        handle, tunnel = self._servers.get(instance_id), self._tunnels.get(instance_id)
        if handle is None or tunnel is None or tunnel.state is TunnelState.DOWN or not tunnel.local_port:
            return None
        return handle.url(tunnel.local_port)

    def tunnel_info(self, instance_id: str) -> TunnelInfo | None:
        tunnel = self._tunnels.get(instance_id)
        return tunnel.info if tunnel is not None else None

    def tunnels(self) -> list[TunnelInfo]:
        return [t.info for t in self._tunnels.values()]

    def server(self, instance_id: str) -> ServerHandle | None:
        """The running server found or started in this session (None when unknown or stopped)."""
        return self._servers.get(instance_id)

    # -- setup (issue 4) -------------------------------------------------------------------------------

    async def connect(self, ctx: RemoteContext) -> None:
        """Log in once: settles the host key (pinned, or the user's answer to HostKeyQuestion) before anything
        else uses it — e.g. before handing over to OpenSSH for an interactive shell. Raises ManagerError."""
        await self._conn(ctx)

    async def run_setup(self, ctx: RemoteContext, approve_format: ApproveFormat | None = None) -> PipelineFinished:
        """The guide's setup pipeline; its events arrive as `SetupProgress`. The result says ok or not."""
        iid = ctx.instance.id
        async with self._lock(iid):
            with contextlib.suppress(ManagerError):  # settles the host key first; a booting VM is waited for
                await self._conn(ctx)
            settings = self.services.setup_settings(ctx, env=self.options.remote_env)
            executor = SSHExecutor(self.pool, iid, ctx.target, self._command_log(ctx), settings.env)
            runner = SetupRunner(settings, executor, lambda e: self.emit(SetupProgress(iid, e)),
                                 steps=self.options.setup_steps, approve_format=approve_format)
            return await runner.run()

    # -- Jupyter ---------------------------------------------------------------------------------------

    async def start_jupyter(self, ctx: RemoteContext, local_port: int | None = None) -> JupyterState:
        """Start Jupyter in a detached screen/tmux session (or adopt the one already running), open the
        tunnel, and return once the server answers through it."""
        iid = ctx.instance.id
        async with self._lock(iid):
            self.emit(JupyterState(iid, "starting"))
            try:
                conn = await self._conn(ctx)
                control = await self._control(conn, iid)
                handle = await control.find()
                if handle is None:
                    s = control.settings
                    started, t0 = datetime.now(UTC), time.monotonic()
                    command = control.session.start_command(s.session, s.command_line(), s.workspace, s.logfile)
                    ahead = asyncio.create_task(self._tunnel_ahead(ctx, s.port, local_port))
                    try:
                        handle = await control.start()
                    finally:
                        self._command_log(ctx).record(command, 0 if handle else 1, time.monotonic() - t0, started)
                        tunnel = await ahead
                        if tunnel is not None and handle is None:
                            await self._close_tunnel(iid, forget=False)
                    if tunnel is not None:
                        tunnel.retarget(handle.port)  # port retries may have moved Jupyter
            except ManagerError as exc:
                self.emit(JupyterState(iid, "error", error=str(exc)))
                raise
            except _FAILURES as exc:
                raise self._jupyter_failed(iid, f"starting Jupyter on {ctx.instance.name}: {exc}") from exc
            self._adopt(ctx, handle, control.settings)
            return await self._open_tunnel(ctx, handle, local_port, strict=False)

    async def stop_jupyter(self, ctx: RemoteContext, force: bool = False) -> bool:
        """Stop the server and verify it is gone; close its tunnel and forget it. With busy kernels and not
        `force`: emit `BusyKernels` and return False without stopping."""
        iid = ctx.instance.id
        async with self._lock(iid):
            try:
                conn = await self._conn(ctx)
                control = await self._control(conn, iid)
                handle = self._servers.get(iid)
                if handle is None:
                    record = self.state.servers.get(iid)
                    handle = await control.find(port=record.remote_port if record else None)
                if handle is not None and not force:
                    busy = tuple(k for k in await control.kernels(handle) if k.busy)
                    if busy:
                        self.emit(BusyKernels(iid, busy))
                        return False
                self.emit(JupyterState(iid, "stopping"))
                started = datetime.now(UTC)
                result = await control.stop(handle)
                self._command_log(ctx).record(f"# stop Jupyter session {control.settings.session}: {result.method}",
                                              0, result.seconds, started)
            except ManagerError as exc:
                self.emit(JupyterState(iid, "error", error=str(exc)))
                raise
            except _FAILURES as exc:
                raise self._jupyter_failed(iid, f"stopping Jupyter on {ctx.instance.name}: {exc}") from exc
            await self._close_tunnel(iid)
            await self.unfollow_log(iid)
            self._servers.pop(iid, None)
            self.state.forget(iid)
            self.emit(JupyterState(iid, "stopped"))
            return True

    async def find_jupyter(self, ctx: RemoteContext) -> ServerHandle | None:
        """The running server on the instance (token re-read from the VM, kept in memory), or None."""
        return await self._find(ctx)

    async def kernels(self, ctx: RemoteContext) -> list[KernelInfo]:
        """The server's kernels (busy or idle); [] when no server runs."""
        iid = ctx.instance.id
        try:
            handle = await self._find(ctx)
            if handle is None:
                return []
            return await (await self._control(await self._conn(ctx), iid)).kernels(handle)
        except _FAILURES as exc:
            raise ManagerError(f"listing kernels on {ctx.instance.name}: {exc}") from exc

    # -- tunnels ---------------------------------------------------------------------------------------

    async def open_tunnel(
        self, ctx: RemoteContext, local_port: int | None = None, strict: bool = False
    ) -> JupyterState:
        """A tunnel 127.0.0.1:local → the server's actual port, verified by a request through it.

        `local_port` None: the profile's port when free, else any free one. `strict`: exactly `local_port`
        (ManagerError naming the process that holds it)."""
        iid = ctx.instance.id
        async with self._lock(iid):
            handle = await self._find(ctx)
            if handle is None:
                raise ManagerError(f"no Jupyter server is running on {ctx.instance.name}: start it first "
                                   f"(j, or `cades-tui jupyter start {ctx.instance.name}`)")
            return await self._open_tunnel(ctx, handle, local_port, strict)

    async def close_tunnel(self, instance_id: str) -> None:
        """Close the instance's tunnel (Jupyter keeps running) and do not re-open it on the next start."""
        async with self._lock(instance_id):
            await self._close_tunnel(instance_id)

    # -- live log --------------------------------------------------------------------------------------

    async def follow_log(self, ctx: RemoteContext) -> None:
        """Stream the server log as `LogLines` (the last `log_history` lines first) until `unfollow_log`;
        re-follows after a dropped connection."""
        iid = ctx.instance.id
        task = self._follows.get(iid)
        if task is not None and not task.done():
            return
        record = self.state.servers.get(iid)
        logfile = record.logfile if record and record.logfile else self.options.jupyter_logfile
        self._follows[iid] = asyncio.create_task(self._follow(ctx, logfile))

    async def unfollow_log(self, instance_id: str) -> None:
        task = self._follows.pop(instance_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def read_log(self, ctx: RemoteContext, lines: int = 200) -> list[str]:
        """The last `lines` lines of the server log (cleaned, tokens redacted)."""
        iid = ctx.instance.id
        try:
            control = await self._control(await self._conn(ctx), iid)
            return [redact(x) for x in await control.read_log()][-lines:]
        except _FAILURES as exc:
            raise ManagerError(f"reading the Jupyter log on {ctx.instance.name}: {exc}") from exc

    async def _follow(self, ctx: RemoteContext, logfile: str) -> None:
        iid = ctx.instance.id
        history, delay = self.options.log_history, 0.5
        while True:
            try:
                conn = await self._conn(ctx)
            except ManagerError as exc:
                if not isinstance(exc.__cause__, Unreachable | ConnectionDropped):
                    return  # host key or authentication: final, already reported
            else:
                tail = LogTail(conn, logfile, history=history)
                try:
                    async for batch in tail.batches():
                        self.emit(LogLines(iid, tuple(batch)))
                        delay = 0.5
                except (OSError, asyncssh.Error):
                    pass
                finally:
                    await tail.close()
                history = 0  # what was shown already is not repeated
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    # -- reattach and idle -----------------------------------------------------------------------------

    async def reattach_all(self, contexts: Iterable[RemoteContext]) -> list[str]:
        """On app start: find the servers recorded in the state on these instances (tokens re-read from the
        VMs), report them, and re-open the tunnels that were open when `settings.jupyter.auto_reopen_tunnels`.
        Returns the ids of instances with a running server; failures are reported as events."""
        known = [c for c in contexts if c.instance.id in self.state.servers]
        found = await asyncio.gather(*(self._reattach(c) for c in known))
        return [c.instance.id for c, ok in zip(known, found, strict=True) if ok]

    async def _reattach(self, ctx: RemoteContext) -> bool:
        iid = ctx.instance.id
        async with self._lock(iid):
            record = self.state.servers.get(iid)
            try:
                handle = await self._find(ctx)
            except ManagerError:
                return False
            if handle is None or record is None:
                self.emit(JupyterState(iid, "stopped"))
                return False
            if self.settings.jupyter.auto_reopen_tunnels and record.tunnel_ports:
                try:  # reported once, with its tunnel (or why there is none)
                    await self._open_tunnel(ctx, handle, record.tunnel_ports[0], strict=False)
                except ManagerError as exc:
                    self.emit(JupyterState(iid, "running", handle.public_url(), 0, handle.port, error=str(exc)))
            else:
                self.emit(JupyterState(iid, "running", handle.public_url(), 0, handle.port))
            return True

    async def check_idle(self, ctx: RemoteContext, now: datetime | None = None) -> IdleReport:
        """VM uptime and Jupyter activity (kernels and terminals, not UI polling); emits `IdleNudge` past the
        profile's thresholds unless snoozed. A busy kernel counts as activity."""
        iid = ctx.instance.id
        now = now or datetime.now(UTC)
        jupyter_idle: float | None = None
        kernels = busy = 0
        try:
            handle = await self._find(ctx)
            if handle is not None:
                control = await self._control(await self._conn(ctx), iid)
                activity = await control.activity(handle)
                kernels, busy = len(activity.kernels), len(activity.busy_kernels)
                jupyter_idle = 0.0 if busy else activity.idle_seconds(now)
        except _FAILURES as exc:
            raise ManagerError(f"checking activity on {ctx.instance.name}: {exc}") from exc
        uptime = ctx.instance.uptime_seconds(now)
        nudge = idle.nudge(uptime, jupyter_idle, self.settings.idle, name=ctx.instance.name,
                           keymap=self.settings.keymap, now=now, snoozed_until=self.state.snoozed_until(iid))
        if nudge is not None:
            self.emit(IdleNudge(iid, nudge.tier, nudge.key, nudge.message))
        return IdleReport(iid, uptime, jupyter_idle, kernels, busy, nudge)

    def snooze(self, instance_id: str, hours: float = 24.0, now: datetime | None = None) -> datetime:
        """Quiet the instance's idle nudges for `hours` (kept in the state file)."""
        until = idle.snooze_until(now or datetime.now(UTC), hours)
        self.state.snooze(instance_id, until)
        return until

    # -- shutdown --------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close log followers, tunnels and connections. Jupyter keeps running on the VMs, and the state
        keeps the tunnels' ports so the next start re-opens them."""
        for future in list(self._questions):
            future.cancel()
        for iid in list(self._follows):
            await self.unfollow_log(iid)
        for tunnel in list(self._tunnels.values()):
            await tunnel.close()
        self._tunnels.clear()
        await self.pool.close_all()

    # -- internals -------------------------------------------------------------------------------------

    def _lock(self, instance_id: str) -> asyncio.Lock:
        return self._locks.setdefault(instance_id, asyncio.Lock())

    def _command_log(self, ctx: RemoteContext) -> CommandLog:
        log = self._logs.get(ctx.instance.id)
        if log is None:
            log = self._logs[ctx.instance.id] = self.services.command_log(ctx.instance)
        return log

    def _lost(self, instance_id: str, exc: Exception | None) -> None:
        self.emit(ConnectionState(instance_id, "lost", str(exc) if exc else "connection closed"))

    async def _conn(self, ctx: RemoteContext) -> asyncssh.SSHClientConnection:
        """The instance's pooled connection; asks about an unknown host key. Raises ManagerError."""
        iid = ctx.instance.id
        async with self._conn_locks.setdefault(iid, asyncio.Lock()):
            if self.pool.is_connected(iid) and self.pool.target(iid) == ctx.target:
                return await self.pool.get(iid)
            self.emit(ConnectionState(iid, "connecting"))
            while True:
                try:
                    conn = await self.pool.get(iid, ctx.target)
                except HostKeyUnknown as exc:
                    if await self._ask_host_key(iid, exc):
                        continue
                    message = f"host key of {ctx.instance.name} not trusted; nothing done"
                    self.emit(ConnectionState(iid, "failed", message))
                    raise ManagerError(message) from exc
                except RemoteError as exc:  # a changed host key included: refused, never accepted
                    self.emit(ConnectionState(iid, "failed", str(exc)))
                    raise ManagerError(str(exc)) from exc
                self.emit(ConnectionState(iid, "connected"))
                return conn

    async def _ask_host_key(self, instance_id: str, exc: HostKeyUnknown) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()

        def settle(ok: bool) -> None:
            if not future.done():
                future.set_result(ok)

        def answer(ok: bool) -> None:  # callable from any thread
            loop.call_soon_threadsafe(settle, bool(ok))

        self._questions.add(future)
        try:
            self.emit(HostKeyQuestion(instance_id, exc.host, exc.port, exc.key.split()[0], exc.fingerprint, answer))
            accepted = await future
        finally:
            self._questions.discard(future)
        if accepted:
            exc.accept()
        return accepted

    async def _control(self, conn: asyncssh.SSHClientConnection, instance_id: str) -> JupyterControl:
        """Jupyter on the instance: the recorded session (name, log, multiplexer) if any, else the profile's."""
        record = self.state.servers.get(instance_id)
        if record is not None:
            return control_for(conn, record, self.jupyter_settings())
        return await JupyterControl.create(conn, self.jupyter_settings())

    async def _find(self, ctx: RemoteContext) -> ServerHandle | None:
        """The running server: known in this session, else recorded (reattach), else found by its session."""
        iid = ctx.instance.id
        if iid in self._servers:
            return self._servers[iid]
        try:
            conn = await self._conn(ctx)
            if iid in self.state.servers:
                handle = await reattach(self.state, iid, conn, self.jupyter_settings())
            else:
                control = await self._control(conn, iid)
                handle = await control.find()
                if handle is not None:
                    self._adopt(ctx, handle, control.settings)
        except ManagerError as exc:
            self.emit(JupyterState(iid, "error", error=str(exc)))
            raise
        except _FAILURES as exc:
            raise self._jupyter_failed(iid, f"looking for Jupyter on {ctx.instance.name}: {exc}") from exc
        if handle is not None:
            self._servers[iid] = handle
            self._command_log(ctx).add_secret(handle.token)
        return handle

    def _adopt(self, ctx: RemoteContext, handle: ServerHandle, settings: JupyterSettings) -> None:
        iid = ctx.instance.id
        self._servers[iid] = handle
        self._command_log(ctx).add_secret(handle.token)
        old = self.state.servers.get(iid)
        ports = old.tunnel_ports if old is not None and old.remote_port == handle.port else ()
        self.state.put(record_for(iid, handle, settings, tunnel_ports=ports,
                                  auto_reopen=self.settings.jupyter.auto_reopen_tunnels))

    def _jupyter_failed(self, instance_id: str, message: str) -> ManagerError:
        message = redact(message)
        self.emit(JupyterState(instance_id, "error", error=message))
        return ManagerError(message)

    async def _tunnel_ahead(self, ctx: RemoteContext, port: int, local_port: int | None) -> Tunnel | None:
        """The tunnel to Jupyter's configured port, opened while Jupyter boots (its ssh handshake then costs no
        wait); None when that fails — the tunnel is then opened, and any error reported, after the start."""
        iid = ctx.instance.id
        if self._tunnels.get(iid) is not None:
            return None
        wanted = self.settings.jupyter.local_port if local_port is None else local_port
        try:
            return await self._new_tunnel(ctx, port, wanted, strict=False, report=False)
        except ManagerError:
            return None

    async def _new_tunnel(self, ctx: RemoteContext, remote_port: int, wanted: int, strict: bool,
                          report: bool = True) -> Tunnel:
        """Open a tunnel to `remote_port` on the instance (kept in `_tunnels`). Raises ManagerError (an error
        event too, when `report`)."""
        fail = self._jupyter_failed if report else lambda _iid, message: ManagerError(message)
        iid, target = ctx.instance.id, ctx.target
        via_openssh = openssh_usable(target)

        async def factory() -> asyncssh.SSHClientConnection:
            if via_openssh:  # only a verified host key is needed: the pooled connection's (the pool owns it)
                return await self.pool.get(iid, target)
            return await connect(target)  # the asyncssh path carries the bytes on a connection of its own

        tunnel = Tunnel(iid, factory, remote_port, local_port=wanted or None, strict=strict,
                        on_change=lambda info: self.emit(TunnelChanged(info)),
                        keepalive_interval=float(self.settings.ssh.keepalive_s), openssh=target,
                        close_connection=not via_openssh)
        try:
            await tunnel.open()
        except PortBusyError as exc:
            raise fail(iid, f"{exc}; pick another with --local-port, or omit it") from exc
        except (RemoteError, OSError, asyncssh.Error, TimeoutError) as exc:
            raise fail(iid, f"tunnel to {ctx.instance.name}: {exc}") from exc
        self._tunnels[iid] = tunnel
        return tunnel

    async def _open_tunnel(
        self, ctx: RemoteContext, handle: ServerHandle, local_port: int | None, strict: bool
    ) -> JupyterState:
        iid = ctx.instance.id
        tunnel = self._tunnels.get(iid)
        wanted = self.settings.jupyter.local_port if local_port is None else local_port
        reusable = (tunnel is not None and tunnel.state is not TunnelState.DOWN and tunnel.remote_port == handle.port
                    and (not strict or tunnel.local_port == wanted))
        if not reusable:
            await self._close_tunnel(iid, forget=False)
            tunnel = await self._new_tunnel(ctx, handle.port, wanted, strict)
        assert tunnel is not None
        if not await self._answers_through(tunnel, handle):
            await self._close_tunnel(iid, forget=False)
            self._servers.pop(iid, None)
            raise self._jupyter_failed(iid, f"Jupyter on {ctx.instance.name} does not answer through the tunnel "
                                            f"within {self.options.ready_timeout:g} s")
        self.state.set_tunnel_ports(iid, (tunnel.local_port,))
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

    async def _close_tunnel(self, instance_id: str, forget: bool = True) -> None:
        tunnel = self._tunnels.pop(instance_id, None)
        if tunnel is not None:
            await tunnel.close()
        if forget:
            self.state.set_tunnel_ports(instance_id, ())
