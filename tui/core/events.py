"""Every event the core emits, defined once: the UI turns each into a Textual message, the CLI prints it.

Events are small frozen dataclasses named after what happened. Each one that concerns an instance carries
`instance_id`; the live state (`tui.core.live.Fleet`) folds them in, so a new signal is one dataclass here, one
`emit` in the core, and one place that shows it. Pure: no I/O, no asyncssh, no openstack — the UI imports this.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from tui.core.autostop.status import AutostopStatus
from tui.core.jupyter.idle import Tier
from tui.core.models import (
    AbsentWorker,
    ClusterStatus,
    Flavor,
    Instance,
    KernelInfo,
    Quota,
    StepResult,
    TunnelInfo,
    Volume,
)

# -- setup pipeline (tui.core.guide) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepStarted:
    step: str
    index: int  # 0-based
    total: int
    description: str


@dataclass(frozen=True, slots=True)
class OutputLines:
    step: str
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """The connection dropped during `step`; the runner reconnects and re-checks the step."""

    step: str
    attempt: int
    error: str


@dataclass(frozen=True, slots=True)
class StepFinished:
    result: StepResult


@dataclass(frozen=True, slots=True)
class PipelineFinished:
    summary: str
    seconds: float
    ok: bool = True
    results: tuple[StepResult, ...] = ()
    error: Exception | None = None  # e.g. HostKeyUnknown: the UI asks the user, then runs again


SetupEvent = StepStarted | OutputLines | Reconnecting | StepFinished | PipelineFinished


# -- the cloud ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Polled:
    """One poll of the cloud. `flavors` is None when this poll did not re-read them."""

    instances: tuple[Instance, ...]
    quota: Quota
    volumes: tuple[Volume, ...]
    flavors: tuple[Flavor, ...] | None = None


@dataclass(frozen=True, slots=True)
class SecretWanted:
    """Signing in to the cloud needs a secret clouds.yaml does not hold (`tui.core.cloud.signin`): the UI asks the
    user and calls `answer` once with it (None: cancelled). The connecting thread waits for the answer."""

    cloud: str
    kind: str  # "passcode" (TOTP) | "password"
    prompt: str
    answer: Callable[[str | None], None] = field(compare=False, repr=False)


# -- one instance, over SSH ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetupProgress:
    """A setup pipeline event for one instance, stamped with `time.monotonic()` when it happened."""

    instance_id: str
    event: SetupEvent
    at: float = field(default_factory=time.monotonic, compare=False)


@dataclass(frozen=True, slots=True)
class HostKeyQuestion:
    """Trust on first use: show the fingerprint, then call `accept()` or `refuse()` (exactly once)."""

    instance_id: str
    host: str
    port: int
    key_type: str
    fingerprint: str
    answer: Callable[[bool], None] = field(repr=False, compare=False)

    def accept(self) -> None:
        self.answer(True)

    def refuse(self) -> None:
        self.answer(False)


ConnPhase = Literal["connecting", "connected", "lost", "failed"]
JupyterPhase = Literal["starting", "running", "stopping", "stopped", "error"]


@dataclass(frozen=True, slots=True)
class ConnectionState:
    instance_id: str
    state: ConnPhase
    error: str = ""


@dataclass(frozen=True, slots=True)
class JupyterState:
    """`public_url` has no token: through the tunnel when `local_port`, else the VM-side URL."""

    instance_id: str
    state: JupyterPhase
    public_url: str = ""
    local_port: int = 0
    remote_port: int = 0
    error: str = ""


@dataclass(frozen=True, slots=True)
class LogLines:
    """New lines of the server log (cleaned, tokens redacted), batched."""

    instance_id: str
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TunnelChanged:
    """A tunnel's state or counters changed; `info.key` is (instance id, purpose)."""

    info: TunnelInfo

    @property
    def instance_id(self) -> str:
        return self.info.instance


@dataclass(frozen=True, slots=True)
class TunnelTraffic:
    """The bytes a tunnel has carried so far (VM → here `bytes_in`, here → VM `bytes_out`): sent about once a second
    while bytes move, nothing while it is idle. Folded into the tunnel's `TunnelInfo` by the live state."""

    instance_id: str
    purpose: str
    bytes_in: int
    bytes_out: int


@dataclass(frozen=True, slots=True)
class TunnelClosed:
    """A tunnel was closed on purpose (by the user, or because its instance or server went away)."""

    instance_id: str
    purpose: str


