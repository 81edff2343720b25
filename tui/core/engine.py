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
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.core.api import ApproveFormat, AskDelete, Confirm, EngineFactory, Login
from tui.core.autostop.policy import Policy
from tui.core.autostop.service import AutostopError, AutostopService
from tui.core.autostop.status import AutostopStatus
from tui.core.cloud.base import Cloud, CloudError, InvalidInput, LaunchSpec
from tui.core.cloud.signin import Ask
from tui.core.cluster.deletion import Deletion, Leftover
from tui.core.cluster.errors import ClusterCancelled, ClusterError
from tui.core.cluster.lifecycle import ClusterLifecycle
from tui.core.cluster.status import StatusError
from tui.core.config import Settings
from tui.core.errors import BadInput, Cancelled, ManagerError
from tui.core.events import ClusterState, Emit, JupyterState, PipelineFinished, Polled, StopOutcome
from tui.core.forwards import Forward, Listener, local_forwards
from tui.core.forwards.service import ForwardService
from tui.core.images import ImageDeletion, ImageListing, ImageMade, Images
from tui.core.imagesecrets import SecretsAside
from tui.core.manager import RemoteManager
from tui.core.models import (
    ClusterSummary,
    Flavor,
    Image,
    Instance,
    KernelInfo,
    Keypair,
    Network,
    Quota,
    TunnelInfo,
    Volume,
)
from tui.core.options import ManagerOptions
from tui.core.services import RemoteContext, Services, launch_instance
from tui.core.sshconfig import Report as SshConfigReport
from tui.core.sshinclude import IncludeChange
from tui.core.sshkeep import SshConfigs, remote_folder
from tui.core.state import STATE_FILE, AppState

if TYPE_CHECKING:
    import asyncssh

    from tui.core.cost import CostReport
    from tui.core.shelveplan import ShelvePlan, Unshelved
    from tui.core.shelving import Shelving
    from tui.core.transfer.models import TransferProgress, TransferRequest, TransferSummary

