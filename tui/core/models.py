"""Typed, immutable views of cloud and remote objects. No I/O here.

The cloud facade (`tui.core.cloud`) turns openstacksdk resources into these; the UI and the
headless CLI only ever see these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

# Server metadata keys the sandbox cloud sets (a real cloud does not): the SSH port and
# user of the instance's SSH host. On a real cloud the port is 22 and the user comes
# from the profile.
from tui.conventions import META_SSH_PORT, META_SSH_USER
from tui.core.units import left, ram


class Family(StrEnum):
    MEMORY = "m1"
    COMPUTE = "c1"
    OTHER = "other"


FAMILY_HINTS = {
    Family.MEMORY: "memory-heavy: statistics, large data in RAM",
    Family.COMPUTE: "compute-heavy: many small parallel jobs",
    Family.OTHER: "",
}


@dataclass(frozen=True, slots=True)
class Flavor:
    id: str
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    is_public: bool = True

    @property
    def family(self) -> Family:
        prefix = self.name.split(".", 1)[0]
        if prefix == "m1":
            return Family.MEMORY
        if prefix == "c1":
            return Family.COMPUTE
        return Family.OTHER

    @property
    def hint(self) -> str:
        return FAMILY_HINTS[self.family]


@dataclass(frozen=True, slots=True)
class Image:
    id: str
    name: str
    status: str
    min_disk_gb: int = 0
    size_bytes: int = 0
    os_distro: str = ""
    os_version: str = ""
    created_at: datetime | None = None
    own: bool = False  # owned by this project (a snapshot made with createImage, an upload)
    visibility: str = ""  # public | private | shared | community
    instance_id: str = ""  # a snapshot's server (Nova's instance_uuid property)
    snapshot_ids: tuple[str, ...] = ()  # a volume-backed snapshot image's Cinder snapshots (its block_device_mapping)


@dataclass(frozen=True, slots=True)
class VolumeSnapshot:
    """A Cinder volume snapshot (createImage of a volume-backed server makes one per volume)."""

    id: str
    name: str
    volume_id: str
    size_gb: int
    status: str


@dataclass(frozen=True, slots=True)
class Address:
    network: str
    addr: str
    kind: str  # "fixed" | "floating"
    version: int = 4


# Nova's shelved states: the disk kept, nothing running. Offloaded, the server is on no host: it holds no cores or
# RAM where the cloud counts quota from placement (Nova's count_usage_from_placement).
SHELVED_STATES = ("SHELVED", "SHELVED_OFFLOADED")


@dataclass(frozen=True, slots=True)
class Instance:
    id: str
    name: str
    status: str  # BUILD, ACTIVE, SHUTOFF, SHELVED, SHELVED_OFFLOADED, VERIFY_RESIZE, RESIZE, ERROR, DELETED, ...
    flavor_name: str = ""
    flavor_id: str = ""
    vcpus: int = 0
    ram_mb: int = 0
    image_id: str = ""
    key_name: str = ""
    addresses: tuple[Address, ...] = ()
    created_at: datetime | None = None
    launched_at: datetime | None = None
    task_state: str = ""
    power_state: int = 0
    fault: str = ""
    volume_ids: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def meta(self) -> dict[str, str]:
        return dict(self.metadata)

    @property
    def shelved(self) -> bool:
        """SHELVED or SHELVED_OFFLOADED: nothing runs; unshelve brings it back with the same disk."""
        return self.status in SHELVED_STATES

    @property
    def ip(self) -> str:
        """The address to reach the instance at: floating first, then fixed."""
        for kind in ("floating", "fixed"):
            for a in self.addresses:
                if a.kind == kind and a.version == 4:
                    return a.addr
        return self.addresses[0].addr if self.addresses else ""

    @property
    def private_ip(self) -> str:
        """The instance's fixed (private) IPv4 address: what other instances of its network reach it at."""
        return next((a.addr for a in self.addresses if a.kind == "fixed" and a.version == 4), "")

    @property
    def public_ip(self) -> str:
        """Its floating IPv4 address, or "" when it has none (a private-only instance)."""
        return next((a.addr for a in self.addresses if a.kind == "floating" and a.version == 4), "")

    @property
    def ssh_port(self) -> int:
        try:
            return int(self.meta.get(META_SSH_PORT, "22"))
        except ValueError:
            return 22

    @property
    def ssh_user(self) -> str | None:
        return self.meta.get(META_SSH_USER)

    def uptime_seconds(self, now: datetime | None = None) -> float | None:
        """Seconds since launch while running; None when not running or unknown."""
        if self.status not in ("ACTIVE", "VERIFY_RESIZE") or self.launched_at is None:
            return None
        now = now or datetime.now(UTC)
        return max(0.0, (now - self.launched_at).total_seconds())


