"""`e`: open the selected instance in VS Code (Remote-SSH, by the instance's name in the generated ssh config).

An owner object, not an App mixin: `VSCodeOpener` is given narrow callables (the selected instance, the engine,
notify, a yes/no question, copy) and owns the one thing it remembers — that the Include question was answered
no this session. It makes sure the config is written (the engine's `sshconfig.write`), asks before adding the
Include line to ~/.ssh/config, then runs `code --remote ssh-remote+NAME FOLDER` when `code` is on PATH, else
shows that command (copied) and the `ssh-config` hint.
"""

from __future__ import annotations

import asyncio
import shlex
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from tui.core.hints import command
from tui.core.sshconfig import name_problem

if TYPE_CHECKING:
    from tui.core.api import Engine
    from tui.core.models import Instance

Notify = Callable[..., None]  # (text, *, title=, severity=, timeout=)
Ask = Callable[[str, str], Awaitable[bool]]  # (title, body) -> yes?
Launch = Callable[[Sequence[str]], Any]  # starts argv detached


def launch_detached(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start VS Code without tying it to the app's terminal (its own session, no stdio)."""
    return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


class VSCodeOpener:
    """Opens an instance in VS Code; `open` runs in an async worker (it asks questions and logs in)."""

    def __init__(self, *, engine: Callable[[], Engine | None], workspace: str, notify: Notify, ask: Ask,
                 copy: Callable[[str], None], which: Callable[[str], str | None] = shutil.which,
                 launch: Launch = launch_detached) -> None:
        self._engine = engine
        self.workspace = workspace
        self._notify = notify
        self._ask = ask
        self._copy = copy
        self._which = which
        self._launch = launch
        self.declined_install = False  # "no" to the Include line: asked once per session

    @staticmethod
    def argv(name: str, folder: str) -> list[str]:
        return ["code", "--remote", f"ssh-remote+{name}", folder]

    async def open(self, inst: Instance) -> list[str] | None:
        """Write (and, after asking, install) the config, then open VS Code — or show how. The argv run, else
        None."""
        from tui.core.api import ManagerError
        from tui.core.cloud.base import CloudError

        title = f"VS Code · {inst.name}"
        problem = name_problem(inst.name)
        engine = self._engine()
        if engine is None:
            self._notify("Not connected to the cloud yet.", title=title, severity="warning")
            return None
        if problem is not None:
            self._notify(f"OpenSSH cannot name this instance: {problem}. Rename it (letters, digits, '-', '_').",
                         title=title, severity="error", timeout=12)
            return None
        try:
            folder = await engine.sshconfig.remote_folder(inst, self.workspace)  # the host key settled first
            report = await asyncio.to_thread(engine.sshconfig.write)
            installed = report.installed or await self._install(engine, report.include)
        except (ManagerError, CloudError, OSError) as exc:
            self._notify(str(exc), title=f"{title} failed", severity="error", timeout=12)
            return None
        argv = self.argv(inst.name, folder)
        if installed and self._which("code") is not None:
            self._launch(argv)
            self._notify(f"Opening {folder} on {inst.name} in VS Code ({shlex.join(argv)}).", title=title)
            return argv
        self._show(title, argv, installed, str(report.path))
        return None

    async def _install(self, engine: Engine, line: str) -> bool:
        if self.declined_install:
            return False
        if not await self._ask("Add the instances to ~/.ssh/config?",
                               f"VS Code reaches an instance by its name through ~/.ssh/config. Add this line at "
                               f"its top (once; the file as it was is kept as config.cades-tui-backup)?\n\n"
                               f"{line}\n\n`{command('ssh-config', '--uninstall')}` takes it out again."):
            self.declined_install = True
            return False
        await asyncio.to_thread(engine.sshconfig.install)
        return True

    def _show(self, title: str, argv: list[str], installed: bool, path: str) -> None:
        cmd = shlex.join(argv)
        self._copy(cmd)
        why = "" if installed else (f"First `{command('ssh-config', '--install')}` (the name comes from {path}). ")
        where = "VS Code's `code` is not on PATH here. " if self._which("code") is None else ""
        self._notify(f"{where}{why}Then run (copied):\n{cmd}", title=title, severity="warning", timeout=20)
