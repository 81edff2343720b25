"""Who runs the steps' commands: an SSH connection from the pool (each command holding the VM's setup lock,
`tui.core.guide.vmlock`), or a dry run that only records them."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import shlex
from collections.abc import Callable
from typing import Protocol

import asyncssh

from tui.core.guide import vmlock
from tui.core.remote.commands import CommandLog, CommandResult, LineSink, stream
from tui.core.remote.connection import ConnectionDropped, ConnectionPool, RemoteError, SSHTarget, SSHUnreachable


class Executor(Protocol):
    """Runs shell commands on one instance for the pipeline."""

    dry_run: bool
    notice: LineSink | None  # where to say what the VM's setup lock did (set by the runner for each step)

    def is_connected(self) -> bool: ...

    async def connect(self, timeout: float) -> None:
        """Connect, retrying while the host is unreachable (e.g. still booting) for up to `timeout` s."""

    async def reconnect(self, timeout: float) -> None:
        """Drop the connection and make a new one, retrying for up to `timeout` s."""

    async def run(
        self, command: str, on_lines: LineSink | None = None, *, input: str | None = None, probe: bool = False
    ) -> CommandResult:
        """Run `command`; `probe` marks a read-only check (a dry run answers "not done")."""


def env_prefix(env: tuple[tuple[str, str], ...]) -> str:
    """`export K=V` lines put before every command (sshd gives a clean environment)."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env)


class SSHExecutor:
    """Runs commands over the pool's connection for `key`, logging each one to `log`. Each holds the VM's setup
    lock (an earlier run's orphan is waited for up to `orphan_wait_s`, then stopped); a cancelled command is
    stopped on the VM."""

    dry_run = False

    def __init__(
        self,
        pool: ConnectionPool,
        key: str,
        target: SSHTarget,
        log: CommandLog | None = None,
        env: tuple[tuple[str, str], ...] = (),
        *,
        orphan_wait_s: int = vmlock.ORPHAN_WAIT_S,
    ) -> None:
        self.pool = pool
        self.key = key
        self.target = target
        self.log = log
        self.env = env
        self.orphan_wait_s = orphan_wait_s
        self.run_id = secrets.token_hex(6)
        self.notice: LineSink | None = None
        self._locked: bool | None = None  # None until the lock script was written to the VM

    def is_connected(self) -> bool:
        return self.pool.is_connected(self.key) and self.pool.target(self.key) == self.target

    async def connect(self, timeout: float) -> None:
        if self.is_connected():
            return
        try:
            await self.pool.get(self.key, self.target)
        except (SSHUnreachable, ConnectionDropped):
            if timeout <= 0:
                raise
            await self.pool.reconnect(self.key, timeout, self.target)

    async def reconnect(self, timeout: float) -> None:
        await self.pool.reconnect(self.key, timeout, self.target)

    async def run(
        self, command: str, on_lines: LineSink | None = None, *, input: str | None = None, probe: bool = False
    ) -> CommandResult:
        conn = await self.pool.get(self.key, self.target)
        if self._locked is None:
            installed = await stream(conn, vmlock.install_command(), input=vmlock.script_text())
            self._locked = installed.ok
        lock = vmlock.prefix(self.run_id, self.orphan_wait_s) if self._locked else ""

        def sink(lines: list[str]) -> None:
            said, own = vmlock.split_notices(lines)
            if said and (self.notice or on_lines) is not None:
                (self.notice or on_lines)(said)  # type: ignore[misc]
            if own and on_lines is not None:
                on_lines(own)

        try:
            result = await stream(conn, lock + env_prefix(self.env) + command, sink, input=input, log=self.log)
        except asyncio.CancelledError:
            if lock:
                await self._stop_on_the_vm(conn)
            raise
        if not lock:
            return result
        output, tail = vmlock.split_notices(result.output.split("\n"))[1], vmlock.split_notices(list(result.tail))[1]
        return dataclasses.replace(result, output="\n".join(output), tail=tuple(tail))

    async def _stop_on_the_vm(self, conn: asyncssh.SSHClientConnection) -> None:
        """The command of this run that holds the lock is stopped (a closed channel would leave it running)."""
        with contextlib.suppress(RemoteError, OSError, asyncssh.Error, TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(stream(conn, vmlock.stop_command(self.run_id))), 5.0)


class DryRunExecutor:
    """Connects to nothing: records every command (checks answer "not done", applies succeed silently)."""

    dry_run = True
    notice: LineSink | None = None

    def __init__(self, env: tuple[tuple[str, str], ...] = (), on_command: Callable[[str], None] | None = None):
        self.env = env
        self.commands: list[str] = []
        self._on_command = on_command

    def is_connected(self) -> bool:
        return False

    async def connect(self, timeout: float) -> None:
        return None

    async def reconnect(self, timeout: float) -> None:
        return None

    async def run(
        self, command: str, on_lines: LineSink | None = None, *, input: str | None = None, probe: bool = False
    ) -> CommandResult:
        full = env_prefix(self.env) + command
        if input is not None:
            full += f"\n# stdin:\n{input}"
        self.commands.append(full)
        if self._on_command is not None:
            self._on_command(full)
        return CommandResult(full, 1 if probe else 0, 0.0)
