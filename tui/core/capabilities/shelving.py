"""`engine.shelving`: shelve and unshelve an instance (`tui.core.shelving`, built on first use): nothing runs, the
disk is kept; its SSH context forgotten once shelved, failures one `ManagerError` line
(`tui.core.api.ShelvingApi`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from tui.core.api import Confirm
from tui.core.capabilities.errors import as_manager_error
from tui.core.cloud.base import Cloud
from tui.core.cluster.lifecycle import ClusterLifecycle
from tui.core.config import Settings
from tui.core.manager import RemoteManager
from tui.core.models import Instance
from tui.core.services import RemoteContext

if TYPE_CHECKING:
    from tui.core.shelveplan import ShelvePlan, Unshelved
    from tui.core.shelving import Shelving


class EngineShelving:
    """`forget(id)` drops an instance's SSH context (a shelved one comes back elsewhere)."""

    def __init__(self, settings: Settings, cloud: Cloud, manager: RemoteManager, lifecycle: ClusterLifecycle,
                 context: Callable[[Instance], Awaitable[RemoteContext]], forget: Callable[[str], object]) -> None:
        self.settings, self.cloud, self.manager, self.lifecycle = settings, cloud, manager, lifecycle
        self._context, self._forget = context, forget
        self._shelving: Shelving | None = None

    @property
    def service(self) -> Shelving:
        """Shelve and unshelve (tui.core.shelving), built on first use."""
        if self._shelving is None:
            from tui.core.shelving import Shelving

            self._shelving = Shelving(self.settings, self.cloud, self.manager, self.lifecycle, self._context)
        return self._shelving

    async def plan(self, inst: Instance) -> ShelvePlan:
        """What shelving `inst` ends and keeps (Jupyter and busy kernels, the cluster it heads, its volumes)."""
        with as_manager_error():
            return await self.service.plan(inst)

    async def shelve(self, inst: Instance, confirm: Confirm | None, say: Callable[[str], None] | None = None
                     ) -> Instance:
        """Shelve `inst` once `confirm` said yes to what it ends (Cancelled otherwise); its tunnels closed first,
        their ports remembered. Returns it settled (SHELVED or SHELVED_OFFLOADED)."""
        with as_manager_error():
            done = await self.service.shelve(inst, confirm, say)
        self._forget(inst.id)
        return done

    async def unshelve(self, inst: Instance, say: Callable[[str], None] | None = None,
                       restore: bool = True) -> Unshelved:
        """Unshelve `inst` and wait until ACTIVE; with `restore`, Jupyter (if it ran before) on its old local
        port and the sessions of the cluster it heads again. QuotaShort (a ManagerError) with the numbers when
        the cloud refuses it for quota."""
        with as_manager_error():
            return await self.service.unshelve(inst, say, restore)
