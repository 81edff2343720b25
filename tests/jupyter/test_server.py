"""Jupyter in GNU screen on a real sshd "VM": start → tunnel → REST → live log → busy kernel → reattach → stop.

One server is shared by the module's tests (a start costs ~3 s) on one event loop; each test asks for it through
`server`, which starts it when none runs (the stop test ends it), so every test passes alone and in any order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import stat
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncssh
import pytest
import pytest_asyncio
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tui.core.jupyter import http
from tui.core.jupyter.logtail import LogTail
from tui.core.jupyter.reattach import reattach, record_for
from tui.core.jupyter.server import JupyterControl, JupyterSpec, ServerHandle, answers
from tui.core.models import TunnelState
from tui.core.remote.connection import SSHTarget
from tui.core.remote.session import Multiplexer
from tui.core.remote.tunnel import Tunnel
from tui.core.state import AppState, TunnelRecord
from tui.sandbox.sshhost import SSHHost

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    """The profile's port, already taken on the VM: Jupyter has to move (--port-retries)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.fixture(scope="module")
def settings(busy_port: int, jupyter_cmd: str) -> JupyterSpec:
    return JupyterSpec(command=jupyter_cmd, workspace="~/workspace", port=busy_port, port_retries=20)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def conn(connect) -> AsyncIterator[asyncssh.SSHClientConnection]:
    c = await connect()
    yield c
    c.close()
    await c.wait_closed()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def control(conn: asyncssh.SSHClientConnection, settings: JupyterSpec) -> JupyterControl:
    return await JupyterControl.create(conn, settings)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _stopped_at_the_end(control: JupyterControl) -> AsyncIterator[None]:
    yield
    handle = await control.find()
    if handle is not None or await control.session.is_running(control.settings.session):
        await control.stop(handle)


@pytest_asyncio.fixture(loop_scope="module")
async def server(control: JupyterControl, _stopped_at_the_end: None) -> ServerHandle:
    """The module's running server: the one found (idempotent), else a new one."""
    return await control.find() or await control.start()


@pytest_asyncio.fixture(loop_scope="module")
async def tunnel(connect, server: ServerHandle, forwarder: str, tunnel_target: SSHTarget) -> AsyncIterator[Tunnel]:
    """A tunnel to the server, through each data path in turn: the OpenSSH hand-off and the asyncssh forwarder
    (forced; the one macOS and Windows use)."""
    t = Tunnel("vm1", connect, server.port, openssh=tunnel_target)
    assert t.backend == forwarder
    await t.open()
    yield t
    await t.close()


async def test_start_answers_through_the_tunnel(
    server: ServerHandle, tunnel: Tunnel, busy_port: int, control: JupyterControl
) -> None:
    assert control.session.kind is Multiplexer.SCREEN
    assert server.port != busy_port  # moved off the busy port, and we found where
    assert server.pid is not None and server.root_dir.endswith("/workspace")
    assert tunnel.info.state is TunnelState.UP and tunnel.local_port != server.port
    through = http.tcp_opener("127.0.0.1", tunnel.local_port)
    api = await http.request(through, "GET", "/api")
    assert api.status == 200 and "version" in api.json()
    authed = await http.request(through, "GET", "/api/status", token=server.token)
    assert authed.status == 200 and "started" in authed.json()
    assert (await http.request(through, "GET", "/api/status")).status == 403  # token auth is on
    assert (await http.request(through, "GET", "/api/status", token="wrong")).status == 403
    assert await answers(through, server.token)
    url = server.url(tunnel.local_port)
    assert url == f"http://127.0.0.1:{tunnel.local_port}/lab?token={server.token}"
    assert server.token not in server.public_url() and server.token not in repr(server)
    assert tunnel.info.bytes_in > 0 and tunnel.info.bytes_out > 0


async def test_bound_to_loopback_only(server: ServerHandle, control: JupyterControl) -> None:
    res = await control.conn.run("cat /proc/net/tcp /proc/net/tcp6", check=False)
    rows = [line.split() for line in str(res.stdout).splitlines()]
    listeners = [r[1] for r in rows if len(r) > 3 and r[3] == "0A" and r[1].endswith(f":{server.port:04X}")]
    assert listeners == [f"0100007F:{server.port:04X}"]


async def test_live_log_lines_arrive(server: ServerHandle, tunnel: Tunnel, conn, settings) -> None:
    tail = LogTail(conn, settings.logfile, history=500, interval=0.05)
    marker = f"/api/no-such-{uuid.uuid4().hex}"
    seen: list[str] = []
    try:
        batches = tail.batches()
        first = await asyncio.wait_for(anext(batches), 5)
        assert any("is running at" in line for line in first)
        seen += first
        await http.request(http.tcp_opener("127.0.0.1", tunnel.local_port), "GET", marker, token=server.token)

        async def until_marker() -> None:
            async for batch in batches:
                seen.extend(batch)
                if any(marker in line for line in batch):
                    return

        await asyncio.wait_for(until_marker(), 5)
    finally:
        await tail.close()
    assert all("\x1b" not in line and "\r" not in line and "\x0f" not in line for line in seen)
    assert any("token=…" in line for line in seen)
    assert not any(server.token in line for line in [*seen, *tail.lines])
    assert list(tail.lines) == seen[-len(tail.lines):]


