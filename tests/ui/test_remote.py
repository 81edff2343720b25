"""Setup, host keys, Jupyter, live log, tunnels, open, stop, reattach, cancel and delete — from the keys, against a
sandbox instance's real OpenSSH sshd, real screen and real Jupyter (the venv's, so no PyPI install).

One sandbox and one instance (alpha) for the module, for speed; every test sets the scene it needs itself through
the core alone (`ensure_setup`, `ensure_jupyter_running`, `ensure_jupyter_stopped`: idempotent), so each passes on
its own and in any order. Tests that must not see a reattach use a state dir of their own; the delete test
launches (and deletes) an instance of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncssh
import pytest
from textual.widgets import Button, Input, Log, ProgressBar, Static
from textual.worker import WorkerState

from tui.core.api import Engine
from tui.core.cloud.base import LaunchSpec
from tui.core.cloud.openstack_cloud import OpenStackCloud
from tui.core.config import ClusterSettings, IdleSettings, JupyterSettings, Settings, SSHSettings, UISettings
from tui.core.engine import engine_factory
from tui.core.events import HostKeyQuestion
from tui.core.guide.steps import CreateWorkspace, DetectSystem, SetupContext, Step, WaitForSSH, WriteJupyterConfig
from tui.core.jupyter import http
from tui.core.keys import KeyStore
from tui.core.models import Instance
from tui.core.options import ManagerOptions
from tui.core.services import Services, launch_instance
from tui.core.state import AppState
from tui.sandbox.sshhost import free_port
from tui.ui.app import CadesApp
from tui.ui.screens.confirm import Confirm, DeleteInstance
from tui.ui.screens.hostkey import HostKeyScreen
from tui.ui.screens.jupyter_log import JupyterLogScreen
from tui.ui.widgets.logview import LogView
from tui.ui.widgets.panes import SetupPane
from tui.ui.widgets.tables import InstancesTable, TunnelsTable

JUPYTER = str(Path(sys.executable).parent / "jupyter")
STEPS = (WaitForSSH(), DetectSystem(), WriteJupyterConfig(), CreateWorkspace())


class SleepOnTheVM(Step):
    """A long step (a real command on the VM) to cancel or quit during. `argv` is unique to the test, so the
    command's process can be looked for on this machine (the sandbox's VMs run here)."""

    name = "sleep"

    def __init__(self) -> None:
        self.seconds = 300 + secrets.randbelow(10**6) / 1000
        self.argv = f"sleep {self.seconds:.3f}"

    def describe(self, ctx: SetupContext) -> str:
        return "Sleep on the VM (a long step)"

    async def check(self, ctx: SetupContext) -> bool:
        return False

    async def apply(self, ctx: SetupContext) -> None:
        await ctx.do(f"echo sleeping; {self.argv}", what="sleeping")

    def pids(self) -> list[int]:
        found = subprocess.run(["pgrep", "-f", "-x", self.argv], capture_output=True, text=True, check=False)
        return [int(p) for p in found.stdout.split()]

    def running(self) -> bool:
        return bool(self.pids())

    def kill(self) -> None:
        """End the command if it still runs (by its process ids: only this test's command has this argv)."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def unpinned(rig: Rig) -> Iterator[None]:
    """Console logs without cloud-init's host-key block (common on real clouds): nothing is pinned, so the app's
    known_hosts decides and an unknown key is put to the user."""
    rig.sandbox.faults.console_host_keys = False
    try:
        yield
    finally:
        rig.sandbox.faults.console_host_keys = True


@dataclass
class Rig:
    base: Path
    sandbox: Any
    cloud: OpenStackCloud
    settings: Settings
    store: KeyStore
    instance: Instance
    set_up: set[str] = field(default_factory=set)  # instances the setup ran on (it is idempotent anyway)

    @property
    def host(self) -> Any:
        return self.sandbox.ssh_host(self.instance.id)

    @property
    def state_file(self) -> Path:
        return self.base / "state" / "state.json"

    def factory(self, state_dir: Path | None = None, known_hosts: Path | None = None,
                steps: tuple[Step, ...] = STEPS) -> Any:
        svc = Services(self.settings, self.store, state_dir or self.base / "state",
                       known_hosts or self.base / "known_hosts")
        sb = self.sandbox
        return engine_factory(
            self.settings, lambda: OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sb.clouds_yaml),
            services=svc, options=ManagerOptions(jupyter_command=JUPYTER, setup_steps=steps))

    def app(self, state_dir: Path | None = None, known_hosts: Path | None = None, steps: tuple[Step, ...] = STEPS,
            **kw: Any) -> CadesApp:
        return CadesApp(self.settings, self.factory(state_dir, known_hosts, steps), **kw)

    @asynccontextmanager
    async def engine(self) -> AsyncIterator[Engine]:
        """The core alone, on the module's state and known_hosts: to set a test's scene (host keys are pinned
        from the console log, so nothing is asked; a question would be refused)."""

        def emit(event: object) -> None:
            if isinstance(event, HostKeyQuestion):
                event.refuse()

        engine = await asyncio.to_thread(self.factory(), emit)
        try:
            yield engine
        finally:
            await engine.aclose()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    from tui.sandbox import Delays, Sandbox

    base = tmp_path_factory.mktemp("remote-ui")
    sandbox = Sandbox(base / "sandbox", delays=Delays.fast(), seed_demo=False)
    sandbox.start()
    cloud = OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sandbox.clouds_yaml)
    try:
        store = KeyStore(base / "data")
        inst = launch_instance(cloud, _spec(cloud, "alpha"), lambda _: None, store=store)
        settings = Settings(cloud="sandbox", clouds_yaml=str(sandbox.clouds_yaml), ui=UISettings(refresh_s=0.5),
                            ssh=SSHSettings(use_ssh_config=False),
                            jupyter=JupyterSettings(port=free_port(), local_port=0),
                            idle=IdleSettings(resize_after_hours=1e-6, stop_after_hours=1000, delete_after_days=1000))
        yield Rig(base, sandbox, cloud, settings, store, cloud.get_instance(inst.id))
        cloud.delete(inst.id, delete_volumes=True)  # also ends the VM's processes (Jupyter included)
    finally:
        sandbox.stop()


