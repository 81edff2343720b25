"""The tmux fallback with real Jupyter, the classic Notebook (`jupyter.app: notebook`), and the stop fallbacks
(second Ctrl+C, kill) with real screen."""

from __future__ import annotations

import shlex

import pytest

from tui.core.jupyter import http
from tui.core.jupyter.logtail import LogTail
from tui.core.jupyter.server import JupyterControl, JupyterSpec, ServerHandle
from tui.core.remote.connection import SSHTarget
from tui.core.remote.session import Multiplexer, RemoteSession
from tui.core.remote.tunnel import Tunnel


async def test_jupyter_in_tmux(connect, jupyter_cmd: str, forwarder: str, tunnel_target: SSHTarget) -> None:
    """Run twice: through the OpenSSH hand-off and through the asyncssh forwarder (forced)."""
    settings = JupyterSpec(kind="lab", command=jupyter_cmd, workspace="~/ws", port=28888,
                               session="jt", logfile="~/jt.log")
    async with await connect() as conn:
        control = JupyterControl(conn, settings, RemoteSession(conn, Multiplexer.TMUX))
        handle = await control.start()
        try:
            assert handle.multiplexer is Multiplexer.TMUX and handle.pid is not None
            tunnel = Tunnel("vm1", connect, handle.port, openssh=tunnel_target)
            assert tunnel.backend == forwarder
            await tunnel.open()
            try:
                through = http.tcp_opener("127.0.0.1", tunnel.local_port)
                assert (await http.request(through, "GET", "/api")).status == 200
                assert (await http.request(through, "GET", "/api/kernels", token=handle.token)).status == 200
            finally:
                await tunnel.close()
            tail = LogTail(conn, settings.logfile, interval=0.05)
            lines = await anext(tail.batches())
            await tail.close()
            assert any("is running at" in x for x in lines)
            assert not any(handle.token in x for x in lines)
            found = await control.find()
            assert found is not None and found.token == handle.token
        finally:
            result = await control.stop(handle)
        assert result.method == "confirm"
        assert not await control.session.is_running("jt")
        assert (await conn.run(f"kill -0 {handle.pid}", check=False)).exit_status != 0


async def test_notebook_instead_of_lab(connect, jupyter_cmd: str) -> None:
    """The profile's `jupyter.app: notebook`: Notebook 7 starts the same way, its URL opens the file tree."""
    settings = JupyterSpec(kind="notebook", command=jupyter_cmd, workspace="~/nb", port=28890,
                               session="nb", logfile="~/nb.log")
    async with await connect() as conn:
        control = await JupyterControl.create(conn, settings)
        handle = await control.start()
        try:
            assert handle.path == "/tree"
            tunnel = Tunnel("vm1", connect, handle.port)
            await tunnel.open()
            try:
                assert handle.url(tunnel.local_port).startswith(f"http://127.0.0.1:{tunnel.local_port}/tree?token=")
                through = http.tcp_opener("127.0.0.1", tunnel.local_port)
                assert (await http.request(through, "GET", "/api")).status == 200
                page = await http.request(through, "GET", "/tree", token=handle.token)
                assert page.status == 200 and b"Jupyter Notebook" in page.body
            finally:
                await tunnel.close()
        finally:
            result = await control.stop(handle)
        assert result.method == "confirm" and not await control.session.is_running("nb")


# A stand-in server that ignores "y" (an older Jupyter's prompt) and quits on the second Ctrl+C;
# and one that ignores Ctrl+C entirely.
STUBBORN = {
    "double-interrupt": "n=0; trap 'n=$((n+1)); [ $n -ge 2 ] && exit 0' INT; "
                        "while :; do read -r -t 1 _ || true; done",
    "killed": "trap '' INT; while :; do sleep 0.2; done",
}


@pytest.mark.parametrize("expected", ["double-interrupt", "killed"])
async def test_stop_falls_back(connect, expected: str) -> None:
    async with await connect() as conn:
        sessions = RemoteSession(conn, Multiplexer.SCREEN)
        name = f"stub-{expected}"
        await sessions.start(name, f"bash -c {shlex.quote(STUBBORN[expected])}", "~", f"~/{name}.log")
        pid_res = await conn.run(f"screen -ls | grep -o '[0-9]*\\.{name}' | cut -d. -f1", check=True)
        screen_pid = int(str(pid_res.stdout).split()[0])
        child = await conn.run(f"pgrep -P {screen_pid}", check=True)
        handle = ServerHandle(name, Multiplexer.SCREEN, 1, "x", pid=int(str(child.stdout).split()[0]))
        control = JupyterControl(conn, JupyterSpec(session=name), sessions)
        result = await control.stop(handle, timeout=3)
        assert result.method == expected
        assert not await sessions.is_running(name)
        assert (await conn.run(f"kill -0 {handle.pid}", check=False)).exit_status != 0
