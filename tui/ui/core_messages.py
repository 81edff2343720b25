"""The core's events as Textual messages: one class per event type of `tui.core.events`, of the same name, so its
handler on the App is `on_<name in snake case>` (`JupyterState` → `on_jupyter_state`). `tui.ui.bridge` posts them;
a test checks that every event has its class here and every class its event — a signal (`events.SIGNALS`) needs
one only when the app reacts to it (the panes read signals from the live state). Imported with the bridge, after
the first frame. State messages coalesce while queued: those with a `replace_key`."""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

from textual.message import Message

from tui.core import events as ev

E = TypeVar("E")


class CoreMessage(Message, Generic[E]):
    """A core event as a message; `event` is the core's frozen dataclass, `kind` its type."""

    kind: ClassVar[type]

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


class Polled(CoreMessage[ev.Polled]):
    kind = ev.Polled


class SecretWanted(CoreMessage[ev.SecretWanted]):
    kind = ev.SecretWanted


class SetupProgress(CoreMessage[ev.SetupProgress]):
    kind = ev.SetupProgress


class HostKeyQuestion(CoreMessage[ev.HostKeyQuestion]):
    kind = ev.HostKeyQuestion


class ConnectionState(CoreMessage[ev.ConnectionState]):
    kind = ev.ConnectionState

    def replace_key(self) -> object:
        return self.event.instance_id


class JupyterState(CoreMessage[ev.JupyterState]):
    kind = ev.JupyterState

    def replace_key(self) -> object:
        return self.event.instance_id


class LogLines(CoreMessage[ev.LogLines]):
    kind = ev.LogLines


class TunnelChanged(CoreMessage[ev.TunnelChanged]):
    kind = ev.TunnelChanged

    def replace_key(self) -> object:
        return self.event.info.key


class TunnelTraffic(CoreMessage[ev.TunnelTraffic]):
    kind = ev.TunnelTraffic

    def replace_key(self) -> object:
        return self.event.instance_id, self.event.purpose


class TunnelClosed(CoreMessage[ev.TunnelClosed]):
    kind = ev.TunnelClosed


class IdleNudge(CoreMessage[ev.IdleNudge]):
    kind = ev.IdleNudge


class Metrics(CoreMessage[ev.Metrics]):
    kind = ev.Metrics

    def replace_key(self) -> object:
        return self.event.instance_id


class ClusterProgress(CoreMessage[ev.ClusterProgress]):
    kind = ev.ClusterProgress


class ClusterState(CoreMessage[ev.ClusterState]):
    kind = ev.ClusterState

    def replace_key(self) -> object:
        return self.event.head_id


class BackgroundFailed(CoreMessage[ev.BackgroundFailed]):
    kind = ev.BackgroundFailed


class HostKeysUnpinned(CoreMessage[ev.HostKeysUnpinned]):
    kind = ev.HostKeysUnpinned


MESSAGES: tuple[type[CoreMessage[Any]], ...] = (
    Polled, SecretWanted, SetupProgress, HostKeyQuestion, ConnectionState, JupyterState, LogLines, TunnelChanged,
    TunnelTraffic, TunnelClosed, IdleNudge, Metrics, ClusterProgress, ClusterState, BackgroundFailed,
    HostKeysUnpinned,
)
FOR_EVENT: dict[type, type[CoreMessage[Any]]] = {cls.kind: cls for cls in MESSAGES}
