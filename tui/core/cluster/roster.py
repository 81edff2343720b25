"""Which workers a cluster should have that its scheduler does not list, and why: the scheduler forgets a worker
whose session died, and never knew one launched by an interrupted create — both still bill. Compares the head's
manifest (the cluster's record) and the cloud's `HEAD-wN` instances with the scheduler's view."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from tui.core.cloud.base import CloudError
from tui.core.cluster.errors import ClusterError
from tui.core.cluster.workers import members
from tui.core.errors import ManagerError
from tui.core.models import AbsentWorker, ClusterStatus, Instance

SESSION_CHECK_S = 10.0

Running = Callable[[Instance], Awaitable[bool]]  # does the worker's session run on it?


async def absent_workers(head: Instance, recorded: Sequence[str] | None, instances: Sequence[Instance],
                         status: ClusterStatus | None, running: Running) -> tuple[AbsentWorker, ...]:
    """`recorded`: the manifest's workers (None without a manifest). Lost and starting workers are told apart
    only while the scheduler answers (otherwise none is connected, and the scheduler is the problem); unjoined
    ones always."""
    connected = set(status.names) if status is not None else set()
    by_name = {i.name: i for i in instances}

    async def one(name: str) -> AbsentWorker:
        inst = head if name == head.name else by_name.get(name)
        if inst is None:
            return AbsentWorker(name, "lost", "its instance is gone")
        if inst.status != "ACTIVE":
            return AbsentWorker(name, "lost", f"its instance is {inst.status}")
        try:
            up = await asyncio.wait_for(running(inst), SESSION_CHECK_S)
        except (ManagerError, CloudError, ClusterError, TimeoutError) as exc:
            return AbsentWorker(name, "lost", f"unreachable: {exc or 'no answer'}")
        if up:
            return AbsentWorker(name, "starting", "its session runs; not connected to the scheduler yet")
        return AbsentWorker(name, "lost", "its worker session ended")

    pending = [n for n in (recorded or ()) if n not in connected] if status is not None else []
    out = list(await asyncio.gather(*(one(n) for n in pending)))
    listed = set(recorded or ())
    out += [AbsentWorker(w.name, "unjoined", f"instance {w.status}; never joined the cluster")
            for w in members(head, instances) if w.name not in listed and w.name not in connected]
    return tuple(out)