def _spec(cloud: OpenStackCloud, name: str) -> LaunchSpec:
    image = max((i for i in cloud.list_images() if "24.04" in i.name), key=lambda i: i.name)
    network = next(n for n in cloud.list_networks() if not n.external)
    return LaunchSpec(name=name, image=image.id, flavor="m1.small", key_name="", network=network.id,
                      volume_size_gb=16)


# -- scenes, set through the core alone (idempotent) --------------------------------------------------------


async def ensure_setup(rig: Rig, inst: Instance | None = None) -> None:
    """The guide's steps have run on the instance (Jupyter's config and its workspace exist)."""
    inst = inst or rig.instance
    if inst.id in rig.set_up:
        return
    async with rig.engine() as engine:
        result = await engine.run_setup(inst)
    assert result.ok, result.summary
    rig.set_up.add(inst.id)


async def ensure_jupyter_running(rig: Rig, inst: Instance | None = None) -> None:
    """Jupyter runs on the instance, recorded in the module's state with its tunnel (so an app started now
    reattaches and re-opens the tunnel), and its idle reminders are not snoozed."""
    inst = inst or rig.instance
    await ensure_setup(rig, inst)
    async with rig.engine() as engine:
        state = await engine.jupyter.start(inst)  # adopts a running server; opens (and records) its tunnel
        assert state.state == "running", state
    saved = AppState.load(rig.state_file)
    assert inst.id in saved.servers and saved.tunnel(inst.id) is not None
    saved.unsnooze(inst.id)


async def ensure_jupyter_stopped(rig: Rig, inst: Instance | None = None) -> None:
    """No Jupyter on the instance (stopped and verified, busy kernels or not), none recorded."""
    inst = inst or rig.instance
    async with rig.engine() as engine:
        outcome = await engine.jupyter.stop(inst, force=True)
    assert outcome.stopped
    assert inst.id not in AppState.load(rig.state_file).servers


# -- reading the screen ------------------------------------------------------------------------------------


async def ready(ui: Any, pilot: Any, app: CadesApp) -> None:
    def loaded() -> bool:
        """the instance row, and the core built"""
        return bool(app.query_one(InstancesTable).instances) and app.engine is not None
    await ui.wait_for(pilot, loaded)


def jupyter_cell(app: CadesApp, iid: str) -> str:
    return str(app.query_one(InstancesTable).get_row(iid)[InstancesTable.COLUMNS.index("jupyter")])


def load_cell(app: CadesApp, iid: str) -> str:
    return str(app.query_one(InstancesTable).get_row(iid)[InstancesTable.COLUMNS.index("load")])


def tunnel_row(app: CadesApp, iid: str) -> list[str]:
    """The Tunnels pane's row of the instance's Jupyter tunnel: name, ":local → :remote", state, for, bytes."""
    return [str(c) for c in app.query_one(TunnelsTable).get_row(f"{iid}/jupyter")]


def tunnel_ports(app: CadesApp, iid: str) -> tuple[int, int]:
    """(local, remote) as the Tunnels pane shows them."""
    found = re.fullmatch(r":(\d+) → :(\d+)", tunnel_row(app, iid)[1])
    assert found, tunnel_row(app, iid)
    return int(found[1]), int(found[2])


def tunnel_up(app: CadesApp, iid: str) -> bool:
    try:
        return tunnel_row(app, iid)[2] == "up"
    except Exception:  # no such row yet
        return False


def setup_pane(app: CadesApp) -> tuple[Log, SetupPane]:
    """The Setup pane's log and the pane itself (its status line)."""
    return app.query_one("#setup-log", Log), app.query_one(SetupPane)


def status_text(widget: Static) -> str:
    return str(widget.render())


async def running_with_tunnel(ui: Any, pilot: Any, app: CadesApp, iid: str, timeout: float = 30) -> None:
    await ui.wait_for(pilot, lambda: "running" in jupyter_cell(app, iid), timeout=timeout)
    await ui.wait_for(pilot, lambda: tunnel_up(app, iid), timeout=timeout)


