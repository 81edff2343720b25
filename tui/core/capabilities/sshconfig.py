"""`engine.sshconfig`: the instances by name in other tools — the generated ssh config (`tui.core.sshkeep`) written,
included, verified, and kept in step with the instances; an instance's folder for VS Code
(`tui.core.api.SshConfigApi`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager

from tui.core.manager import RemoteManager
from tui.core.models import Instance
from tui.core.services import RemoteContext
from tui.core.sshconfig import Report
from tui.core.sshinclude import IncludeChange
from tui.core.sshkeep import SshConfigs, remote_folder


class EngineSshConfig:
    def __init__(self, configs: SshConfigs, manager: RemoteManager,
                 context: Callable[[Instance], Awaitable[RemoteContext]]) -> None:
        self.configs, self.manager, self._context = configs, manager, context

    def follow(self, instances: Sequence[Instance] | None = None) -> bool:
        """Blocking. Rewrite the generated ssh config when the user made one and the instances (listed when None)
        change it: after every poll that changed instances, every launch, delete and cluster change — for the app
        and the CLI alike. Never raises (a failure is emitted once)."""
        return self.configs.follow(instances)

    def after(self) -> AbstractAsyncContextManager[None]:
        """Follow the instances after the block, whether it succeeded or not."""
        return self.configs.after()

    def write(self, write: bool = True) -> Report:
        return self.configs.write(write)

    def install(self) -> IncludeChange:
        return self.configs.install()

    def uninstall(self) -> IncludeChange:
        return self.configs.uninstall()

    async def verify(self, names: Sequence[str]) -> list[str]:
        return await self.configs.verify(names, self._context, self.manager.connect)

    async def remote_folder(self, inst: Instance, folder: str) -> str:
        """For VS Code: `folder` as an absolute path on the instance, over the verified login (which also puts its
        host key into the app's known_hosts, where the generated config's strict checking looks)."""
        return await remote_folder(await self.manager.connection(await self._context(inst)), inst.name, folder)
