"""The concrete core behind `tui.core.api.Engine`: one cloud, one remote manager, the SSH contexts of instances.

Built by the entry point in a worker thread (it imports openstacksdk and asyncssh and authenticates), then driven
by the app: blocking cloud calls from thread workers, remote work from async workers. It emits every event through
one `emit` (the app's bridge, which is thread-safe), and returns results as values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from tui.core.api import ApproveFormat, AskDelete, Cancelled, Confirm, EngineFactory, ManagerError
from tui.core.cloud.base import Cloud, CloudError, LaunchSpec
from tui.core.cloud.signin import Ask
from tui.core.cluster.deletion import Deletion, Leftover
from tui.core.cluster.engine import ClusterError
from tui.core.cluster.errors import ClusterCancelled
from tui.core.cluster.service import ClusterService
from tui.core.cluster.status import StatusError
from tui.core.config import Settings
from tui.core.events import ClusterState, Emit, JupyterState, PipelineFinished, Polled, StopOutcome
from tui.core.manager import RemoteManager
from tui.core.models import ClusterSummary, Instance, KernelInfo, TunnelInfo
from tui.core.options import ManagerOptions
from tui.core.services import RemoteContext, Services, launch_instance
from tui.core.state import STATE_FILE, AppState

if TYPE_CHECKING:
    from tui.core.transfer.models import TransferProgress, TransferRequest, TransferSummary

QUIET_LOGINS_PER_ROUND = 4  # new logins for load and memory per refresh (each failed one waits QUIET_RETRY_S)
log = logging.getLogger(__name__)
QUOTA_EVERY = 6  # quota and volumes re-read at least on every 6th poll (volumes change without servers changing)


class CoreEngine:
    def __init__(self, settings: Settings, cloud: Cloud, emit: Emit, services: Services | None = None,
                 options: ManagerOptions | None = None) -> None:
        self.settings = settings
        self.cloud = cloud
        self.emit = emit
        self.services = services or Services(settings)
        state = AppState.load(self.services.state_dir / STATE_FILE)
        self.manager = RemoteManager(settings, self.services, state, emit, options)
        self._contexts: dict[str, RemoteContext] = {}
        self._last: Polled | None = None
        self._polls = 0
        self.cluster = ClusterService(settings, cloud, self.manager, self.context, emit)

    # -- the cloud (blocking) -------------------------------------------------------------------------------------
    def poll(self, with_flavors: bool, full: bool = False) -> Polled:
        """Instances, quota, volumes (and flavors): emitted as `Polled` and returned.

        Cheap when nothing changed: the cloud is asked only for the servers changed since the last poll (Nova's
        `changes-since`; every server when `full`, and now and then anyway), and the quota and volumes are read
        again only when a server changed, with flavors, on a full poll, or every QUOTA_EVERY-th poll."""
        c = self.cloud
        watch = getattr(c, "watch_instances", None)  # a Cloud without it lists everything every time
        instances, changed = watch(full) if watch is not None else (c.list_instances(), True)
        self._polls += 1
        last = self._last
        if last is None or changed or full or with_flavors or self._polls % QUOTA_EVERY == 0:
            quota, volumes = c.get_quota(), tuple(c.list_volumes())
        else:
            quota, volumes = last.quota, last.volumes
        polled = Polled(tuple(instances), quota, volumes, tuple(c.list_flavors()) if with_flavors else None)
        self._last = polled
        self.emit(polled)
        return polled

    def launch(self, spec: LaunchSpec, say: Callable[[str], None]) -> Instance:
        return launch_instance(self.cloud, spec, say)

    # -- one instance over SSH -------------------------------------------------------------------------------------
    async def context(self, inst: Instance) -> RemoteContext:
        """The instance's SSH context (console log read once for host-key pinning), rebuilt when it moved. A
        cluster worker's goes through its head (`Services.prepare` sets the hop)."""
        ctx = self._contexts.get(inst.id)
        if ctx is None or (ctx.instance.ip, ctx.instance.ssh_port, ctx.instance.status) != (
                inst.ip, inst.ssh_port, inst.status):
            ctx = await asyncio.to_thread(self.services.prepare, self.cloud, inst.id)
            self._contexts[inst.id] = ctx
            unpinned = ctx.unpinned_event()
            if unpinned is not None:  # trust on first use instead of pinning: the user compares the fingerprint
                self.emit(unpinned)
        return ctx

    async def connect(self, inst: Instance) -> None:
        await self.manager.connect(await self.context(inst))

    async def run_setup(self, inst: Instance, approve_format: ApproveFormat | None = None) -> PipelineFinished:
        return await self.manager.run_setup(await self.context(inst), approve_format=approve_format)

    async def start_jupyter(self, inst: Instance) -> JupyterState:
        return await self.manager.start_jupyter(await self.context(inst))

    async def stop_jupyter(self, inst: Instance, force: bool = False) -> StopOutcome:
        return await self.manager.stop_jupyter(await self.context(inst), force=force)

    async def follow_log(self, inst: Instance) -> None:
        await self.manager.follow_log(await self.context(inst))

    async def unfollow_log(self, instance_id: str) -> None:
        await self.manager.unfollow_log(instance_id)

    async def kernels(self, inst: Instance) -> list[KernelInfo]:
        return await self.manager.kernels(await self.context(inst))

    async def open_tunnel(self, inst: Instance) -> JupyterState:
        return await self.manager.open_tunnel(await self.context(inst))

    async def close_tunnel(self, instance_id: str, purpose: str = "jupyter") -> None:
        await self.manager.close_tunnel(instance_id, purpose)

    async def token_url(self, inst: Instance) -> str | None:
        """The tokenized URL through the tunnel, opening the tunnel when there is none (memory only)."""
        url = self.manager.token_url(inst.id)
        if url is None:
            await self.open_tunnel(inst)
            url = self.manager.token_url(inst.id)
        return url

    async def shell_argv(self, inst: Instance) -> list[str]:
        """OpenSSH's command line for an interactive shell, after the host key is settled (pinned or asked); without
        `ssh` on PATH, the built-in client's (`cades-tui ssh ID` in a child process, same profile and cloud)."""
        import shutil

        from tui.core.remote.connection import openssh_argv
        from tui.core.remote.interactive import builtin_client_argv

        ctx = await self.context(inst)
        await self.manager.connect(ctx)
        if shutil.which("ssh") is None:
            return builtin_client_argv(self.settings, inst.id)
        return openssh_argv(ctx.target, tty=True)

    def tunnels(self) -> list[TunnelInfo]:
        return self.manager.tunnels()

    def snooze(self, instance_id: str) -> datetime:
        return self.manager.snooze(instance_id)

    # -- a Dask cluster headed by an instance --------------------------------------------------------------------
    async def cluster_create(self, head: Instance, workers: int | None = None, flavor: str = "") -> ClusterSummary:
        with _as_manager_error():
            return await self.cluster.create(head.id, workers, flavor)

    async def cluster_scale(self, head: Instance, n: int, confirm: Confirm | None = None) -> ClusterSummary:
        with _as_manager_error():
            return await self.cluster.scale(head.id, n, confirm)

    async def cluster_status(self, head: Instance) -> ClusterState:
        return await self.cluster.status(head)

    async def cluster_dashboard(self, head: Instance) -> str:
        with _as_manager_error():
            return await self.cluster.dashboard(head.id)

    async def cluster_delete(self, head: Instance, confirm: Confirm | None = None) -> list[str]:
        with _as_manager_error():
            return await self.cluster.delete(head.id, confirm)

    async def delete_instance(self, inst: Instance, ask: AskDelete | None, delete_volumes: bool = False) -> Deletion:
        """Delete an instance and what goes with it: the Dask cluster it heads (workers, their volumes, the group,
        the tunnels). `ask` sees the facts first (None from it: cancelled, ManagerError)."""
        with _as_manager_error():
            plan = await self.cluster.delete_instance(inst.id, ask, delete_volumes)
        for gone in (*plan.workers, inst):
            self._contexts.pop(gone.id, None)
        return plan

    async def cluster_leftovers(self) -> list[Leftover]:
        with _as_manager_error():
            return await self.cluster.leftovers()

    async def delete_leftovers(self, left: Sequence[Leftover], confirm: Confirm | None = None) -> list[str]:
        with _as_manager_error():
            return await self.cluster.teardown.delete_leftovers(left, confirm)

    # -- transfers -------------------------------------------------------------------------------------------------
    async def transfer(self, req: TransferRequest, progress: Callable[[TransferProgress], None] | None = None,
                       say: Callable[[str], None] | None = None) -> TransferSummary:
        """Copy or sync between here and an instance (`tui.core.transfer`); `progress` is called from a worker
        thread, `say` with notes (a partial file started over, what --delete deletes)."""
        from tui.core.transfer.service import run_transfer

        return await run_transfer(self, req, progress, say)

    # -- all instances ---------------------------------------------------------------------------------------------
    async def refresh(self, instances: Sequence[Instance]) -> None:
        """Per-instance signals: load and memory of every ACTIVE instance that answers SSH with a pinned or known
        host key (never a question) — over the connections already open, and a few quiet new logins per round."""
        active = [i for i in instances if i.status == "ACTIVE"]
        pool, logins = self.manager.pool, self.manager.connections
        connected = [i for i in active if pool.is_connected(i.id)]
        new = [i for i in active if not pool.is_connected(i.id) and logins.may_try_quietly(i.id)]
        await asyncio.gather(*(self._refresh(i) for i in [*connected, *new[:QUIET_LOGINS_PER_ROUND]]))

    async def _refresh(self, inst: Instance) -> None:
        try:
            await self.manager.refresh(await self.context(inst))
        except (CloudError, ManagerError) as exc:
            self.manager.connections.quiet_failed(inst.id)
            log.info("signals of %s not read: %s", inst.name, exc)

    async def reattach(self, instances: Sequence[Instance]) -> list[str]:
        """Find the Jupyter servers recorded on these instances and re-open their tunnels; the ids running one."""
        known = [i for i in instances if i.id in self.manager.state.servers and i.status == "ACTIVE"]
        contexts = await asyncio.gather(*(self.context(i) for i in known), return_exceptions=True)
        for inst, ctx in zip(known, contexts, strict=True):
            if isinstance(ctx, BaseException):
                log.warning("reattach %s: %s", inst.name, ctx)
        running = await self.manager.reattach_all([c for c in contexts if isinstance(c, RemoteContext)])
        try:
            await self.cluster.reattach([i for i in instances if i.status == "ACTIVE"])
        except Exception:  # never stops the app's start; said in the log
            log.exception("re-attaching Dask clusters failed")
        return running

    async def check_idle(self, instances: Sequence[Instance], now: datetime) -> list[str]:
        """Idle check of each ACTIVE instance with a server (nudges come as events). One instance's failure —
        expected or not — never stops the others; it is logged. Returns the names checked."""
        checked = []
        for inst in [i for i in instances if i.status == "ACTIVE" and self.manager.server(i.id) is not None]:
            try:
                await self.manager.check_idle(await self.context(inst), now=now)
                checked.append(inst.name)
            except (ManagerError, CloudError) as exc:
                log.info("idle check of %s: %s", inst.name, exc)  # unreachable now: the next round tries again
            except Exception:
                log.exception("idle check of %s failed unexpectedly", inst.name)
        for head in [i for i in instances if i.status == "ACTIVE" and i.id in self.cluster.heads]:
            try:
                await self.cluster.check_idle(head, now.timestamp())
                checked.append(f"{head.name} (cluster)")
            except Exception:
                log.exception("cluster idle check of %s failed unexpectedly", head.name)
        return checked

    async def forget_instance(self, instance_id: str) -> None:
        self._contexts.pop(instance_id, None)
        await self.manager.forget_instance(instance_id)

    async def aclose(self) -> None:
        await self.manager.aclose()