@asynccontextmanager
async def app_on_running_jupyter(ui: Any, rig: Rig, watch: Any) -> AsyncIterator[tuple[CadesApp, Any]]:
    """Jupyter running on alpha (set through the core), then an app on the module's state, `watch` hooked, once it
    shows that Jupyter running and its tunnel up: (app, pilot)."""
    await ensure_jupyter_running(rig)
    app = rig.app()
    async with app.run_test(size=(120, 40), notifications=True, message_hook=watch.hook) as pilot:
        await ready(ui, pilot, app)
        await running_with_tunnel(ui, pilot, app, rig.instance.id)
        yield app, pilot


async def open_jupyter(ui: Any, pilot: Any, app: CadesApp) -> str:
    """Press o (open Jupyter): the URL with its token, as the app puts it on the clipboard."""
    await pilot.press("o")
    await ui.wait_for(pilot, lambda: "token=" in app.clipboard)
    return str(app.clipboard)


# -- host keys and setup ---------------------------------------------------------------------------------


async def test_changed_host_key_is_refused(ui: Any, rig: Rig, tmp_path: Path, unpinned: None) -> None:
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{rig.host.port} {' '.join(impostor)}\n")
    app = rig.app(state_dir=tmp_path / "state", known_hosts=known)  # its own state: nothing to reattach
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), notifications=True, message_hook=watch.hook) as pilot:
        await ready(ui, pilot, app)
        await pilot.press("j")
        await ui.wait_for(pilot, lambda: "✗ ssh" in jupyter_cell(app, rig.instance.id))
        assert not isinstance(app.screen, HostKeyScreen)  # a changed key is never offered for acceptance
        await ui.wait_for(pilot, lambda: any("WARNING" in n and rig.host.host_key_fingerprint in n
                                             for n in watch.notes()))
    assert known.read_text().count("\n") == 1  # left as it was


async def test_unknown_host_key_refused_then_trusted_and_setup_streams(ui: Any, rig: Rig, tmp_path: Path,
                                                                        unpinned: None) -> None:
    known = tmp_path / "known_hosts"
    app = rig.app(state_dir=tmp_path / "state", known_hosts=known)  # its own state: no reattach asks first
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), notifications=True, message_hook=watch.hook) as pilot:
        await ready(ui, pilot, app)
        log, pane = setup_pane(app)

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
        assert (rig.host.home / "workspace").is_dir()
        rig.set_up.add(rig.instance.id)

        # shell hand-off: headless tests cannot suspend, so the app says what to run — run it for real
        await pilot.press("ctrl+s")
        await ui.wait_for(pilot, lambda: any("run:\nssh " in n for n in watch.notes()))
        command = next(n for n in watch.notes() if "run:\nssh " in n).split("run:\n", 1)[1]
        argv = [a for a in command.split() if a != "-t"] + ["echo", "hand-off-ok"]
        done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=20)
        assert done.returncode == 0 and "hand-off-ok" in done.stdout, done.stderr


async def test_ctrl_x_cancels_a_running_setup(ui: Any, rig: Rig) -> None:
    sleep = SleepOnTheVM()
    app = rig.app(steps=(WaitForSSH(), sleep))
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), notifications=True, message_hook=watch.hook) as pilot:
        await ready(ui, pilot, app)
        log, pane = setup_pane(app)
        await pilot.press("s")
        await ui.wait_for(pilot, lambda: any("sleep     │ sleeping" in line for line in log.lines), timeout=30)
        assert "step 2/2" in str(pane.status.render())
        assert await asyncio.to_thread(sleep.running)

        await pilot.press("ctrl+x")
        await ui.wait_for(pilot, lambda: "✗ cancelled" in str(pane.status.render()))
        assert "cancelled; press s to run setup again" in log.lines[-1]
        await ui.wait_for(pilot, lambda: any("Setup on alpha cancelled" in n for n in watch.notes("warning")))

        def ended() -> bool:
            """the setup worker to end as cancelled"""
            return any(m.worker.name == "setup alpha" and m.state is WorkerState.CANCELLED
                       for m in watch.of("StateChanged"))

        await ui.wait_for(pilot, ended)
        await pilot.pause(0.5)
        assert not any("Setup finished" in line or "setup failed" in line.lower() for line in log.lines)

        await pilot.press("ctrl+x")  # nothing left to cancel
        await ui.wait_for(pilot, lambda: any("No setup is running." in n for n in watch.notes("warning")))
        await pilot.press("q")  # and quitting asks nothing
        await ui.wait_for(pilot, lambda: not app.is_running)
    sleep.kill()  # see test_a_cancelled_step_s_command_ends_on_the_vm


async def test_ctrl_c_cancels_a_running_setup_then_asks_to_quit(ui: Any, rig: Rig) -> None:
    """Ctrl+C (README: "Ctrl+C everywhere") cancels the running setup — not Textual's "Press ctrl+q to quit" —
    and once nothing runs, asks to quit; Ctrl+C on that question quits."""
    sleep = SleepOnTheVM()
    app = rig.app(steps=(WaitForSSH(), sleep))
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), notifications=True, message_hook=watch.hook) as pilot:
        await ready(ui, pilot, app)
        log, pane = setup_pane(app)
        await pilot.press("s")
        await ui.wait_for(pilot, lambda: any("sleep     │ sleeping" in line for line in log.lines), timeout=30)

        await pilot.press("ctrl+c")
        await ui.wait_for(pilot, lambda: "✗ cancelled" in str(pane.status.render()))
        await ui.wait_for(pilot, lambda: any("Setup on alpha cancelled" in n for n in watch.notes("warning")))
        assert app.is_running and not any("ctrl+q" in n for n in watch.notes())

        await pilot.press("ctrl+c")  # nothing runs now: it asks
        confirm = await ui.screen(pilot, Confirm)
        assert confirm.title_text == "Quit cades-tui?"
        await pilot.press("escape")  # no: the app stays
        await ui.wait_for(pilot, lambda: not isinstance(app.screen, Confirm))
        assert app.is_running
        await pilot.press("ctrl+c")
        await ui.screen(pilot, Confirm)
        await pilot.press("ctrl+c")  # again: quits
        await ui.wait_for(pilot, lambda: not app.is_running)
    sleep.kill()  # see test_a_cancelled_step_s_command_ends_on_the_vm


