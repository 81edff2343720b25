"""The remote manager's logins: one pooled SSH connection per instance, its host key settled with the user first.

`InstanceConnections` wraps the `ConnectionPool` with what the manager adds around it: `ConnectionState` events
(connecting, connected, failed, lost), a `HostKeyQuestion` for an unknown host key (the login waits for the answer;
a changed key is refused), one lock per instance for the manager's operations, and each instance's command log.
Failures are raised as `ManagerError`, whose text is meant for the user.
"""

from __future__ import annotations

import asyncio

import asyncssh

from tui.core.api import ManagerError
from tui.core.events import ConnectionState, Emit, HostKeyQuestion
from tui.core.remote.commands import CommandLog
from tui.core.remote.connection import ConnectionPool, HostKeyUnknown, RemoteError
from tui.core.services import RemoteContext, Services


class InstanceConnections:
    def __init__(self, services: Services, emit: Emit) -> None:
        self.services = services
        self.emit = emit
        self.pool = ConnectionPool(on_lost=self._lost)
        self._locks: dict[str, asyncio.Lock] = {}
        self._conn_locks: dict[str, asyncio.Lock] = {}
        self._logs: dict[str, CommandLog] = {}
        self._questions: set[asyncio.Future[bool]] = set()

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
                    raise ManagerError(message) from exc
                self.emit(ConnectionState(iid, "connected"))
                return conn

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
