"""`cades-tui jupyter start|stop|logs`, `tunnel`, `open`, `status`, `setup` against a sandbox instance: real sshd,
screen, Jupyter (the venv's) and tunnels. The tests share one VM and run in any order: those that need Jupyter
start it (or adopt the running one) with the `jupyter_running` fixture; processes started are killed afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tui.cli.common import make_cloud
from tui.cli.jupyter import FOREGROUND_NOTE, osc52
from tui.core.config import load_settings
from tui.core.jupyter import http
from tui.core.manager import RemoteManager
from tui.core.services import Services
from tui.core.state import AppState

from .conftest import CliWorld, Foreground

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
    # no tunnel: no URL (Jupyter's port is on the VM, not here), and why
    assert row["url"] == "" and f"no tunnel: `cades-tui open {cli_world.name}`" in row["error"]
    assert isinstance(row["load1"], float) and row["load1"] >= 0  # read over the connection status made
    assert isinstance(row["mem_used_pct"], float) and 0 < row["mem_used_pct"] <= 100
    assert status_row(cli, cli_world, "--show-token")["url"] == ""
    table, _ = cli("status")
    header, *lines = table.splitlines()
    assert "LOAD/MEM" in header and token not in table
    line = next(x for x in lines if x.startswith(cli_world.name))
    assert f"running (VM port {row['remote_port']})" in line and "http://" not in line
    assert re.search(r" \d+\.\d\d / \d+% ", line), line
    logs, _ = cli("jupyter", "logs", cli_world.name)
    assert "is running at" in logs and "token=…" in logs and token not in logs
    cli("jupyter", "logs", cli_world.name, "-n", "-1", expect=2)
    assert cli_world.files_containing(token) == []  # state file, command log, known_hosts, keys


def test_tunnel_refuses_a_busy_local_port(cli: Cli, cli_world: CliWorld, jupyter_running: None) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        _, err = cli("tunnel", cli_world.name, "--local-port", str(port), expect=1)
    assert f"local port {port} is already in use by pid {os.getpid()}" in err
    cli("tunnel", cli_world.name, "--local-port", "70000", expect=2)
    cli("tunnel", "no-such-instance", expect=1)


def test_open_serves_in_the_foreground_until_ctrl_c(cli_world: CliWorld, jupyter_running: None,
                                                    foreground: Callable[..., Foreground], tmp_path: Path) -> None:
    opened = tmp_path / "opened-url"
    browser = tmp_path / "browser"
    browser.write_text(f"#!/bin/sh\nprintf '%s' \"$1\" > {opened}.tmp && mv {opened}.tmp {opened}\n")
    browser.chmod(0o755)
    fg = foreground("open", cli_world.name, env={"BROWSER": f"{browser} %s"})
    seen = fg.wait_for(FOREGROUND_NOTE)
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
    assert fg.proc.poll() is None  # still serving
    assert fg.stop(signal.SIGINT) == 130
    assert f"Tunnel to {cli_world.name} closed; Jupyter keeps running on the VM (Ctrl+C)" in fg.stderr
    assert "Traceback" not in fg.stderr


def test_open_into_a_pipe_whose_reader_is_gone_ends_without_a_traceback(
        cli_world: CliWorld, jupyter_running: None, foreground: Callable[..., Foreground]) -> None:
    """`cades-tui open NAME | sed ...` and Ctrl+C: sed goes first, then our last words find no reader."""
    fg = foreground("open", cli_world.name, "--no-browser")
    fg.wait_for(FOREGROUND_NOTE)
    fg.close_stdout()  # the reader is gone
    assert fg.stop(signal.SIGINT) == 130, fg.stderr
    assert "Traceback" not in fg.stderr and "BrokenPipeError" not in fg.stderr, fg.stderr
    assert "Tunnel to" in fg.stderr


def _ssh_children(pid: int) -> list[int]:
    """The `ssh` processes started by `pid` (the tunnel's OpenSSH master and its clients)."""
    import psutil

    return [c.pid for c in psutil.Process(pid).children(recursive=True) if c.name() == "ssh"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_tunnel_ends_like_ctrl_c_on_sigterm_and_sighup(cli: Cli, cli_world: CliWorld, jupyter_running: None,
                                                       foreground: Callable[..., Foreground], signum: int) -> None:
    import psutil

    fg = foreground("tunnel", cli_world.name)
    seen = fg.wait_for(FOREGROUND_NOTE)
    port = int(re.search(r"Forwarding http://127\.0\.0\.1:(\d+)/", "\n".join(seen)).group(1))  # type: ignore[union-attr]
    row = status_row(cli, cli_world)
    assert {"purpose": "jupyter", "local_port": port, "listening": True}.items() <= row["tunnels"][0].items()
    assert row["url"] == f"http://127.0.0.1:{port}/lab?token=********"  # a local URL: the tunnel listens
    masters = _ssh_children(fg.proc.pid)
    assert masters, "the tunnel runs through an OpenSSH master"
    assert fg.stop(signum) == 128 + signum, fg.stderr
    assert f"Tunnel to {cli_world.name} closed; Jupyter keeps running on the VM ({signum.name})" in fg.stderr
    for pid in masters:  # no ssh left logged in to the VM
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).wait(timeout=5)
    assert not [p for p in masters if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def test_ctrl_c_during_setup_says_what_was_interrupted(cli_world: CliWorld, foreground: Callable[..., Foreground],
                                                        tmp_path: Path) -> None:
    config = tmp_path / "setup.yaml"  # the default env path (in the VM's home): never the test venv
    config.write_text(f"cloud: sandbox\nclouds_yaml: {cli_world.sandbox.clouds_yaml}\nssh:\n  use_ssh_config: false\n")
    fg = foreground("setup", cli_world.name, "--config", str(config))
    fg.wait_for("[1/")
    assert fg.stop(signal.SIGINT) == 130, fg.stderr
    # the hint works as printed: it carries the --config this run was given
    assert re.search(rf"Setup of {cli_world.name} interrupted( in step '\w+')?; finished steps are kept: run "
                     rf"`cades-tui --config {re.escape(str(config))} setup {cli_world.name}` again to go on "
                     rf"\(Ctrl\+C\)", fg.stderr), fg.stderr
    assert "Jupyter keeps running" not in fg.stderr + "\n".join(fg.rest())


def test_a_refused_host_key_is_reported_once(cli: Cli, cli_world: CliWorld) -> None:
    known = Path(cli_world.env["XDG_DATA_HOME"]) / "cades-tui" / "known_hosts"
    aside = known.with_name("known_hosts.aside")
    had = known.exists()  # not yet when this test runs first
    if had:
        known.rename(aside)
    cli_world.sandbox.faults.console_host_keys = False  # nothing pinned, nothing known: the key is asked about
    try:
        _, err = cli("open", cli_world.name, "--no-browser", expect=1)
    finally:
        cli_world.sandbox.faults.console_host_keys = True
        if had:
            aside.replace(known)
    assert "presents an unknown" in err and "Re-run with --accept-host-key SHA256:" in err
    assert err.count("not trusted") == 1, err
    assert err.count("cades-tui: error:") == 1, err


def test_an_unreadable_console_log_is_said_before_the_host_key_question(cli: Cli, cli_world: CliWorld) -> None:
    """The cloud cannot give the console log: the CLI says so (and why) on stderr, then asks about the host key."""
    known = Path(cli_world.env["XDG_DATA_HOME"]) / "cades-tui" / "known_hosts"
    aside = known.with_name("known_hosts.aside")
    had = known.exists()
    if had:
        known.rename(aside)
    cli_world.sandbox.faults.console_unavailable = True
    try:
        _, err = cli("open", cli_world.name, "--no-browser", expect=1)
    finally:
        cli_world.sandbox.faults.console_unavailable = False
        if had:
            aside.replace(known)
    said = f"warning: Could not read the console log of {cli_world.name} ("
    assert said in err and "falling back to trust on first use" in err, err
    assert err.index(said) < err.index("presents an unknown")


def test_logs_follow_ends_when_its_follower_cannot_log_in(cli_world: CliWorld,
                                                          foreground: Callable[..., Foreground]) -> None:
    """`jupyter logs -f` whose follower is refused (here: an unknown host key, no terminal to ask on) says why
    and ends with exit 1 — not a command that waits forever printing nothing."""
    known = Path(cli_world.env["XDG_DATA_HOME"]) / "cades-tui" / "known_hosts"
    aside = known.with_name("known_hosts.aside")
    had = known.exists()
    if had:
        known.rename(aside)
    cli_world.sandbox.faults.console_host_keys = False  # nothing pinned, nothing known: the key is refused
    try:
        fg = foreground("jupyter", "logs", "-f", cli_world.name)
        try:
            code = fg.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            code = None
    finally:
        cli_world.sandbox.faults.console_host_keys = True
        if had:
            aside.replace(known)
    assert code == 1, fg.stderr
    assert f"warning: following the Jupyter log of {cli_world.name} stopped: " in fg.stderr, fg.stderr
    assert "Traceback" not in fg.stderr


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


def test_stop_refuses_busy_kernels_unless_forced(cli: Cli, cli_world: CliWorld, jupyter_running: None) -> None:
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
    row = status_row(cli, cli_world)
    assert row["jupyter"] == "-" and row["tunnels"] == []  # forgotten, with its tunnels
    assert isinstance(row["load1"], float)  # no server, yet SSH answers (key pinned): its load is read all the same
    _, err = cli("open", cli_world.name, expect=1)
    assert "no Jupyter server is running" in err and f"cades-tui jupyter start {cli_world.name}" in err


class Browser:
    """Asks `GET /api` through 127.0.0.1:port all along (a new connection each time, from a thread) and notes each
    answer's status and `Server` header: `python3 -m http.server` says `SimpleHTTP`, Jupyter `TornadoServer`."""

    def __init__(self, port: int) -> None:
        import threading

        self.port = port
        self.answers: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _one(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=3) as s:
            s.sendall(b"GET /api HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head = data.split(b"\r\n\r\n")[0].decode(errors="replace").split("\r\n")
        if head[0].startswith("HTTP/"):
            server = next((h.split(":", 1)[1].strip() for h in head[1:] if h.lower().startswith("server:")), "")
            self.answers.append((int(head[0].split()[1]), server))

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, ValueError, IndexError):
                self._one()
            self._stop.wait(0.05)

    def __enter__(self) -> Browser:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _through(port: int, token: str) -> int:
    async def status() -> int:
        opener = http.tcp_opener("127.0.0.1", port)
        try:
            return (await http.request(opener, "GET", "/api/status", token=token, timeout=2)).status
        except http.NoReply:
            return 0

    return asyncio.run(status())


def test_the_foreground_tunnel_follows_jupyter_restarted_on_another_port(
        cli: Cli, cli_world: CliWorld, jupyter_running: None, foreground: Callable[..., Foreground],
        tmp_path: Path) -> None:
    """`cades-tui tunnel NAME --local-port P`; Jupyter is stopped and started again from another terminal, and
    lands on another port because `python3 -m http.server` took its old one: within 5 s of the new server
    answering, requests through P reach it (200 with its token) — and no request through P ever reaches the
    http.server, before, during or after."""
    from tui.sandbox.sshhost import free_port

    local = free_port()
    fg = foreground("tunnel", cli_world.name, "--local-port", str(local))
    fg.wait_for(FOREGROUND_NOTE)
    old_port = int(status_row(cli, cli_world)["remote_port"])  # type: ignore[call-overload]
    squatter: subprocess.Popen[bytes] | None = None
    try:
        with Browser(local) as browser:
            cli("jupyter", "stop", cli_world.name, "--force")
            squatter = subprocess.Popen([sys.executable, "-m", "http.server", str(old_port), "--bind", "127.0.0.1"],
                                        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 20
            while socket.socket().connect_ex(("127.0.0.1", old_port)) != 0:  # the old port: http.server's now
                assert time.monotonic() < deadline and squatter.poll() is None
                time.sleep(0.05)
            cli("jupyter", "start", cli_world.name)
            answered = time.monotonic()
            token = cli_world.runtime_token()
            while _through(local, token) != 200:
                assert time.monotonic() - answered < 10, fg.stderr
                time.sleep(0.05)
            took = time.monotonic() - answered
            seen = len(browser.answers)
            while len(browser.answers) < seen + 3:
                assert time.monotonic() - answered < 20
                time.sleep(0.05)
        assert took < 5.0, f"requests through the tunnel reached the new Jupyter after {took:.1f} s"
        new_port = status_row(cli, cli_world)["remote_port"]
        assert new_port != old_port
        assert not [a for a in browser.answers if "SimpleHTTP" in a[1] or a[0] == 404], browser.answers
        assert browser.answers[-1][0] == 200
        # what the command said meanwhile
        lines = "\n".join(fg.wait_for(f"Tunnel 127.0.0.1:{local} -> {cli_world.name}:{new_port}: up"))
        assert f"Tunnel 127.0.0.1:{local} -> {cli_world.name}:{old_port}: down (Jupyter moved/stopped)" in lines
    finally:
        if squatter is not None:
            squatter.kill()
            squatter.wait()
    assert fg.stop(signal.SIGINT) == 130, fg.stderr


def test_sigkill_of_a_foreground_tunnel_leaves_no_ssh_once_another_command_starts(
        cli: Cli, cli_world: CliWorld, jupyter_running: None, foreground: Callable[..., Foreground],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL gives the tunnel no chance to stop its OpenSSH master, which stays logged in to the VM; the next
    start of any command (here `list`) ends it — recognised by its control path — and nothing else."""
    import shutil
    import tempfile

    import psutil

    # a temporary folder of the test's own: no other process on this machine comes across its tunnel's directory
    tmp = tempfile.mkdtemp(prefix="tf-", dir="/tmp")  # short: the control socket's path must fit
    monkeypatch.setenv("TMPDIR", tmp)
    monkeypatch.setattr(tempfile, "tempdir", None)
    try:
        _killed_then_list(cli, cli_world, foreground, tmp, psutil)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _killed_then_list(cli: Cli, cli_world: CliWorld, foreground: Callable[..., Foreground], tmp: str,
                      psutil: Any) -> None:
    fg = foreground("tunnel", cli_world.name, env={"TMPDIR": tmp})
    fg.wait_for(FOREGROUND_NOTE)
    masters = _ssh_children(fg.proc.pid)
    assert [d.name[:10] for d in Path(tmp).iterdir()] == ["cades-fwd-"]
    assert masters, "the tunnel runs through an OpenSSH master"
    fg.proc.kill()
    fg.proc.wait(timeout=10)

    def alive(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    assert [p for p in masters if alive(p)] == masters  # the killed command could not stop them
    cli("list")
    deadline = time.monotonic() + 5
    while any(alive(p) for p in masters) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in masters if alive(p)], "an ssh master of the killed tunnel is still logged in"
    assert not list(Path(tmp).iterdir())  # its directory is gone too


def test_status_json_counts_the_bytes_of_a_foreground_tunnel(
        cli: Cli, cli_world: CliWorld, jupyter_running: None, foreground: Callable[..., Foreground]) -> None:
    """A tunnel serving in another process: `status --json` gives its bytes in and out, growing with traffic (the
    text table shows them too)."""
    fg = foreground("tunnel", cli_world.name)
    seen = fg.wait_for(FOREGROUND_NOTE)
    port = int(re.search(r"Forwarding http://127\.0\.0\.1:(\d+)/", "\n".join(seen)).group(1))  # type: ignore[union-attr]
    token = cli_world.runtime_token()

    def counts() -> tuple[int, int]:
        [row] = [t for t in status_row(cli, cli_world)["tunnels"] if t["purpose"] == "jupyter"]  # type: ignore[union-attr]
        assert isinstance(row["bytes_in"], int) and isinstance(row["bytes_out"], int), row
        return row["bytes_in"], row["bytes_out"]

    deadline = time.monotonic() + 10
    while True:  # the serving process writes its counts about once a second
        try:
            before = counts()
            break
        except AssertionError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    for _ in range(5):
        assert _through(port, token) == 200
    deadline = time.monotonic() + 10
    while (after := counts())[0] < before[0] + 5 * 100:
        assert time.monotonic() < deadline, (before, after)
        time.sleep(0.2)
    assert after[1] > before[1]
    table, _ = cli("status")
    assert re.search(rf"jupyter {port} \(listening, ↓\d", table), table
    assert fg.stop(signal.SIGINT) == 130, fg.stderr
