"""`cades-tui jupyter start|stop|logs`, `tunnel`, `open`, `status` against a sandbox instance: real sshd, screen,
Jupyter (the venv's) and tunnels. The tests share one server and run in file order; the last one stops it."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tui.cli.common import make_cloud
from tui.cli.jupyter import FOREGROUND_NOTE, osc52
from tui.core.config import load_settings
from tui.core.jupyter import http
from tui.core.manager import RemoteManager
from tui.core.services import Services
from tui.core.state import AppState

from .conftest import CliWorld

Cli = Callable[..., tuple[str, str]]


def status_row(cli: Cli, world: CliWorld, *extra: str) -> dict[str, object]:
    rows = json.loads(cli("status", "--json", *extra)[0])
    return next(r for r in rows if r["id"] == world.iid)


def test_start_then_status_and_logs(cli: Cli, cli_world: CliWorld) -> None:
    out, _ = cli("jupyter", "start", cli_world.name)
    assert f"Jupyter is running on {cli_world.name}: http://127.0.0.1:" in out and "(token hidden)" in out
    assert "Answered through the tunnel after" in out and f"cades-tui open {cli_world.name}" in out
    token = cli_world.runtime_token()
    assert token not in out
    row = status_row(cli, cli_world)
    assert row["jupyter"] == "running" and row["tunnels"] == []  # the start's check tunnel closed with it
    assert row["url"] == f"http://127.0.0.1:{row['remote_port']}/lab?token=********"
    shown = status_row(cli, cli_world, "--show-token")
    assert shown["url"] == f"http://127.0.0.1:{row['remote_port']}/lab?token={token}"
    table, _ = cli("status")
    assert cli_world.name in table and "running" in table and token not in table
    logs, _ = cli("jupyter", "logs", cli_world.name)
    assert "is running at" in logs and "token=…" in logs and token not in logs
    cli("jupyter", "logs", cli_world.name, "-n", "-1", expect=2)
    assert cli_world.files_containing(token) == []  # state file, command log, known_hosts, keys


def test_tunnel_refuses_a_busy_local_port(cli: Cli, cli_world: CliWorld) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        _, err = cli("tunnel", cli_world.name, "--local-port", str(port), expect=1)
    assert f"local port {port} is already in use by pid {os.getpid()}" in err
    cli("tunnel", cli_world.name, "--local-port", "70000", expect=2)
    cli("tunnel", "no-such-instance", expect=1)


def test_open_serves_in_the_foreground_until_ctrl_c(cli_world: CliWorld, subprocess_env: dict[str, str],
                                                    tmp_path: Path) -> None:
    opened = tmp_path / "opened-url"
    browser = tmp_path / "browser"
    browser.write_text(f"#!/bin/sh\nprintf '%s' \"$1\" > {opened}.tmp && mv {opened}.tmp {opened}\n")
    browser.chmod(0o755)
    proc = subprocess.Popen([sys.executable, "-m", "tui", "open", cli_world.name],
                            env={**subprocess_env, "BROWSER": f"{browser} %s"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None and proc.stderr is not None

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while FOREGROUND_NOTE not in seen[-1:]:
            seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())).rstrip("\n"))
        for _ in range(100):
            if opened.exists():
                break
            time.sleep(0.05)
        url = opened.read_text()
        assert any(line.endswith(url) for line in seen)  # printed for terminals without a browser
        parts = urlsplit(url)
        token = parse_qs(parts.query)["token"][0]
        assert token == cli_world.runtime_token() and parts.hostname == "127.0.0.1"

        async def through() -> int:
            assert parts.port is not None
            opener = http.tcp_opener("127.0.0.1", parts.port)
            return (await http.request(opener, "GET", "/api/status", token=token)).status

        assert asyncio.run(through()) == 200
        assert proc.poll() is None  # still serving
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
        reader.join(5)
        stderr = proc.stderr.read()
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert code == 0, stderr
    assert "Stopped (Ctrl+C). Jupyter keeps running on the VM." in "".join(rest)
    assert "Traceback" not in stderr


def test_osc52_copies_the_url() -> None:
    assert osc52("http://x/?token=a") == "\x1b]52;c;aHR0cDovL3gvP3Rva2VuPWE=\x07"


async def _make_busy_kernel(name: str) -> str:
    """Through the manager (as the app would): a tunnel, a kernel running a long cell. Returns the kernel id."""
    settings = load_settings()
    services = Services(settings)
    rctx = services.prepare(make_cloud(settings), name)
    manager = RemoteManager(settings, services, AppState.load(), lambda e: None)
    try:
        state = await manager.open_tunnel(rctx)
        url = manager.token_url(rctx.instance.id)
        assert url is not None
        token = parse_qs(urlsplit(url).query)["token"][0]
        opener = http.tcp_opener("127.0.0.1", state.local_port)
        kernel = (await http.request(opener, "POST", "/api/kernels", token=token, body={"name": "python3"})).json()
        ws = await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{state.local_port}/api/kernels/{kernel['id']}"
                                                 "/channels", headers={"Authorization": f"token {token}"}))
        await ws.write_message(json.dumps({
            "header": {"msg_id": uuid.uuid4().hex, "username": "t", "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3", "date": datetime.now(UTC).isoformat()},
            "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
            "content": {"code": "import time; time.sleep(120)", "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}))
        ws.close()
        for _ in range(150):
            if any(k.busy for k in await manager.kernels(rctx)):
                return str(kernel["id"])
            await asyncio.sleep(0.1)
        raise AssertionError("the kernel never turned busy")
    finally:
        await manager.close_tunnel(rctx.instance.id)
        await manager.aclose()


def test_stop_refuses_busy_kernels_unless_forced(cli: Cli, cli_world: CliWorld) -> None:
    kernel_id = asyncio.run(_make_busy_kernel(cli_world.name))
    out, err = cli("jupyter", "stop", cli_world.name, expect=1)  # no terminal to ask on: refused
    assert f"1 kernel(s) busy on {cli_world.name}:" in out and f"python3 {kernel_id[:8]}" in out
    assert "pass --force" in err
    assert status_row(cli, cli_world)["jupyter"] == "running"
    out, _ = cli("jupyter", "stop", cli_world.name, "--force")
    assert "stopped (process and session verified gone)" in out
    host = cli_world.sandbox.ssh_host(cli_world.iid)
    screens = subprocess.run(["screen", "-ls"], env={**os.environ, "SCREENDIR": str(host.screendir)},
                             capture_output=True, text=True, check=False).stdout
    assert ".jupyter" not in screens
    assert not list((host.home / ".local/share/jupyter/runtime").glob("jpserver-*.json"))
    assert status_row(cli, cli_world)["jupyter"] == "-"  # forgotten
    _, err = cli("open", cli_world.name, expect=1)
    assert "no Jupyter server is running" in err and f"cades-tui jupyter start {cli_world.name}" in err
