"""The app's own messages: what its workers post about actions (the core's events come through `tui.ui.bridge`).

Workers run cloud calls in threads and post exactly one of these per outcome; only handlers touch widgets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from textual.message import Message

from tui.core.api import Engine
from tui.core.cloud.base import CloudError
from tui.core.models import Flavor, Image, Instance, Keypair, Network, Quota, Volume


@dataclass
class EngineReady(Message):
    """The core is built and the cloud authenticated."""

    engine: Engine


@dataclass
class CloudFailed(Message):
    """Connecting or polling failed."""

    error: CloudError


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


@dataclass
class RemoteResult(Message):
    """A remote action (setup, Jupyter, tunnel, shell) finished or failed; `text` is for the user."""

    action: str
    target: str
    text: str
    ok: bool = True