@dataclass(frozen=True, slots=True)
class IdleNudge:
    instance_id: str
    tier: Tier
    key: str
    message: str


@dataclass(frozen=True, slots=True)
class Metrics:
    """The VM's load and memory, read over the pooled SSH connection: `load1` is the 1-minute load average
    divided by the vCPUs (1.0 = every core busy); `mem_used_pct` is memory in use (MemTotal - MemAvailable)."""

    instance_id: str
    load1: float
    mem_used_pct: float


@dataclass(frozen=True, slots=True)
class BackgroundFailed:
    """A background task (`tui.core.tasks.spawn`) ended with an error; `what` names it in words ("following the
    Jupyter log of vm1"), `instance_id` is "" when it concerns no one instance. Shown as a warning."""

    instance_id: str
    what: str
    error: str

    @property
    def message(self) -> str:
        return f"{self.what} stopped: {self.error}"


@dataclass(frozen=True, slots=True)
class HostKeysUnpinned:
    """The console log of the instance could not be read, so its host keys are not pinned from it: the first
    login falls back to trust on first use (`reason` says why the read failed). Shown as a warning."""

    instance_id: str
    name: str
    reason: str

    @property
    def message(self) -> str:
        return (f"Could not read the console log of {self.name} ({self.reason}): falling back to trust on first use"
                " — compare the host key fingerprint shown with the one your cloud's console shows.")


@dataclass(frozen=True, slots=True)
class AutostopState:
    """The autostop watchdog on an instance, as read from the VM (`tui.core.autostop`): armed or not, how long
    until it acts, its warning (the app shows it), what it did."""

    instance_id: str
    status: AutostopStatus
    at: float = field(default_factory=time.time)


# Per-instance signals whose latest value the live state keeps as is (`InstanceLive.signal(Metrics)`), and whose
# fields `status --json` prints: a new signal of this kind is a dataclass above, listed here, and a place showing it.
SIGNALS: tuple[type, ...] = (Metrics,)


@dataclass(frozen=True, slots=True)
class StopOutcome:
    """What `stop_jupyter` did: stopped, or refused because these kernels are busy (pass force=True)."""

    stopped: bool
    busy: tuple[KernelInfo, ...] = ()
    unknown: str = ""  # not stopped because the kernels could not be listed (why): they may be busy, ask

    @property
    def asks(self) -> str:
        """Why stopping needs the user's yes ('' when it stopped): kernels busy, or whether they are is unknown."""
        if self.stopped:
            return ""
        if self.unknown:
            return f"could not tell whether kernels are busy ({self.unknown})"
        return f"{len(self.busy)} kernel(s) are busy"


# -- a Dask cluster (tui.core.cluster) -------------------------------------------------------------------------

ClusterPhase = Literal["plan", "launch", "probe", "install", "tls", "scheduler", "worker", "connected", "waiting",
                       "retire", "stop", "found", "delete", "dashboard", "failed", "done"]


@dataclass(frozen=True, slots=True)
class ClusterProgress:
    """One step of cluster work. `instance` names the instance it concerns ("" = the whole cluster); `head_id` is
    the cluster's head (filled in by the service; the engine works on one cluster and leaves it empty)."""

    instance: str
    phase: ClusterPhase
    message: str
    head_id: str = ""


@dataclass(frozen=True, slots=True)
class ClusterState:
    """The scheduler's view of the cluster headed by `head_id` (None while it does not answer: `problem` says why),
    and the local dashboard URL when a tunnel is open."""

    head_id: str
    status: ClusterStatus | None
    dashboard_url: str = ""
    problem: str = ""
    at: float = field(default_factory=time.time)
    absent: tuple[AbsentWorker, ...] = ()  # workers it should have that the scheduler does not list
    scheduler: str = ""  # the scheduler's address on record on the head ("" when none)

    @property
    def instance_id(self) -> str:
        return self.head_id


Event = (
    Polled | SetupProgress | HostKeyQuestion | ConnectionState | JupyterState | LogLines | TunnelChanged
    | TunnelTraffic | TunnelClosed | IdleNudge | Metrics | ClusterProgress | ClusterState | SecretWanted
    | BackgroundFailed | HostKeysUnpinned | AutostopState
)
Emit = Callable[[Event], None]