@contextlib.contextmanager
def _as_manager_error() -> Iterator[None]:
    """Cluster and cloud failures reach the UI as ManagerError (one line: the message and the hint)."""
    try:
        yield
    except ClusterCancelled as exc:
        raise Cancelled(str(exc)) from exc
    except (ClusterError, CloudError, StatusError) as exc:
        raise ManagerError(str(exc)) from exc


def open_cloud(settings: Settings, ask: Ask | None = None) -> Cloud:
    """The profile's cloud, authenticated (blocking: imports openstacksdk). A clouds.yaml that is not valid YAML is
    reported by file and line rather than as "cloud not found" (openstacksdk skips a file it cannot parse). `ask`
    answers for a password or TOTP passcode clouds.yaml does not hold (`tui.core.cloud.signin`)."""
    from tui.core.cloud.clouds_yaml import open_cloud as open_named

    return open_named(settings.cloud, settings.clouds_yaml, ask)


def engine_factory(settings: Settings, cloud_factory: Callable[[], Cloud], *, services: Services | None = None,
                   options: ManagerOptions | None = None) -> EngineFactory:
    """What the app is given: builds the cloud (authenticates) and the engine, in the app's thread worker."""

    def build(emit: Emit) -> CoreEngine:
        return CoreEngine(settings, cloud_factory(), emit, services=services, options=options)

    return build