async def test_quit_during_setup_asks_and_cancel_keeps_the_app(ui: Any, rig: Rig) -> None:
    sleep = SleepOnTheVM()
    app = rig.app(steps=(WaitForSSH(), sleep))
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(ui, pilot, app)
        log, pane = setup_pane(app)
        await pilot.press("s")
        await ui.wait_for(pilot, lambda: any("sleep     │ sleeping" in line for line in log.lines), timeout=30)

        await pilot.press("q")
        confirm = await ui.screen(pilot, Confirm)
        assert confirm.title_text == "Quit while setup runs on alpha?"
        assert "cancels the setup" in str(confirm.body)
        await pilot.press("enter")  # Cancel has the focus
        await ui.wait_for(pilot, lambda: not isinstance(app.screen, Confirm))
        await pilot.pause(0.5)
        assert app.is_running
        assert "step 2/2" in str(pane.status.render())  # the setup goes on
        assert await asyncio.to_thread(sleep.running)

        await pilot.press("q")
        await ui.screen(pilot, Confirm)
        await pilot.press("tab", "enter")  # "Quit": the setup is cancelled with the app
        await ui.wait_for(pilot, lambda: not app.is_running)
    sleep.kill()  # see test_a_cancelled_step_s_command_ends_on_the_vm


async def test_a_cancelled_step_s_command_ends_on_the_vm(ui: Any, rig: Rig) -> None:
    sleep = SleepOnTheVM()
    app = rig.app(steps=(WaitForSSH(), sleep))
    try:
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            await ready(ui, pilot, app)
            await pilot.press("s")
            await ui.wait_for(pilot, sleep.running, timeout=30)
            await pilot.press("ctrl+x")
            for _ in range(50):
                if not await asyncio.to_thread(sleep.running):
                    break
                await pilot.pause(0.1)
            else:
                raise AssertionError(f"`{sleep.argv}` still runs on the VM after the setup was cancelled")
    finally:
        sleep.kill()


async def test_load_and_memory_of_an_instance_before_any_setup(ui: Any, rig: Rig, tmp_path: Path) -> None:
    """Load·Mem shows for a VM that answers SSH, before setup or Jupyter ever ran: its host key is pinned from
    the console log, so the app logs in quietly for it (no question) and reads /proc after each poll."""
    iid = rig.instance.id
    app = rig.app(state_dir=tmp_path / "state", known_hosts=tmp_path / "known_hosts")  # nothing open, nothing known
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), notifications=True, message_hook=watch.hook) as pilot:
        await ready(ui, pilot, app)
        await ui.wait_for(pilot, lambda: re.fullmatch(r"\d+\.\d·\d+%", load_cell(app, iid)), timeout=20)
        assert not watch.of("HostKeyQuestion") and not isinstance(app.screen, HostKeyScreen)
        metrics = [m.event for m in watch.of("Metrics") if m.event.instance_id == iid]
        assert metrics and 0 < metrics[-1].mem_used_pct < 100 and metrics[-1].load1 >= 0
        # the sandbox's VMs run on this machine: their /proc is ours
        assert abs(metrics[-1].mem_used_pct - _mem_used_pct()) < 15
        count = len(metrics)
        await ui.wait_for(pilot, lambda: len([m for m in watch.of("Metrics") if m.event.instance_id == iid])
                          > count)  # and again on the next poll


async def test_no_load_without_a_known_host_key_and_nothing_asked(ui: Any, rig: Rig, tmp_path: Path,
                                                                  unpinned: None) -> None:
    """Nothing pinned and nothing known: no login for metrics — a trust question is for the user's own first
    login (setup, shell), never for a number in a column."""
    iid = rig.instance.id
    app = rig.app(state_dir=tmp_path / "state", known_hosts=tmp_path / "known_hosts")
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), notifications=True, message_hook=watch.hook) as pilot:
        await ready(ui, pilot, app)
        start = len(watch.of("Polled"))
        await ui.wait_for(pilot, lambda: len(watch.of("Polled")) >= start + 3)  # a few polls and refreshes
        assert load_cell(app, iid) == "–"
        assert not watch.of("HostKeyQuestion") and not isinstance(app.screen, HostKeyScreen)


def _mem_used_pct() -> float:
    lines = Path("/proc/meminfo").read_text().splitlines()
    info = {k: float(v.split()[0]) for k, v in (line.split(":", 1) for line in lines)}
    return 100 * (info["MemTotal"] - info["MemAvailable"]) / info["MemTotal"]


