"""The core's events as Textual messages: one class per event type of `tui.core.events`, named after it
(`JupyterStateMessage` for `JupyterState`), handled on the App by `on_<event name in snake case>`
(`on_jupyter_state`). `tui.ui.bridge` posts them;
a test checks that every event has its class here and every class its event — a signal (`events.SIGNALS`) needs
one only when the app reacts to it (the panes read signals from the live state). Imported with the bridge, after
the first frame. State messages coalesce while queued: those with a `replace_key`."""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

from textual.case import camel_to_snake
from textual.message import Message

from tui.core import events as ev

E = TypeVar("E")


class CoreMessage(Message, Generic[E]):
    """A core event as a message; `event` is the core's frozen dataclass, `kind` its type."""

    kind: ClassVar[type]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """`JupyterStateMessage` is handled by `on_jupyter_state`: the event's name gives the handler's (class names
        stay unique across tui/, so go-to-definition finds one)."""
        super().__init_subclass__(**kwargs)
        cls.handler_name = "on_" + camel_to_snake(cls.__name__.removesuffix("Message"))

    def __init__(self, event: E) -> None:
        super().__init__()
        self.event = event

    def replace_key(self) -> object:
        """Queued messages of one class with the same key replace each other; None (log lines...): never."""
        return None

    def can_replace(self, message: Message) -> bool:
        key = self.replace_key()
        return key is not None and type(message) is type(self) and isinstance(message, CoreMessage) \
            and message.replace_key() == key


class PolledMessage(CoreMessage[ev.Polled]):
    kind = ev.Polled


class SecretWantedMessage(CoreMessage[ev.SecretWanted]):
    kind = ev.SecretWanted


class SetupProgressMessage(CoreMessage[ev.SetupProgress]):
    kind = ev.SetupProgress


class HostKeyQuestionMessage(CoreMessage[ev.HostKeyQuestion]):
    kind = ev.HostKeyQuestion


class ConnectionStateMessage(CoreMessage[ev.ConnectionState]):
    kind = ev.ConnectionState

    def replace_key(self) -> object:
        return self.event.instance_id


class JupyterStateMessage(CoreMessage[ev.JupyterState]):
    kind = ev.JupyterState

    def replace_key(self) -> object:
        return self.event.instance_id


class LogLinesMessage(CoreMessage[ev.LogLines]):
    kind = ev.LogLines


class TunnelChangedMessage(CoreMessage[ev.TunnelChanged]):
    kind = ev.TunnelChanged

    def replace_key(self) -> object:
        return self.event.info.key


class TunnelTrafficMessage(CoreMessage[ev.TunnelTraffic]):
    kind = ev.TunnelTraffic

    def replace_key(self) -> object:
        return self.event.instance_id, self.event.purpose


class TunnelClosedMessage(CoreMessage[ev.TunnelClosed]):
    kind = ev.TunnelClosed


class IdleNudgeMessage(CoreMessage[ev.IdleNudge]):
    kind = ev.IdleNudge


class MetricsMessage(CoreMessage[ev.Metrics]):
    kind = ev.Metrics

    def replace_key(self) -> object:
        return self.event.instance_id


class ClusterProgressMessage(CoreMessage[ev.ClusterProgress]):
    kind = ev.ClusterProgress


class ClusterStateMessage(CoreMessage[ev.ClusterState]):
    kind = ev.ClusterState

    def replace_key(self) -> object:
        return self.event.head_id


class BackgroundFailedMessage(CoreMessage[ev.BackgroundFailed]):
    kind = ev.BackgroundFailed


class HostKeysUnpinnedMessage(CoreMessage[ev.HostKeysUnpinned]):
    kind = ev.HostKeysUnpinned


class AutostopStateMessage(CoreMessage[ev.AutostopState]):
    kind = ev.AutostopState

    def replace_key(self) -> object:
        return self.event.instance_id


MESSAGES: tuple[type[CoreMessage[Any]], ...] = (
    PolledMessage, SecretWantedMessage, SetupProgressMessage, HostKeyQuestionMessage, ConnectionStateMessage,
    JupyterStateMessage, LogLinesMessage, TunnelChangedMessage, TunnelTrafficMessage, TunnelClosedMessage,
    IdleNudgeMessage, MetricsMessage, ClusterProgressMessage, ClusterStateMessage, BackgroundFailedMessage,
    HostKeysUnpinnedMessage, AutostopStateMessage,
)
FOR_EVENT: dict[type, type[CoreMessage[Any]]] = {cls.kind: cls for cls in MESSAGES}
