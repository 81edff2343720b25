"""The live state (`tui.core.live.Fleet`): events folded into what is known about each instance (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from tui.core.events import (
    ConnectionState,
    HostKeyQuestion,
    JupyterState,
    LogLines,
    Metrics,
    OutputLines,
    PipelineFinished,
    Polled,
    SetupProgress,
    StepStarted,
    TunnelChanged,
    TunnelClosed,
    TunnelTraffic,
)
from tui.core.live import Fleet, InstanceLive, tunnel_up
from tui.core.models import Flavor, Instance, Quota, TunnelInfo, TunnelState, Volume

QUOTA = Quota(ram_mb_limit=8192, ram_mb_used=0, cores_limit=8, cores_used=0, instances_limit=4, instances_used=0)
SINCE = datetime(2026, 1, 1, tzinfo=UTC)


def inst(iid: str, status: str = "ACTIVE", name: str = "") -> Instance:
    return Instance(iid, name or f"vm-{iid}", status)


def polled(*instances: Instance, flavors: tuple[Flavor, ...] | None = None) -> Polled:
    return Polled(tuple(instances), QUOTA, (), flavors)


def tunnel(iid: str, purpose: str = "jupyter", state: TunnelState = TunnelState.UP, local: int = 8889) -> TunnelInfo:
    return TunnelInfo(iid, local, "127.0.0.1", 8888, state, SINCE, purpose=purpose)


def fleet_of(*ids: str) -> Fleet:
    fleet = Fleet()
    fleet.apply(polled(*(inst(i) for i in ids)))
    return fleet


def test_polled_adds_updates_and_removes_instances() -> None:
    fleet = Fleet()
    assert not fleet.polled and fleet.instances() == []
    flavor = Flavor("f1", "m1.small", 2, 4096, 20)
    volumes = (Volume("v1", "data", 10, "available"),)
    assert fleet.apply(Polled((inst("a"), inst("b")), QUOTA, volumes, (flavor,))) == {"a", "b"}
    assert fleet.polled and fleet.quota == QUOTA and fleet.volumes == volumes and fleet.flavors == (flavor,)
    assert [i.id for i in fleet.instances()] == ["a", "b"]
    assert fleet.name("a") == "vm-a" and fleet.name("unknown-id-123") == "unknown-"

    # the same poll again: nothing changed for any instance; flavors kept when a poll did not re-read them
    assert fleet.apply(polled(inst("a"), inst("b"))) == set()
    assert fleet.flavors == (flavor,)

    # b changed status, c is new, a is gone from the cloud
    assert fleet.apply(polled(inst("b", "SHUTOFF"), inst("c"))) == {"a", "b", "c"}
    assert sorted(i.id for i in fleet.instances()) == ["b", "c"]
    a = fleet.get("a")
    assert a is not None and a.instance is None and a.name == "a"  # known id, no cloud record: its owner forgets it
    assert fleet.gone(fleet.instances()) == ["a"]
    fleet.forget("a")
    assert fleet.get("a") is None and fleet.gone(fleet.instances()) == []


def test_changed_since_lists_only_what_changed() -> None:
    fleet = fleet_of("a", "b")
    seen = fleet.version
    assert fleet.changed(seen) == []
    fleet.apply(ConnectionState("b", "connected"))
    assert [x.id for x in fleet.changed(seen)] == ["b"]
    seen = fleet.version
    fleet.apply(ConnectionState("b", "connected"))  # the same again: not a change
    assert fleet.changed(seen) == [] and fleet.version == seen
    fleet.apply(JupyterState("a", "starting"))
    fleet.apply(ConnectionState("b", "lost", "reset"))
    assert sorted(x.id for x in fleet.changed(seen)) == ["a", "b"]
    assert {x.id: x.version for x in fleet.changed(0)} == {x.id: x.version for x in fleet.live.values()}


def test_connection_state() -> None:
    fleet = fleet_of("a")
    assert fleet.apply(ConnectionState("a", "connecting")) == {"a"}
    assert fleet.get("a").ssh == "connecting"  # type: ignore[union-attr]
    fleet.apply(ConnectionState("a", "failed", "host key of vm-a not trusted"))
    x = fleet.get("a")
    assert x is not None and (x.ssh, x.ssh_error) == ("failed", "host key of vm-a not trusted")
    fleet.apply(ConnectionState("a", "connected"))
    assert (fleet.get("a").ssh, fleet.get("a").ssh_error) == ("connected", "")  # type: ignore[union-attr]


def test_events_for_an_instance_not_polled_yet_are_kept() -> None:
    fleet = Fleet()
    assert fleet.apply(ConnectionState("z", "connected")) == {"z"}
    assert fleet.get("z") is not None and fleet.instances() == []  # no cloud record yet
    fleet.apply(polled(inst("z")))
    z = fleet.get("z")
    assert z is not None and z.ssh == "connected" and z.instance == inst("z")


def test_jupyter_stopped_drops_only_the_jupyter_tunnel() -> None:
    fleet = fleet_of("a")
    fleet.apply(JupyterState("a", "running", "http://127.0.0.1:8889/lab", 8889, 8888))
    fleet.apply(TunnelChanged(tunnel("a")))
    fleet.apply(TunnelChanged(tunnel("a", "dask-dashboard", local=8787)))
    assert fleet.running_jupyter() == ["vm-a"]
    assert {t.purpose for t in fleet.get("a").tunnels} == {"jupyter", "dask-dashboard"}  # type: ignore[union-attr]
    fleet.apply(JupyterState("a", "stopping"))
    assert fleet.get("a").tunnel() is not None  # type: ignore[union-attr]
    fleet.apply(JupyterState("a", "stopped"))
    a = fleet.get("a")
    assert a is not None and a.jupyter == JupyterState("a", "stopped") and fleet.running_jupyter() == []
    assert a.tunnel("jupyter") is None and a.tunnel("dask-dashboard") is not None


def test_tunnels_by_purpose() -> None:
    fleet = fleet_of("a", "b")
    fleet.apply(TunnelChanged(tunnel("a", state=TunnelState.STARTING)))
    fleet.apply(TunnelChanged(tunnel("a", "dask-dashboard", local=8787)))
    fleet.apply(TunnelChanged(tunnel("b", local=8890)))
    a = fleet.get("a")
    assert a is not None and not tunnel_up(a.tunnel()) and tunnel_up(a.tunnel("dask-dashboard"))
    # a new state of the same (instance, purpose) replaces the old one
    fleet.apply(TunnelChanged(tunnel("a", state=TunnelState.UP)))
    a = fleet.get("a")
    assert a is not None and len(a.tunnels) == 2 and tunnel_up(a.tunnel())
    assert sorted((t.instance, t.purpose) for t in fleet.tunnels()) == [
        ("a", "dask-dashboard"), ("a", "jupyter"), ("b", "jupyter")]
    # closed by purpose: the other purpose and the other instance keep theirs
    assert fleet.apply(TunnelClosed("a", "dask-dashboard")) == {"a"}
    assert [t.purpose for t in fleet.get("a").tunnels] == ["jupyter"]  # type: ignore[union-attr]
    assert fleet.get("b").tunnel() is not None  # type: ignore[union-attr]
    assert fleet.apply(TunnelClosed("a", "dask-dashboard")) == set()  # closing again changes nothing
    assert not tunnel_up(None)
    # an instance gone from the cloud lists no tunnels
    fleet.apply(polled(inst("a")))
    assert [t.instance for t in fleet.tunnels()] == ["a"]


def test_metrics_is_a_signal_latest_wins() -> None:
    fleet = fleet_of("a")
    a = fleet.get("a")
    assert a is not None and a.signal(Metrics) is None
    assert a.signal_fields() == {"load1": None, "mem_used_pct": None}
    assert fleet.apply(Metrics("a", 0.25, 40.0)) == {"a"}
    fleet.apply(Metrics("a", 1.5, 91.2))
    a = fleet.get("a")
    assert a is not None and a.signal(Metrics) == Metrics("a", 1.5, 91.2) and len(a.signals) == 1
    assert a.signal_fields() == {"load1": 1.5, "mem_used_pct": 91.2}
    seen = fleet.version
    assert fleet.apply(Metrics("a", 1.5, 91.2)) == set() and fleet.version == seen  # unchanged: no redraw


def test_setup_progress() -> None:
    fleet = fleet_of("a")
    fleet.apply(SetupProgress("a", StepStarted("ssh", 0, 3, "wait for SSH")))
    assert fleet.get("a").setup == "running"  # type: ignore[union-attr]
    seen = fleet.version
    assert fleet.apply(SetupProgress("a", OutputLines("ssh", ("ok",)))) == set() and fleet.version == seen
    fleet.apply(SetupProgress("a", PipelineFinished("failed at python", 3.0, ok=False)))
    assert fleet.get("a").setup == "failed"  # type: ignore[union-attr]
    fleet.apply(SetupProgress("a", StepStarted("ssh", 0, 3, "wait for SSH")))
    fleet.apply(SetupProgress("a", PipelineFinished("done", 9.0)))
    assert fleet.get("a").setup == "done"  # type: ignore[union-attr]


def test_events_that_are_not_state_change_nothing() -> None:
    fleet = fleet_of("a")
    seen = fleet.version
    assert fleet.apply(LogLines("a", ("line",))) == set()
    question = HostKeyQuestion("a", "127.0.0.1", 22, "ssh-ed25519", "SHA256:x", lambda ok: None)
    assert fleet.apply(question) == set()
    assert fleet.version == seen


def test_deleting_is_shown_until_the_instance_errors_or_goes() -> None:
    fleet = fleet_of("a", "b")
    fleet.mark_deleting("a")
    fleet.mark_deleting("b")
    fleet.mark_deleting("nope")  # unknown: ignored
    assert fleet.get("nope") is None
    fleet.apply(polled(inst("a", "ACTIVE", name="vm-a2"), inst("b", "ERROR")))
    assert fleet.get("a").deleting and not fleet.get("b").deleting  # type: ignore[union-attr]


def test_instance_live_defaults() -> None:
    x = InstanceLive("0123456789")
    assert (x.name, x.ssh, x.setup, x.jupyter, x.tunnels, x.tunnel(), x.deleting) == (
        "01234567", "", "", None, (), None, False)


def test_traffic_updates_the_byte_counts_of_its_tunnel_only() -> None:
    fleet = fleet_of("a")
    fleet.apply(TunnelChanged(tunnel("a")))
    fleet.apply(TunnelChanged(tunnel("a", "dask-dashboard", local=8787)))
    assert fleet.apply(TunnelTraffic("a", "jupyter", 2048, 512)) == {"a"}
    live = fleet.get("a")
    assert live is not None
    jupyter, dashboard = live.tunnel("jupyter"), live.tunnel("dask-dashboard")
    assert jupyter is not None and (jupyter.bytes_in, jupyter.bytes_out, jupyter.state) == (2048, 512, TunnelState.UP)
    assert dashboard is not None and (dashboard.bytes_in, dashboard.bytes_out) == (0, 0)
    assert fleet.apply(TunnelTraffic("a", "jupyter", 2048, 512)) == set()  # the same counts: nothing changed


@dataclass(frozen=True, slots=True)
class BootCount:
    """A test-only signal, made the way the README's "How to add a remote signal" says (step 1)."""

    instance_id: str
    boots: int


def test_a_new_signal_listed_in_SIGNALS_is_kept_and_redrawn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Listed in `events.SIGNALS` and nothing else: the live state keeps its latest value per instance (what a table
    column reads with `live.signal(...)`), marks the row changed (the Instances table redraws exactly that row), and
    lists its fields for `status --json` (null while unknown)."""
    from tui.core import events

    assert InstanceLive("a").signal_fields().get("boots", "absent") == "absent"
    monkeypatch.setattr(events, "SIGNALS", (*events.SIGNALS, BootCount))
    fleet = Fleet()
    fleet.apply(polled(inst("a"), inst("b")))
    since = fleet.version
    assert fleet.apply(BootCount("a", 3)) == {"a"}
    assert [x.id for x in fleet.changed(since)] == ["a"]
    a, b = fleet.get("a"), fleet.get("b")
    assert a is not None and b is not None
    assert a.signal(BootCount) == BootCount("a", 3)
    assert a.signal_fields()["boots"] == 3 and b.signal_fields()["boots"] is None
    fleet.apply(BootCount("a", 4))
    assert fleet.get("a").signal(BootCount).boots == 4  # type: ignore[union-attr]