# -- Jupyter -----------------------------------------------------------------------------------------------


async def test_jupyter_started_from_j_with_its_tunnel(ui: Any, rig: Rig) -> None:
    await ensure_setup(rig)
    await ensure_jupyter_stopped(rig)
    iid = rig.instance.id
    app = rig.app()
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), notifications=True, message_hook=watch.hook) as pilot:
        await ready(ui, pilot, app)
        assert "running" not in jupyter_cell(app, iid)
        await pilot.press("j")
        await ui.wait_for(pilot, lambda: "running" in jupyter_cell(app, iid), timeout=40)
        table = app.query_one(TunnelsTable)
        await ui.wait_for(pilot, lambda: table.row_count == 1)
        row = tunnel_row(app, iid)
        assert row[0] == "alpha" and row[2] == "up"
        local, remote = tunnel_ports(app, iid)
        live = app.fleet.get(iid)
        assert live is not None and live.jupyter is not None and live.jupyter.remote_port == remote
        assert any(f"Jupyter answers at http://127.0.0.1:{local}" in n for n in watch.notes())
        assert (await http.request(http.tcp_opener("127.0.0.1", local), "GET", "/api")).status == 200
        await pilot.press("q")  # quits: Jupyter keeps running, the tunnel closes
    saved = AppState.load(rig.state_file)
    assert iid in saved.servers and saved.servers[iid].remote_port == remote
    tunnel = saved.tunnel(iid)
    assert tunnel is not None and tunnel.local_port == local  # re-opened on that port by the next start
    assert "token=" not in rig.state_file.read_text()
    with pytest.raises(OSError):  # the tunnel closed with the app
        socket.create_connection(("127.0.0.1", local), timeout=1).close()
    assert list(rig.host.screendir.iterdir())  # Jupyter's screen session is still there
    socket.create_connection(("127.0.0.1", remote), timeout=5).close()  # and Jupyter still listens on the VM


async def test_jupyter_log_view(ui: Any, rig: Rig) -> None:
    await ensure_jupyter_running(rig)
    iid = rig.instance.id
    app = rig.app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(ui, pilot, app)
        await ui.wait_for(pilot, lambda: "running" in jupyter_cell(app, iid), timeout=30)
        await pilot.press("l")
        screen = await ui.screen(pilot, JupyterLogScreen)
        view = screen.query_one("#jupyter-log", LogView)
        await ui.wait_for(pilot, lambda: any("Jupyter Server" in x for x in view.lines))
        await ui.wait_for(pilot, lambda: "● following" in status_text(screen.query_one("#log-status", Static)))
        assert not any("token=" in x and "token=..." not in x and "…" not in x for x in view.lines)
        total = view.line_count
        await pilot.press("slash", *"Jupyter Server", "enter")
        assert 0 < view.line_count < total and all("Jupyter Server" in x for x in view.lines)
        assert "filter: 'Jupyter Server'" in status_text(screen.query_one("#log-status", Static))
        await pilot.press("f")
        await pilot.pause()
        assert "‖ paused" in status_text(screen.query_one("#log-status", Static)) and not view.auto_scroll
        await pilot.press("f", "y")
        await pilot.pause()
        assert "● following" in status_text(screen.query_one("#log-status", Static))
        assert "Jupyter Server" in app.clipboard
        await pilot.press("escape")
        assert isinstance(app.screen, JupyterLogScreen)  # escape first leaves the filter
        await pilot.press("escape")
        await ui.wait_for(pilot, lambda: not isinstance(app.screen, JupyterLogScreen))


async def test_jupyter_log_view_says_when_jupyter_is_not_running(ui: Any, rig: Rig) -> None:
    await ensure_jupyter_stopped(rig)
    app = rig.app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(ui, pilot, app)
        await pilot.press("l")
        screen = await ui.screen(pilot, JupyterLogScreen)
        status = screen.query_one("#log-status", Static)
        assert "Jupyter is not running on alpha (j starts it)" in status_text(status)
        await pilot.pause(1.0)  # the old log may still be read: the screen keeps saying so
        assert "Jupyter is not running" in status_text(status)
        await pilot.press("escape")
        await ui.wait_for(pilot, lambda: not isinstance(app.screen, JupyterLogScreen))


def runtime_token(rig: Rig, port: int) -> str:
    """The token the Jupyter on `port` wrote into its runtime file on the VM (the sandbox VM's disk is local; a
    server killed by a power-off leaves its file behind: only a live server's counts)."""
    runtime = rig.host.home / ".local/share/jupyter/runtime"
    files = (json.loads(f.read_text()) for f in runtime.glob("jpserver-*.json"))
    [token] = [str(info["token"]) for info in files
               if info.get("port") == port and Path(f"/proc/{info.get('pid')}").exists()]
    return token


