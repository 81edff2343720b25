"""CoreEngine — the façade the UI drives — against the sandbox cloud and its real sshd hosts, with the live state
(`Fleet`) folding what it emits, as the app does: poll, load and memory through `refresh`, reattach after an upgrade
from a version-1 state file, `forget_instance`, and `check_idle` surviving one instance that fails.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tui.core.engine import CoreEngine
from tui.core.events import HostKeyQuestion, HostKeysUnpinned, IdleNudge, JupyterState, Metrics, Polled, TunnelClosed
from tui.core.jupyter import http
from tui.core.live import Fleet
from tui.core.models import Instance, TunnelState
from tui.core.state import AppState

from .conftest import Cloudy, Events

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def rig(cloudy: Cloudy) -> AsyncIterator[tuple[CoreEngine, Events]]:
    events = Events()
    engine = cloudy.engine(events)
    try:
        yield engine, events
    finally:
        await engine.aclose()  # Jupyter keeps running on the VMs


@pytest.fixture
def sshd_back_up(cloudy: Cloudy) -> Iterator[Any]:
    """B's sshd, started again after the test if the test left it dead."""
    host = cloudy.sandbox.ssh_host(cloudy.b.id)
    yield host
    if not host.running:
        host.start()


async def running(engine: CoreEngine, inst: Instance) -> JupyterState:
    """Jupyter running on `inst` with its tunnel up: adopted when it runs already (idempotent), else started."""
    state = await engine.jupyter.start(inst)
    assert state.state == "running" and state.local_port > 0
    return state


def fold(events: Events, fleet: Fleet | None = None) -> Fleet:
    fleet = fleet or Fleet()
    for e in events.items:
        fleet.apply(e)
    return fleet


async def test_poll_is_emitted_and_folded(rig: tuple[CoreEngine, Events], cloudy: Cloudy) -> None:
    engine, events = rig
    polled = engine.poll(with_flavors=True)
    assert events.of(Polled) == [polled] and polled.flavors
    assert {cloudy.a.id, cloudy.b.id} <= {i.id for i in polled.instances}
    assert engine.poll(with_flavors=False).flavors is None
    fleet = fold(events)
    assert fleet.polled and fleet.flavors == polled.flavors  # kept from the poll that read them
    assert fleet.get(cloudy.a.id).instance.name == cloudy.a.name  # type: ignore[union-attr]


def _fresh_engine(cloudy: Cloudy, events: Events, base: Path) -> CoreEngine:
    """An engine with a known_hosts of its own (empty): what it trusts comes from this test alone."""
    from tests._support import JUPYTER
    from tui.core.options import ManagerOptions
    from tui.core.services import Services

    services = Services(cloudy.settings, cloudy.services.keystore, base / "state", base / "known_hosts")
    return CoreEngine(cloudy.settings, cloudy.cloud, events, services=services,
                      options=ManagerOptions(jupyter_command=JUPYTER))


async def test_refresh_reads_metrics_of_instances_that_answer_ssh_with_a_pinned_key(
    cloudy: Cloudy, tmp_path: Path
) -> None:
    """Load and memory before any setup or Jupyter: a quiet login where the host key is pinned from the console
    log — no question asked — and none where the key is unknown (the user's first login settles that)."""
    a, b = cloudy.a, cloudy.b
    cloudy.sandbox.faults.console_host_keys = False  # nothing pinned, nothing known
    events = Events()
    engine = _fresh_engine(cloudy, events, tmp_path / "unpinned")
    try:
        await engine.fleet.refresh([a, b])
        assert events.of(Metrics) == [] and events.of(HostKeyQuestion) == []
        assert not engine.manager.pool.is_connected(a.id)
    finally:
        cloudy.sandbox.faults.console_host_keys = True
        await engine.aclose()

    events = Events()
    engine = _fresh_engine(cloudy, events, tmp_path / "pinned")
    try:
        await engine.fleet.refresh([a, b, replace(b, id="gone", status="SHUTOFF")])
        assert sorted(m.instance_id for m in events.of(Metrics)) == sorted([a.id, b.id])
        assert events.of(HostKeyQuestion) == []
        metrics = events.of(Metrics)[0]
        assert 0.0 <= metrics.load1 < 64 and 0.0 < metrics.mem_used_pct <= 100.0
        live = fold(events).get(a.id)
        assert live is not None and live.ssh == "connected" and live.signal(Metrics) is not None
        assert set(live.signal_fields()) == {"load1", "mem_used_pct"}
        assert fold(events).get("gone") is None  # nothing about a SHUTOFF instance
    finally:
        await engine.aclose()