QUIET_LOGINS_PER_ROUND = 4  # new logins for load and memory per refresh (each failed one waits QUIET_RETRY_S)
log = logging.getLogger(__name__)
AUTOSTOP_LOOK_EVERY = 12  # polls between looks for a watchdog armed elsewhere (a CLI, another laptop)
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
        self.cluster = ClusterLifecycle(settings, cloud, self.manager, self.context, emit)
        self.ssh_configs = SshConfigs(settings, self.services, cloud, emit,  # saved forwards: LocalForward lines
                                      forwards=lambda: local_forwards(self.manager.state))
        self._shelving: Shelving | None = None
        self.images = Images(cloud, secrets=SecretsAside(lambda ref: self.services.prepare(cloud, ref),
                                                         self.services.command_log))
        self.forwarding = ForwardService(self.manager)
        self._autostop: AutostopService | None = None
        self._autostop_seen: set[str] = set()  # instances whose watchdog is armed: read on every refresh

    # -- the cloud: what there is (blocking) ----------------------------------------------------------------------
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
        if last is None or changed or full:
            self.ssh_config_follow(polled.instances)
        return polled

    def list_instances(self) -> list[Instance]:
        return self.cloud.list_instances()

    def get_instance(self, name_or_id: str) -> Instance:
        return self.cloud.get_instance(name_or_id)

    def list_flavors(self) -> list[Flavor]:
        return self.cloud.list_flavors()

    def list_images(self) -> list[Image]:
        return self.cloud.list_images()

    def list_networks(self) -> list[Network]:
        return self.cloud.list_networks()

    def list_keypairs(self) -> list[Keypair]:
        return self.cloud.list_keypairs()

    def list_volumes(self) -> list[Volume]:
        return self.cloud.list_volumes()

    def get_quota(self) -> Quota:
        return self.cloud.get_quota()

    def console_log(self, name_or_id: str, lines: int | None = None) -> str:
        return self.cloud.console_log(name_or_id, lines)

    # -- the cloud: changes (blocking) ----------------------------------------------------------------------------
    def launch(self, spec: LaunchSpec, say: Callable[[str], None], wait: bool = True) -> Instance:
        inst = launch_instance(self.cloud, spec, say, wait=wait)
        if self.ssh_config_follow():
            say(f"Updated {self.ssh_configs.keeper.path}")
        return inst

    def start(self, name_or_id: str, wait: bool = True) -> Instance:
        inst = self.cloud.start(name_or_id, wait)
        self.ssh_config_follow()  # an address may change with the power state
        return inst

    def stop(self, name_or_id: str, wait: bool = True) -> Instance:
        inst = self.cloud.stop(name_or_id, wait)
        self.ssh_config_follow()
        return inst

    def reboot(self, name_or_id: str, wait: bool = True) -> Instance:
        return self.cloud.reboot(name_or_id, wait)

    def resize(self, name_or_id: str, flavor: str, wait: bool = True) -> Instance:
        return self.cloud.resize(name_or_id, flavor, wait)

    def confirm_resize(self, name_or_id: str) -> Instance:
        return self.cloud.confirm_resize(name_or_id)

    def revert_resize(self, name_or_id: str) -> Instance:
        return self.cloud.revert_resize(name_or_id)

    def import_keypair(self, name: str, public_key: str) -> Keypair:
        return self.cloud.import_keypair(name, public_key)

    def create_volume(self, name: str, size_gb: int) -> Volume:
        return self.cloud.create_volume(name, size_gb)

    def attach_volume(self, server: str, volume: str) -> Volume:
        return self.cloud.attach_volume(server, volume)

    def detach_volume(self, volume: str) -> Volume:
        return self.cloud.detach_volume(volume)

    def delete_volume(self, volume: str) -> None:
        self.cloud.delete_volume(volume)


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

    async def login(self, inst: Instance) -> Login:
        ctx = await self.context(inst)
        return Login(ctx.target.describe(), ctx.pinned is not None, ctx.target.key_path)

    async def connect(self, inst: Instance) -> None:
        await self.manager.connect(await self.context(inst))

    async def run_setup(self, inst: Instance, approve_format: ApproveFormat | None = None) -> PipelineFinished:
        return await self.manager.run_setup(await self.context(inst), approve_format=approve_format)

    async def start_jupyter(self, inst: Instance, local_port: int | None = None) -> JupyterState:
        return await self.manager.start_jupyter(await self.context(inst), local_port)

    async def stop_jupyter(self, inst: Instance, force: bool = False) -> StopOutcome:
        return await self.manager.stop_jupyter(await self.context(inst), force=force)

    async def find_jupyter(self, inst: Instance) -> int | None:
        handle = await self.manager.find_jupyter(await self.context(inst))
        return None if handle is None else handle.port

    def jupyter_url(self, instance_id: str, local_port: int, with_token: bool = False) -> str:
        handle = self.manager.server(instance_id)
        if handle is None:
            return ""
        return handle.url(local_port) if with_token else handle.public_url(local_port)

    async def follow_log(self, inst: Instance) -> None:
        await self.manager.follow_log(await self.context(inst))

    async def unfollow_log(self, instance_id: str) -> None:
        await self.manager.unfollow_log(instance_id)

    async def jupyter_log(self, inst: Instance, lines: int = 200) -> list[str]:
        return await self.manager.read_log(await self.context(inst), lines)

    async def kernels(self, inst: Instance) -> list[KernelInfo]:
        return await self.manager.kernels(await self.context(inst))

    async def open_tunnel(self, inst: Instance, local_port: int | None = None, strict: bool = False) -> JupyterState:
        return await self.manager.open_tunnel(await self.context(inst), local_port, strict)

    async def close_tunnel(self, instance_id: str, purpose: str = "jupyter") -> None:
        await self.manager.close_tunnel(instance_id, purpose)

    async def token_url(self, inst: Instance) -> str | None:
        """The tokenized URL through the tunnel, opening the tunnel when there is none (memory only)."""
        url = self.manager.token_url(inst.id)
        if url is None:
            await self.open_tunnel(inst)
            url = self.manager.token_url(inst.id)
        return url

    def tunnels(self) -> list[TunnelInfo]:
        return self.manager.tunnels()

    def snooze(self, instance_id: str) -> datetime:
        return self.manager.snooze(instance_id)

    def saved_state(self) -> AppState:
        return self.manager.state

    # -- a shell on an instance --------------------------------------------------------------------------------
    async def shell_argv(self, inst: Instance, command: str | None = None) -> list[str]:
        """OpenSSH's command line for an interactive shell (or `command`), after the host key is settled (pinned or
        asked); without `ssh` on PATH, the built-in client's (`cades-tui ssh ID` in a child process, same profile
        and cloud)."""
        import shutil

        from tui.core.remote.connection import openssh_argv
        from tui.core.remote.interactive import builtin_client_argv

        ctx = await self.context(inst)
        await self.manager.connect(ctx)
        if shutil.which("ssh") is None:
            return builtin_client_argv(self.settings, inst.id)
        return openssh_argv(ctx.target, command, tty=True if command is None else None)

    async def ssh_session(self, inst: Instance, command: str | None = None) -> int:
        """A session of the built-in SSH client on the verified connection: a PTY on a terminal (raw mode), plain
        pipes otherwise; the remote exit status, logged like OpenSSH's runs."""
        import time

        from tui.core.remote.interactive import interactive_session

        ctx = await self.context(inst)
        conn = await self.manager.connection(ctx)
        started, t0 = datetime.now(UTC), time.monotonic()
        code = await interactive_session(conn, command)
        self.record_command(inst, command or "(interactive shell)", code, time.monotonic() - t0, started)
        return code

    def record_command(self, inst: Instance, command: str, code: int, seconds: float, started: datetime) -> None:
        self.services.command_log(inst).record(command, code, seconds, started)

    def command_history(self, inst: Instance) -> tuple[str, Path]:
        """The commands run on the instance (secrets masked) as text, and the log's file."""
        log = self.services.command_log(inst)
        return log.read(), log.path

    # -- a Dask cluster headed by an instance --------------------------------------------------------------------
    async def cluster_create(self, head: Instance | str, workers: int | None = None, flavor: str = "", *,
                             head_worker: bool | None = None, dashboard: bool | None = None,
                             from_image: str | None = None) -> ClusterSummary:
        async with self.ssh_configs.after():
            with _as_manager_error():
                return await self.cluster.create(_ref(head), workers, flavor, head_worker, dashboard, from_image)

    async def cluster_scale(self, head: Instance | str, n: int, confirm: Confirm | None = None, flavor: str = "", *,
                            dashboard: bool | None = None, from_image: str | None = None) -> ClusterSummary:
        async with self.ssh_configs.after():
            with _as_manager_error():
                return await self.cluster.scale(_ref(head), n, confirm, flavor, dashboard=dashboard,
                                                from_image=from_image)

    async def cluster_status(self, head: Instance | str) -> ClusterState:
        with _as_manager_error():
            return await self.cluster.status(head)

    async def cluster_dashboard(self, head: Instance | str) -> str:
        with _as_manager_error():
            return await self.cluster.dashboard(_ref(head))

    async def cluster_delete(self, head: Instance | str, confirm: Confirm | None = None) -> list[str]:
        async with self.ssh_configs.after():
            with _as_manager_error():
                return await self.cluster.delete(_ref(head), confirm)

    async def delete_instance(self, inst: Instance, ask: AskDelete | None, delete_volumes: bool = False) -> Deletion:
        """Delete an instance and what goes with it: the Dask cluster it heads (workers, their volumes, the group,
        the tunnels). `ask` sees the facts first (None from it: cancelled, `Cancelled`)."""
        async with self.ssh_configs.after():
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

    # -- shelve --------------------------------------------------------------------------------------------------
    @property
    def shelving(self) -> Shelving:
        """Shelve and unshelve (tui.core.shelving), built on first use."""
        if self._shelving is None:
            from tui.core.shelving import Shelving

            self._shelving = Shelving(self.settings, self.cloud, self.manager, self.cluster, self.context)
        return self._shelving

    async def shelve_plan(self, inst: Instance) -> ShelvePlan:
        """What shelving `inst` ends and keeps (Jupyter and busy kernels, the cluster it heads, its volumes)."""
        with _as_manager_error():
            return await self.shelving.plan(inst)

    async def shelve(self, inst: Instance, confirm: Confirm | None, say: Callable[[str], None] | None = None
                     ) -> Instance:
        """Shelve `inst` once `confirm` said yes to what it ends (Cancelled otherwise); its tunnels closed first,
        their ports remembered. Returns it settled (SHELVED or SHELVED_OFFLOADED)."""
        with _as_manager_error():
            done = await self.shelving.shelve(inst, confirm, say)
        self._contexts.pop(inst.id, None)
        return done

    async def unshelve(self, inst: Instance, say: Callable[[str], None] | None = None,
                       restore: bool = True) -> Unshelved:
        """Unshelve `inst` and wait until ACTIVE; with `restore`, Jupyter (if it ran before) on its old local
        port and the sessions of the cluster it heads again. QuotaShort (a ManagerError) with the numbers when
        the cloud refuses it for quota."""
        with _as_manager_error():
            return await self.shelving.unshelve(inst, say, restore)

    def cost(self, instances: Sequence[Instance]) -> CostReport | None:
        """The burn rate and each instance's share and savings by the profile's cost model (None without one)."""
        from tui.core.cost import report

        model = self.settings.cost_model
        return None if model is None else report(model, list(instances))
    # -- images (blocking; tui.core.images) ---------------------------------------------------------------------------
    def image_list(self) -> ImageListing:
        return self.images.listing()

    def image_create(self, ref: str, name: str, say: Callable[[str], None], wait: bool = True) -> ImageMade:
        return self.images.create(ref, name, say, wait)

    def image_plan_delete(self, ref: str) -> ImageDeletion:
        return self.images.plan_delete(ref)

    def image_delete(self, plan: ImageDeletion, delete_snapshots: bool, say: Callable[[str], None]) -> list[str]:
        return self.images.delete(plan, delete_snapshots, say)
    # -- forwards: any port of an instance, forwarded and kept (tui.core.forwards) ---------------------------------
    async def forward_open(self, inst: Instance, remote_port: int, *, local_port: int | None = None,
                           label: str = "", remote_host: str = "127.0.0.1", save: bool = False) -> Forward:
        return await self.forwarding.open(await self.context(inst), remote_port, local_port=local_port, label=label,
                                          remote_host=remote_host, save=save)

    def forward_save(self, inst: Instance, remote_port: int, *, local_port: int | None = None, label: str = "",
                     remote_host: str = "127.0.0.1") -> Forward:
        fwd = self.forwarding.save(inst.id, inst.name, remote_port, local_port=local_port, label=label,
                                   remote_host=remote_host)
        self.ssh_config_follow()  # its LocalForward line
        return fwd

    async def forward_close(self, instance_id: str, label: str, *, remove: bool) -> None:
        await self.forwarding.close(instance_id, label, remove=remove)
        if remove:
            await asyncio.to_thread(self.ssh_config_follow)

    async def forward_toggle(self, inst: Instance, label: str) -> Forward | None:
        return await self.forwarding.toggle(await self.context(inst), label)

    def forwards(self) -> list[Forward]:
        """Every user forward (saved, open here, open in another process), names from the last poll."""
        names = {i.id: i.name for i in self._last.instances} if self._last is not None else {}
        return self.forwarding.all(names)

    async def forward_suggestions(self, inst: Instance) -> list[Listener]:
        return await self.forwarding.suggestions(await self.context(inst))

    async def forward_reopen(self, instances: Sequence[Instance]) -> list[Forward]:
        """Open the saved, enabled forwards of these instances (ACTIVE ones); failures come as BackgroundFailed."""
        kept = {r.instance for r in self.manager.state.forwards.values() if r.enabled}
        wanted = [i for i in instances if i.id in kept and i.status == "ACTIVE"]
        contexts = await asyncio.gather(*(self.context(i) for i in wanted), return_exceptions=True)
        for inst, ctx in zip(wanted, contexts, strict=True):
            if isinstance(ctx, BaseException):
                log.warning("forwards of %s not re-opened: %s", inst.name, ctx)
        return await self.forwarding.reopen([c for c in contexts if isinstance(c, RemoteContext)])
    # -- autostop -------------------------------------------------------------------------------------------------
    def autostop_policy(self, idle: str | None = None, action: str | None = None) -> Policy | None:
        """The profile's autostop with `idle`/`action` on top (None: off). InvalidInput on a bad value."""
        from tui.core.autostop.policy import PolicyError
        from tui.core.autostop.profile import from_settings

        try:
            return from_settings(self.settings, idle, action)
        except PolicyError as exc:
            raise InvalidInput(f"autostop: {exc}", "e.g. --idle 60m --action stop") from None

    @property
    def autostop(self) -> AutostopService:
        if self._autostop is None:
            async def connect(inst: Instance) -> Any:
                return await self.manager.connection(await self.context(inst))

            self._autostop = AutostopService(self.cloud, connect, self.services.command_log, self.emit)
        return self._autostop

    async def autostop_set(self, inst: Instance, policy: Policy) -> AutostopStatus:
        """Install and (re)start the watchdog on the VM with this policy; for shelve, the VM's own credential."""
        with _as_manager_error():
            status = await self.autostop.arm(inst, policy)
        self._autostop_seen.add(inst.id)
        return status

    async def autostop_off(self, inst: Instance) -> AutostopStatus:
        with _as_manager_error():
            return await self.autostop.off(inst)

    async def autostop_keep(self, inst: Instance) -> AutostopStatus:
        """Reset the idle timer (the watchdog reads `keep` at its next look)."""
        with _as_manager_error():
            return await self.autostop.keep(inst)

    async def autostop_status(self, inst: Instance) -> AutostopStatus:
        with _as_manager_error():
            status = await self.autostop.status(inst)
        if status.armed:
            self._autostop_seen.add(inst.id)
        return status

    async def _autostop_refresh(self, inst: Instance) -> None:
        """With a refresh: the watchdog's state of instances known to have one, and now and then of the others."""
        if not self.manager.pool.is_connected(inst.id):
            return
        if inst.id not in self._autostop_seen and self._polls % AUTOSTOP_LOOK_EVERY:
            return
        async def open_one(i: Instance) -> Any:  # the connection the refresh found: never a new login (a VM
            if not self.manager.pool.is_connected(i.id):  # being deleted would otherwise say "connection lost")
                raise AutostopError(f"{i.name}: not connected now")
            return await self.manager.pool.get(i.id)

        try:
            with _as_manager_error():
                status = await self.autostop.status(inst, open_one)
                if status.armed:
                    self._autostop_seen.add(inst.id)
                if status.armed and not status.running:  # the VM was started again: so is its watchdog
                    await self.autostop.restart(inst, open_one)
                    log.info("autostop watchdog of %s started again", inst.name)
        except ManagerError as exc:
            log.info("autostop state of %s not read: %s", inst.name, exc)
    # -- transfers -------------------------------------------------------------------------------------------------
    async def transfer(self, req: TransferRequest, progress: Callable[[TransferProgress], None] | None = None,
                       say: Callable[[str], None] | None = None) -> TransferSummary:
        """Copy or sync between here and an instance (`tui.core.transfer`); `progress` is called from a worker
        thread, `say` with notes (a partial file started over, what --delete deletes)."""
        from tui.core.transfer.service import run_transfer

        async def reach(name: str) -> tuple[Instance, RemoteContext, asyncssh.SSHClientConnection]:
            inst = await asyncio.to_thread(self.cloud.get_instance, name)
            ctx = await self.context(inst)
            return inst, ctx, await self.manager.connection(ctx)

        return await run_transfer(reach, req, progress, say)

    # -- all instances ---------------------------------------------------------------------------------------------
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
            await self.manager.refresh(await self.context(inst))
            await self._autostop_refresh(inst)
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
            await self.forward_reopen(instances)
        except Exception:  # never stops the app's start; said in the log
            log.exception("re-opening the saved forwards failed")
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

    # -- ssh config: the instances by name in other tools (tui.core.sshconfig, tui.core.sshkeep) -------------------
    def ssh_config_follow(self, instances: Sequence[Instance] | None = None) -> bool:
        """Blocking. Rewrite the generated ssh config when the user made one and the instances (listed when None)
        change it: after every poll that changed instances, every launch, delete and cluster change — for the app
        and the CLI alike. Never raises (a failure is emitted once)."""
        return self.ssh_configs.follow(instances)

    def ssh_config_write(self, write: bool = True) -> SshConfigReport:
        return self.ssh_configs.write(write)

    def ssh_config_install(self) -> IncludeChange:
        return self.ssh_configs.install()

    def ssh_config_uninstall(self) -> IncludeChange:
        return self.ssh_configs.uninstall()

    async def ssh_config_verify(self, names: Sequence[str]) -> list[str]:
        return await self.ssh_configs.verify(names, self.context, self.manager.connect)

    async def remote_folder(self, inst: Instance, folder: str) -> str:
        """For VS Code: `folder` as an absolute path on the instance, over the verified login (which also puts its
        host key into the app's known_hosts, where the generated config's strict checking looks)."""
        return await remote_folder(await self.manager.connection(await self.context(inst)), inst.name, folder)


@contextlib.contextmanager
def _as_manager_error() -> Iterator[None]:
    """Cluster and cloud failures reach the front ends as ManagerError (one line: the message and the hint); bad
    input stays `BadInput` (the CLI's exit 2)."""
    try:
        yield
    except BadInput:
        raise
    except ClusterCancelled as exc:
        raise Cancelled(str(exc)) from exc
    except (ClusterError, CloudError, StatusError, AutostopError) as exc:
        raise ManagerError(str(exc)) from exc


def _ref(head: Instance | str) -> str:
    return head if isinstance(head, str) else head.id


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
