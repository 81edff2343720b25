"""`engine.forwards`: any port of an instance, forwarded and kept (`tui.core.forwards.service`), reached by
instance; the saved ones' LocalForward lines followed in the generated ssh config (`tui.core.api.ForwardsApi`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from tui.core.forwards import Forward, Listener
from tui.core.forwards.service import ForwardService
from tui.core.models import Instance
from tui.core.services import RemoteContext

log = logging.getLogger(__name__)


class EngineForwards:
    """`context` gives an instance's SSH context, `follow` rewrites the ssh config, `names` maps ids to the names
    of the last poll."""

    def __init__(self, service: ForwardService, context: Callable[[Instance], Awaitable[RemoteContext]],
                 follow: Callable[[], object], names: Callable[[], Mapping[str, str]]) -> None:
        self.service = service
        self._context, self._follow, self._names = context, follow, names

    async def open(self, inst: Instance, remote_port: int, *, local_port: int | None = None, label: str = "",
                   remote_host: str = "127.0.0.1", save: bool = False) -> Forward:
        return await self.service.open(await self._context(inst), remote_port, local_port=local_port, label=label,
                                       remote_host=remote_host, save=save)

    def save(self, inst: Instance, remote_port: int, *, local_port: int | None = None, label: str = "",
             remote_host: str = "127.0.0.1") -> Forward:
        fwd = self.service.save(inst.id, inst.name, remote_port, local_port=local_port, label=label,
                                remote_host=remote_host)
        self._follow()  # its LocalForward line
        return fwd

    async def close(self, instance_id: str, label: str, *, remove: bool) -> None:
        await self.service.close(instance_id, label, remove=remove)
        if remove:
            await asyncio.to_thread(self._follow)

    async def toggle(self, inst: Instance, label: str) -> Forward | None:
        return await self.service.toggle(await self._context(inst), label)

    def all(self) -> list[Forward]:
        """Every user forward (saved, open here, open in another process), names from the last poll."""
        return self.service.all(self._names())

    async def suggestions(self, inst: Instance) -> list[Listener]:
        return await self.service.suggestions(await self._context(inst))

    async def reopen(self, instances: Sequence[Instance]) -> list[Forward]:
        """Open the saved, enabled forwards of these instances (ACTIVE ones); failures come as BackgroundFailed."""
        kept = {r.instance for r in self.service.state.forwards.values() if r.enabled}
        wanted = [i for i in instances if i.id in kept and i.status == "ACTIVE"]
        contexts = await asyncio.gather(*(self._context(i) for i in wanted), return_exceptions=True)
        for inst, ctx in zip(wanted, contexts, strict=True):
            if isinstance(ctx, BaseException):
                log.warning("forwards of %s not re-opened: %s", inst.name, ctx)
        return await self.service.reopen([c for c in contexts if isinstance(c, RemoteContext)])
