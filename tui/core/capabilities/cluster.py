"""`engine.cluster`: a Dask cluster headed by an instance (`tui.core.cluster.lifecycle`), its changes followed in the
generated ssh config, its failures one `ManagerError` line (`tui.core.api.ClusterApi`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

from tui.core.api import Confirm
from tui.core.capabilities.errors import as_manager_error, ref
from tui.core.cluster.deletion import Leftover
from tui.core.cluster.lifecycle import ClusterLifecycle
from tui.core.events import ClusterState
from tui.core.models import ClusterSummary, Instance

After = Callable[[], AbstractAsyncContextManager[None]]  # the ssh config followed once the block is done


class EngineCluster:
    def __init__(self, lifecycle: ClusterLifecycle, after: After) -> None:
        self.lifecycle = lifecycle
        self._after = after

    async def create(self, head: Instance | str, workers: int | None = None, flavor: str = "", *,
                     head_worker: bool | None = None, dashboard: bool | None = None,
                     from_image: str | None = None) -> ClusterSummary:
        async with self._after():
            with as_manager_error():
                return await self.lifecycle.create(ref(head), workers, flavor, head_worker, dashboard, from_image)

    async def scale(self, head: Instance | str, n: int, confirm: Confirm | None = None, flavor: str = "", *,
                    dashboard: bool | None = None, from_image: str | None = None) -> ClusterSummary:
        async with self._after():
            with as_manager_error():
                return await self.lifecycle.scale(ref(head), n, confirm, flavor, dashboard=dashboard,
                                                  from_image=from_image)

    async def status(self, head: Instance | str) -> ClusterState:
        with as_manager_error():
            return await self.lifecycle.status(head)

    async def dashboard(self, head: Instance | str) -> str:
        with as_manager_error():
            return await self.lifecycle.dashboard(ref(head))

    async def delete(self, head: Instance | str, confirm: Confirm | None = None) -> list[str]:
        async with self._after():
            with as_manager_error():
                return await self.lifecycle.delete(ref(head), confirm)

    async def leftovers(self) -> list[Leftover]:
        with as_manager_error():
            return await self.lifecycle.leftovers()

    async def delete_leftovers(self, left: Sequence[Leftover], confirm: Confirm | None = None) -> list[str]:
        with as_manager_error():
            return await self.lifecycle.teardown.delete_leftovers(left, confirm)