async def test_the_tunnels_pane_counts_the_bytes_live(ui: Any, rig: Rig) -> None:
    """The Tunnels pane's In / out grows with the bytes that go through the tunnel (no poll, no key)."""
    iid = rig.instance.id
    async with app_on_running_jupyter(ui, rig, ui.Watch()) as (app, pilot):
        local, remote = tunnel_ports(app, iid)
        before = tunnel_row(app, iid)[4]
        opener = http.tcp_opener("127.0.0.1", local)
        token = runtime_token(rig, remote)
        for _ in range(5):
            assert (await http.request(opener, "GET", "/api/status", token=token)).status == 200
        await ui.wait_for(pilot, lambda: tunnel_row(app, iid)[4] != before, timeout=10)
        shown = tunnel_row(app, iid)[4]
        assert re.fullmatch(r"↓\d+(\.\d+)?[BKM] ↑\d+(\.\d+)?[BKM]", shown) and not shown.startswith("↓0B"), shown
        live = app.fleet.get(iid)
        info = live.tunnel() if live is not None else None
        assert info is not None and info.bytes_in > 500 and info.bytes_out > 0


async def test_the_tunnel_follows_jupyter_back_after_a_vm_restart_without_t(ui: Any, rig: Rig) -> None:
    """The VM restarts, another program takes Jupyter's old port and Jupyter is started again from another
    terminal, on another port: the app's tunnel comes back on its own — no `t` — within 5 s of the server
    answering, on the same local port."""
    iid = rig.instance.id

    async def squat(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    async with app_on_running_jupyter(ui, rig, ui.Watch()) as (app, pilot):
        local, remote = tunnel_ports(app, iid)
        opener = http.tcp_opener("127.0.0.1", local)
        rig.host.stop()  # the VM powers off: Jupyter ends
        squatter = None
        try:
            squatter = await asyncio.start_server(squat, "127.0.0.1", remote, reuse_address=True)
            rig.host.start()
            await ui.wait_for(pilot, lambda: tunnel_row(app, iid)[2] == "down: moved/stopped", timeout=30)
            async with rig.engine() as engine:  # `cades-tui jupyter start` in another terminal
                state = await engine.jupyter.start(rig.instance)
                answered = time.monotonic()
                assert state.remote_port != remote
                await ui.wait_for(pilot, lambda: tunnel_up(app, iid)
                                  and tunnel_ports(app, iid) == (local, state.remote_port), timeout=15)
                took = time.monotonic() - answered
            assert took < 5.0, f"the tunnel came back after {took:.1f} s"
            new_token = runtime_token(rig, state.remote_port)
            assert (await http.request(opener, "GET", "/api/status", token=new_token)).status == 200
        finally:
            if squatter is not None:
                squatter.close()
            if not rig.host.running:
                rig.host.start()


async def test_open_copies_the_token_url_and_shows_it_masked(ui: Any, rig: Rig,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROWSER", "true")  # webbrowser runs `true URL`: nothing opens during tests
    watch = ui.Watch()
    async with app_on_running_jupyter(ui, rig, watch) as (app, pilot):
        local, _ = tunnel_ports(app, rig.instance.id)
        url = urlsplit(await open_jupyter(ui, pilot, app))
        token = parse_qs(url.query)["token"][0]
        assert url.port == local
        await ui.wait_for(pilot, lambda: any("clipboard" in n and "token=" in n for n in watch.notes()))
        shown = next(n for n in watch.notes() if "clipboard" in n and "token=" in n)
        assert token not in shown and f"token={token[:4]}…" in shown
        status = await http.request(http.tcp_opener("127.0.0.1", local), "GET", "/api/status", token=token)
        assert status.status == 200
    assert token not in rig.state_file.read_text()


async def test_a_new_app_reattaches_to_running_jupyter(ui: Any, rig: Rig) -> None:
    await ensure_jupyter_running(rig)
    iid = rig.instance.id
    recorded = AppState.load(rig.state_file).tunnel(iid)
    assert recorded is not None
    app = rig.app()
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), notifications=True, message_hook=watch.hook) as pilot:
        await ready(ui, pilot, app)
        await running_with_tunnel(ui, pilot, app, iid)
        assert app.query_one(TunnelsTable).row_count == 1
        local, _ = tunnel_ports(app, iid)
        assert local == recorded.local_port  # the same port as before
        said = f"Jupyter · alpha\nJupyter answers at http://127.0.0.1:{local}/"
        await ui.wait_for(pilot, lambda: any(n.startswith(said) for n in watch.notes()))
        await pilot.pause(0.5)
        assert [n for n in watch.notes() if "alpha" in n] == [next(n for n in watch.notes() if n.startswith(said))]
        assert (await http.request(http.tcp_opener("127.0.0.1", local), "GET", "/api")).status == 200


async def test_idle_nudge_and_snooze(ui: Any, rig: Rig) -> None:
    await ensure_jupyter_running(rig)  # not snoozed
    iid = rig.instance.id
    app = rig.app()
    app.remote.idle_every_s = 0.5
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), notifications=True, message_hook=watch.hook) as pilot:
        await ready(ui, pilot, app)
        await ui.wait_for(pilot, lambda: "running" in jupyter_cell(app, iid), timeout=30)
        # the profile's thresholds are tiny here, so the first check nudges; z snoozes
        await ui.wait_for(pilot, lambda: any("resize" in n.lower() and "snooze" in n for n in watch.notes()),
                          timeout=30)
        assert any(n.startswith("Idle · alpha") for n in watch.notes("warning"))
        await pilot.press("z")
        await ui.wait_for(pilot, lambda: any("quiet until" in n for n in watch.notes()))
        snoozed = AppState.load(rig.state_file).snoozed_until(iid)
        assert snoozed is not None and snoozed > datetime.now(UTC)
        nudges = len(watch.of("IdleNudge"))
        await pilot.pause(2.0)  # several idle checks later: quiet
        assert len(watch.of("IdleNudge")) == nudges


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


