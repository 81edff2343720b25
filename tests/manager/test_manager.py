"""RemoteManager on a sandbox instance: real sshd, real screen, real Jupyter (the venv's), real tunnels.

The module's tests share one instance, one event loop and (while it lives) one manager, but none relies on another
having run: each says what it needs — `running(rig, world)` adopts or starts the server (idempotent), `stopped(...)`
ends it — and looks only at the events emitted after its own `mark()`. Run alone, or in any order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio

from tests._support import eventually, never
from tui.core.events import (
    BackgroundFailed,
    ConnectionState,
    IdleNudge,
    JupyterState,
    LogLines,
    Metrics,
    StopOutcome,
    TunnelChanged,
    TunnelClosed,
)
from tui.core.jupyter import http
from tui.core.jupyter.idle import Tier
from tui.core.manager import RemoteManager
from tui.core.models import TunnelState
from tui.core.state import AppState, TunnelRecord

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
    try:
        yield r
    finally:
        await r.manager.aclose()


@pytest.fixture
def host_back_up(world: World):  # type: ignore[no-untyped-def]
    """The instance's sshd, started again after the test if the test left it dead."""
    host = world.sandbox.ssh_host(world.iid)
    yield host
    if not host.running:
        host.start()


async def running(rig: Rig, world: World) -> JupyterState:
    """Jupyter running with its tunnel up, whatever ran before: adopts the running server, or starts one."""
    state = await rig.manager.start_jupyter(world.ctx)
    assert state.state == "running" and state.local_port > 0
    return state


async def stopped(rig: Rig, world: World) -> None:
    """No Jupyter on the instance (busy kernels or not)."""
    outcome = await rig.manager.stop_jupyter(world.ctx, force=True)
    assert outcome == StopOutcome(stopped=True)


async def test_start_answers_through_the_tunnel(rig: Rig, world: World) -> None:
    await stopped(rig, world)
    m, iid = rig.manager, world.iid
    configured = world.settings.jupyter.port
    mark = rig.events.mark()
    with socket.socket() as squatter:  # the configured port is taken on the VM: Jupyter moves (port retries)
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a server stopped before may linger
        squatter.bind(("127.0.0.1", configured))  # in TIME_WAIT; a listener there still refuses Jupyter
        squatter.listen()
        t0 = time.monotonic()
        state = await m.start_jupyter(world.ctx)
        elapsed = time.monotonic() - t0
    assert state.state == "running" and state.local_port > 0 and state.remote_port > 0
    # the tunnel was opened while Jupyter booted (to the configured port) and then followed it to where it went
    info = m.tunnel_info(iid)
    assert info is not None and info.purpose == "jupyter" and info.key == (iid, "jupyter")
    assert state.remote_port != configured and info.remote_port == state.remote_port
    emitted = rig.events.items[mark:]
    first_up = next(i for i, e in enumerate(emitted) if isinstance(e, TunnelChanged) and e.info.state is TunnelState.UP)
    up_at = next(i for i, e in enumerate(emitted) if isinstance(e, JupyterState) and e.state == "running")
    assert first_up < up_at
    assert state.public_url == f"http://127.0.0.1:{state.local_port}/lab" and "token" not in state.public_url
    port, token = rig.token(iid)
    assert port == state.local_port and len(token) >= 32
    through = http.tcp_opener("127.0.0.1", port)
    api = await http.request(through, "GET", "/api")
    assert api.status == 200 and "version" in api.json()
    assert (await http.request(through, "GET", "/api/status", token=token)).status == 200
    assert (await http.request(through, "GET", "/api/status")).status == 403  # token auth on
    phases = [e.state for e in rig.events.of(JupyterState, since=mark)]
    assert phases[0] == "starting" and phases[-1] == "running"
    assert all(e.info.purpose == "jupyter" and e.info.instance == iid for e in rig.events.of(TunnelChanged, mark))
    saved = AppState.load(world.state_path)
    rec = saved.servers[iid]
    assert rec.remote_port == state.remote_port and rec.url == f"http://127.0.0.1:{rec.remote_port}/lab"
    assert saved.tunnel(iid) == TunnelRecord(iid, "jupyter", port, "127.0.0.1", state.remote_port)
    # starting again adopts the running server instead of failing or starting a second one
    again = await m.start_jupyter(world.ctx)
    assert (again.remote_port, again.local_port, rig.token(iid)[1]) == (state.remote_port, port, token)
    print(f"\nbench: Jupyter start -> answering through the tunnel: {elapsed:.2f} s")


