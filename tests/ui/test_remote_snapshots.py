"""Snapshots of the Setup log mid-run, the Tunnels pane and the Jupyter log view. Deterministic: the events are
recorded ones posted as the app's messages (fixed ports, sizes and times), the clock is frozen."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tui.cloud.openstack_cloud import OpenStackCloud
from tui.guide import OutputLines, StepFinished, StepStarted
from tui.manager import JupyterState
from tui.messages import JupyterChanged, JupyterLog, SetupEvents, TunnelUpdated
from tui.models import StepResult, StepStatus, TunnelInfo, TunnelState
from tui.screens.jupyter_log import JupyterLogScreen
from tui.widgets.tables import InstancesTable

SIZES = [(80, 24), (120, 40)]

SETUP = [
    (100.0, StepStarted("ssh", 0, 6, "Wait for SSH (up to 300 s)")),
    (100.2, StepFinished(StepResult("ssh", StepStatus.SKIPPED, 0.2))),
    (100.2, StepStarted("detect", 1, 6, "Detect the OS, architecture and home directory")),
    (100.5, OutputLines("detect", ("Ubuntu 24.04 LTS, x86_64, home /home/ubuntu",))),
    (100.5, StepFinished(StepResult("detect", StepStatus.DONE, 0.3))),
    (100.5, StepStarted("screen", 2, 6, "Ensure screen (or tmux) is installed, to keep Jupyter running")),
    (100.7, StepFinished(StepResult("screen", StepStatus.SKIPPED, 0.2))),
    (100.7, StepStarted("python", 3, 6, "Install Python + Jupyter with uv in ~/jupyter-env")),
    (101.9, OutputLines("python", ("Using CPython 3.12.3 interpreter at: /usr/bin/python3",
                                   "Creating virtual environment at: /home/ubuntu/jupyter-env"))),
    (104.3, OutputLines("python", ("Resolved 118 packages in 1.62s", "Downloading pandas (11.7MiB)",
                                   "Downloading numpy (15.9MiB)", "Downloading jupyterlab (11.2MiB)"))),
]

LOG = [
    "[I 2026-01-01 09:00:01.120 ServerApp] jupyter_lsp | extension was successfully loaded.",
    "[I 2026-01-01 09:00:01.122 ServerApp] jupyter_server_terminals | extension was successfully loaded.",
    "[I 2026-01-01 09:00:01.130 LabApp] JupyterLab extension loaded from /home/ubuntu/jupyter-env/lib/python3.12/"
    "site-packages/jupyterlab",
    "[I 2026-01-01 09:00:01.131 ServerApp] jupyterlab | extension was successfully loaded.",
    "[I 2026-01-01 09:00:01.132 ServerApp] Serving notebooks from local directory: /home/ubuntu/work",
    "[I 2026-01-01 09:00:01.132 ServerApp] Jupyter Server 2.21.1 is running at:",
    "[I 2026-01-01 09:00:01.132 ServerApp] http://127.0.0.1:8889/lab?token=…",
    "[I 2026-01-01 09:00:01.133 ServerApp] Use Control-C to stop this server and shut down all kernels.",
    "[I 2026-01-01 09:02:14.871 ServerApp] Kernel started: 4f2c…",
    "[I 2026-01-01 09:02:15.503 ServerApp] Connecting to kernel 4f2c….",
    "[W 2026-01-01 09:05:40.002 ServerApp] 404 GET /api/contents/untitled.ipynb (127.0.0.1) 1.02ms",
    "[I 2026-01-01 09:06:02.911 ServerApp] Saving file at /analysis.ipynb",
]


@pytest.fixture(scope="module")
def scene_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    from tui.sandbox import Delays, Sandbox

    sandbox = Sandbox(tmp_path_factory.mktemp("remote-scene"), delays=Delays.fast(), seed_demo=False)
    sandbox.start()
    try:
        yield sandbox, OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sandbox.clouds_yaml)
    finally:
        sandbox.stop()


@pytest.fixture
def scene(ui: Any, scene_sandbox: tuple[Any, Any]) -> Any:
    sandbox, cloud = scene_sandbox
    if not cloud.list_instances():
        ui.launch(cloud, "alpha", "m1.small")
    alpha = cloud.get_instance("alpha")
    return ui.app_factory(sandbox)(clock=ui.frozen_after(alpha)), alpha


async def _loaded(ui: Any, pilot: Any) -> None:
    app = pilot.app
    await ui.wait_for(pilot, lambda: bool(app.query_one(InstancesTable).instances) and app.manager is not None)


async def _settle(pilot: Any) -> None:
    await pilot.pause(0.2)
    pilot.app.clear_notifications()
    await pilot.pause()


def test_setup_log_mid_run(ui: Any, scene: Any, snap_compare: Any) -> None:
    app, alpha = scene

    async def run_before(pilot: Any) -> None:
        await _loaded(ui, pilot)
        app.post_message(SetupEvents(alpha.id, SETUP))
        await pilot.press("3")
        await _settle(pilot)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_tunnels_pane(ui: Any, scene: Any, snap_compare: Any, size: tuple[int, int]) -> None:
    app, alpha = scene

    async def run_before(pilot: Any) -> None:
        await _loaded(ui, pilot)
        now = app.clock()
        app.post_message(JupyterChanged(JupyterState(alpha.id, "running", "http://127.0.0.1:8889/lab", 8889, 8890)))
        app.post_message(TunnelUpdated(TunnelInfo(alpha.id, 8889, "127.0.0.1", 8890, TunnelState.UP,
                                                  now - timedelta(minutes=12), 3_481_600, 182_272)))
        await pilot.press("4")
        await _settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_jupyter_log_view(ui: Any, scene: Any, snap_compare: Any, size: tuple[int, int]) -> None:
    app, alpha = scene

    async def run_before(pilot: Any) -> None:
        await _loaded(ui, pilot)
        screen = app._log_screen = JupyterLogScreen(alpha.id, "alpha")
        await app.push_screen(screen)
        app.post_message(JupyterLog(alpha.id, LOG))
        await _settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
