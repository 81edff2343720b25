"""One async object for everything remote — setup, Jupyter, tunnels, live logs, load, idle checks — per instance.

The app and the headless CLI drive the same `RemoteManager`. It reports through one callback, `emit`, with
small frozen events from `tui.core.events` (the app turns them into Textual messages, the CLI prints them); methods
return their results and raise only `ManagerError`, whose text is meant for the user. Instances are independent:
each has its own lock, SSH connection, server handle, log follower and tunnels, keyed by (instance, purpose).

Host keys: an unknown key (nothing pinned from the console log, nothing in known_hosts) is put to the user as a
`HostKeyQuestion`; the operation waits until `accept()` or `refuse()` is called. A changed key is refused.

Secrets: Jupyter's token lives only in memory (`token_url`); state records, events (`public_url`), log lines
and the command log never carry it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncssh

from tui.core import paths
from tui.core.api import ManagerError
from tui.core.config import Settings
from tui.core.events import (
    ConnectionState,
    Emit,
    HostKeyQuestion,
    IdleNudge,
    JupyterState,
    LogLines,
    Metrics,
    SetupProgress,
    StopOutcome,
)
from tui.core.guide import PipelineFinished, SetupRunner, SSHExecutor
from tui.core.guide.steps import ApproveFormat, Step
from tui.core.jupyter import http, idle
from tui.core.jupyter.logparse import redact
from tui.core.jupyter.logtail import LogTail
from tui.core.jupyter.reattach import control_for, reattach, record_for
from tui.core.jupyter.server import (
    PORT_RETRIES,
    START_TIMEOUT,
    JupyterControl,
    JupyterError,
    JupyterSettings,
    ServerHandle,
    answers,
)
from tui.core.models import KernelInfo, TunnelInfo, TunnelState
from tui.core.remote.commands import CommandLog
from tui.core.remote.connection import (
    ConnectionDropped,
    ConnectionPool,
    HostKeyUnknown,
    RemoteError,
    Unreachable,
)
from tui.core.remote.session import SessionError
from tui.core.remote.tunnel import GONE, Tunnel
from tui.core.services import RemoteContext, Services
from tui.core.state import JUPYTER, AppState
from tui.core.tunnels import Tunnels

log = logging.getLogger(__name__)


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
    `jupyter_command` replaces `<setup prefix>/bin/jupyter`; `setup_steps` replaces the guide's steps."""

    remote_env: tuple[tuple[str, str], ...] = ()
    jupyter_command: str = ""
    jupyter_logfile: str = paths.JUPYTER_LOGFILE
    port_retries: int = PORT_RETRIES
    start_timeout: float = START_TIMEOUT
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
        self._tunnels = Tunnels(settings, state, self.pool, emit)  # by (instance id, purpose)
        self._follows: dict[str, asyncio.Task[None]] = {}
        self._logs: dict[str, CommandLog] = {}
        self._questions: set[asyncio.Future[bool]] = set()

    # -- what is known ---------------------------------------------------------------------------------

    def jupyter_settings(self) -> JupyterSettings:
        o = self.options
        return JupyterSettings.from_settings(self.settings, command=o.jupyter_command, logfile=o.jupyter_logfile,
                                             port_retries=o.port_retries, start_timeout=o.start_timeout)

    def token_url(self, instance_id: str) -> str | None:
        """The tokenized URL through the open tunnel (memory only: show it, never store or log it)."""
        handle, tunnel = self._servers.get(instance_id), self._tunnels.get(instance_id, JUPYTER)
        if handle is None or tunnel is None or tunnel.state is TunnelState.DOWN or not tunnel.local_port:
            return None
        return handle.url(tunnel.local_port)

    def tunnel_info(self, instance_id: str, purpose: str = JUPYTER) -> TunnelInfo | None:
        return self._tunnels.info(instance_id, purpose)

    def tunnels(self) -> list[TunnelInfo]:
        return self._tunnels.all()

    def server(self, instance_id: str) -> ServerHandle | None:
        """The running server found or started in this session (None when unknown or stopped)."""
        return self._servers.get(instance_id)

    # -- setup (issue 4) -------------------------------------------------------------------------------

    async def connect(self, ctx: RemoteContext) -> None:
        """Log in once: settles the host key (pinned, or the user's answer to HostKeyQuestion) before anything
        else uses it — e.g. before handing over to OpenSSH for an interactive shell. Raises ManagerError."""
        await self._conn(ctx)

    async def connection(self, ctx: RemoteContext) -> asyncssh.SSHClientConnection:
        """The instance's pooled connection (for work the manager does not do itself, e.g. a Dask cluster): host
        key settled as in `connect`. The caller never closes it. Raises ManagerError."""
        return await self._conn(ctx)

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
                            await self._tunnels.close(iid, forget=False)
                    if tunnel is not None:
                        tunnel.retarget(handle.port)  # port retries may have moved Jupyter
            except ManagerError as exc:
                self.emit(JupyterState(iid, "error", error=str(exc)))
                raise
            except _FAILURES as exc:
                raise self._jupyter_failed(iid, f"starting Jupyter on {ctx.instance.name}: {exc}") from exc
            self._adopt(ctx, handle, control.settings)
            return await self._open_tunnel(ctx, handle, local_port, strict=False)

    async def stop_jupyter(self, ctx: RemoteContext, force: bool = False) -> StopOutcome:
        """Stop the server and verify it is gone; close its tunnel and forget it. With busy kernels and not
        `force`: stop nothing and return them (`StopOutcome(stopped=False, busy=...)`)."""
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
                        return StopOutcome(stopped=False, busy=busy)
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
            return StopOutcome(stopped=True)

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

    async def close_tunnel(self, instance_id: str, purpose: str = JUPYTER) -> None:
        """Close the instance's tunnel for `purpose` (what it reaches keeps running); not re-opened on the next
        start."""
        async with self._lock(instance_id):
            await self._close_tunnel(instance_id, purpose=purpose)

    async def open_forward(self, ctx: RemoteContext, purpose: str, remote_port: int, *,
                           remote_host: str = "127.0.0.1", local_port: int | None = None,
                           strict: bool = False) -> TunnelInfo:
        """A self-healing tunnel 127.0.0.1:local → remote_host:remote_port on the instance, kept under
        (instance, purpose) and re-opened on the next start (e.g. `dask-dashboard`). An open one is reused."""
        async with self._lock(ctx.instance.id):
            return await self._tunnels.forward(ctx, purpose, remote_port, remote_host=remote_host,
                                               local_port=local_port, strict=strict)

    # -- per-instance signals, refreshed after each poll ----------------------------------------------------

    async def refresh(self, ctx: RemoteContext) -> None:
        """Read every per-instance signal that needs no login (each emits its event): called after each poll for
        instances with an open connection. A new signal's reader is listed here."""
        await self.read_metrics(ctx)
        await self.follow_jupyter(ctx)


    async def read_metrics(self, ctx: RemoteContext) -> Metrics | None:
        """The VM's load (1-minute average per vCPU) and memory in use, from /proc over the pooled connection;
        emitted as `Metrics`. None (nothing emitted) when the instance has no connection yet: this never logs in."""
        iid = ctx.instance.id
        if not self.pool.is_connected(iid):
            return None
        try:
            conn = await self.pool.get(iid)
            result = await conn.run("cat /proc/loadavg /proc/meminfo", check=False, timeout=10)
        except _FAILURES:
            return None
        metrics = parse_metrics(iid, str(result.stdout or ""), max(1, ctx.instance.vcpus))
        if metrics is not None:
            self.emit(metrics)
        return metrics

    async def follow_jupyter(self, ctx: RemoteContext) -> int | None:
        """Keep the Jupyter tunnel pointed at the server: when it no longer answers where the tunnel forwards to
        (restarted, moved to another port), the tunnel follows it, or turns DOWN ("Jupyter moved/stopped") when
        none runs. Over the pooled connection only (never logs in); skipped while the instance is busy. The port
        the tunnel forwards to, or None."""
        iid = ctx.instance.id
        tunnel = self._tunnels.get(iid, JUPYTER)
        if (tunnel is None or tunnel.state is not TunnelState.UP or not self.pool.is_connected(iid)
                or self._lock(iid).locked()):
            return None
        try:
            port = await self._where_jupyter(ctx, await self.pool.get(iid), tunnel.remote_port)
        except _FAILURES as exc:
            log.info("following Jupyter on %s: %s", ctx.instance.name, redact(str(exc)))
            return None
        if self._tunnels.get(iid, JUPYTER) is not tunnel:  # replaced meanwhile (j, t)
            return None
        if port is None:
            await self._tunnels.stop(iid, JUPYTER, GONE)
            return None
        tunnel.retarget(port)
        self._tunnels.remember(tunnel)
        return port

    async def _where_jupyter(self, ctx: RemoteContext, conn: asyncssh.SSHClientConnection, port: int) -> int | None:
        """Where the instance's Jupyter answers now: `port` (the known server, recognised by its runtime file before
        any token is sent), the port it moved to (the server found again by its session, adopted with its new
        token and reported running), or None when none runs (reported stopped; the tunnel's record is kept)."""
        iid = ctx.instance.id
        control = await self._control(conn, iid)
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
        self._adopt(ctx, found, control.settings)
        tunnel = self._tunnels.get(iid, JUPYTER)
        local = tunnel.local_port if tunnel is not None else 0
        moved = f"Jupyter on {ctx.instance.name} was restarted on port {found.port} of the VM: the tunnel follows it"
        self.emit(JupyterState(iid, "running", found.public_url(local or None), local, found.port, error=moved))
        return found.port

    async def forget_instance(self, instance_id: str) -> None:
        """The instance is gone (deleted): close its tunnels and log follower, drop its connection and state."""
        await self._tunnels.close_instance(instance_id)
        await self.unfollow_log(instance_id)
        self._servers.pop(instance_id, None)
        await self.pool.close(instance_id)
        self.state.forget_instance(instance_id)

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
            tunnel = self.state.tunnel(iid, JUPYTER)
            if self.settings.jupyter.auto_reopen_tunnels and tunnel is not None:
                try:  # reported once, with its tunnel (or why there is none)
                    await self._open_tunnel(ctx, handle, tunnel.local_port, strict=False)
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
        await self._tunnels.aclose()
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
                    message = f"could not connect to {ctx.instance.name}: {exc}"
                    self.emit(ConnectionState(iid, "failed", message))
                    raise ManagerError(message) from exc
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
        self.state.put(record_for(iid, handle, settings, auto_reopen=self.settings.jupyter.auto_reopen_tunnels))

    def _jupyter_failed(self, instance_id: str, message: str) -> ManagerError:
        message = redact(message)
        self.emit(JupyterState(instance_id, "error", error=message))
        return ManagerError(message)

    async def _tunnel_ahead(self, ctx: RemoteContext, port: int, local_port: int | None) -> Tunnel | None:
        """The tunnel to Jupyter's configured port, opened while Jupyter boots (its ssh handshake then costs no
        wait); None when that fails — the tunnel is then opened, and any error reported, after the start."""
        iid = ctx.instance.id
        tunnel = self._tunnels.get(iid, JUPYTER)
        if tunnel is not None and tunnel.state is not TunnelState.DOWN:
            return None
        await self._tunnels.close(iid, forget=False)  # one left down when Jupyter went away: same local port
        wanted = self._tunnels.wanted_port(iid, JUPYTER, local_port, self.settings.jupyter.local_port)
        try:
            return await self._tunnels.open(ctx, port, wanted)
        except ManagerError:
            return None

    async def _open_tunnel(
        self, ctx: RemoteContext, handle: ServerHandle, local_port: int | None, strict: bool
    ) -> JupyterState:
        iid = ctx.instance.id
        tunnel = self._tunnels.get(iid, JUPYTER)
        # the last port used for this instance, else the profile's
        wanted = self._tunnels.wanted_port(iid, JUPYTER, local_port, self.settings.jupyter.local_port)
        reusable = (tunnel is not None and tunnel.state is not TunnelState.DOWN and tunnel.remote_port == handle.port
                    and (not strict or tunnel.local_port == wanted))
        if not reusable:
            await self._tunnels.close(iid, forget=False)
            try:
                tunnel = await self._tunnels.open(ctx, handle.port, wanted, strict=strict)
            except ManagerError as exc:
                raise self._jupyter_failed(iid, str(exc)) from exc
        assert tunnel is not None
        if not await self._answers_through(tunnel, handle):
            await self._tunnels.close(iid, forget=False)
            self._servers.pop(iid, None)
            raise self._jupyter_failed(iid, f"Jupyter on {ctx.instance.name} does not answer through the tunnel "
                                            f"within {self.options.ready_timeout:g} s")
        tunnel.verify = lambda conn, port: self._where_jupyter(ctx, conn, port)  # checked after each reconnect
        self._tunnels.remember(tunnel)
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

    async def _close_tunnel(self, instance_id: str, forget: bool = True, purpose: str = JUPYTER) -> None:
        await self._tunnels.close(instance_id, purpose, forget=forget)


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
