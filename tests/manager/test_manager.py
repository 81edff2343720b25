"""RemoteManager on a sandbox instance: real sshd, real screen, real Jupyter (the venv's), real tunnels.

One server is shared by the module's tests, in file order on one event loop: start → live log → idle →
busy-kernel refusal → "restart the app" (new manager, same state file) → verified stop → no token in files.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio

from tui.core.jupyter import http
from tui.core.jupyter.idle import Tier
from tui.core.manager import (
    BusyKernels,
    ConnectionState,
    IdleNudge,
    JupyterState,
    LogLines,
    RemoteManager,
    TunnelChanged,
)
from tui.core.models import TunnelState
from tui.core.state import AppState

from .conftest import Events, World, execute

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Rig:
    manager: RemoteManager
    events: Events
    seen_tokens: set[str] = field(default_factory=set)

    def token(self, iid: str) -> tuple[int, str]:
        url = self.manager.token_url(iid)
        assert url is not None
        parts = urlsplit(url)
        token = parse_qs(parts.query)["token"][0]
        self.seen_tokens.add(token)
        assert parts.port is not None
        return parts.port, token


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(world: World) -> AsyncIterator[Rig]:
    events = Events()
    r = Rig(world.manager(events), events)
    yield r
    await r.manager.aclose()


async def test_start_answers_through_the_tunnel(rig: Rig, world: World) -> None:
    m, iid = rig.manager, world.iid
    configured = world.settings.jupyter.port
    with socket.socket() as squatter:  # the configured port is taken on the VM: Jupyter moves (port retries)
        squatter.bind(("127.0.0.1", configured))
        squatter.listen()
        t0 = time.monotonic()
        state = await m.start_jupyter(world.ctx)
        elapsed = time.monotonic() - t0
    assert state.state == "running" and state.local_port > 0 and state.remote_port > 0
    # the tunnel was opened while Jupyter booted (to the configured port) and then followed it to where it went
    assert state.remote_port != configured and m.tunnels()[0].remote_port == state.remote_port
    first_up = next(i for i, e in enumerate(rig.events.items) if isinstance(e, TunnelChanged)
                    and e.info.state is TunnelState.UP)
    running = next(i for i, e in enumerate(rig.events.items) if isinstance(e, JupyterState) and e.state == "running")
    assert first_up < running
    assert state.public_url == f"http://127.0.0.1:{state.local_port}/lab" and "token" not in state.public_url
    port, token = rig.token(iid)
    assert port == state.local_port and len(token) >= 32
    through = http.tcp_opener("127.0.0.1", port)
    api = await http.request(through, "GET", "/api")
    assert api.status == 200 and "version" in api.json()
    assert (await http.request(through, "GET", "/api/status", token=token)).status == 200
    assert (await http.request(through, "GET", "/api/status")).status == 403  # token auth on
    phases = [e.state for e in rig.events.of(JupyterState)]
    assert phases[0] == "starting" and phases[-1] == "running"
    assert any(e.state == "connected" for e in rig.events.of(ConnectionState))
    assert any(e.info.state is TunnelState.UP and e.info.instance == iid for e in rig.events.of(TunnelChanged))
    rec = AppState.load(world.state_path).servers[iid]
    assert (rec.remote_port, rec.tunnel_ports) == (state.remote_port, (port,))
    assert rec.url == f"http://127.0.0.1:{rec.remote_port}/lab"
    # starting again adopts the running server instead of failing or starting a second one
    again = await m.start_jupyter(world.ctx)
    assert (again.remote_port, again.local_port, rig.token(iid)[1]) == (state.remote_port, port, token)
    print(f"\nbench: Jupyter start -> answering through the tunnel: {elapsed:.2f} s")


async def test_live_log_lines_arrive(rig: Rig, world: World) -> None:
    m, iid = rig.manager, world.iid
    port, token = rig.token(iid)
    await m.follow_log(world.ctx)
    await m.follow_log(world.ctx)  # idempotent: one follower
    await rig.events.wait(LogLines, lambda e: any("is running at" in x for x in e.lines))
    marker = f"/api/no-such-{uuid.uuid4().hex}"
    await http.request(http.tcp_opener("127.0.0.1", port), "GET", marker, token=token)
    await rig.events.wait(LogLines, lambda e: any(marker in x for x in e.lines))
    await m.unfollow_log(iid)
    lines = [x for e in rig.events.of(LogLines) for x in e.lines]
    assert all(e.instance_id == iid for e in rig.events.of(LogLines))
    assert any("token=…" in x for x in lines)
    assert not any(token in x for x in lines)
    assert not any("\x1b" in x or "\r" in x for x in lines)
    count = len(rig.events.of(LogLines))
    await http.request(http.tcp_opener("127.0.0.1", port), "GET", marker + "-after", token=token)
    await asyncio.sleep(0.4)
    assert len(rig.events.of(LogLines)) == count  # unfollowed: nothing more arrives


async def test_idle_nudges_and_snooze(rig: Rig, world: World) -> None:
    m, iid = rig.manager, world.iid
    fresh = await m.check_idle(world.ctx)
    assert fresh.nudge is None and fresh.kernels == 0 and fresh.jupyter_idle_s is not None
    assert fresh.jupyter_idle_s < 600 and fresh.uptime_s is not None
    later = time_after(hours=100)
    report = await m.check_idle(world.ctx, now=later)
    assert report.nudge is not None and report.nudge.tier is Tier.STOP  # 72 h < 100 h < 30 days
    nudge = rig.events.of(IdleNudge)[-1]
    assert (nudge.instance_id, nudge.tier, nudge.key) == (iid, Tier.STOP, "p")
    assert "Press p" in nudge.message and "4 days" in nudge.message
    until = m.snooze(iid, hours=200, now=later)
    assert AppState.load(world.state_path).snoozed_until(iid) == until.replace(microsecond=0)
    before = len(rig.events.of(IdleNudge))
    assert (await m.check_idle(world.ctx, now=later)).nudge is None
    assert len(rig.events.of(IdleNudge)) == before
    much_later = await m.check_idle(world.ctx, now=time_after(hours=24 * 31 + 200))
    assert much_later.nudge is not None and much_later.nudge.tier is Tier.DELETE


def time_after(hours: float) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


async def test_busy_kernel_refuses_stop(rig: Rig, world: World) -> None:
    m, iid = rig.manager, world.iid
    port, token = rig.token(iid)
    through = http.tcp_opener("127.0.0.1", port)
    created = await http.request(through, "POST", "/api/kernels", token=token, body={"name": "python3"})
    assert created.status == 201
    kernel_id = created.json()["id"]
    try:
        await execute(port, token, kernel_id, "import time; time.sleep(60)")
        for _ in range(150):
            if any(k.busy for k in await m.kernels(world.ctx)):
                break
            await asyncio.sleep(0.1)
        assert await m.stop_jupyter(world.ctx) is False
        busy = rig.events.of(BusyKernels)[-1]
        assert busy.instance_id == iid and [k.id for k in busy.kernels] == [kernel_id]
        assert (await http.request(through, "GET", "/api/status", token=token)).status == 200  # still running
        assert rig.events.of(JupyterState)[-1].state == "running"
        assert (await http.request(through, "POST", f"/api/kernels/{kernel_id}/interrupt", token=token)).status == 204
    finally:
        await http.request(through, "DELETE", f"/api/kernels/{kernel_id}", token=token)


async def test_tunnel_survives_an_sshd_restart(rig: Rig, world: World) -> None:
    iid = world.iid
    port, token = rig.token(iid)
    host = world.sandbox.ssh_host(iid)
    mark = len(rig.events.items)
    host.kill()  # network cut: sshd and its connections die, Jupyter keeps running
    await rig.events.wait(TunnelChanged, lambda e: e.info.state is TunnelState.RECONNECTING)
    await rig.events.wait(ConnectionState, lambda e: e.state == "lost")
    host.start()
    assert host.port == world.ctx.target.port
    up = await rig.events.wait(TunnelChanged, lambda e: e.info.state is TunnelState.UP, timeout=20, since=mark)
    assert up.info.local_port == port  # same local port throughout
    status = await http.request(http.tcp_opener("127.0.0.1", port), "GET", "/api/status", token=token)
    assert status.status == 200 and rig.manager.token_url(iid) is not None


async def test_reattach_after_restarting_the_app(rig: Rig, world: World) -> None:
    iid = world.iid
    old_port, token = rig.token(iid)
    await rig.manager.aclose()  # "quit the app": Jupyter keeps running on the VM
    assert AppState.load(world.state_path).servers[iid].tunnel_ports == (old_port,)
    events = Events()
    fresh = world.manager(events)
    rig.manager, rig.events = fresh, events
    t0 = time.monotonic()
    found = await fresh.reattach_all([world.ctx])
    elapsed = time.monotonic() - t0
    assert found == [iid]
    running = [e for e in events.of(JupyterState) if e.state == "running"]
    assert [e.local_port for e in running] == [old_port]  # reported once, with its tunnel re-opened
    port, again = rig.token(iid)
    assert (port, again) == (old_port, token)  # token re-read from the VM, never from the state file
    assert (await http.request(http.tcp_opener("127.0.0.1", port), "GET", "/api/status", token=token)).status == 200
    print(f"\nbench: reattach on app start -> tunnel serving: {elapsed:.2f} s")


async def test_stop_is_verified_and_no_token_is_written(
    rig: Rig, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    m, iid = rig.manager, world.iid
    handle = m.server(iid)
    assert handle is not None and handle.pid is not None
    assert await m.stop_jupyter(world.ctx) is True
    assert [e.state for e in rig.events.of(JupyterState)][-2:] == ["stopping", "stopped"]
    assert rig.events.of(TunnelChanged)[-1].info.state is TunnelState.DOWN
    assert m.token_url(iid) is None and m.server(iid) is None
    assert iid not in AppState.load(world.state_path).servers
    conn = await m.pool.get(iid)
    assert f".{handle.session}" not in str((await conn.run("screen -ls", check=False)).stdout)
    assert (await conn.run(f"kill -0 {handle.pid}", check=False)).exit_status != 0
    assert await m.find_jupyter(world.ctx) is None
    assert await m.stop_jupyter(world.ctx) is True  # nothing running: still fine
    command_log = world.services.command_log(world.ctx.instance).read()
    assert "screen" in command_log and "stop Jupyter" in command_log
    assert rig.seen_tokens
    for token in rig.seen_tokens:
        assert world.files_containing(token) == []  # state, command log, known_hosts, keys...
        assert not any(token in r.getMessage() for r in caplog.records)
