"""`engine.jupyter`: the Jupyter server of an instance (`RemoteManager`: `tui.core.jupyter`) — started, stopped,
found, its URL, log and kernels, its idle nudge snoozed (`tui.core.api.JupyterApi`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from tui.core.events import JupyterState, StopOutcome
from tui.core.manager import RemoteManager
from tui.core.models import Instance, KernelInfo
from tui.core.services import RemoteContext


class EngineJupyter:
    def __init__(self, manager: RemoteManager, context: Callable[[Instance], Awaitable[RemoteContext]]) -> None:
        self.manager, self._context = manager, context

    async def start(self, inst: Instance, local_port: int | None = None) -> JupyterState:
        return await self.manager.start_jupyter(await self._context(inst), local_port)

    async def stop(self, inst: Instance, force: bool = False) -> StopOutcome:
        return await self.manager.stop_jupyter(await self._context(inst), force=force)

    async def find(self, inst: Instance) -> int | None:
        """The remote port of the server running on the instance (None: none)."""
        handle = await self.manager.find_jupyter(await self._context(inst))
        return None if handle is None else handle.port

    def url(self, instance_id: str, local_port: int, with_token: bool = False) -> str:
        handle = self.manager.server(instance_id)
        if handle is None:
            return ""
        return handle.url(local_port) if with_token else handle.public_url(local_port)

    async def token_url(self, inst: Instance) -> str | None:
        """The tokenized URL through the tunnel, opening the tunnel when there is none (memory only)."""
        url = self.manager.token_url(inst.id)
        if url is None:
            await self.manager.open_tunnel(await self._context(inst), None, False)
            url = self.manager.token_url(inst.id)
        return url

    async def follow_log(self, inst: Instance) -> None:
        await self.manager.follow_log(await self._context(inst))

    async def unfollow_log(self, instance_id: str) -> None:
        await self.manager.unfollow_log(instance_id)

    async def log(self, inst: Instance, lines: int = 200) -> list[str]:
        return await self.manager.read_log(await self._context(inst), lines)

    async def kernels(self, inst: Instance) -> list[KernelInfo]:
        return await self.manager.kernels(await self._context(inst))

    def snooze(self, instance_id: str) -> datetime:
        return self.manager.snooze(instance_id)