@dataclass(frozen=True, slots=True)
class Quota:
    ram_mb_limit: int
    ram_mb_used: int
    cores_limit: int
    cores_used: int
    instances_limit: int
    instances_used: int
    keypairs_limit: int = -1
    volumes_limit: int = -1
    volumes_used: int = 0
    gigabytes_limit: int = -1
    gigabytes_used: int = 0

    @property
    def ram_mb_free(self) -> int:
        return _free(self.ram_mb_limit, self.ram_mb_used)

    @property
    def cores_free(self) -> int:
        return _free(self.cores_limit, self.cores_used)

    @property
    def instances_free(self) -> int:
        return _free(self.instances_limit, self.instances_used)

    @property
    def gigabytes_free(self) -> int:
        return _free(self.gigabytes_limit, self.gigabytes_used)

    def misfit(self, flavor: Flavor, volume_gb: int = 0) -> list[str]:
        """Why `flavor` (plus a boot volume) does not fit the remaining quota; empty if it fits."""
        reasons = []
        if flavor.ram_mb > self.ram_mb_free:
            reasons.append(f"needs {ram(flavor.ram_mb)} RAM, {left(self.ram_mb_free, ram(self.ram_mb_free))}")
        if flavor.vcpus > self.cores_free:
            reasons.append(f"needs {flavor.vcpus} cores, {left(self.cores_free)}")
        if self.instances_free < 1:
            reasons.append("no instances left in the quota")
        if volume_gb and volume_gb > self.gigabytes_free:
            free = self.gigabytes_free
            reasons.append(f"needs {volume_gb} GB of volume, {left(free, f'{free} GB')}")
        return reasons

    def fits(self, flavor: Flavor, volume_gb: int = 0) -> bool:
        return not self.misfit(flavor, volume_gb)


def _free(limit: int, used: int) -> int:
    if limit < 0:  # -1 means unlimited in Nova/Cinder
        return 1 << 62
    return max(0, limit - used)


@dataclass(frozen=True, slots=True)
class Keypair:
    name: str
    fingerprint: str
    type: str = "ssh"
    public_key: str = ""


@dataclass(frozen=True, slots=True)
class Volume:
    id: str
    name: str
    size_gb: int
    status: str
    attached_to: tuple[str, ...] = ()  # server ids
    device: str = ""
    bootable: bool = False
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Network:
    id: str
    name: str
    external: bool = False
    subnets: tuple[str, ...] = ()


class TunnelState(StrEnum):
    STARTING = "starting"
    UP = "up"
    RECONNECTING = "reconnecting"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class TunnelInfo:
    """One forward 127.0.0.1:local_port → remote_host:remote_port on an instance, for a purpose: `jupyter`,
    `dask-dashboard`, `dask-scheduler` or a user's own name. Tunnels are keyed by (instance, purpose)."""

    instance: str
    local_port: int
    remote_host: str
    remote_port: int
    state: TunnelState
    since: datetime
    bytes_in: int = 0
    bytes_out: int = 0
    error: str = ""
    purpose: str = "jupyter"

    @property
    def key(self) -> tuple[str, str]:
        return (self.instance, self.purpose)


class StepStatus(StrEnum):
    PENDING = "pending"
    CHECKING = "checking"
    RUNNING = "running"
    SKIPPED = "skipped"  # check said it is already done
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class StepResult:
    step: str
    status: StepStatus
    seconds: float = 0.0
    command: str = ""
    output_tail: tuple[str, ...] = field(default_factory=tuple)
    error: str = ""


@dataclass(frozen=True, slots=True)
class KernelInfo:
    id: str
    name: str
    execution_state: str
    last_activity: datetime | None
    connections: int = 0
    path: str = ""  # the notebook using it, from /api/sessions

    @property
    def busy(self) -> bool:
        return self.execution_state == "busy"


# -- a Dask cluster, as its scheduler sees it (tui.core.cluster) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerRow:
    name: str
    address: str
    status: str  # running, paused, closing_gracefully, …
    threads: int
    memory_used: int  # bytes (process RSS)
    memory_limit: int  # bytes; 0 = no limit
    processing: int  # tasks assigned and not finished
    last_seen: float  # epoch seconds (the scheduler's clock)


@dataclass(frozen=True, slots=True)
class AbsentWorker:
    """A worker of the cluster that the scheduler does not list: `lost` (in the cluster's record, but its session
    ended or its instance is gone or unreachable), `starting` (its session runs, not connected yet) or `unjoined`
    (a `HEAD-wN` instance that never joined, e.g. launched by an interrupted create: it bills all the same)."""

    name: str
    state: str  # lost, starting, unjoined
    why: str = ""


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    scheduler: str  # tls://host:port
    dashboard_url: str  # as seen from the head (127.0.0.1:port); through a tunnel the UI shows its own
    workers: tuple[WorkerRow, ...] = ()
    started: float = 0.0

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(w.name for w in self.workers)

    @property
    def threads(self) -> int:
        return sum(w.threads for w in self.workers)

    def worker(self, name: str) -> WorkerRow | None:
        return next((w for w in self.workers if w.name == name), None)


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    """What create/scale did: the scheduler's view, the local dashboard URL ("" without a tunnel), and the
    workers that could not join (`name: reason`) — the rest of the cluster runs without them."""

    head: str
    status: ClusterStatus
    dashboard: str = ""
    failed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