async def test_busy_kernels_are_warned_about_then_stop_is_verified(ui: Any, rig: Rig,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROWSER", "true")
    iid = rig.instance.id
    watch = ui.Watch()
    async with app_on_running_jupyter(ui, rig, watch) as (app, pilot):
        local, remote = tunnel_ports(app, iid)
        url = await open_jupyter(ui, pilot, app)  # the token, as the user gets it
        token = parse_qs(urlsplit(url).query)["token"][0]

        kernel = await _busy_kernel(local, token)
        await pilot.pause(1.0)
        await pilot.press("x")
        confirm = await ui.screen(pilot, Confirm, timeout=20)
        assert "busy" in confirm.title_text and kernel in str(confirm.body) and "lost" in str(confirm.body)
        await pilot.press("enter")  # cancel has the focus
        await ui.wait_for(pilot, lambda: any("keeps running" in n for n in watch.notes()))
        assert (await http.request(http.tcp_opener("127.0.0.1", local), "GET", "/api")).status == 200

        await pilot.press("x")
        await ui.screen(pilot, Confirm, timeout=20)
        await pilot.press("tab", "enter")  # from Cancel to "Stop anyway"
        await ui.wait_for(pilot, lambda: "stopped" in jupyter_cell(app, iid), timeout=30)
        await ui.wait_for(pilot, lambda: app.query_one(TunnelsTable).row_count == 0)
        await ui.wait_for(pilot, lambda: any("is stopped (process and screen session gone)" in n
                                             for n in watch.notes()))
    assert iid not in AppState.load(rig.state_file).servers  # forgotten
    # verified gone: nothing listens on the server's port, and no screen session is left on the VM
    assert not list(rig.host.screendir.iterdir())
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", remote), timeout=1).close()


# -- deleting an instance whose Jupyter runs ---------------------------------------------------------------


async def test_delete_with_jupyter_running_warns_then_forgets_the_instance(ui: Any, rig: Rig) -> None:
    made = await asyncio.to_thread(launch_instance, rig.cloud, _spec(rig.cloud, "omega"), lambda _: None,
                                   store=rig.store)
    omega = await asyncio.to_thread(rig.cloud.get_instance, made.id)
    try:
        await ensure_jupyter_running(rig, omega)
        app = rig.app()
        watch = ui.Watch()
        async with app.run_test(size=(120, 40), notifications=True, message_hook=watch.hook) as pilot:
            table = app.query_one(InstancesTable)
            await ui.wait_for(pilot, lambda: omega.id in table.instances and app.engine is not None)
            await running_with_tunnel(ui, pilot, app, omega.id)
            table.move_cursor(row=table.get_row_index(omega.id))
            await pilot.press("ctrl+d")
            dialog = await ui.screen(pilot, DeleteInstance, timeout=20)
            lost = str(dialog.query_one("#running-lost", Static).render())
            assert "Jupyter is running on omega" in lost and "lost" in lost
            dialog.query_one("#typed-name", Input).value = "omega"
            quick, rig.sandbox.delays.delete_s = rig.sandbox.delays.delete_s, 3.0  # a cloud that takes a while
            try:
                app.clear_notifications()  # a toast ("Jupyter answers at …") may sit over the button: read, gone
                await pilot.pause()
                await pilot.click("#confirm")
                await ui.wait_for(pilot, lambda: "DELETING" in str(table.get_row(omega.id)[1]), timeout=2)
            finally:
                rig.sandbox.delays.delete_s = quick

            await ui.wait_for(pilot, lambda: omega.id not in table.instances, timeout=30)
            await ui.wait_for(pilot, lambda: f"{omega.id}/jupyter" not in
                              {k.value for k in app.query_one(TunnelsTable).rows}, timeout=10)
            await ui.wait_for(pilot, lambda: app.fleet.get(omega.id) is None, timeout=10)
            await ui.wait_for(pilot, lambda: any("omega is deleted" in n for n in watch.notes()), timeout=10)
            await pilot.pause(1.5)  # a few polls later: nothing about it, by name or by id
            assert not any(omega.id in n or omega.id[:8] in n for n in watch.notes()), watch.notes()
        saved = AppState.load(rig.state_file)
        assert omega.id not in saved.servers and saved.tunnel(omega.id) is None
    finally:  # whatever happened, the other tests see alpha alone
        if any(i.id == omega.id for i in await asyncio.to_thread(rig.cloud.list_instances)):
            await asyncio.to_thread(rig.cloud.delete, omega.id, delete_volumes=True)
        leftover = AppState.load(rig.state_file)
        leftover.forget_instance(omega.id)


async def test_cluster_screen_asks_how_many_workers_and_says_cancelled(ui: Any, rig: Rig) -> None:
    """`n` on the cluster screen asks how many workers, defaulting to the profile's number capped to what the
    remaining quota holds; declining it, or the delete dialog, says "cancelled" (not a failure, not silence)."""
    from tui.core.cluster.plan import workers_that_fit
    from tui.ui.screens.cluster import ClusterScreen
    from tui.ui.screens.cluster_create import WorkerCount
    from tui.ui.screens.confirm import TypedConfirm

    fit = workers_that_fit(rig.cloud.list_flavors(), rig.cloud.get_quota())
    settings = replace(rig.settings, cluster=ClusterSettings(workers=fit + 3))  # more than fits
    app = CadesApp(settings, engine_factory(
        settings, lambda: OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=rig.sandbox.clouds_yaml),
        services=Services(settings, rig.store, rig.base / "state", rig.base / "known_hosts"),
        options=ManagerOptions(jupyter_command=JUPYTER, setup_steps=STEPS)))
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), notifications=True, message_hook=watch.hook) as pilot:
        await ready(ui, pilot, app)
        await ui.wait_for(pilot, lambda: app.fleet.quota is not None and bool(app.fleet.flavors))
        await pilot.press("k")
        await ui.screen(pilot, ClusterScreen)
        await pilot.press("n")
        prompt = await ui.screen(pilot, WorkerCount)
        assert prompt.query_one("#workers-count", Input).value == str(fit)
        await pilot.press("end", "9", "enter")  # more than fit: refused in the dialog, with the numbers
        assert f"the remaining quota holds {fit} more" in str(prompt.query_one("#workers-error", Static).render())
        assert isinstance(app.screen, WorkerCount)
        await pilot.press("escape")
        await ui.wait_for(pilot, lambda: any("Cluster creation cancelled" in n for n in watch.notes()))

        await ui.screen(pilot, ClusterScreen)
        await pilot.press("ctrl+d")
        await ui.screen(pilot, TypedConfirm, timeout=30)
        await pilot.press("escape")
        await ui.wait_for(pilot, lambda: any("Delete cancelled; nothing changed" in n for n in watch.notes()))
        assert not any("cancelled" in n for n in watch.notes("error")), watch.notes("error")


