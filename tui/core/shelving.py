"""Shelving an instance (Nova's shelve: nothing runs, its disk kept, its cores and RAM freed once offloaded) and
bringing it back, as the app and the CLI both do it through the engine.

Before a shelve, the facts stop and delete also weigh (`Teardown.plan`: Jupyter and its busy kernels, the Dask
cluster the instance heads, its volumes) are put in words (`ShelvePlan.text`) for the user's yes; then the tunnels
to it are closed (their local ports remembered) and the cloud shelves it. After an unshelve, Jupyter is started
again if it ran before (its record in the state file survives the shelve), its tunnel on the same local port, and
the sessions of the cluster it heads are restarted (`ClusterLifecycle.reattach`). An unshelve the cloud refuses for
quota is said with the numbers: what the instance needs against what is free.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from tui.core.api import Cancelled, ManagerError
from tui.core.cloud.base import Cloud, QuotaExceeded
from tui.core.cluster.lifecycle import DASHBOARD, ClusterLifecycle
from tui.core.config import Settings
from tui.core.cost import per_hour, saving
from tui.core.events import JupyterState
from tui.core.hints import command
from tui.core.manager import RemoteManager
from tui.core.models import Instance
from tui.core.services import RemoteContext
from tui.core.shelveplan import ShelvePlan, Unshelved, quota_refusal
from tui.core.state import JUPYTER

log = logging.getLogger(__name__)
Say = Callable[[str], None]


class QuotaShort(ManagerError):
    """The cloud refused an unshelve for quota; the message has the numbers."""


class Shelving:
    """The shelve and unshelve of the engine (its cloud, remote manager, clusters and SSH contexts)."""

    def __init__(self, settings: Settings, cloud: Cloud, manager: RemoteManager, cluster: ClusterLifecycle,
                 context: Callable[[Instance], Awaitable[RemoteContext]]) -> None:
        self.settings, self.cloud, self.manager, self.cluster, self.context = settings, cloud, manager, cluster, context

    async def plan(self, inst: Instance) -> ShelvePlan:
        """The facts (as delete gathers them) and what shelving saves by the cost model."""
        facts = await self.cluster.teardown.plan(inst.id)
        running, busy = await self.cluster.teardown.jupyter_on(facts.instance)
        model = self.settings.cost_model
        saves = saving(model, facts.instance, "shelve") if model else 0.0
        return ShelvePlan(facts.instance, running, busy if isinstance(busy, str) else tuple(busy), facts.workers,
                          facts.tasks, facts.member_of, facts.volumes,
                          per_hour(saves, model.unit) if model and saves > 0 else "")

    async def shelve(self, inst: Instance, confirm: Callable[[str], Awaitable[bool]] | None,
                     say: Say | None = None) -> Instance:
        """Shelve after `confirm` saw `ShelvePlan.text` (False: Cancelled, nothing changed). Waits until settled."""
        if inst.shelved:
            raise ManagerError(f"{inst.name} is already {inst.status}: `{command('unshelve', inst.name)}` brings "
                               "it back")
        if inst.status not in ("ACTIVE", "SHUTOFF"):
            raise ManagerError(f"{inst.name} is {inst.status}: it can be shelved when ACTIVE or SHUTOFF")
        plan = await self.plan(inst)
        if confirm is not None and not await confirm(plan.text()):
            raise Cancelled(f"shelving {inst.name} cancelled; nothing changed")
        await self._end_workers(plan.workers)
        await self._let_go(inst)
        return await asyncio.to_thread(self.cloud.shelve, inst.id, True, say)

    async def _end_workers(self, workers: tuple[Instance, ...]) -> None:
        """The head goes: its workers' sessions are ended first (a worker whose scheduler went closes but may
        linger in its session), so the unshelve's reattach starts the whole cluster afresh."""
        from tui.core.cluster.commands import WORKER_SESSION
        from tui.core.remote.session import RemoteSession

        for worker in workers:
            try:
                conn = await self.cluster.connect(worker)
                await (await RemoteSession.detect(conn)).kill(WORKER_SESSION)
            except Exception as exc:  # a worker not reached keeps its session: the reattach restarts what it can
                log.warning("the Dask worker session on %s not ended before shelving: %s", worker.name, exc)

    async def _let_go(self, inst: Instance) -> None:
        """Before the VM goes: close the tunnels to it (records of Jupyter's server and tunnel ports kept) and
        its SSH connection."""
        iid = inst.id
        tunnels = {t.purpose for t in self.manager.tunnels() if t.instance == iid}
        for purpose in tunnels:
            await self.manager.close_tunnel(iid, purpose)
        await self.manager.unfollow_log(iid)
        if self.manager.server(iid) is not None or iid in self.manager.state.servers:
            self.manager.emit(JupyterState(iid, "stopped"))  # the power-off ends it (its record stays: it comes back)
        self.manager.servers.drop(iid)
        await self.manager.pool.close(iid)

    async def unshelve(self, inst: Instance, say: Say | None = None, restore: bool = True) -> Unshelved:
        """Unshelve and wait until ACTIVE; then (`restore`) Jupyter, its tunnel and the cluster's sessions again."""
        if not inst.shelved:
            raise ManagerError(f"{inst.name} is {inst.status}, not shelved: nothing to unshelve")
        try:
            back = await asyncio.to_thread(self.cloud.unshelve, inst.id, True, say)
        except QuotaExceeded as exc:
            quota = await asyncio.to_thread(self.cloud.get_quota)
            raise QuotaShort(f"{quota_refusal(inst, quota)} — stop, shelve or delete another instance (or resize one "
                             "down), or ask your cloud for more quota") from exc
        if not restore:
            return Unshelved(back)
        port, error = await self._jupyter_again(back, say)
        clusters = await self._cluster_again(back)
        return Unshelved(back, port, error, tuple(clusters))

    async def _jupyter_again(self, inst: Instance, say: Say | None) -> tuple[int, str]:
        if inst.id not in self.manager.state.servers:
            return 0, ""
        wanted = self.manager.state.last_port(inst.id, JUPYTER) or None
        if say:
            say(f"{inst.name}: starting Jupyter again" + (f" (tunnel on 127.0.0.1:{wanted})" if wanted else ""))
        try:
            state = await self.manager.start_jupyter(await self.context(inst), local_port=wanted)
        except ManagerError as exc:
            log.warning("Jupyter not started again on %s: %s", inst.name, exc)
            return 0, str(exc)
        return state.local_port or 0, ""

    async def _cluster_again(self, head: Instance) -> list[str]:
        instances = await asyncio.to_thread(self.cloud.list_instances)
        if (head.id, DASHBOARD) not in self.manager.state.tunnels and not any(
                i.name.startswith(f"{head.name}-w") for i in instances):
            return []
        names: list[str] = await self.cluster.reattach([head, *[i for i in instances if i.id != head.id]])
        return names
