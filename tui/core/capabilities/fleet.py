"""`engine.fleet`: the app's upkeep of all its instances at once — each one's signals read again (`refresh`), the
Jupyter servers, saved forwards and Dask clusters found again at start (`reattach`), the idle checks
(`tui.core.api.FleetApi`). One instance's failure never stops the others: it is logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from tui.core.capabilities.autostop import EngineAutostop
from tui.core.capabilities.forwards import EngineForwards
from tui.core.cloud.base import CloudError
from tui.core.cluster.lifecycle import ClusterLifecycle
from tui.core.errors import ManagerError
from tui.core.manager import RemoteManager
from tui.core.models import Instance
from tui.core.services import RemoteContext

log = logging.getLogger(__name__)
QUIET_LOGINS_PER_ROUND = 4  # new logins for load and memory per refresh (each failed one waits QUIET_RETRY_S)


class EngineFleet:
    """`polls()`: how many polls the engine made (the autostop's look at instances without a known watchdog)."""

    def __init__(self, manager: RemoteManager, context: Callable[[Instance], Awaitable[RemoteContext]],
                 lifecycle: ClusterLifecycle, forwards: EngineForwards, autostop: EngineAutostop,
                 polls: Callable[[], int]) -> None:
        self.manager, self.lifecycle, self.forwards, self.autostop = manager, lifecycle, forwards, autostop
        self._context, self._polls = context, polls

    async def refresh(self, instances: Sequence[Instance], new_logins: int = QUIET_LOGINS_PER_ROUND) -> None:
        """Per-instance signals (`RemoteManager.refresh`): every ACTIVE instance that answers SSH with a pinned or
        known host key (never a question) — over the connections already open, and `new_logins` quiet new logins."""
        active = [i for i in instances if i.status == "ACTIVE"]
        pool, logins = self.manager.pool, self.manager.connections
        connected = [i for i in active if pool.is_connected(i.id)]
        new = [i for i in active if not pool.is_connected(i.id) and logins.may_try_quietly(i.id)]
        await asyncio.gather(*(self._refresh(i) for i in [*connected, *new[:new_logins]]))

    async def _refresh(self, inst: Instance) -> None:
        try:
            await self.manager.refresh(await self._context(inst))
            await self.autostop.refresh(inst, self._polls())
        except (CloudError, ManagerError) as exc:
            self.manager.connections.quiet_failed(inst.id)
            log.info("signals of %s not read: %s", inst.name, exc)

    async def reattach(self, instances: Sequence[Instance]) -> list[str]:
        """Find the Jupyter servers recorded on these instances and re-open their tunnels; the ids running one."""
        known = [i for i in instances if i.id in self.manager.state.servers and i.status == "ACTIVE"]
        contexts = await asyncio.gather(*(self._context(i) for i in known), return_exceptions=True)
        for inst, ctx in zip(known, contexts, strict=True):
            if isinstance(ctx, BaseException):
                log.warning("reattach %s: %s", inst.name, ctx)
        running = await self.manager.reattach_all([c for c in contexts if isinstance(c, RemoteContext)])
        try:
            await self.forwards.reopen(instances)
        except Exception:  # never stops the app's start; said in the log
            log.exception("re-opening the saved forwards failed")
        try:
            await self.lifecycle.reattach([i for i in instances if i.status == "ACTIVE"])
        except Exception:  # never stops the app's start; said in the log
            log.exception("re-attaching Dask clusters failed")
        return running

    async def check_idle(self, instances: Sequence[Instance], now: datetime) -> list[str]:
        """Idle check of each ACTIVE instance with a server (nudges come as events). One instance's failure —
        expected or not — never stops the others; it is logged. Returns the names checked."""
        checked = []
        for inst in [i for i in instances if i.status == "ACTIVE" and self.manager.server(i.id) is not None]:
            try:
                await self.manager.check_idle(await self._context(inst), now=now)
                checked.append(inst.name)
            except (ManagerError, CloudError) as exc:
                log.info("idle check of %s: %s", inst.name, exc)  # unreachable now: the next round tries again
            except Exception:
                log.exception("idle check of %s failed unexpectedly", inst.name)
        for head in [i for i in instances if i.status == "ACTIVE" and i.id in self.lifecycle.heads]:
            try:
                await self.lifecycle.check_idle(head, now.timestamp())
                checked.append(f"{head.name} (cluster)")
            except Exception:
                log.exception("cluster idle check of %s failed unexpectedly", head.name)
        return checked
