"""Setup, host keys, Jupyter, live log, tunnels, open, stop and reattach — from the keys, against a sandbox
instance's real OpenSSH sshd, real screen and real Jupyter (the venv's, so no PyPI install).

One instance for the module; the tests run in file order: changed key refused → unknown key refused, then
trusted, and setup streamed → Jupyter started from `j`, log, open → a new app reattaches → idle nudge and
snooze → busy-kernel warning → stop verified.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncssh
import pytest
from textual.widgets import Button, Log, ProgressBar

from tui.core.cloud.base import LaunchSpec
from tui.core.cloud.openstack_cloud import OpenStackCloud
from tui.core.config import IdleSettings, JupyterSettings, Settings, SSHSettings, UISettings
from tui.core.guide.steps import CreateWorkspace, DetectSystem, WaitForSSH, WriteJupyterConfig
from tui.core.jupyter import http
from tui.core.engine import engine_factory
from tui.core.keys import KeyStore
from tui.core.manager import ManagerOptions
from tui.core.models import Instance, TunnelState
from tui.core.services import Services, launch_instance
from tui.core.state import AppState
from tui.sandbox.sshhost import free_port
from tui.ui.app import CadesApp
from tui.ui.screens.confirm import Confirm
from tui.ui.screens.hostkey import HostKeyScreen
from tui.ui.screens.jupyter_log import JupyterLogScreen
from tui.ui.widgets.logview import LogView
from tui.ui.widgets.panes import SetupPane
from tui.ui.widgets.tables import InstancesTable, TunnelsTable

JUPYTER = str(Path(sys.executable).parent / "jupyter")
STEPS = (WaitForSSH(), DetectSystem(), WriteJupyterConfig(), CreateWorkspace())


@pytest.fixture
def unpinned(rig: Rig) -> Iterator[None]:
    """Console logs without cloud-init's host-key block (common on real clouds): nothing is pinned, so the app's
    known_hosts decides and an unknown key is put to the user."""
    rig.sandbox.faults.console_host_keys = False
    yield
    rig.sandbox.faults.console_host_keys = True


@dataclass
class Rig:
    base: Path
    sandbox: Any
    cloud: OpenStackCloud
    settings: Settings
    store: KeyStore
    instance: Instance

    @property
    def host(self) -> Any:
        return self.sandbox.ssh_host(self.instance.id)

    def app(self, services: type[Services] = Services, known_hosts: Path | None = None, **kw: Any) -> CadesApp:
        known = known_hosts or self.base / "known_hosts"
        svc = services(self.settings, self.store, self.base / "state", known)
        sb = self.sandbox
        return CadesApp(self.settings, engine_factory(
            self.settings, lambda: OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sb.clouds_yaml),
            services=svc, options=ManagerOptions(jupyter_command=JUPYTER, setup_steps=STEPS)), **kw)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    from tui.sandbox import Delays, Sandbox

    base = tmp_path_factory.mktemp("remote-ui")
    sandbox = Sandbox(base / "sandbox", delays=Delays.fast(), seed_demo=False)
    sandbox.start()
    cloud = OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sandbox.clouds_yaml)
    try:
        image = max((i for i in cloud.list_images() if "24.04" in i.name), key=lambda i: i.name)
        network = next(n for n in cloud.list_networks() if not n.external)
        store = KeyStore(base / "data")
        spec = LaunchSpec(name="alpha", image=image.id, flavor="m1.small", key_name="", network=network.id,
                          volume_size_gb=16)
        inst = launch_instance(cloud, spec, lambda _: None, store=store)
        settings = Settings(cloud="sandbox", clouds_yaml=str(sandbox.clouds_yaml), ui=UISettings(refresh_s=0.5),
                            ssh=SSHSettings(use_ssh_config=False),
                            jupyter=JupyterSettings(port=free_port(), local_port=0),
                            idle=IdleSettings(resize_after_hours=1e-6, stop_after_hours=1000, delete_after_days=1000))
        yield Rig(base, sandbox, cloud, settings, store, cloud.get_instance(inst.id))
        cloud.delete(inst.id, delete_volumes=True)  # also ends the VM's processes (Jupyter included)
    finally:
        sandbox.stop()


def notes(app: CadesApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def ready(ui: Any, pilot: Any, app: CadesApp) -> None:
    def loaded() -> bool:
        """the instance row, and the remote manager built"""
        return bool(app.query_one(InstancesTable).instances) and app.manager is not None
    await ui.wait_for(pilot, loaded)


def jupyter_cell(app: CadesApp, iid: str) -> str:
    return str(app.query_one(InstancesTable).get_row(iid)[5])


async def test_changed_host_key_is_refused(ui: Any, rig: Rig, tmp_path: Path, unpinned: None) -> None:
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{rig.host.port} {' '.join(impostor)}\n")
    app = rig.app(known_hosts=known)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(ui, pilot, app)
        await pilot.press("j")
        await ui.wait_for(pilot, lambda: "✗ ssh" in jupyter_cell(app, rig.instance.id))
        assert not isinstance(app.screen, HostKeyScreen)  # a changed key is never offered for acceptance
        assert any("WARNING" in n and rig.host.host_key_fingerprint in n for n in notes(app))
    assert known.read_text().count("\n") == 1  # left as it was


async def test_unknown_host_key_refused_then_trusted_and_setup_streams(ui: Any, rig: Rig, tmp_path: Path,
                                                                        unpinned: None) -> None:
    known = tmp_path / "known_hosts"
    app = rig.app(known_hosts=known)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(ui, pilot, app)
        log = app.query_one("#setup-log", Log)
        pane = app.query_one(SetupPane)

        await pilot.press("s")
        question = await ui.screen(pilot, HostKeyScreen)
        body = str(question.query_one("#hostkey-body").render())
        assert f"127.0.0.1:{rig.host.port}" in body and "ssh-ed25519" in body
        assert rig.host.host_key_fingerprint in body
        assert question.focused is question.query_one("#refuse", Button)
        await pilot.press("enter")  # refuse has the focus
        await ui.wait_for(pilot, lambda: "✗" in str(pane.status.render()))
        assert not known.exists() or str(rig.host.port) not in known.read_text()
        assert any("press s to retry" in line for line in log.lines)

        await pilot.press("s")
        question = await ui.screen(pilot, HostKeyScreen)
        app.clear_notifications()  # toasts cover the dialog's right side
        await pilot.click("#trust")
        await ui.wait_for(pilot, lambda: any("Setup finished" in line for line in log.lines), timeout=30)
        text = "\n".join(log.lines)
        for step in ("ssh", "detect", "jupyter-config", "workspace"):
            assert f"] {step}:" in text  # each step announced with its number
        assert "✓ jupyter-config: done" in text or "↷ jupyter-config: already done" in text
        assert "s ▶ [1/4] ssh" in text  # lines carry their elapsed time
        bar = app.query_one("#setup-progress", ProgressBar)
        assert bar.total == 4 and bar.progress == 4
        assert "✓ setup finished" in str(pane.status.render())
        assert f"[127.0.0.1]:{rig.host.port} ssh-ed25519" in known.read_text()
        assert (rig.host.home / "work").is_dir()

        # shell hand-off: headless tests cannot suspend, so the app says what to run — run it for real
        await pilot.press("ctrl+s")
        await ui.wait_for(pilot, lambda: any("run:\nssh " in n for n in notes(app)))
        command = next(n for n in notes(app) if "run:\nssh " in n).split("run:\n", 1)[1]
        argv = [a for a in command.split() if a != "-t"] + ["echo", "hand-off-ok"]
        done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=20)
        assert done.returncode == 0 and "hand-off-ok" in done.stdout, done.stderr


async def test_jupyter_start_log_and_open(ui: Any, rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROWSER", "true")  # webbrowser runs `true URL`: nothing opens during tests
    app = rig.app()
    iid = rig.instance.id
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(ui, pilot, app)
        await pilot.press("j")
        await ui.wait_for(pilot, lambda: "running" in jupyter_cell(app, iid), timeout=40)
        table = app.query_one(TunnelsTable)
        await ui.wait_for(pilot, lambda: table.row_count == 1)
        row = [str(c) for c in table.get_row(iid)]
        assert row[0] == "alpha" and row[2] == "up"
        local = app.tunnels[iid].local_port
        assert row[1] == f":{local} → :{app.jupyter[iid].remote_port}"
        assert (await http.request(http.tcp_opener("127.0.0.1", local), "GET", "/api")).status == 200

        await pilot.press("l")
        screen = await ui.screen(pilot, JupyterLogScreen)
        view = screen.query_one("#jupyter-log", LogView)
        await ui.wait_for(pilot, lambda: any("Jupyter Server" in x for x in view.lines))
        assert not any("token=" in x and "token=..." not in x and "…" not in x for x in screen.lines)
        total = len(screen.lines)
        await pilot.press("slash", *"Jupyter Server", "enter")
        assert 0 < view.line_count < total and all("Jupyter Server" in x for x in view.lines)
        await pilot.press("f")
        assert not screen.follow and not view.auto_scroll
        await pilot.press("f", "y")
        assert screen.follow and "Jupyter Server" in app.clipboard
        await pilot.press("escape")
        assert isinstance(app.screen, JupyterLogScreen)  # escape first leaves the filter
        await pilot.press("escape")
        await ui.wait_for(pilot, lambda: not isinstance(app.screen, JupyterLogScreen))

        await pilot.press("o")
        await ui.wait_for(pilot, lambda: "token=" in app.clipboard)
        url = urlsplit(app.clipboard)
        token = parse_qs(url.query)["token"][0]
        assert url.port == local
        shown = next(n for n in notes(app) if "clipboard" in n and "token=" in n)
        assert token not in shown and f"token={token[:4]}…" in shown
        status = await http.request(http.tcp_opener("127.0.0.1", local), "GET", "/api/status", token=token)
        assert status.status == 200
        await pilot.press("q")  # quits: Jupyter keeps running, the tunnel closes
    assert token not in rig.base.joinpath("state", "state.json").read_text()
    record = AppState.load(rig.base / "state" / "state.json").servers[iid]
    assert record.tunnel_ports == (local,)
    with pytest.raises(OSError):  # the tunnel closed with the app
        socket.create_connection(("127.0.0.1", local), timeout=1).close()


async def _busy_kernel(port: int, token: str) -> str:
    """A kernel running `sleep` (as a notebook cell would), through the tunnel."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    opener = http.tcp_opener("127.0.0.1", port)
    kernel = (await http.request(opener, "POST", "/api/kernels", token=token, body={})).json()
    ws = await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{port}/api/kernels/{kernel['id']}/channels",
                                             headers={"Authorization": f"token {token}"}))
    msg = {"header": {"msg_id": uuid.uuid4().hex, "username": "t", "session": uuid.uuid4().hex,
                      "msg_type": "execute_request", "version": "5.3", "date": datetime.now(UTC).isoformat()},
           "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
           "content": {"code": "import time; time.sleep(120)", "silent": False, "store_history": False,
                       "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}
    await ws.write_message(json.dumps(msg))
    ws.close()
    return str(kernel["name"])


async def test_reattach_idle_busy_kernels_and_stop(ui: Any, rig: Rig) -> None:
    iid = rig.instance.id
    app = rig.app()
    app.idle_every_s = 0.5
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(ui, pilot, app)
        await ui.wait_for(pilot, lambda: "running" in jupyter_cell(app, iid), timeout=20)
        table = app.query_one(TunnelsTable)
        await ui.wait_for(pilot, lambda: iid in app.tunnels and app.tunnels[iid].state is TunnelState.UP)
        assert table.row_count == 1
        manager = app.manager
        assert manager is not None
        url = urlsplit(manager.token_url(iid) or "")
        assert url.port is not None
        token = parse_qs(url.query)["token"][0]
        assert (await http.request(http.tcp_opener("127.0.0.1", url.port), "GET", "/api")).status == 200

        # idle: the profile's thresholds are tiny here, so the first check nudges; z snoozes
        await ui.wait_for(pilot, lambda: any("resize" in n.lower() and "snooze" in n for n in notes(app)))
        await pilot.press("z")
        await ui.wait_for(pilot, lambda: any("quiet until" in n for n in notes(app)))
        assert manager.state.snoozed_until(iid) is not None

        kernel = await _busy_kernel(url.port, token)
        await pilot.pause(1.0)
        await pilot.press("x")
        confirm = await ui.screen(pilot, Confirm, timeout=20)
        assert "busy" in confirm.title_text and kernel in str(confirm.body) and "lost" in str(confirm.body)
        await pilot.press("enter")  # cancel has the focus
        await ui.wait_for(pilot, lambda: any("keeps running" in n for n in notes(app)))
        assert (await http.request(http.tcp_opener("127.0.0.1", url.port), "GET", "/api")).status == 200

        await pilot.press("x")
        await ui.screen(pilot, Confirm, timeout=20)
        await pilot.press("tab", "enter")  # from Cancel to "Stop anyway"
        await ui.wait_for(pilot, lambda: "stopped" in jupyter_cell(app, iid), timeout=30)
        await ui.wait_for(pilot, lambda: table.row_count == 0)
        remote_port = manager.state.servers.get(iid)
        assert remote_port is None  # forgotten
    # verified gone: nothing listens on the server's port, and no screen session is left on the VM
    assert not list(rig.host.screendir.iterdir())