@pytest.mark.timeout(180)
async def test_ctrl_c_cancels_a_running_cluster_create(ui: Any, rig: Rig) -> None:
    """Ctrl+C while a cluster is being created (here: its worker never leaves BUILD) stops that work and says what
    stays; the app keeps running."""
    from tui.ui.screens.cluster import ClusterScreen
    from tui.ui.screens.cluster_create import WorkerCount

    settings = replace(rig.settings, setup=replace(rig.settings.setup, env_path=sys.prefix),  # dask is there
                       cluster=ClusterSettings(workers=1, head_worker=False, scheduler_port=free_port(),
                                               dashboard_port=free_port(), auto_dashboard_tunnel=False))
    app = CadesApp(settings, engine_factory(
        settings, lambda: OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=rig.sandbox.clouds_yaml),
        services=Services(settings, rig.store, rig.base / "state", rig.base / "known_hosts"),
        options=ManagerOptions(jupyter_command=JUPYTER, setup_steps=STEPS)))
    watch = ui.Watch()
    rig.sandbox.faults.never_active = "alpha-w*"
    try:
        async with app.run_test(size=(120, 40), notifications=True, message_hook=watch.hook) as pilot:
            await ready(ui, pilot, app)
            await pilot.press("k")
            await ui.screen(pilot, ClusterScreen)
            await pilot.press("n")
            await ui.screen(pilot, WorkerCount)
            await pilot.press("enter")
            await ui.wait_for(pilot, lambda: any(i.name == "alpha-w1" for i in app.fleet.instances()), timeout=60)
            assert app.clusters.running_work() == ["alpha"]
            await pilot.press("ctrl+c")
            await ui.wait_for(pilot, lambda: any("Cluster work on alpha cancelled" in n for n in watch.notes()))

            def ended() -> bool:
                """the cluster worker to end as cancelled"""
                return any(m.worker.name == "cluster alpha" and m.state is WorkerState.CANCELLED
                           for m in watch.of("StateChanged"))
            await ui.wait_for(pilot, ended)
            assert app.clusters.running_work() == [] and app.is_running
    finally:
        rig.sandbox.faults.never_active = ""
        for inst in rig.cloud.list_instances():
            if inst.name.startswith("alpha-w"):
                rig.cloud.delete(inst.id, delete_volumes=True)
async def test_delete_says_when_it_cannot_tell_whether_kernels_are_busy(ui: Any, rig: Rig) -> None:
    """The VM's sshd is gone (the VM and its Jupyter keep running): the delete dialog cannot list the kernels and
    says so, rather than counting none busy."""
    watch = ui.Watch()
    host = rig.host
    try:
        async with app_on_running_jupyter(ui, rig, watch) as (app, pilot):
            host.disconnect()
            table = app.query_one(InstancesTable)
            table.move_cursor(row=table.get_row_index(rig.instance.id))
            await pilot.press("ctrl+d")
            dialog = await ui.screen(pilot, DeleteInstance, timeout=60)
            lost = str(dialog.query_one("#running-lost", Static).render())
            assert "Jupyter is running on alpha" in lost and "could not tell whether kernels are busy (" in lost
            assert "lost" in lost
            await pilot.press("escape")
            await ui.wait_for(pilot, lambda: any("Nothing deleted" in n for n in watch.notes()))
    finally:
        host.start()
    assert any(i.id == rig.instance.id for i in await asyncio.to_thread(rig.cloud.list_instances))
