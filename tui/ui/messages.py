"""App-wide messages. Workers post these; only their handlers touch widgets.

Workers run cloud calls in threads and post exactly one of these per outcome; `can_replace`
coalesces state messages (a newer poll result replaces an older one still queued).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

from tui.core.cloud.base import Cloud, CloudError
from tui.core.models import Flavor, Image, Instance, Keypair, Network, Quota, TunnelInfo, Volume

if TYPE_CHECKING:  # the manager imports asyncssh: loaded after the first frame, never at import
    from tui.core.guide import SetupEvent
    from tui.core.manager import ConnectionState, HostKeyQuestion, IdleNudge, JupyterState, ManagerEvent


@dataclass
class CloudConnected(Message):
    """The cloud facade is built and authenticated."""

    cloud: Cloud


@dataclass
class CloudFailed(Message):
    """Connecting or polling failed."""

    error: CloudError


@dataclass
class Polled(Message):
    """One poll's results. `flavors` is None when this poll did not re-read them."""

    instances: list[Instance]
    quota: Quota
    volumes: list[Volume]
    flavors: list[Flavor] | None = None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Polled) and message.flavors is None


@dataclass
class LaunchChoices(Message):
    """What the launch wizard offers: read from the cloud just before it opens."""

    images: list[Image]
    flavors: list[Flavor]
    keypairs: list[Keypair]
    networks: list[Network]
    quota: Quota
    instance_names: list[str] = field(default_factory=list)
    public_keys: list[Path] = field(default_factory=list)  # ~/.ssh/*.pub the user may import


@dataclass
class ActionProgress(Message):
    """A line of progress for a long action (launch, resize...)."""

    action: str
    target: str
    text: str


@dataclass
class ActionDone(Message):
    """An action finished; `text` says what happened. `instance` is the result when there is one."""

    action: str
    target: str
    text: str
    instance: Instance | None = None


@dataclass
class ActionFailed(Message):
    """An action failed with the cloud's message and what to do."""

    action: str
    target: str
    error: CloudError


@dataclass
class ConsoleLoaded(Message):
    instance: Instance
    text: str


@dataclass
class InstanceDetails(Message):
    instance: Instance
    image_name: str
    volumes: list[Volume]


@dataclass
class VolumesLoaded(Message):
    """Volumes and quota for the volumes screen (re-sent after each volume action)."""

    volumes: list[Volume]
    instances: list[Instance]
    quota: Quota


# -- the remote manager's events, as messages ----------------------------------------------------------------


@dataclass
class SetupEvents(Message):
    """A batch of setup pipeline events for one instance, in order, each with its monotonic time stamp."""

    instance_id: str
    events: list[tuple[float, SetupEvent]]


@dataclass
class JupyterLog(Message):
    """A batch of new Jupyter log lines (cleaned, tokens redacted)."""

    instance_id: str
    lines: list[str]


@dataclass
class JupyterChanged(Message):
    state: JupyterState

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, JupyterChanged) and message.state.instance_id == self.state.instance_id


@dataclass
class TunnelUpdated(Message):
    info: TunnelInfo

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TunnelUpdated) and message.info.instance == self.info.instance


@dataclass
class SshStateChanged(Message):
    state: ConnectionState

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SshStateChanged) and message.state.instance_id == self.state.instance_id


@dataclass
class HostKeyAsked(Message):
    """Trust on first use: the user answers with question.accept() / question.refuse()."""

    question: HostKeyQuestion


@dataclass
class IdleNudged(Message):
    nudge: IdleNudge


@dataclass
class RemoteResult(Message):
    """A remote action (setup, Jupyter, tunnel, shell) finished or failed; `text` is for the user."""

    action: str
    target: str
    text: str
    ok: bool = True


MAX_BATCH_S = 0.25  # a log flood is shown 4 times a second: each redraw costs the same, whatever the lines
FLOOD_LINES_PER_S = 4000


class EventBridge:
    """Turns the manager's events (called on the app's event loop) into messages for `post`.

    Log lines and setup events are batched: everything that arrives within `interval` seconds becomes one
    message; the interval grows while the app's message queue is long (`queue_size()`) or the previous batch was
    large (up to MAX_BATCH_S), so a flood never floods the queue nor redraws the screen per line. State messages
    coalesce through `can_replace`. `on_busy` receives BusyKernels (the stop worker asks the user itself).
    """

    def __init__(self, post: Callable[[Message], object], queue_size: Callable[[], int],
                 on_busy: Callable[[object], None], interval: float = 0.1) -> None:
        from tui.core import manager as m

        self._m = m
        self.post = post
        self.queue_size = queue_size
        self.on_busy = on_busy
        self.interval = interval
        self._log: dict[str, list[str]] = {}
        self._setup: dict[str, list[tuple[float, SetupEvent]]] = {}
        self._flush_at: asyncio.TimerHandle | None = None
        self._last_lines = 0  # lines in the previous flush

    def __call__(self, event: ManagerEvent) -> None:
        m = self._m
        if isinstance(event, m.LogLines):
            self._log.setdefault(event.instance_id, []).extend(event.lines)
            self._schedule()
        elif isinstance(event, m.SetupProgress):
            self._setup.setdefault(event.instance_id, []).append((time.monotonic(), event.event))
            self._schedule()
        else:
            self.flush()  # keep the order: lines before a state change
            if isinstance(event, m.JupyterState):
                self.post(JupyterChanged(event))
            elif isinstance(event, m.TunnelChanged):
                self.post(TunnelUpdated(event.info))
            elif isinstance(event, m.ConnectionState):
                self.post(SshStateChanged(event))
            elif isinstance(event, m.HostKeyQuestion):
                self.post(HostKeyAsked(event))
            elif isinstance(event, m.IdleNudge):
                self.post(IdleNudged(event))
            elif isinstance(event, m.BusyKernels):
                self.on_busy(event)

    def _schedule(self) -> None:
        if self._flush_at is None:
            backlog = self.queue_size()
            delay = self.interval * (1 + min(backlog, 200) / 10)  # back off while the app is behind
            delay = max(delay, min(MAX_BATCH_S, self._last_lines / FLOOD_LINES_PER_S))  # and during a flood
            self._flush_at = asyncio.get_running_loop().call_later(delay, self.flush)

    def flush(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        setup, self._setup = self._setup, {}
        for iid, events in setup.items():
            self.post(SetupEvents(iid, events))
        log, self._log = self._log, {}
        self._last_lines = sum(len(lines) for lines in log.values())
        for iid, lines in log.items():
            self.post(JupyterLog(iid, lines))
