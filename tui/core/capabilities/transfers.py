"""`engine.transfers`: copy or sync between here and an instance (`tui.core.transfer`), over the instance's verified
connection (`tui.core.api.TransfersApi`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from tui.core.cloud.base import Cloud
from tui.core.manager import RemoteManager
from tui.core.models import Instance
from tui.core.services import RemoteContext

if TYPE_CHECKING:
    import asyncssh

    from tui.core.transfer.models import TransferProgress, TransferRequest, TransferSummary


class EngineTransfers:
    def __init__(self, cloud: Cloud, manager: RemoteManager,
                 context: Callable[[Instance], Awaitable[RemoteContext]]) -> None:
        self.cloud, self.manager, self._context = cloud, manager, context

    async def run(self, req: TransferRequest, progress: Callable[[TransferProgress], None] | None = None,
                  say: Callable[[str], None] | None = None) -> TransferSummary:
        """Copy or sync between here and an instance (`tui.core.transfer`); `progress` is called from a worker
        thread, `say` with notes (a partial file started over, what --delete deletes)."""
        from tui.core.transfer.service import run_transfer

        async def reach(name: str) -> tuple[Instance, RemoteContext, asyncssh.SSHClientConnection]:
            inst = await asyncio.to_thread(self.cloud.get_instance, name)
            ctx = await self._context(inst)
            return inst, ctx, await self.manager.connection(ctx)

        return await run_transfer(reach, req, progress, say)
