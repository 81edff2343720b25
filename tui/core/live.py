"""The one live state: what is known right now about each instance — cloud, SSH, setup, Jupyter, tunnels by purpose,
and the latest of every other per-instance signal — folded from the core's events. Pure; the UI observes it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from tui.core import events
from tui.core.events import (
    ConnectionState,
    Event,
    JupyterState,
    PipelineFinished,
    Polled,
    SetupProgress,
    StepStarted,
    TunnelChanged,
    TunnelClosed,
    TunnelTraffic,
)
from tui.core.models import Flavor, Instance, Quota, TunnelInfo, TunnelState, Volume


@dataclass(frozen=True, slots=True)
class InstanceLive:
    """One instance as the app knows it. `ssh` and `setup` are "" until something happens."""

    id: str
    instance: Instance | None = None
    ssh: str = ""  # connecting / connected / lost / failed
    ssh_error: str = ""
    setup: str = ""  # running / done / failed
    jupyter: JupyterState | None = None
    tunnels: tuple[TunnelInfo, ...] = ()
    signals: tuple[Any, ...] = ()  # the latest event of each SIGNALS type
    deleting: bool = False
    version: int = 0

    @property
    def name(self) -> str:
        return self.instance.name if self.instance is not None else self.id[:8]

    def tunnel(self, purpose: str = "jupyter") -> TunnelInfo | None:
        return next((t for t in self.tunnels if t.purpose == purpose), None)

    def signal(self, kind: type) -> Any:
        return next((s for s in self.signals if isinstance(s, kind)), None)

    def signal_fields(self) -> dict[str, Any]:
        """Every field of every per-instance signal, None when not known yet (e.g. for `status --json`)."""
        out: dict[str, Any] = {}
        for kind in events.SIGNALS:
            value = self.signal(kind)
            for f in fields(kind):
                if f.name != "instance_id":
                    out[f.name] = getattr(value, f.name) if value is not None else None
        return out


@dataclass(slots=True)
class Fleet:
    """Instances by id plus the project's quota, volumes and flavors. `apply(event)` folds an event in and returns
    the ids it changed; `version` grows with every change, so an observer redraws only what `changed(since)` lists."""

    live: dict[str, InstanceLive] = field(default_factory=dict)
    quota: Quota | None = None
    volumes: tuple[Volume, ...] = ()
    flavors: tuple[Flavor, ...] = ()
    polled: bool = False
    version: int = 0

    # -- reading ----------------------------------------------------------------------------------------------
    def instances(self) -> list[Instance]:
        return [x.instance for x in self.live.values() if x.instance is not None]

    def get(self, instance_id: str) -> InstanceLive | None:
        return self.live.get(instance_id)

    def name(self, instance_id: str) -> str:
        x = self.live.get(instance_id)
        return x.name if x is not None else instance_id[:8]

    def changed(self, since: int) -> list[InstanceLive]:
        return [x for x in self.live.values() if x.version > since]

    def tunnels(self) -> list[TunnelInfo]:
        return [t for x in self.live.values() if x.instance is not None for t in x.tunnels]

    def running_jupyter(self) -> list[str]:
        return [x.name for x in self.live.values() if x.jupyter is not None and x.jupyter.state == "running"]

    # -- folding events in ----------------------------------------------------------------------------------------
    def apply(self, event: Event) -> set[str]:
        if isinstance(event, Polled):
            return self._polled(event)
        iid = getattr(event, "instance_id", None)
        if iid is None:
            return set()
        before = self.live.get(iid) or InstanceLive(iid)
        after = _fold(before, event)
        if after == before:
            return set()
        self._put(after)
        return {iid}

    def mark_deleting(self, instance_id: str) -> None:
        x = self.live.get(instance_id)
        if x is not None:
            self._put(replace(x, deleting=True))

    def forget(self, instance_id: str) -> None:
        if self.live.pop(instance_id, None) is not None:
            self.version += 1

    def gone(self, instances: Iterable[Instance]) -> list[str]:
        """Ids known with remote state whose instance is no longer in the cloud's list."""
        now = {i.id for i in instances}
        return [iid for iid in self.live if iid not in now]

    def _put(self, x: InstanceLive) -> None:
        self.version += 1
        self.live[x.id] = replace(x, version=self.version)

    def _polled(self, event: Polled) -> set[str]:
        self.quota, self.volumes, self.polled = event.quota, event.volumes, True
        if event.flavors is not None:
            self.flavors = event.flavors
        changed: set[str] = set()
        seen = set()
        for inst in event.instances:
            seen.add(inst.id)
            x = self.live.get(inst.id) or InstanceLive(inst.id)
            if x.instance != inst:
                self._put(replace(x, instance=inst, deleting=x.deleting and inst.status != "ERROR"))
                changed.add(inst.id)
        for iid in [i for i, x in self.live.items() if i not in seen and x.instance is not None]:
            self._put(replace(self.live[iid], instance=None))  # gone from the cloud: the owner forgets it
            changed.add(iid)
        self.version += 1
        return changed


def _fold(x: InstanceLive, event: Any) -> InstanceLive:
    """The instance's state after `event` (pure)."""
    if isinstance(event, ConnectionState):
        return replace(x, ssh=event.state, ssh_error=event.error)
    if isinstance(event, JupyterState):
        x = replace(x, jupyter=event)
        return replace(x, tunnels=_without(x.tunnels, "jupyter")) if event.state == "stopped" else x
    if isinstance(event, TunnelChanged):
        info = event.info
        return replace(x, tunnels=(*_without(x.tunnels, info.purpose), info))
    if isinstance(event, TunnelTraffic):
        return replace(x, tunnels=tuple(replace(t, bytes_in=event.bytes_in, bytes_out=event.bytes_out)
                                        if t.purpose == event.purpose else t for t in x.tunnels))
    if isinstance(event, TunnelClosed):
        return replace(x, tunnels=_without(x.tunnels, event.purpose))
    if isinstance(event, SetupProgress):
        inner = event.event
        if isinstance(inner, StepStarted):
            return replace(x, setup="running")
        if isinstance(inner, PipelineFinished):
            return replace(x, setup="done" if inner.ok else "failed")
        return x
    if isinstance(event, events.SIGNALS):
        return replace(x, signals=(*(s for s in x.signals if type(s) is not type(event)), event))
    return x


def _without(tunnels: tuple[TunnelInfo, ...], purpose: str) -> tuple[TunnelInfo, ...]:
    return tuple(t for t in tunnels if t.purpose != purpose)


def tunnel_up(info: TunnelInfo | None) -> bool:
    return info is not None and info.state is TunnelState.UP
