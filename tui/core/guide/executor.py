"""Who runs the steps' commands: an SSH connection from the pool, or a dry run that only records them."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Protocol

from tui.core.remote.commands import CommandLog, CommandResult, LineSink, stream
from tui.core.remote.connection import ConnectionDropped, ConnectionPool, SSHTarget, Unreachable


class Executor(Protocol):
    """Runs shell commands on one instance for the pipeline."""

    dry_run: bool

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
    """Runs commands over the pool's connection for `key`, logging each one to `log`."""

    dry_run = False

    def __init__(
        self,
        pool: ConnectionPool,
        key: str,
        target: SSHTarget,
        log: CommandLog | None = None,
        env: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.pool = pool
        self.key = key
        self.target = target
        self.log = log
        self.env = env

    def is_connected(self) -> bool:
        return self.pool.is_connected(self.key) and self.pool.target(self.key) == self.target

    async def connect(self, timeout: float) -> None:
        if self.is_connected():
            return
        try:
            await self.pool.get(self.key, self.target)
        except (Unreachable, ConnectionDropped):
            if timeout <= 0:
                raise
            await self.pool.reconnect(self.key, timeout, self.target)

    async def reconnect(self, timeout: float) -> None:
        await self.pool.reconnect(self.key, timeout, self.target)

    async def run(
        self, command: str, on_lines: LineSink | None = None, *, input: str | None = None, probe: bool = False
    ) -> CommandResult:
        conn = await self.pool.get(self.key, self.target)
        return await stream(conn, env_prefix(self.env) + command, on_lines, input=input, log=self.log)


class DryRunExecutor:
    """Connects to nothing: records every command (checks answer "not done", applies succeed silently)."""

    dry_run = True

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
