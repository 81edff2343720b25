"""App-wide messages. Workers post these; only their handlers touch widgets.

Workers run cloud calls in threads and post exactly one of these per outcome; `can_replace`
coalesces state messages (a newer poll result replaces an older one still queued).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

from tui.cloud.base import Cloud, CloudError
from tui.models import Flavor, Image, Instance, Keypair, Network, Quota, Volume


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
