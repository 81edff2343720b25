"""The concrete core behind `tui.core.api.Engine`: one cloud, one remote manager, the SSH contexts of instances.

Built by the entry point in a worker thread (it imports openstacksdk and asyncssh and authenticates), then driven
by the app: blocking cloud calls from thread workers, remote work from async workers. It emits every event through
one `emit` (the app's bridge, which is thread-safe), and returns results as values.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tui.core.api import ApproveFormat, AskDelete, EngineFactory, Login
from tui.core.capabilities.autostop import EngineAutostop
from tui.core.capabilities.cluster import EngineCluster
from tui.core.capabilities.errors import as_manager_error
from tui.core.capabilities.fleet import EngineFleet
from tui.core.capabilities.forwards import EngineForwards
from tui.core.capabilities.jupyter import EngineJupyter
from tui.core.capabilities.shell import EngineShell
from tui.core.capabilities.shelving import EngineShelving
from tui.core.capabilities.sshconfig import EngineSshConfig
from tui.core.capabilities.transfers import EngineTransfers
from tui.core.cloud.base import Cloud, LaunchSpec
from tui.core.cloud.signin import Ask
from tui.core.cluster.deletion import Deletion
from tui.core.cluster.lifecycle import ClusterLifecycle
from tui.core.config import Settings
from tui.core.events import Emit, JupyterState, PipelineFinished, Polled
from tui.core.forwards import local_forwards
from tui.core.forwards.service import ForwardService
from tui.core.images import Images
from tui.core.imagesecrets import SecretsAside
from tui.core.manager import RemoteManager
from tui.core.models import Flavor, Image, Instance, Keypair, Network, Quota, TunnelInfo, Volume
from tui.core.options import ManagerOptions
from tui.core.services import RemoteContext, Services, launch_instance
from tui.core.sshkeep import SshConfigs
from tui.core.state import STATE_FILE, AppState

if TYPE_CHECKING:
    from tui.core.cost import CostReport

log = logging.getLogger(__name__)
QUOTA_EVERY = 6  # quota and volumes re-read at least on every 6th poll (volumes change without servers changing)


class CoreEngine:
    """The composition root: the cloud listings and changes, one instance over SSH (login, setup, tunnels) and
    deleting an instance are its own methods; every other capability is an object of `tui.core.capabilities` (or
    of the core module doing the job) reached as an attribute, each given only the parts it needs."""

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
        self.lifecycle = ClusterLifecycle(settings, cloud, self.manager, self.context, emit)
        # -- the capabilities (`tui.core.api`'s Protocols): one line each ------------------------------------------
        self.sshconfig = EngineSshConfig(SshConfigs(settings, self.services, cloud, emit,  # forwards: LocalForward
                                                    forwards=lambda: local_forwards(self.manager.state)),
                                         self.manager, self.context)
        self.cluster = EngineCluster(self.lifecycle, self.sshconfig.after)
        self.shelving = EngineShelving(settings, cloud, self.manager, self.lifecycle, self.context,
                                       lambda iid: self._contexts.pop(iid, None))
        self.images = Images(cloud, secrets=SecretsAside(lambda ref: self.services.prepare(cloud, ref),
                                                         self.services.command_log))
        self.forwards = EngineForwards(ForwardService(self.manager), self.context, self.sshconfig.follow,
                                       self._names)
        self.shell = EngineShell(settings, self.manager, self.context, self.services.command_log)
        self.transfers = EngineTransfers(cloud, self.manager, self.context)
        self.autostop = EngineAutostop(settings, cloud, self.manager, self.context, self.services.command_log, emit)
        self.jupyter = EngineJupyter(self.manager, self.context)
        self.fleet = EngineFleet(self.manager, self.context, self.lifecycle, self.forwards, self.autostop,
                                 lambda: self._polls)

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
            self.sshconfig.follow(polled.instances)
        return polled

    def _names(self) -> dict[str, str]:
        """The instances' names by id, as the last poll listed them."""
        return {i.id: i.name for i in self._last.instances} if self._last is not None else {}

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
        if self.sshconfig.follow():
            say(f"Updated {self.sshconfig.configs.keeper.path}")
        return inst

    def start(self, name_or_id: str, wait: bool = True) -> Instance:
        inst = self.cloud.start(name_or_id, wait)
        self.sshconfig.follow()  # an address may change with the power state
        return inst

    def stop(self, name_or_id: str, wait: bool = True) -> Instance:
        inst = self.cloud.stop(name_or_id, wait)
        self.sshconfig.follow()
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

    # -- one instance over SSH (its Jupyter: `self.jupyter`) -------------------------------------------------------
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

    async def open_tunnel(self, inst: Instance, local_port: int | None = None, strict: bool = False) -> JupyterState:
        return await self.manager.open_tunnel(await self.context(inst), local_port, strict)

    async def close_tunnel(self, instance_id: str, purpose: str = "jupyter") -> None:
        await self.manager.close_tunnel(instance_id, purpose)

    def tunnels(self) -> list[TunnelInfo]:
        return self.manager.tunnels()

    def saved_state(self) -> AppState:
        return self.manager.state

    # -- deleting an instance, and the Dask cluster it heads -----------------------------------------------------
    async def delete_instance(self, inst: Instance, ask: AskDelete | None, delete_volumes: bool = False) -> Deletion:
        """Delete an instance and what goes with it: the Dask cluster it heads (workers, their volumes, the group,
        the tunnels). `ask` sees the facts first (None from it: cancelled, `Cancelled`)."""
        async with self.sshconfig.after():
            with as_manager_error():
                plan = await self.lifecycle.delete_instance(inst.id, ask, delete_volumes)
        for gone in (*plan.workers, inst):
            self._contexts.pop(gone.id, None)
        return plan

    # -- what instances cost ---------------------------------------------------------------------------------------
    def cost(self, instances: Sequence[Instance]) -> CostReport | None:
        """The burn rate and each instance's share and savings by the profile's cost model (None without one)."""
        from tui.core.cost import report

        model = self.settings.cost_model
        return None if model is None else report(model, list(instances))

    # -- an instance gone, the engine closed ---------------------------------------------------------------------
    async def forget_instance(self, instance_id: str) -> None:
        self._contexts.pop(instance_id, None)
        await self.manager.forget_instance(instance_id)

    async def aclose(self) -> None:
        await self.manager.aclose()


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
