"""Deleting what bills, in one place for the app and the CLI: an instance together with the Dask cluster it heads
(its workers, their volumes, the security group, the tunnels), a cluster whose head stays, and what a cluster left
behind when its head was deleted (workers `HEAD-wN` and the group `cades-dask-HEAD` with no head).

Every path first says what goes (a `Deletion`, or the cluster's text) and asks; then it closes the app's own
connections and tunnels to what it deletes (workers before their head, which is their jump host), so a deliberate
delete never reads as "SSH connection … lost"; then it deletes the instances (with their volumes where asked) and,
last, the group (Neutron refuses it while a member's port still uses it: retried).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from tui.core.autostop import credential as autostop_credential
from tui.core.cloud.base import CloudError, Conflict, NotFound
from tui.core.cluster.deletion import Deletion, Leftover, cluster_delete_text, volumes_of
from tui.core.cluster.errors import ClusterCancelled, ClusterError
from tui.core.cluster.manifest import read_manifest
from tui.core.cluster.plan import WORKER_NAME, worker_numbers
from tui.core.cluster.workers import SG_PREFIX, number, security_group_name
from tui.core.errors import ManagerError
from tui.core.events import ClusterProgress, ClusterState, Emit
from tui.core.hints import command
from tui.core.models import Instance, Volume
from tui.core.units import plural

if TYPE_CHECKING:
    import asyncssh

    from tui.core.cloud.base import Cloud
    from tui.core.cluster.dask_ssh import DaskOverSSH, Manifest
    from tui.core.manager import RemoteManager
    from tui.core.services import RemoteContext

log = logging.getLogger(__name__)

Ask = Callable[[Deletion], Awaitable[bool | None]]  # the facts -> None: cancelled; else delete its volumes too?
Confirm = Callable[[str], Awaitable[bool]]
JUPYTER_CHECK_S = 15.0  # how long a delete waits to learn whether Jupyter runs on the instance


def members_named(head: str, instances: Sequence[Instance]) -> list[Instance]:
    """The instances named `HEAD-wN`, numbered order."""
    found = [i for i in instances if worker_numbers(head, [i.name])]
    return sorted(found, key=lambda i: number(Instance(id="", name=head, status=""), i.name))


def find_leftovers(instances: Sequence[Instance], volumes: Sequence[Volume], groups: Sequence[str],
                   only: str = "") -> list[Leftover]:
    """Clusters whose head is gone: a group `cades-dask-HEAD` with no instance HEAD (the group is made before any
    worker and deleted after them, so it marks a cluster's instances as the app's own), with the `HEAD-wN` workers
    that remain. With `only` (a head named by the user): that head's, found by the workers' names too."""
    present = {i.name for i in instances}
    heads = {g[len(SG_PREFIX):] for g in groups if g.startswith(SG_PREFIX)}
    if only:
        heads = {only} if only in heads or members_named(only, instances) else set()
    out = []
    for head in sorted(heads - present):
        workers = tuple(members_named(head, instances))
        group = security_group_name(head)
        out.append(Leftover(head, workers, tuple(v for w in workers for v in volumes_of(w, volumes)),
                            group if group in groups else ""))
    return out


class TeardownHost(Protocol):
    """What `Teardown` uses of its `ClusterLifecycle` (a protocol: this module does not import it back)."""

    cloud: Cloud
    manager: RemoteManager
    emit: Emit
    poll_s: float

    async def context_of(self, inst: Instance) -> RemoteContext: ...
    async def connect(self, inst: Instance) -> asyncssh.SSHClientConnection: ...
    async def status(self, head_ref: str | Instance) -> ClusterState: ...
    def forget_cluster(self, head_id: str) -> None: ...
    async def cluster_of(self, head: Instance, manifest: Manifest | None = None,
                         instances: Sequence[Instance] | None = None) -> DaskOverSSH: ...


class Teardown:
    """The deletes of a `ClusterLifecycle` (its cloud, manager and events). See the module docstring."""

    def __init__(self, service: TeardownHost) -> None:
        self.s = service

    # -- what is there --------------------------------------------------------------------------------------------
    async def inventory(self) -> tuple[list[Instance], list[Volume], list[str]]:
        """Instances, volumes and security group names. A cloud that lists no groups (no Neutron) has no
        clusters either: it deletes instances all the same."""
        cloud = self.s.cloud

        def groups() -> list[str]:
            try:
                return cloud.list_security_groups()
            except CloudError as exc:
                log.warning("security groups not listed: %s", exc)
                return []

        instances, volumes, names = await asyncio.gather(asyncio.to_thread(cloud.list_instances),
                                                         asyncio.to_thread(cloud.list_volumes),
                                                         asyncio.to_thread(groups))
        return instances, volumes, names

    async def leftovers(self, only: str = "") -> list[Leftover]:
        """What deleted heads left (see `find_leftovers`)."""
        return find_leftovers(*await self.inventory(), only=only)

    async def plan(self, ref: str) -> Deletion:
        """What deleting instance `ref` takes with it (see `Deletion`)."""
        inst, (instances, volumes, groups) = await asyncio.gather(asyncio.to_thread(self.s.cloud.get_instance, ref),
                                                                  self.inventory())
        present = {i.name for i in instances}
        workers: list[Instance] = []
        group, member_of, leftover_of = "", "", ""
        if security_group_name(inst.name) in groups:  # made before any worker: it marks a head (and its workers)
            workers = members_named(inst.name, instances)
            group = security_group_name(inst.name)
        elif (m := WORKER_NAME.match(inst.name)) and security_group_name(m.group(1)) in groups:
            if m.group(1) in present:
                member_of = m.group(1)
            else:  # a leftover: its siblings and the group go with it
                leftover_of = m.group(1)
                workers = [w for w in members_named(leftover_of, instances) if w.id != inst.id]
                group = security_group_name(leftover_of)
        running, busy = await self.jupyter_on(inst)
        return Deletion(inst, volumes_of(inst, volumes), tuple(workers),
                        tuple(v for w in workers for v in volumes_of(w, volumes)), group,
                        jupyter_text(inst.name, busy) if running else "", await self._tasks(inst, workers),
                        member_of, leftover_of)

    async def jupyter_on(self, inst: Instance) -> tuple[bool, list[str] | str]:
        """Whether Jupyter runs on the instance, and its busy kernels — asked only where a server is on record (a
        VM never seen running Jupyter is not logged into just to delete it). A server on record that cannot be asked
        (the VM does not answer, its kernels cannot be listed) is unknown, not "none busy": (True, why)."""
        manager = self.s.manager
        if inst.status != "ACTIVE" or (manager.server(inst.id) is None and inst.id not in manager.state.servers):
            return False, []
        try:
            async with asyncio.timeout(JUPYTER_CHECK_S):
                ctx = await self.s.context_of(inst)
                if manager.server(inst.id) is None and await manager.find_jupyter(ctx) is None:
                    return False, []
                return True, [k.name for k in await manager.kernels(ctx) if k.busy]
        except (ManagerError, CloudError, TimeoutError) as exc:
            log.warning("asking Jupyter on %s for its kernels before deleting it: %s", inst.name, exc)
            return True, str(exc) or type(exc).__name__

    async def _tasks(self, head: Instance, workers: Sequence[Instance]) -> int:
        """Tasks running on the cluster headed by `head` (0 when none, or when the scheduler does not answer)."""
        if not workers or head.status != "ACTIVE":
            return 0
        with contextlib.suppress(ManagerError, CloudError, ClusterError):
            async with asyncio.timeout(JUPYTER_CHECK_S):
                if await read_manifest(head, self.s.connect) is not None:
                    state = await self.s.status(head)
                    return sum(w.processing for w in state.status.workers) if state.status else 0
        return 0

    # -- an instance, and what goes with it -----------------------------------------------------------------------
    async def delete_instance(self, ref: str, ask: Ask | None, delete_volumes: bool = False) -> Deletion:
        """Delete instance `ref` with the cluster it heads (or, for a leftover worker, the rest of its cluster),
        after `ask` saw the facts (its answer: delete the instance's own volumes too?). ClusterError when
        cancelled. Returns the facts it acted on."""
        plan = await self.plan(ref)
        if ask is not None:
            choice = await ask(plan)
            if choice is None:
                raise ClusterCancelled("delete cancelled; nothing deleted")
            delete_volumes = choice
        inst = plan.instance
        await self.remove([*((w, True) for w in plan.workers), (inst, delete_volumes)], inst.id)
        if plan.group:
            await self.drop_group(plan.group, inst.id)
        if plan.takes_cluster and not plan.leftover_of:
            self.s.forget_cluster(inst.id)
        return plan

    async def remove(self, items: Sequence[tuple[Instance, bool]], head_id: str = "") -> None:
        """Delete these instances (each with its volumes or not), the app's connections to them closed first."""
        for inst, _ in items:  # in order: workers before the head they are reached through
            await self.s.manager.forget_instance(inst.id)

        async def one(inst: Instance, volumes: bool) -> None:
            self._say(head_id, inst.name, f"deleting {inst.name}" + (" and its volumes" if volumes else ""))
            try:
                with contextlib.suppress(NotFound):  # gone already: what was wanted
                    await asyncio.to_thread(self.s.cloud.delete, inst.id, volumes, True)
            except BaseException:
                self.s.manager.pool.allow(inst.id)  # still there: it may be reached again
                raise
            await asyncio.to_thread(autostop_credential.forget, self.s.cloud, inst.id)  # its shelve credential
            self.s.manager.services.keystore.forget(inst.id)

        results = await asyncio.gather(*(one(i, v) for i, v in items), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def drop_group(self, name: str, head_id: str = "", leave: Instance | None = None) -> None:
        """Delete security group `name` (`leave`: an instance that stays takes itself out of it first); retried
        while Neutron still counts a deleted member's port."""
        cloud = self.s.cloud
        if leave is not None:
            await asyncio.to_thread(cloud.remove_security_group, leave.id, name)
        for attempt in range(20):
            try:
                await asyncio.to_thread(cloud.delete_security_group, name)
                break
            except Conflict:
                if attempt == 19:
                    raise
                await asyncio.sleep(self.s.poll_s)
        self._say(head_id, "", f"security group {name} deleted")

    # -- a cluster whose head stays, or what a deleted head left ----------------------------------------------
    async def delete_cluster(self, head_ref: str, confirm: Confirm | None = None) -> list[str]:
        """Stop the scheduler and workers, delete the worker instances (with their volumes) and the security
        group; the head stays. When there is no instance `head_ref` any more: what its cluster left. Returns the
        names of the instances deleted."""
        instances, volumes, groups = await self.inventory()
        head = next((i for i in instances if head_ref in (i.id, i.name)), None)
        if head is None:
            left = find_leftovers(instances, volumes, groups, only=head_ref)
            if not left:
                raise ClusterError(f"no instance and no Dask cluster named {head_ref!r}",
                                   f"see `{command('list')}`; `{command('cluster', 'delete')}` alone lists what "
                                   "deleted clusters left")
            return await self.delete_leftovers(left, confirm)
        workers = members_named(head.name, instances)
        group = security_group_name(head.name)
        manifest = None
        if head.status == "ACTIVE":
            try:
                manifest = await read_manifest(head, self.s.connect)
            except (ManagerError, CloudError) as exc:  # the sessions end with the workers' instances anyway
                self._say(head.id, head.name, f"cannot reach {head.name} to stop the cluster's sessions ({exc}); "
                          "deleting its workers all the same")
        running = (await self.jupyter_on(head))[0]
        text = cluster_delete_text(head.name, workers, [v for w in workers for v in volumes_of(w, volumes)],
                                   group if group in groups else "",
                                   await self._tasks(head, workers) if manifest else 0, running)
        if confirm is not None and not await confirm(text):
            raise ClusterCancelled("delete cancelled; nothing changed")
        if manifest is not None:
            await (await self.s.cluster_of(head, manifest)).stop()
        await self.s.manager.close_tunnel(head.id, "dask-dashboard")
        await self.remove([(w, True) for w in workers], head.id)
        if group in groups:
            await self.drop_group(group, head.id, leave=head)
        self.s.forget_cluster(head.id)
        self._say(head.id, "", f"cluster on {head.name} deleted")
        return [w.name for w in workers]

    async def delete_leftovers(self, left: Sequence[Leftover], confirm: Confirm | None = None) -> list[str]:
        """Delete what deleted heads left (after `confirm` read the list). The names of the instances deleted."""
        if not left:
            return []
        text = ("Delete what deleted Dask clusters left, still counted against your quota:\n"
                + "\n".join(f"- {x.text()}" for x in left))
        if confirm is not None and not await confirm(text):
            raise ClusterCancelled("delete cancelled; nothing changed")
        gone: list[str] = []
        for item in left:
            await self.remove([(w, True) for w in item.workers])
            if item.group:
                await self.drop_group(item.group)
            gone += [w.name for w in item.workers]
            self._say("", "", f"what the cluster of {item.head} left is deleted ("
                              f"{plural(len(item.workers), 'instance')}" + (", its group" if item.group else "") + ")")
        return gone

    def _say(self, head_id: str, instance: str, message: str) -> None:
        self.s.emit(ClusterProgress(instance, "delete", message, head_id))


def jupyter_text(name: str, busy: Sequence[str] | str) -> str:
    """What deleting ends on the instance; `busy` the busy kernels, or why they could not be listed."""
    if isinstance(busy, str):  # unknown is not "none": said, and counted as possibly busy
        kernels = f", and it could not tell whether kernels are busy ({busy}): some may be running code"
    else:
        kernels = (f", and {plural(len(busy), 'kernel')} {'is' if len(busy) == 1 else 'are'} busy running code "
                   f"({', '.join(busy)})" if busy else "")
    return (f"Jupyter is running on {name}{kernels}: deleting ends it, and everything in its memory and unsaved "
            "notebooks is lost.")


__all__ = ["Ask", "Deletion", "Leftover", "Teardown", "find_leftovers", "members_named"]