async def _execute(local_port: int, token: str, kernel_id: str, code: str) -> None:
    """Send one execute_request on the kernel's websocket, as JupyterLab does."""
    req = HTTPRequest(
        f"ws://127.0.0.1:{local_port}/api/kernels/{kernel_id}/channels",
        headers={"Authorization": f"token {token}"},
    )
    ws = await websocket_connect(req)
    msg = {
        "header": {"msg_id": uuid.uuid4().hex, "username": "test", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3",
                   "date": datetime.now(UTC).isoformat()},
        "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }
    await ws.write_message(json.dumps(msg))
    ws.close()


async def test_busy_kernel_is_reported(server: ServerHandle, tunnel: Tunnel, control: JupyterControl) -> None:
    through = http.tcp_opener("127.0.0.1", tunnel.local_port)
    created = await http.request(through, "POST", "/api/kernels", token=server.token, body={"name": "python3"})
    assert created.status == 201
    kernel_id = created.json()["id"]
    try:
        async def state() -> str:
            kernels = {k.id: k for k in await control.kernels(server)}
            return kernels[kernel_id].execution_state

        await _execute(tunnel.local_port, server.token, kernel_id, "import time; time.sleep(30)")
        for _ in range(150):
            activity = await control.activity(server)
            if activity.busy_kernels:
                break
            await asyncio.sleep(0.1)
        assert [k.id for k in activity.busy_kernels] == [kernel_id]
        assert activity.last_activity is not None and activity.idle_seconds() is not None
        assert activity.idle_seconds() < 30
        assert activity.started is not None and activity.started <= activity.last_activity
        interrupted = await http.request(through, "POST", f"/api/kernels/{kernel_id}/interrupt",
                                         token=server.token)
        assert interrupted.status == 204
        for _ in range(100):
            if await state() == "idle":
                break
            await asyncio.sleep(0.1)
        assert not (await control.activity(server)).busy_kernels
    finally:
        await http.request(through, "DELETE", f"/api/kernels/{kernel_id}", token=server.token)


async def test_reattach_after_app_restart(
    server: ServerHandle, connect, settings: JupyterSpec, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    state_file = tmp_path / "state" / "state.json"
    state = AppState.load(state_file)
    state.put(record_for("vm1", server, settings, auto_reopen=True))
    state.put_tunnel(TunnelRecord("vm1", "jupyter", 18889, remote_port=server.port))
    text = state_file.read_text()
    assert server.token not in text and "token" not in text
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    # no temp files left; the writers' lock file holds nothing
    assert not [p for p in state_file.parent.iterdir() if p.name not in ("state.json", "state.json.lock")]
    assert (state_file.parent / "state.json.lock").read_text() == ""

    # "restart the app": new objects, a new connection, the same state file
    again = AppState.load(state_file)
    rec = again.servers["vm1"]
    assert (rec.remote_port, rec.auto_reopen) == (server.port, True)
    assert again.tunnel("vm1") == TunnelRecord("vm1", "jupyter", 18889, "127.0.0.1", server.port)
    fresh = await connect()
    try:
        found = await reattach(again, "vm1", fresh, settings)
        assert found is not None
        assert (found.port, found.token, found.pid) == (server.port, server.token, server.pid)
        t = Tunnel("vm1", connect, found.port)
        await t.open()
        try:
            assert await answers(http.tcp_opener("127.0.0.1", t.local_port), found.token)
        finally:
            await t.close()
        assert await reattach(again, "nope", fresh, settings) is None
    finally:
        fresh.close()
    assert not any(server.token in r.getMessage() for r in caplog.records)


async def test_stop_is_verified(server: ServerHandle, control: JupyterControl, ssh_host: SSHHost,
                                tmp_path: Path, settings: JupyterSpec, connect) -> None:
    result = await control.stop(server)
    assert result.method == "confirm"  # Ctrl+C then "y": Jupyter's own clean shutdown
    assert result.seconds < 10  # 1-1.5 s on a quiet machine
    assert not await control.session.is_running(settings.session)
    assert server.pid is not None
    assert (await control.conn.run(f"kill -0 {server.pid}", check=False)).exit_status != 0
    assert await control.runtime_files() == []
    assert await control.find() is None
    log = (ssh_host.home / ".cades-tui" / "jupyter.log").read_text()
    assert "Shutting down" in log or "Shut down" in log
    # a saved record of a server that is gone is forgotten on reattach
    state = AppState.load(tmp_path / "state.json")
    state.put(record_for("vm1", server, settings))
    assert await reattach(state, "vm1", control.conn, settings) is None
    assert "vm1" not in AppState.load(tmp_path / "state.json").servers
    assert (await control.stop(server)).method == "not-running"
