"""`engine.shell`: a shell (or one command) on an instance — OpenSSH's command line or the built-in client's
session over the verified connection — and the instance's command log (`tui.core.api.ShellApi`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from tui.core.config import Settings
from tui.core.manager import RemoteManager
from tui.core.models import Instance
from tui.core.remote.commands import CommandLog
from tui.core.services import RemoteContext


class EngineShell:
    def __init__(self, settings: Settings, manager: RemoteManager,
                 context: Callable[[Instance], Awaitable[RemoteContext]],
                 command_log: Callable[[Instance], CommandLog]) -> None:
        self.settings, self.manager = settings, manager
        self._context, self._command_log = context, command_log

    async def argv(self, inst: Instance, command: str | None = None) -> list[str]:
        """OpenSSH's command line for an interactive shell (or `command`), after the host key is settled (pinned or
        asked); without `ssh` on PATH, the built-in client's (`cades-tui ssh ID` in a child process, same profile
        and cloud)."""
        import shutil

        from tui.core.remote.connection import openssh_argv
        from tui.core.remote.interactive import builtin_client_argv

        ctx = await self._context(inst)
        await self.manager.connect(ctx)
        if shutil.which("ssh") is None:
            return builtin_client_argv(self.settings, inst.id)
        return openssh_argv(ctx.target, command, tty=True if command is None else None)

    async def session(self, inst: Instance, command: str | None = None) -> int:
        """A session of the built-in SSH client on the verified connection: a PTY on a terminal (raw mode), plain
        pipes otherwise; the remote exit status, logged like OpenSSH's runs."""
        import time

        from tui.core.remote.interactive import interactive_session

        ctx = await self._context(inst)
        conn = await self.manager.connection(ctx)
        started, t0 = datetime.now(UTC), time.monotonic()
        code = await interactive_session(conn, command)
        self.record(inst, command or "(interactive shell)", code, time.monotonic() - t0, started)
        return code

    def record(self, inst: Instance, command: str, code: int, seconds: float, started: datetime) -> None:
        """One command run on the instance (by OpenSSH, say) into its command log."""
        self._command_log(inst).record(command, code, seconds, started)

    def history(self, inst: Instance) -> tuple[str, Path]:
        """The commands run on the instance (secrets masked) as text, and the log's file."""
        log = self._command_log(inst)
        return log.read(), log.path
