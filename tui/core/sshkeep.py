"""The engine's side of the generated ssh config (`tui.core.sshconfig`): `SshConfigs` keeps this cloud's file in step
with the instances (after polls, launches, deletes and cluster changes — only once the user made it), writes it on
request, adds or removes the Include line, records pinned host keys by one quiet login, and finds a folder's
absolute path on an instance for VS Code. `engine.sshconfig` (`tui.core.capabilities.sshconfig`) delegates here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from tui.core import sshinclude
from tui.core.api import ManagerError
from tui.core.cloud.base import Cloud, CloudError
from tui.core.events import BackgroundFailed, Emit
from tui.core.models import Instance
from tui.core.sshconfig import Forwards, Keeper, Report
from tui.core.sshinclude import IncludeChange

if TYPE_CHECKING:
    import asyncssh

    from tui.core.config import Settings
    from tui.core.services import RemoteContext, Services

log = logging.getLogger(__name__)


class SshConfigs:
    """This cloud's generated ssh config, as the engine keeps it."""

    def __init__(self, settings: Settings, services: Services, cloud: Cloud, emit: Emit,
                 forwards: Callable[[], Forwards] | None = None) -> None:
        """`forwards`: the saved port forwards by instance name, written as LocalForward lines (part 3's store)."""
        self.settings, self.services, self.cloud, self.emit = settings, services, cloud, emit
        self.forwards = forwards
        self._keeper: Keeper | None = None
        self._failed = ""  # the last rewrite's error, said once

    @property
    def keeper(self) -> Keeper:
        """Made on first use (the header names this run's command, with its --demo/--config/--cloud)."""
        if self._keeper is None:
            from tui.core.hints import command

            s = self.settings
            self._keeper = Keeper(cloud=s.cloud, user=s.ssh.user, key_for=self.services.key_path,
                                  known_hosts=self.services.known_hosts, made_by=command("ssh-config"),
                                  jump_host=s.ssh.jump_host, forwards=self.forwards)
        return self._keeper

    def follow(self, instances: Sequence[Instance] | None = None) -> bool:
        """Blocking. Rewrite the file when the user made one and these instances (listed when None) change it.
        Never raises: a failure is logged and emitted (BackgroundFailed) once."""
        keeper = self.keeper
        if not keeper.enabled:
            return False
        try:
            written = keeper.follow(self.cloud.list_instances() if instances is None else instances)
        except (OSError, ValueError, CloudError) as exc:
            log.warning("ssh config %s not rewritten: %s", keeper.path, exc)
            if str(exc) != self._failed:  # said once, not after every poll
                self.emit(BackgroundFailed("", f"keeping {keeper.path} in step with the instances", str(exc)))
            self._failed = str(exc)
            return False
        self._failed = ""
        return written

    @contextlib.asynccontextmanager
    async def after(self) -> AsyncIterator[None]:
        """Follow the instances after the block, whether it succeeded or not (a failed create may have launched)."""
        try:
            yield
        finally:
            if self.keeper.enabled:
                await asyncio.to_thread(self.follow)

    def write(self, write: bool = True) -> Report:
        """Blocking. Write the file now (from then on it follows the instances); `write=False` only says what it
        would be."""
        keeper = self.keeper
        plan, text, changed = keeper.write(self.cloud.list_instances(), write)
        line = sshinclude.include_line()
        return Report(keeper.path, changed, plan, line, sshinclude.is_installed(line=line), text,
                      sshinclude.wsl_note(line))

    def install(self) -> IncludeChange:
        self.write()
        return sshinclude.install()

    def uninstall(self) -> IncludeChange:
        change = sshinclude.uninstall()
        self.keeper.path.unlink(missing_ok=True)
        return change

    async def verify(self, names: Sequence[str], context: Callable[[Instance], Awaitable[RemoteContext]],
                     connect: Callable[[RemoteContext], Awaitable[None]]) -> list[str]:
        """Log in once to each ACTIVE instance of `names` whose console log pins its host key (through its head's
        pinned key for a worker): never a question. The names verified."""
        wanted = set(names)
        instances = [i for i in await asyncio.to_thread(self.cloud.list_instances)
                     if i.name in wanted and i.status == "ACTIVE"]

        async def one(inst: Instance) -> str | None:
            try:
                ctx = await context(inst)
                if not ctx.target.pinned or (ctx.target.via is not None and not ctx.target.via.pinned):
                    return None
                await connect(ctx)
            except (ManagerError, CloudError) as exc:
                log.info("host key of %s not verified: %s", inst.name, exc)
                return None
            return inst.name

        return [n for n in await asyncio.gather(*(one(i) for i in instances)) if n is not None]


async def remote_folder(conn: asyncssh.SSHClientConnection, name: str, folder: str) -> str:
    """`folder` (`~/workspace`, relative or absolute) as an absolute path on the instance: its HOME read over the
    verified connection."""
    import asyncssh

    from tui.core.remote.session import run

    if folder.startswith("/"):
        return folder
    try:
        out = await run(conn, 'printf "%s" "$HOME"')
    except (OSError, TimeoutError, asyncssh.Error) as exc:
        raise ManagerError(f"could not read the home folder of {name}: {exc}") from exc
    home = out.stdout.strip().rstrip("/") or "~"
    rest = folder.removeprefix("~").lstrip("/")
    return f"{home}/{rest}" if rest and rest != "." else home