async def test_a_new_server_is_checked_once_through_the_tunnel_opened_while_it_booted(
    rig: Rig, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its configured port free, Jupyter announces the port the tunnel opened ahead goes to: readiness is asked
    through that tunnel only — never straight over the SSH connection (which the port-moved start above needs)."""
    from tui.core.jupyter.server import JupyterControl

    await stopped(rig, world)
    direct: list[int] = []
    real = JupyterControl.opener

    def counted(self: JupyterControl, port: int) -> http.Opener:
        direct.append(port)
        return real(self, port)

    monkeypatch.setattr(JupyterControl, "opener", counted)
    state = await rig.manager.start_jupyter(world.ctx)
    assert state.state == "running" and state.remote_port == world.settings.jupyter.port
    assert direct == []
    info = rig.manager.tunnel_info(world.iid)
    assert info is not None and info.bytes_in > 0 and info.bytes_out > 0  # the check's requests went through it
    port, token = rig.token(world.iid)
    assert (await http.request(http.tcp_opener("127.0.0.1", port), "GET", "/api/status", token=token)).status == 200


async def test_live_log_lines_arrive(rig: Rig, world: World) -> None:
    await running(rig, world)
    m, iid = rig.manager, world.iid
    port, token = rig.token(iid)
    mark = rig.events.mark()
    try:
        await m.follow_log(world.ctx)
        await m.follow_log(world.ctx)  # idempotent: one follower
        await rig.events.wait(LogLines, lambda e: any("is running at" in x for x in e.lines), since=mark)
        marker = f"/api/no-such-{uuid.uuid4().hex}"
        await http.request(http.tcp_opener("127.0.0.1", port), "GET", marker, token=token)
        await rig.events.wait(LogLines, lambda e: any(marker in x for x in e.lines), since=mark)
    finally:
        await m.unfollow_log(iid)
    batches = rig.events.of(LogLines, since=mark)
    lines = [x for e in batches for x in e.lines]
    assert all(e.instance_id == iid for e in batches)
    assert any("token=…" in x for x in lines)
    assert not any(token in x for x in lines)
    assert not any("\x1b" in x or "\r" in x for x in lines)
    count = len(rig.events.of(LogLines))
    await http.request(http.tcp_opener("127.0.0.1", port), "GET", marker + "-after", token=token)
    assert await never(lambda: len(rig.events.of(LogLines)) > count, within=0.4)  # unfollowed: nothing more arrives


async def test_idle_nudges_and_snooze(rig: Rig, world: World) -> None:
    await running(rig, world)
    m, iid = rig.manager, world.iid
    m.state.unsnooze(iid)  # not snoozed, whatever ran before
    fresh = await m.check_idle(world.ctx)
    assert fresh.nudge is None and fresh.kernels == 0 and fresh.jupyter_idle_s is not None
    assert fresh.jupyter_idle_s < 600 and fresh.uptime_s is not None
    later = time_after(hours=100)
    mark = rig.events.mark()
    report = await m.check_idle(world.ctx, now=later)
    assert report.nudge is not None and report.nudge.tier is Tier.STOP  # 72 h < 100 h < 30 days
    [nudge] = rig.events.of(IdleNudge, since=mark)
    assert (nudge.instance_id, nudge.tier, nudge.key) == (iid, Tier.STOP, "p")
    assert "Press p" in nudge.message and "4 days" in nudge.message
    until = m.snooze(iid, hours=200, now=later)
    assert AppState.load(world.state_path).snoozed_until(iid) == until.replace(microsecond=0)
    mark = rig.events.mark()
    assert (await m.check_idle(world.ctx, now=later)).nudge is None
    assert rig.events.of(IdleNudge, since=mark) == []
    much_later = await m.check_idle(world.ctx, now=time_after(hours=24 * 31 + 200))
    assert much_later.nudge is not None and much_later.nudge.tier is Tier.DELETE


def time_after(hours: float) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


async def test_busy_kernel_refuses_stop(rig: Rig, world: World) -> None:
    await running(rig, world)
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
        mark = rig.events.mark()
        outcome = await m.stop_jupyter(world.ctx)
        assert not outcome.stopped and [k.id for k in outcome.busy] == [kernel_id]
        assert all(k.busy for k in outcome.busy)
        assert rig.events.of(JupyterState, since=mark) == []  # not even "stopping"
        assert (await http.request(through, "GET", "/api/status", token=token)).status == 200  # still running
        assert m.token_url(iid) is not None and AppState.load(world.state_path).tunnel(iid) is not None
        assert (await http.request(through, "POST", f"/api/kernels/{kernel_id}/interrupt", token=token)).status == 204
    finally:
        await http.request(through, "DELETE", f"/api/kernels/{kernel_id}", token=token)


async def test_tunnel_survives_an_sshd_restart(rig: Rig, world: World, host_back_up) -> None:  # type: ignore[no-untyped-def]
    await running(rig, world)
    iid, host = world.iid, host_back_up
    port, token = rig.token(iid)
    mark = rig.events.mark()
    host.kill()  # network cut: sshd and its connections die, Jupyter keeps running
    await rig.events.wait(TunnelChanged, lambda e: e.info.state is TunnelState.RECONNECTING, since=mark)
    await rig.events.wait(ConnectionState, lambda e: e.state == "lost", since=mark)
    host.start()
    assert host.port == world.ctx.target.port
    up = await rig.events.wait(TunnelChanged, lambda e: e.info.state is TunnelState.UP, timeout=20, since=mark)
    assert up.info.local_port == port  # same local port throughout
    status = await http.request(http.tcp_opener("127.0.0.1", port), "GET", "/api/status", token=token)
    assert status.status == 200 and rig.manager.token_url(iid) is not None


async def test_reattach_after_restarting_the_app(rig: Rig, world: World) -> None:
    await running(rig, world)
    iid = world.iid
    old_port, token = rig.token(iid)
    await rig.manager.aclose()  # "quit the app": Jupyter keeps running on the VM, the state keeps the tunnel
    assert AppState.load(world.state_path).tunnel(iid).local_port == old_port  # type: ignore[union-attr]
    events = Events()
    fresh = world.manager(events)
    rig.manager, rig.events = fresh, events
    t0 = time.monotonic()
    found = await fresh.reattach_all([world.ctx])
    elapsed = time.monotonic() - t0
    assert found == [iid]
    running_states = [e for e in events.of(JupyterState) if e.state == "running"]
    assert [e.local_port for e in running_states] == [old_port]  # reported once, with its tunnel re-opened
    port, again = rig.token(iid)
    assert (port, again) == (old_port, token)  # token re-read from the VM, never from the state file
    assert (await http.request(http.tcp_opener("127.0.0.1", port), "GET", "/api/status", token=token)).status == 200
    print(f"\nbench: reattach on app start -> tunnel serving: {elapsed:.2f} s")


async def test_start_after_restarting_the_app_reuses_the_last_local_port(rig: Rig, world: World) -> None:
    """Not reattached but started (j): the running server is adopted and its tunnel comes back on the last
    local port used for the instance, not on the profile's (any free port here)."""
    await running(rig, world)
    old_port, token = rig.token(world.iid)
    await rig.manager.aclose()
    events = Events()
    rig.manager, rig.events = world.manager(events), events
    state = await rig.manager.start_jupyter(world.ctx)
    assert state.local_port == old_port and rig.token(world.iid) == (old_port, token)


async def test_open_forward_by_purpose(rig: Rig, world: World) -> None:
    """A second tunnel under its own purpose: reused when open, closed alone, re-opened on its last local port."""
    iid = world.iid

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"dashboard:" + await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)  # a service on the VM (the VM is this machine)
    remote_port = server.sockets[0].getsockname()[1]

    async def ask(local_port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", local_port)
        writer.write(b"hi\n")
        await writer.drain()
        try:
            return await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()

    try:
        mark = rig.events.mark()
        info = await rig.manager.open_forward(world.ctx, "dask-dashboard", remote_port)
        assert (info.instance, info.purpose, info.remote_port, info.state) == (iid, "dask-dashboard", remote_port,
                                                                               TunnelState.UP)
        assert info.local_port not in (0, remote_port)
        assert await ask(info.local_port) == b"dashboard:hi\n"
        now = rig.manager.tunnel_info(iid, "dask-dashboard")
        assert now is not None and (now.key, now.local_port) == ((iid, "dask-dashboard"), info.local_port)
        assert now.bytes_in > 0 and now.bytes_out > 0  # the bytes went through this tunnel
        saved = AppState.load(world.state_path).tunnel(iid, "dask-dashboard")
        assert saved == TunnelRecord(iid, "dask-dashboard", info.local_port, "127.0.0.1", remote_port)
        again = await rig.manager.open_forward(world.ctx, "dask-dashboard", remote_port)
        assert again.local_port == info.local_port  # the open one is reused
        assert {e.info.purpose for e in rig.events.of(TunnelChanged, since=mark)} == {"dask-dashboard"}
        jupyter_before = rig.manager.tunnel_info(iid)

        # "restart the app": the forward comes back on its last local port
        await rig.manager.aclose()
        events = Events()
        rig.manager, rig.events = world.manager(events), events
        back = await rig.manager.open_forward(world.ctx, "dask-dashboard", remote_port)
        assert back.local_port == info.local_port and await ask(back.local_port) == b"dashboard:hi\n"

        await rig.manager.close_tunnel(iid, "dask-dashboard")
        assert events.of(TunnelClosed) == [TunnelClosed(iid, "dask-dashboard")]
        assert rig.manager.tunnel_info(iid, "dask-dashboard") is None
        saved_after = AppState.load(world.state_path)
        assert saved_after.tunnel(iid, "dask-dashboard") is None
        if jupyter_before is not None:  # the Jupyter tunnel's record is not touched
            assert saved_after.tunnel(iid) is not None
        with pytest.raises(OSError):
            await ask(back.local_port)
    finally:
        server.close()
        await server.wait_closed()
        with contextlib.suppress(Exception):
            await rig.manager.close_tunnel(iid, "dask-dashboard")


async def test_read_metrics_only_over_an_open_connection(rig: Rig, world: World) -> None:
    await rig.manager.aclose()
    events = Events()
    rig.manager, rig.events = world.manager(events), events
    assert await rig.manager.read_metrics(world.ctx) is None  # never logs in for this
    assert events.items == []
    await rig.manager.connect(world.ctx)
    metrics = await rig.manager.read_metrics(world.ctx)
    assert metrics is not None and metrics.instance_id == world.iid
    assert 0.0 <= metrics.load1 < 64 and 0.0 < metrics.mem_used_pct <= 100.0
    assert events.of(Metrics) == [metrics]


async def test_stop_is_verified_and_no_token_is_written(
    rig: Rig, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await running(rig, world)
    rig.token(world.iid)
    m, iid = rig.manager, world.iid
    handle = m.server(iid)
    assert handle is not None and handle.pid is not None
    mark = rig.events.mark()
    assert await m.stop_jupyter(world.ctx) == StopOutcome(stopped=True)
    assert [e.state for e in rig.events.of(JupyterState, since=mark)] == ["stopping", "stopped"]
    assert rig.events.of(TunnelChanged, since=mark)[-1].info.state is TunnelState.DOWN
    assert rig.events.of(TunnelClosed, since=mark) == [TunnelClosed(iid, "jupyter")]
    assert m.token_url(iid) is None and m.server(iid) is None and m.tunnel_info(iid) is None
    saved = AppState.load(world.state_path)
    assert iid not in saved.servers and saved.tunnel(iid) is None
    conn = await m.pool.get(iid)
    assert f".{handle.session}" not in str((await conn.run("screen -ls", check=False)).stdout)
    assert (await conn.run(f"kill -0 {handle.pid}", check=False)).exit_status != 0
    assert await m.find_jupyter(world.ctx) is None
    assert await m.stop_jupyter(world.ctx) == StopOutcome(stopped=True)  # nothing running: still fine
    command_log = world.services.command_log(world.ctx.instance).read()
    assert "screen" in command_log and "stop Jupyter" in command_log
    assert rig.seen_tokens
    for token in rig.seen_tokens:
        assert world.files_containing(token) == []  # state, command log, known_hosts, keys...
        assert not any(token in r.getMessage() for r in caplog.records)


class Squatter:
    """A program that is not Jupyter listening on a port of the VM (the VM is this machine): answers 404 to
    everything and keeps what it was sent — a token must never reach it."""

    def __init__(self) -> None:
        self.received = b""
        self.server: asyncio.Server | None = None

    async def start(self, port: int) -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                self.received += await asyncio.wait_for(reader.read(65536), 5)
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
            writer.close()

        for _ in range(100):  # the stopped server's port may linger a moment
            try:
                self.server = await asyncio.start_server(serve, "127.0.0.1", port, reuse_address=True)
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise AssertionError(f"port {port} stays taken")

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def forwards_nothing(local: int) -> bool:
    """The tunnel keeps its local port (no other program can take it) but forwards nothing: a browser's request
    is closed at once, unanswered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", local)
    try:
        writer.write(b"GET /api HTTP/1.0\r\n\r\n")
        return await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()


class Prober:
    """A browser that keeps asking through the tunnel's local port (`GET /api`, a new connection each time) and
    notes each answer's status: a 404 is the squatter's, never Jupyter's."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.statuses: list[int] = []
        self.task: asyncio.Task[None] | None = None

    async def _one(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(b"GET /api HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            await writer.drain()
            line = await reader.readline()
            if line.startswith(b"HTTP/"):
                self.statuses.append(int(line.split()[1]))
        finally:
            writer.close()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(OSError, TimeoutError, ValueError, IndexError):
                await asyncio.wait_for(self._one(), 3)
            await asyncio.sleep(0.05)

    def __enter__(self) -> Prober:
        self.task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()


async def test_the_tunnel_follows_jupyter_restarted_on_another_port(rig: Rig, world: World) -> None:
    """Jupyter restarted behind the app's back (another terminal) lands on another port, a different program
    now holding its old one: the tunnel follows on its own (no refresh, no `t`) — within 5 s of the new server
    answering it forwards there, same local port, the new token — and meanwhile a browser asking all along through
    the local port never reaches the other program, which never sees a request or a token."""
    before = await running(rig, world)
    iid = world.iid
    local, old_token = rig.token(iid)
    squatter = Squatter()
    other = world.manager(Events())  # `cades-tui jupyter stop/start` in another terminal
    try:
        with Prober(local) as browser:
            await other.stop_jupyter(world.ctx, force=True)
            await squatter.start(before.remote_port)
            mark = rig.events.mark()
            moved = await other.start_jupyter(world.ctx)
            answered = time.monotonic()
            assert moved.remote_port != before.remote_port
            await other.aclose()
            up = await rig.events.wait(TunnelChanged, lambda e: e.info.state is TunnelState.UP
                                       and e.info.remote_port == moved.remote_port, timeout=15, since=mark)
            took = time.monotonic() - answered
            assert took < 5.0, f"the tunnel followed after {took:.1f} s"
            before_ok = len(browser.statuses)
            assert await eventually(lambda: len(browser.statuses) > before_ok + 2, timeout=10)
        assert up.info.local_port == local
        assert 404 not in browser.statuses, browser.statuses  # never the squatter's answer
        assert browser.statuses[-1] == 200
        states = [e for e in rig.events.of(JupyterState, since=mark) if e.state == "running"]
        assert states and (states[-1].local_port, states[-1].remote_port) == (local, moved.remote_port)
        port, token = rig.token(iid)
        assert port == local and token != old_token
        through = http.tcp_opener("127.0.0.1", local)
        assert (await http.request(through, "GET", "/api/status", token=token)).status == 200
        assert AppState.load(world.state_path).tunnel(iid) == TunnelRecord(iid, "jupyter", local, "127.0.0.1",
                                                                           moved.remote_port)
        mark = rig.events.mark()
        await rig.manager.refresh(world.ctx)  # nothing moved: nothing to say
        assert rig.events.of(JupyterState, since=mark) == []
    finally:
        await squatter.stop()
        await other.aclose()
    # no request through the tunnel reached it (the other terminal's start may have asked it `GET /api`), no token
    assert b"Host: 127.0.0.1\r\n\r\n" not in squatter.received  # the browser's
    assert old_token.encode() not in squatter.received and token.encode() not in squatter.received


async def test_jupyter_stopped_elsewhere_turns_the_tunnel_down(rig: Rig, world: World) -> None:
    """Stopped from another terminal: the tunnel turns DOWN on its own ("Jupyter moved/stopped") and forwards
    nothing, its local port kept; `j` brings it back on the same local port."""
    await running(rig, world)
    iid = world.iid
    local, _ = rig.token(iid)
    other = world.manager(Events())
    mark = rig.events.mark()
    try:
        await other.stop_jupyter(world.ctx, force=True)
    finally:
        await other.aclose()
    last = (await rig.events.wait(TunnelChanged, lambda e: e.info.state is TunnelState.DOWN, since=mark)).info
    assert last.error == "Jupyter moved/stopped"
    info = rig.manager.tunnel_info(iid)
    assert info is not None and info.state is TunnelState.DOWN and info.error == "Jupyter moved/stopped"
    assert [e.state for e in rig.events.of(JupyterState, since=mark)] == ["stopped"]
    assert rig.manager.token_url(iid) is None
    assert await forwards_nothing(local)
    state = await rig.manager.start_jupyter(world.ctx)  # j: back on the same local port
    assert state.local_port == local and rig.manager.tunnel_info(iid).state is TunnelState.UP  # type: ignore[union-attr]


async def test_after_a_vm_restart_the_tunnel_follows_jupyter_started_again_elsewhere(
    rig: Rig, world: World, host_back_up  # type: ignore[no-untyped-def]
) -> None:
    """Stop/start the VM, then Jupyter is started again from another terminal, on another port (another program
    took its old one): the app's tunnel comes back on its own — no `t` — within 5 s of the server answering, on the
    same local port, and never forwarded to the other program."""
    before = await running(rig, world)
    iid, host = world.iid, host_back_up
    local, old_token = rig.token(iid)
    squatter = Squatter()
    mark = rig.events.mark()
    host.stop()  # power off: sshd and every process of the VM (Jupyter) end
    other = world.manager(Events())
    try:
        await squatter.start(before.remote_port)
        host.start()
        await rig.events.wait(TunnelChanged, lambda e: e.info.state is TunnelState.DOWN, timeout=30, since=mark)
        moved = await other.start_jupyter(world.ctx)
        answered = time.monotonic()
        assert moved.remote_port != before.remote_port
        up = await rig.events.wait(TunnelChanged, lambda e: e.info.state is TunnelState.UP, timeout=15, since=mark)
        took = time.monotonic() - answered
        assert took < 5.0, f"the tunnel came back after {took:.1f} s"
        assert (up.info.local_port, up.info.remote_port) == (local, moved.remote_port)
        _, token = rig.token(iid)
        through = http.tcp_opener("127.0.0.1", local)
        assert (await http.request(through, "GET", "/api/status", token=token)).status == 200
    finally:
        await other.aclose()
        await squatter.stop()
    assert token.encode() not in squatter.received and old_token.encode() not in squatter.received


async def test_a_vm_restart_never_forwards_to_the_program_on_jupyter_s_old_port(
    rig: Rig, world: World, host_back_up  # type: ignore[no-untyped-def]
) -> None:
    """Stop/start the VM: Jupyter is gone and another program took its port. The tunnel reconnects, finds no
    Jupyter and turns DOWN ("Jupyter moved/stopped") instead of UP, keeping its local port but forwarding nothing;
    started again, Jupyter moves elsewhere and the tunnel comes back on the same local port."""
    before = await running(rig, world)
    iid, host = world.iid, host_back_up
    local, token = rig.token(iid)
    squatter = Squatter()
    mark = rig.events.mark()
    host.stop()  # power off: sshd and every process of the VM (Jupyter) end
    await rig.events.wait(TunnelChanged, lambda e: e.info.state is TunnelState.RECONNECTING, since=mark)
    try:
        await squatter.start(before.remote_port)
        host.start()
        down = await rig.events.wait(TunnelChanged, lambda e: e.info.state is TunnelState.DOWN, timeout=30,
                                     since=mark)
        assert down.info.error == "Jupyter moved/stopped" and down.info.local_port == local
        ups = [e for e in rig.events.of(TunnelChanged, since=mark) if e.info.state is TunnelState.UP]
        assert ups == []  # never "up" while forwarding to the squatter
        assert await forwards_nothing(local)
        state = await rig.manager.start_jupyter(world.ctx)
        assert state.local_port == local and state.remote_port != before.remote_port
        _, new_token = rig.token(iid)
        through = http.tcp_opener("127.0.0.1", local)
        assert (await http.request(through, "GET", "/api/status", token=new_token)).status == 200
    finally:
        await squatter.stop()
    assert token.encode() not in squatter.received


async def test_jupyter_stopped_and_started_again_keeps_its_local_port(rig: Rig, world: World) -> None:
    """The profile asks for any free port (local_port: 0): the last one used for the instance is still preferred,
    so a bookmark of the URL stays valid across a stop and a start."""
    local = (await running(rig, world)).local_port
    await stopped(rig, world)
    assert AppState.load(world.state_path).tunnel(world.iid) is None  # closed: not re-opened on the next app start
    assert (await running(rig, world)).local_port == local


async def test_a_login_that_fails_is_could_not_connect_never_lost(world: World, tmp_path: Path) -> None:
    """A refused key: 'could not connect' with the reason — and no 'lost' for a connection that never was."""
    import asyncssh

    from tui.core.api import ManagerError

    wrong = tmp_path / "wrong_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(wrong))
    events = Events()
    manager = world.manager(events)
    ctx = replace(world.ctx, target=replace(world.ctx.target, key_path=wrong))
    name = world.ctx.instance.name
    try:
        with pytest.raises(ManagerError, match=f"^could not connect to {name}: .* refused the key"):
            await manager.connect(ctx)
        assert await never(lambda: len(events.of(ConnectionState)) > 2, within=0.2)  # no "lost" after "failed"
    finally:
        await manager.aclose()
    states = [(e.state, e.error.split(":")[0]) for e in events.of(ConnectionState)]
    assert states == [("connecting", ""), ("failed", f"could not connect to {name}")]


async def test_a_log_follower_that_cannot_log_in_says_it_stopped(world: World, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """The follower's login is refused: it ends, and says so (an event the app shows, a line in the app log) —
    not a log view that silently never fills."""
    import asyncssh

    wrong = tmp_path / "wrong_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(wrong))
    events = Events()
    manager = world.manager(events)
    ctx = replace(world.ctx, target=replace(world.ctx.target, key_path=wrong))
    name = world.ctx.instance.name
    try:
        with caplog.at_level(logging.ERROR, logger="tui"):
            await manager.follow_log(ctx)
            failed = await events.wait(BackgroundFailed, timeout=30)
    finally:
        await manager.aclose()  # unfollows: the ended follower's failure is not raised again
    assert failed.instance_id == world.iid and failed.what == f"following the Jupyter log of {name}"
    assert "refused the key" in failed.error
    assert failed.message.startswith(f"following the Jupyter log of {name} stopped: ")
    assert any(r.name == "tui.core.tasks" and name in r.getMessage() for r in caplog.records)


async def test_kernels_that_cannot_be_listed_count_as_possibly_busy(rig: Rig, world: World) -> None:
    """Jupyter stopped answering behind the manager's back: whether kernels are busy is unknown, so the stop
    stops nothing and says why (the app and the CLI then ask, as for busy kernels)."""
    await running(rig, world)
    m, iid = rig.manager, world.iid
    port, token = rig.token(iid)
    through = http.tcp_opener("127.0.0.1", port)
    assert (await http.request(through, "POST", "/api/shutdown", token=token)).status in (200, 204)

    async def answers() -> bool:
        try:
            return (await http.request(through, "GET", "/api/status", token=token, timeout=2)).status == 200
        except (OSError, http.NoReply):
            return False

    for _ in range(200):  # Jupyter's shutdown takes a moment
        if not await answers():
            break
        await asyncio.sleep(0.05)
    mark = rig.events.mark()
    try:
        outcome = await m.stop_jupyter(world.ctx)
        assert not outcome.stopped and outcome.busy == () and outcome.unknown
        assert outcome.asks == f"could not tell whether kernels are busy ({outcome.unknown})"
        assert rig.events.of(JupyterState, since=mark) == []  # nothing stopped, not even "stopping"
    finally:
        await stopped(rig, world)  # forced: the server is gone, its session and tunnel are cleaned up