async def test_reattach_after_upgrading_from_a_version_1_state_file(
    rig: tuple[CoreEngine, Events], cloudy: Cloudy
) -> None:
    """A user of the version-1 app quits with Jupyter running and its tunnel open, upgrades, starts the app: the
    server is found and its tunnel re-opened on the same local port."""
    engine, _ = rig
    a = cloudy.a
    state = await running(engine, a)
    token_url = await engine.jupyter.token_url(a)
    assert token_url is not None and f":{state.local_port}/" in token_url
    await engine.aclose()
    # what version 1 wrote: the tunnel's port in the server's record
    saved = json.loads(cloudy.state_path.read_text())
    tunnels = {t["instance"]: t["local_port"] for t in saved.pop("tunnels") if t["purpose"] == "jupyter"}
    assert tunnels[a.id] == state.local_port
    for server in saved["servers"]:
        server["tunnel_ports"] = [tunnels[server["instance"]]] if server["instance"] in tunnels else []
    cloudy.state_path.write_text(json.dumps({**saved, "version": 1}))

    events = Events()
    upgraded = cloudy.engine(events)
    try:
        assert await upgraded.fleet.reattach([a]) == [a.id]
        [found] = [e for e in events.of(JupyterState) if e.instance_id == a.id and e.state == "running"]
        assert found.local_port == state.local_port and found.remote_port == state.remote_port
        assert await upgraded.jupyter.token_url(a) == token_url  # the token re-read from the VM
        port = state.local_port
        token = token_url.split("token=")[1]
        assert (await http.request(http.tcp_opener("127.0.0.1", port), "GET", "/api/status",
                                   token=token)).status == 200
        # nothing changed, so nothing was written: the file migrates on every load until the next save, which
        # writes version 2 with the tunnel kept
        assert AppState.load(cloudy.state_path).tunnel(a.id).local_port == port  # type: ignore[union-attr]
        upgraded.jupyter.snooze(a.id)
        rewritten = json.loads(cloudy.state_path.read_text())
        assert rewritten["version"] == 2 and "tunnel_ports" not in cloudy.state_path.read_text()
        assert AppState.load(cloudy.state_path).tunnel(a.id).local_port == port  # type: ignore[union-attr]
        upgraded.manager.state.unsnooze(a.id)
    finally:
        await upgraded.aclose()


async def test_forget_instance_closes_its_tunnels_and_drops_its_state(
    rig: tuple[CoreEngine, Events], cloudy: Cloudy
) -> None:
    engine, events = rig
    a = cloudy.a
    state = await running(engine, a)
    ctx = await engine.context(a)
    dashboard = await engine.manager.open_forward(ctx, "dask-dashboard", state.remote_port)
    assert dashboard.state is TunnelState.UP
    saved = AppState.load(cloudy.state_path)
    assert a.id in saved.servers and {(a.id, "jupyter"), (a.id, "dask-dashboard")} <= set(saved.tunnels)
    fleet = fold(events)
    assert {t.purpose for t in fleet.get(a.id).tunnels} == {"jupyter", "dask-dashboard"}  # type: ignore[union-attr]
    mark = events.mark()

    await engine.forget_instance(a.id)

    closed = {e.purpose for e in events.of(TunnelClosed, since=mark) if e.instance_id == a.id}
    assert closed == {"jupyter", "dask-dashboard"}
    assert [t for t in engine.tunnels() if t.instance == a.id] == []
    assert engine.manager.server(a.id) is None and not engine.manager.pool.is_connected(a.id)
    assert engine.manager.token_url(a.id) is None
    saved = AppState.load(cloudy.state_path)
    assert a.id not in saved.servers and not [k for k in saved.tunnels if k[0] == a.id]
    assert fold(events).get(a.id).tunnels == ()  # type: ignore[union-attr]
    for port in (state.local_port, dashboard.local_port):
        with pytest.raises(http.NoReply, match="Connect call failed"):  # nothing listens there any more
            await http.request(http.tcp_opener("127.0.0.1", port), "GET", "/api")


