"""The remote manager's logins: one pooled SSH connection per instance, its host key settled with the user first.

`InstanceConnections` wraps the `ConnectionPool` with what the manager adds around it: `ConnectionState` events
(connecting, connected, failed, lost), a `HostKeyQuestion` for an unknown host key (the login waits for the answer;
a changed key is refused), one lock per instance for the manager's operations, and each instance's command log.
Failures are raised as `ManagerError`, whose text is meant for the user.
"""

from __future__ import annotations

import asyncio
import time

import asyncssh

from tui.core.errors import ManagerError, NoConnection, RetryLater
from tui.core.events import ConnectionState, Emit, HostKeyQuestion
from tui.core.remote.commands import CommandLog
from tui.core.remote.connection import ConnectionPool, HostKeyUnknown, RemoteError
from tui.core.remote.hostkeys import KnownHosts
from tui.core.services import RemoteContext, Services

QUIET_RETRY_S = 120.0  # a quiet login that failed is tried again no sooner than this


class InstanceConnections:
    def __init__(self, services: Services, emit: Emit) -> None:
        self.services = services
        self.emit = emit
        self.pool = ConnectionPool(on_lost=self._lost)
        self._locks: dict[str, asyncio.Lock] = {}
        self._conn_locks: dict[str, asyncio.Lock] = {}
        self._logs: dict[str, CommandLog] = {}
        self._questions: set[asyncio.Future[bool]] = set()
        self._quiet_after: dict[str, float] = {}  # instance id -> when a failed quiet login may be tried again

    def lock(self, instance_id: str) -> asyncio.Lock:
        """The instance's lock: held by each operation of the manager on it (setup, start, stop, tunnels)."""
        return self._locks.setdefault(instance_id, asyncio.Lock())

    def command_log(self, ctx: RemoteContext) -> CommandLog:
        log = self._logs.get(ctx.instance.id)
        if log is None:
            log = self._logs[ctx.instance.id] = self.services.command_log(ctx.instance)
        return log

    async def conn(self, ctx: RemoteContext) -> asyncssh.SSHClientConnection:
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
                    raise (NoConnection if isinstance(exc, RetryLater) else ManagerError)(message) from exc
                self.emit(ConnectionState(iid, "connected"))
                return conn

    def may_try_quietly(self, instance_id: str) -> bool:
        """Whether a quiet login to the instance is due (none failed in the last QUIET_RETRY_S)."""
        return self._quiet_after.get(instance_id, 0.0) <= time.monotonic()

    async def quiet(self, ctx: RemoteContext) -> bool:
        """Log in without asking anything — for signals such as load and memory: only when the host key is pinned
        from the console log or already known (never a trust-on-first-use question), and no sooner than
        QUIET_RETRY_S after a failed try. Whether the instance is connected now."""
        iid, target = ctx.instance.id, ctx.target
        if self.pool.is_connected(iid):
            return True
        if not self.may_try_quietly(iid):
            return False
        if not (target.pinned or KnownHosts(target.known_hosts).keys_for(target.host, target.port)):
            self.quiet_failed(iid)  # its key is unknown: the user's first login (setup, shell) settles it
            return False
        async with self._conn_locks.setdefault(iid, asyncio.Lock()):
            try:
                await self.pool.get(iid, target)
            except (RemoteError, OSError, asyncssh.Error):  # a key not accepted included: nothing is asked
                self.quiet_failed(iid)
                return False
        self._quiet_after.pop(iid, None)
        self.emit(ConnectionState(iid, "connected"))
        return True

    def quiet_failed(self, instance_id: str) -> None:
        """No quiet login to the instance before QUIET_RETRY_S from now."""
        self._quiet_after[instance_id] = time.monotonic() + QUIET_RETRY_S

    def cancel_questions(self) -> None:
        """Give up every host key question still open (on shutdown): the logins waiting for them end."""
        for future in list(self._questions):
            future.cancel()

    def _lost(self, instance_id: str, exc: Exception | None) -> None:
        self.emit(ConnectionState(instance_id, "lost", str(exc) if exc else "connection closed"))

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
