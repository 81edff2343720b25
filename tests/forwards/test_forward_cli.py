"""`cades-tui forward` against a sandbox VM (a real sshd) and a real web server on it: both data paths, a taken
local port, saved and re-opened by a fresh engine and by `forward NAME`, `list --json` with bytes, `close`,
`suggest`, and one-line errors."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from tests._support import wait_until
from tests.forwards.conftest import WebServer
from tui.core.platform import FORWARDER_ENV

URL = re.compile(r"Forwarding (http://127\.0\.0\.1:(\d+)/) -> ")


def get(url: str) -> str:
    with urllib.request.urlopen(url + "index.html", timeout=10) as resp:
        return str(resp.read().decode())


def forwarded_url(fg: Any) -> tuple[str, int]:
    line = next(x for x in fg.wait_for("Forwarding http://") if URL.search(x))
    match = URL.search(line)
    assert match is not None
    return match.group(1), int(match.group(2))


@pytest.mark.parametrize("forwarder", ["openssh", "asyncssh"])
def test_foreground_forward_serves_the_vms_web_server(forwarder: str, cli_world: Any, web: WebServer,
                                                      foreground: Callable[..., Any],
                                                      cli: Callable[..., tuple[str, str]]) -> None:
    fg = foreground("forward", cli_world.name, str(web.port), "--label", "web",
                    env={FORWARDER_ENV: forwarder})
    url, port = forwarded_url(fg)
    assert get(url) == "forwarded-page\n"
    masters = subprocess.run(["pgrep", "-P", str(fg.proc.pid), "-x", "ssh"], capture_output=True, text=True)
    assert bool(masters.stdout.split()) is (forwarder == "openssh")  # the data path asked for carries the bytes
    wait_until(lambda: json.loads(cli("forward", "list", "--json")[0]) != [], 10, "the forward in `forward list`")
    listed = json.loads(cli("forward", "list", "--json")[0])
    assert [(f["instance"], f["label"], f["state"], f["saved"], f["local_port"]) for f in listed] == [
        (cli_world.name, "web", "open elsewhere", False, port)]
    wait_until(lambda: (json.loads(cli("forward", "list", "--json")[0])[0]["bytes_in"] or 0) > 0, 10,
               "the bytes the forward carried in `forward list --json`")
    assert fg.stop(signal.SIGINT) == 130
    assert "closed" in fg.stderr
    assert json.loads(cli("forward", "list", "--json")[0]) == []  # nothing of an unsaved forward is kept
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_a_taken_local_port_is_said_and_another_chosen(cli_world: Any, web: WebServer,
                                                       foreground: Callable[..., Any]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        fg = foreground("forward", cli_world.name, str(web.port), "--local-port", str(busy))
        url, port = forwarded_url(fg)
        assert port != busy
        assert get(url) == "forwarded-page\n"
        assert f"local port {busy} is taken here; using {port} instead" in fg.stderr
        assert fg.stop() == 130


def test_saved_forward_is_reopened_by_a_fresh_engine_and_by_forward_name(
        cli_world: Any, web: WebServer, foreground: Callable[..., Any],
        cli: Callable[..., tuple[str, str]]) -> None:
    out, _ = cli("forward", cli_world.name, str(web.port), "--save", "--label", "site")
    assert "Saved forward site" in out
    try:
        listed = json.loads(cli("forward", "list", "--json")[0])
        assert [(f["instance"], f["label"], f["remote_port"], f["saved"], f["state"]) for f in listed] == [
            (cli_world.name, "site", web.port, True, "closed")]
        def meanwhile(kept: int) -> None:
            """While an app holds the saved forward's port, `forward NAME` serves it on another — and the saved
            port stays (the next start still gets the bookmark's port)."""
            fg = foreground("forward", cli_world.name)
            url, port = forwarded_url(fg)
            assert port != kept and get(url) == "forwarded-page\n"
            assert f"local port {kept} is taken here; using {port} instead" in fg.stderr
            assert fg.stop() == 130
            [record] = [f for f in json.loads(cli("forward", "list", "--json")[0]) if f["label"] == "site"]
            assert record["local_port"] == kept

        reopened_by_engine(cli_world, web, meanwhile)
        fg = foreground("forward", cli_world.name)  # the CLI's reattach: serve NAME's saved forwards
        url, port = forwarded_url(fg)
        assert get(url) == "forwarded-page\n"
        wait_until(lambda: json.loads(cli("forward", "list", "--json")[0])[0]["state"] == "open elsewhere", 10,
                   "the served forward in `forward list`")
        listed = json.loads(cli("forward", "list", "--json")[0])
        assert [(f["label"], f["local_port"], f["state"], f["saved"]) for f in listed] == [
            ("site", port, "open elsewhere", True)]
        assert fg.stop() == 130
        assert json.loads(cli("forward", "list", "--json")[0])[0]["state"] == "closed"  # kept, closed
    finally:
        cli("forward", "close", cli_world.name, "site")
    assert json.loads(cli("forward", "list", "--json")[0]) == []


def reopened_by_engine(cli_world: Any, web: WebServer, meanwhile: Callable[[int], None]) -> None:
    """A fresh CoreEngine (as the app's start) re-opens the saved forward in `reattach`; it answers."""
    import asyncio

    from tui.core.config import load_settings
    from tui.core.engine import CoreEngine, open_cloud

    async def go() -> None:
        settings = load_settings()
        engine = CoreEngine(settings, await asyncio.to_thread(open_cloud, settings), lambda _e: None)
        try:
            inst = await asyncio.to_thread(engine.cloud.get_instance, cli_world.name)
            await engine.fleet.reattach([inst])
            [info] = [t for t in engine.tunnels() if t.purpose == "forward:site"]
            assert (info.state, info.remote_port) == ("up", web.port)
            assert await asyncio.to_thread(get, f"http://127.0.0.1:{info.local_port}/") == "forwarded-page\n"
            await asyncio.to_thread(meanwhile, info.local_port)
        finally:
            await engine.aclose()

    asyncio.run(go())


def test_suggest_lists_the_web_server_and_not_sshd(cli_world: Any, web: WebServer,
                                                    cli: Callable[..., tuple[str, str]]) -> None:
    found = json.loads(cli("forward", "suggest", cli_world.name, "--json")[0])
    ports = {x["port"]: x for x in found}
    assert web.port in ports
    assert ports[web.port]["process"] and ports[web.port]["process"].startswith("python")
    assert ports[web.port]["address"] == "127.0.0.1"
    sshd_port = cli_world.sandbox.ssh_host(cli_world.iid).port
    assert sshd_port not in ports
    assert not [x for x in found if (x["process"] or "").startswith("sshd")]
    out, _ = cli("forward", "suggest", cli_world.name)
    assert re.search(rf"^{web.port}\s+127\.0\.0\.1\s+python", out, re.M)


@pytest.mark.parametrize(("args", "code", "said"), [
    (["NAME", "0"], 2, "REMOTE_PORT 0: expected a TCP port 1-65535"),
    (["NAME", "http"], 2, "REMOTE_PORT 'http': expected a TCP port"),
    (["NAME", "8000", "--label", "a b"], 2, "label 'a b': expected 1-32 letters"),
    (["NAME", "8000", "--local-port", "70000"], 2, "--local-port 70000: expected a TCP port"),
    (["no-such-vm", "8000", "--save"], 1, "no-such-vm"),
    (["close", "no-such-vm"], 1, "no-such-vm"),
])
def test_bad_input_is_one_line(args: list[str], code: int, said: str, cli_world: Any,
                               cli: Callable[..., tuple[str, str]]) -> None:
    _out, err = cli("forward", *[cli_world.name if a == "NAME" else a for a in args], expect=code)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("cades-tui: error:") and said in lines[-1], err
    assert "Traceback" not in err


def test_a_label_is_never_pointed_elsewhere_silently(cli_world: Any, cli: Callable[..., tuple[str, str]]) -> None:
    """A saved forward is not replaced by another with its label (saved or in the foreground): refused, one line."""
    name = cli_world.name
    cli("forward", name, "8001", "--save", "--label", "kept")
    try:
        for args in (["8002", "--save"], ["8002"]):
            _out, err = cli("forward", name, *args, "--label", "kept", expect=1)
            assert f"{name} already has a saved forward 'kept' to 127.0.0.1:8001" in err, err
        [kept] = json.loads(cli("forward", "list", "--json")[0])
        assert (kept["label"], kept["remote_port"]) == ("kept", 8001)
    finally:
        cli("forward", "close", name, "8001")
    assert json.loads(cli("forward", "list", "--json")[0]) == []
