"""Dask clusters on the cloud: the orchestration the app and the CLI share (create, scale, status, dashboard,
reattach, idle nudges, delete). No UI here.

A cluster is a head (the instance that runs Jupyter; it gets the scheduler and, by default, a worker) and worker
instances named `HEAD-w1 … HEAD-wN`: launched from the head's image, key pair and network, with **no public
address** and only the cluster's security group (`cades-dask-HEAD`: members reach each other, nobody else). The
app reaches a worker through the head as SSH jump host (`SSHTarget.via`), each hop's host key pinned from its
console log. The Dask side (TLS, sessions, versions) is `DaskOverSSH`; the head's manifest is the only record of
the cluster, so a later run (or another process) finds it again without any local state. The cloud side (worker
instances, the security group) is `workers.WorkerInstances`; the idle round's clock is `idle.IdleClock`.

Cloud calls block: they run in threads (`asyncio.to_thread`). Progress comes as `ClusterProgress` events (the
Setup log pane and the CLI print them), the scheduler's view as `ClusterState`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import asyncssh

from tui.core.cloud.base import Cloud, CloudError
from tui.core.cluster.dask_ssh import ClusterConfig, ClusterError, DaskOverSSH, Found, Manifest, read_manifest
from tui.core.cluster.deletion import Deletion, Leftover, scale_down_text
from tui.core.cluster.errors import ClusterCancelled
from tui.core.cluster.idle import IdleClock
from tui.core.cluster.plan import heads_named, plan_workers
from tui.core.cluster.roster import absent_workers
from tui.core.cluster.status import StatusError
from tui.core.cluster.teardown import Ask, Teardown
from tui.core.cluster.workers import SG_PREFIX, WorkerInstances, number, security_group_name
from tui.core.cluster.workers import members as members_of
from tui.core.config import Settings
from tui.core.errors import ManagerError
from tui.core.events import ClusterPhase, ClusterProgress, ClusterState, Emit
from tui.core.guide import SetupSpec
from tui.core.hints import command
from tui.core.images import Images
from tui.core.imagesecrets import SecretsAside
from tui.core.jupyter.idle import Tier
from tui.core.manager import RemoteManager
from tui.core.models import ClusterStatus, ClusterSummary, Instance
from tui.core.services import RemoteContext

__all__ = ["DASHBOARD", "SG_PREFIX", "ClusterLifecycle", "Confirm", "ContextFor", "dashboard_url",
           "security_group_name"]

log = logging.getLogger(__name__)

DASHBOARD = "dask-dashboard"  # the dashboard tunnel's purpose

ContextFor = Callable[[Instance], Awaitable[RemoteContext]]
Confirm = Callable[[str], Awaitable[bool]]  # (what will be lost) -> go ahead?


async def _unknown(_inst: Instance) -> bool:
    return False


def frozen_image_name(head: str) -> str:
    """The image `--from-image` makes of (or reuses for) a head when none is named."""
    return f"{head}-frozen"


def dashboard_url(local_port: int) -> str:
    return f"http://127.0.0.1:{local_port}/status"


class ClusterLifecycle:
    """See the module docstring. `context(instance)` gives the SSH context of any instance (the engine's cache);
    for a worker it carries `via` = the head's target (`Services.prepare` sets it for every `HEAD-wN`)."""

    def __init__(self, settings: Settings, cloud: Cloud, manager: RemoteManager, context: ContextFor, emit: Emit,
                 *, active_timeout: float = 600.0, ssh_timeout: float = 120.0, poll_s: float = 1.0) -> None:
        self.settings = settings
        self.cloud = cloud
        self.manager = manager
        self._context = context
        self.emit = emit
        self.active_timeout = active_timeout
        self.ssh_timeout = ssh_timeout
        self.poll_s = poll_s
        self.heads: set[str] = set()  # heads of the clusters this process created or found (idle checks)
        self._idle = IdleClock()
        self.teardown = Teardown(self)

    # -- what other rooms ask ---------------------------------------------------------------------------------

    def config(self, manifest: Manifest | None = None) -> ClusterConfig:
        cs = self.settings.cluster
        memory = f"{cs.memory_fraction:g}"
        if manifest is not None:
            return manifest.config(nthreads=cs.threads_per_worker, memory_limit=memory)
        env = SetupSpec.from_settings(self.settings).prefix
        return ClusterConfig(env=env, scheduler_port=cs.scheduler_port, dashboard_port=cs.dashboard_port,
                             nthreads=cs.threads_per_worker, memory_limit=memory)

    async def context_of(self, inst: Instance) -> RemoteContext:
        return await self._context(inst)

    async def connect(self, inst: Instance) -> asyncssh.SSHClientConnection:
        """The pooled connection to a member (a worker through its head)."""
        return await self.manager.connection(await self._context(inst))

    # -- create / scale -----------------------------------------------------------------------------------------

    async def create(self, head_ref: str, workers: int | None = None, flavor: str = "",
                     head_worker: bool | None = None, dashboard: bool | None = None,
                     from_image: str | None = None) -> ClusterSummary:
        """Launch the missing workers (an existing `HEAD-wN` is adopted, never doubled), then start the scheduler
        and every worker and wait until they are connected. Workers that never become ACTIVE or cannot start are
        reported; the rest of the cluster runs. Idempotent. `from_image`: new workers start from that image of the
        project ("": the head's frozen image, made now when missing; a name: that image, which must exist) with the
        head's environment: no install."""
        cs = self.settings.cluster
        n = cs.workers if workers is None else workers
        with_head = cs.head_worker if head_worker is None else head_worker
        if n < 1 and not with_head:
            raise ClusterError("a cluster without workers and without a worker on the head would compute nothing",
                               "ask for at least one worker")
        head = await self._head(head_ref)
        await asyncio.to_thread(self._check_quota, head, n, flavor)  # before anything is installed or made
        cluster = DaskOverSSH(head, [head] if with_head else [], self.connect, self.config(),
                              progress=self._progress(head))
        image = await self._frozen(head, from_image) if from_image else ""  # a named one: checked before anything
        await cluster.prepare()  # the head's Python and dask, free ports: before any instance is launched
        if from_image == "":
            image = await self._frozen(head, "")  # the head's, made after prepare: it has dask
        try:
            members, failed = await self._grow(head, n, flavor, image)
            cluster.workers.extend(members)
            status = await cluster.start()
        except asyncio.CancelledError:
            await self._interrupted(head)
            raise
        return await self._finish(head, status, failed, dashboard=dashboard)

    async def _interrupted(self, head: Instance) -> None:
        """Create was interrupted: say which worker instances exist now (they bill until joined or deleted)."""
        try:
            workers = self.members(head, await asyncio.to_thread(self.cloud.list_instances))
        except CloudError as exc:
            self._say(head, "", "failed", f"interrupted; the cloud did not list the workers ({exc})")
            return
        if workers:
            self._say(head, "", "failed", f"interrupted: worker instances {', '.join(w.name for w in workers)} "
                      "exist and bill until deleted; those not joined show as unjoined in "
                      f"`{command('cluster', 'status', head.name)}`; `{command('cluster', 'create', head.name)}` "
                      f"joins them, `{command('cluster', 'delete', head.name)}` deletes them")

    async def scale(self, head_ref: str, n: int, confirm: Confirm | None = None, flavor: str = "",
                    dashboard: bool | None = None, from_image: str | None = None) -> ClusterSummary:
        """Up: launch and join new workers. Down: retire the highest-numbered workers gracefully (their data moves
        first), end their sessions, then delete those instances — after `confirm` says yes."""
        head = await self._head(head_ref)
        cluster = await self.cluster_of(head)
        current = [w for w in cluster.workers if w.id != head.id]
        if n > len(current):
            members, failed = await self._grow(head, n, flavor, await self._frozen(head, from_image))
            new = [w for w in members if w.name not in cluster.worker_names]
            status = await cluster.add_workers(new)
            return await self._finish(head, status, failed, dashboard=dashboard)
        if n == len(current):
            return await self._finish(head, await cluster.status(timeout=20.0), (), dashboard=dashboard)
        victims = sorted(current, key=lambda w: number(head, w.name))[n:]
        names = [w.name for w in victims]
        if confirm is not None and not await confirm(scale_down_text(victims, await asyncio.to_thread(
                self.cloud.list_volumes))):
            raise ClusterCancelled("scale down cancelled; nothing changed")
        status = await cluster.scale_down(names)
        await self.teardown.remove([(w, True) for w in victims], head.id)
        return await self._finish(head, status, (), removed=tuple(names), dashboard=dashboard)

    def _check_quota(self, head: Instance, n: int, flavor: str) -> None:
        """Blocking: the workers still to launch fit the remaining quota, else QuotaExceeded with the numbers —
        checked first, so a cluster that cannot fit installs nothing and makes no CA."""
        instances = self.cloud.list_instances()
        usable = [w for w in members_of(head, instances) if w.status in ("ACTIVE", "BUILD")]
        if n > len(usable):
            plan_workers(head, n - len(usable), self.cloud.list_flavors(), self.cloud.get_quota(),
                         flavor or self.settings.cluster.flavor, existing=[i.name for i in instances])

    async def _grow(self, head: Instance, n: int, flavor: str,
                    image: str = "") -> tuple[list[Instance], tuple[str, ...]]:
        """The head's ACTIVE workers, n of them when everything goes well (`WorkerInstances.grow`), and what failed."""
        return await self._worker_instances().grow(head, n, flavor or self.settings.cluster.flavor, image)

    async def _frozen(self, head: Instance, from_image: str | None) -> str:
        """The id of the image new workers start from: "" (the head's own image) unless `from_image` is given."""
        if from_image is None:
            return ""
        name = from_image or frozen_image_name(head.name)
        services = self.manager.services  # the head's secrets stay out of the workers' image
        images = Images(self.cloud, secrets=SecretsAside(lambda ref: services.prepare(self.cloud, ref),
                                                         services.command_log))
        image = await asyncio.to_thread(images.frozen, head, name,
                                        lambda line: self._say(head, head.name, "launch", line), not from_image)
        return image.id

    async def _finish(self, head: Instance, status: ClusterStatus, failed: Sequence[str],
                      removed: tuple[str, ...] = (), dashboard: bool | None = None) -> ClusterSummary:
        url = ""
        if dashboard is None:
            open_one = self.manager.tunnel_info(head.id, DASHBOARD) is not None
            dashboard = self.settings.cluster.auto_dashboard_tunnel or open_one
        if dashboard:
            url = await self.dashboard(head.id)
        self.heads.add(head.id)
        self.emit(ClusterState(head.id, status, url))
        self._say(head, "", "done", f"cluster on {head.name}: {len(status.workers)} workers connected"
                                    + (f"; {len(failed)} could not join" if failed else ""))
        return ClusterSummary(head.name, status, url, tuple(failed), removed)

    # -- watch ------------------------------------------------------------------------------------------------------

    async def status(self, head_ref: str | Instance) -> ClusterState:
        """The scheduler's view (also emitted). `status` None when it does not answer; `problem` says why."""
        head = head_ref if isinstance(head_ref, Instance) else await self._head(head_ref)
        tunnel = self.manager.tunnel_info(head.id, DASHBOARD)
        url = dashboard_url(tunnel.local_port) if tunnel is not None else ""
        instances = await asyncio.to_thread(self.cloud.list_instances)
        manifest = cluster = None
        try:
            manifest = await read_manifest(head, self.connect)
            cluster = await self.cluster_of(head, manifest, instances)
            state = ClusterState(head.id, await cluster.status(timeout=10.0), url)
        except (ClusterError, StatusError, ManagerError, CloudError) as exc:
            state = ClusterState(head.id, None, url, problem=str(exc))
        absent = await absent_workers(head, manifest.workers if manifest else None, instances, state.status,
                                      cluster.session_running if cluster else _unknown)
        state = replace(state, absent=absent, scheduler=manifest.scheduler if manifest else "")
        self.emit(state)
        return state

    async def dashboard(self, head_ref: str) -> str:
        """Open (or reuse) the dashboard tunnel; its local URL."""
        head = await self._head(head_ref)
        manifest = await read_manifest(head, self.connect)
        port = manifest.dashboard_port if manifest else self.settings.cluster.dashboard_port
        info = await self.manager.open_forward(await self._context(head), DASHBOARD, port)
        url = dashboard_url(info.local_port)
        self._say(head, "", "dashboard", f"dashboard: {url}")
        return url

    async def find(self, head: Instance, *, restart: bool = True) -> Found | None:
        """The head's cluster after the app was away: sessions that ended are started again (only those)."""
        manifest = await read_manifest(head, self.connect)
        if manifest is None:
            return None
        cluster = await self.cluster_of(head, manifest)
        return await cluster.find(restart=restart, wait=False)

    async def reattach(self, instances: Sequence[Instance]) -> list[str]:
        """Find the clusters of these instances (heads: with `HEAD-wN` siblings, or a dashboard tunnel on record),
        restart what is missing, re-open the dashboard tunnels on record (all, with `cluster.auto_dashboard_tunnel`).
        The heads' names."""
        named = heads_named(i.name for i in instances)
        recorded = {iid for iid, purpose in self.manager.state.tunnels if purpose == DASHBOARD}
        heads = [i for i in instances if i.status == "ACTIVE" and i.public_ip
                 and (i.id in recorded or i.name in named)]
        found = []
        for head in heads:
            try:
                if await self.find(head) is None:
                    continue
                self.heads.add(head.id)
                found.append(head.name)
                if head.id in recorded or self.settings.cluster.auto_dashboard_tunnel:
                    await self.dashboard(head.id)
            except (ClusterError, ManagerError, CloudError, StatusError) as exc:
                self._say(head, "", "failed", f"cluster on {head.name} not re-attached: {exc}")
        return found

    async def check_idle(self, head: Instance, now: float | None = None) -> Tier | None:
        """Nudge (IdleNudge) when no worker had a task for `cluster.idle_scale_down_hours` (scale down to 0), then
        `idle_delete_hours` (delete the cluster). Returns the tier nudged, if any."""
        now = time.time() if now is None else now
        state = await self.status(head)
        if state.status is None:
            return None
        nudge = self._idle.nudge(head, state.status, self.settings.cluster, now)
        if nudge is None:
            return None
        self.emit(nudge)
        return nudge.tier

    # -- delete (tui.core.cluster.teardown) ------------------------------------------------------------------
    async def delete(self, head_ref: str, confirm: Confirm | None = None) -> list[str]:
        """Stop the scheduler and workers, delete the worker instances (with their boot volumes) and the security
        group; the head stays. Warns (through `confirm`) about running tasks. When the head is gone: deletes what
        its cluster left. The names of the instances deleted."""
        return await self.teardown.delete_cluster(head_ref, confirm)

    async def delete_instance(self, ref: str, ask: Ask | None, delete_volumes: bool = False) -> Deletion:
        """Delete an instance with the cluster it heads (workers, their volumes, the group, the tunnels)."""
        return await self.teardown.delete_instance(ref, ask, delete_volumes)

    async def leftovers(self, only: str = "") -> list[Leftover]:
        return await self.teardown.leftovers(only)

    def forget_cluster(self, head_id: str) -> None:
        """The cluster headed by `head_id` is deleted: no idle checks, no dashboard; said as a state."""
        self.heads.discard(head_id)
        self._idle.forget(head_id)
        self.emit(ClusterState(head_id, None, "", problem="deleted"))

    # -- internals ------------------------------------------------------------------------------------------------

    def members(self, head: Instance, instances: Sequence[Instance]) -> list[Instance]:
        """The head's worker instances (`HEAD-wN`), numbered order."""
        return members_of(head, instances)

    async def _head(self, ref: str) -> Instance:
        head = await asyncio.to_thread(self.cloud.get_instance, ref)
        if head.status != "ACTIVE":
            raise ClusterError(f"{head.name} is {head.status}",
                               f"start it first (p, or `{command('start', head.name)}`)")
        return head

    async def cluster_of(self, head: Instance, manifest: Manifest | None = None,
                         instances: Sequence[Instance] | None = None) -> DaskOverSSH:
        """The head's cluster from its manifest, workers looked up by name (and registered as behind the head).
        With `instances` (a listing already made): quiet about workers gone (the caller reports them)."""
        manifest = manifest or await read_manifest(head, self.connect)
        if manifest is None:
            raise ClusterError(f"{head.name} runs no Dask cluster",
                               f"create one: {command('cluster', 'create', head.name)}")
        listed = instances if instances is not None else await asyncio.to_thread(self.cloud.list_instances)
        by_name = {i.name: i for i in listed}
        members = []
        for name in sorted(manifest.workers, key=lambda n: (n != head.name, number(head, n), n)):  # head, w1, w2…
            inst = head if name == head.name else by_name.get(name)
            if inst is None:
                if instances is None:
                    self._say(head, name, "failed", f"{name} is gone from the cloud: left out")
                continue
            members.append(inst)
        return DaskOverSSH(head, members, self.connect, self.config(manifest), progress=self._progress(head))

    def _worker_instances(self) -> WorkerInstances:
        """The cloud side, with its timeouts as they are now."""
        return WorkerInstances(self.cloud, self.connect, self._say, active_timeout=self.active_timeout,
                     ssh_timeout=self.ssh_timeout, poll_s=self.poll_s)

    def _progress(self, head: Instance) -> Callable[[ClusterProgress], None]:
        return lambda p: self.emit(replace(p, head_id=head.id))

    def _say(self, head: Instance, instance: str, phase: ClusterPhase, message: str) -> None:
        self.emit(ClusterProgress(instance, phase, message, head.id))