async def test_check_idle_survives_an_unreachable_instance(
    rig: tuple[CoreEngine, Events], cloudy: Cloudy, sshd_back_up: Any, caplog: pytest.LogCaptureFixture
) -> None:
    engine, events = rig
    a, b = cloudy.a, cloudy.b
    await running(engine, a)
    await running(engine, b)
    later = datetime.now(UTC) + timedelta(hours=100)
    sshd_back_up.kill()  # b's network is cut: its idle check fails, a's goes on
    caplog.set_level(logging.INFO, logger="tui.core.capabilities.fleet")
    mark = events.mark()
    checked = await engine.fleet.check_idle([b, a, replace(b, id="not-known", name="nope")], later)
    assert checked == [a.name]
    assert [e.instance_id for e in events.of(IdleNudge, since=mark)] == [a.id]
    assert any(f"idle check of {b.name}" in r.getMessage() for r in caplog.records)


async def test_check_idle_survives_an_unexpected_error(
    rig: tuple[CoreEngine, Events], cloudy: Cloudy, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture
) -> None:
    engine, events = rig
    a, b = cloudy.a, cloudy.b
    await running(engine, a)
    await running(engine, b)
    real = engine.manager.check_idle

    async def buggy(ctx: Any, now: datetime | None = None) -> Any:
        if ctx.instance.id == a.id:
            raise RuntimeError("a bug")
        return await real(ctx, now=now)

    monkeypatch.setattr(engine.manager, "check_idle", buggy)
    mark = events.mark()
    checked = await engine.fleet.check_idle([a, b], datetime.now(UTC) + timedelta(hours=100))
    assert checked == [b.name]
    assert [e.instance_id for e in events.of(IdleNudge, since=mark)] == [b.id]
    [record] = [r for r in caplog.records if "failed unexpectedly" in r.getMessage()]
    assert a.name in record.getMessage() and record.exc_info is not None


async def test_stop_jupyter_returns_the_outcome(rig: tuple[CoreEngine, Events], cloudy: Cloudy) -> None:
    engine, events = rig
    b = cloudy.b
    await running(engine, b)
    mark = events.mark()
    outcome = await engine.jupyter.stop(b)
    assert outcome.stopped and outcome.busy == ()
    assert [e.state for e in events.of(JupyterState, since=mark)] == ["stopping", "stopped"]
    live = fold(events).get(b.id)
    assert live is not None and live.jupyter is not None and live.jupyter.state == "stopped" and live.tunnel() is None
    assert await engine.jupyter.kernels(b) == []


async def test_an_unreadable_console_log_is_said(cloudy: Cloudy, caplog: pytest.LogCaptureFixture) -> None:
    """The cloud cannot give the console log (the sandbox's knob: Nova's 409): the host key cannot be pinned from
    it, and the user is told to compare the fingerprint — not silently switched to trust on first use."""
    events = Events()
    engine = cloudy.engine(events)
    a = cloudy.a
    cloudy.sandbox.faults.console_unavailable = True
    try:
        with caplog.at_level(logging.WARNING, logger="tui"):
            ctx = await engine.context(a)
            await engine.context(a)  # the same context again: said once
    finally:
        cloudy.sandbox.faults.console_unavailable = False
        await engine.aclose()
    assert ctx.pinned is None and "console available" in ctx.unpinned
    [said] = events.of(HostKeysUnpinned)
    assert (said.instance_id, said.name, said.reason) == (a.id, a.name, ctx.unpinned)
    assert said.message.startswith(f"Could not read the console log of {a.name} (")
    assert "falling back to trust on first use" in said.message and "compare the host key fingerprint" in said.message
    [record] = [r for r in caplog.records if r.name == "tui.core.services"]
    assert record.levelno == logging.WARNING and a.name in record.getMessage()
    assert (await asyncio.to_thread(cloudy.services.prepare, cloudy.cloud, a.id)).unpinned == ""  # the knob is off
