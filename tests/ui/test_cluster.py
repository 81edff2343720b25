"""The cluster screen (`k`): a real cluster created, watched and deleted from the keyboard on the sandbox (real
instances, screen sessions, dask from PyPI — the test venv is the VMs' environment), and snapshots of the screen
with a recorded scheduler view (fixed names, sizes and times)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from textual.widgets import DataTable, Input, Static

from tui.core.config import ClusterSettings, SetupSettings, SSHSettings
from tui.core.recorded import cluster_events, cluster_state
from tui.sandbox.sshhost import free_port
from tui.ui.screens.cluster import ClusterScreen
from tui.ui.screens.cluster_create import WorkerCount
from tui.ui.screens.confirm import TypedConfirm
from tui.ui.widgets.tables import InstancesTable

SIZES = [(80, 24), (120, 40)]


def _text(widget: Static) -> str:
    return str(widget.render())


@pytest.mark.timeout(240)
async def test_create_watch_and_delete_a_cluster_from_the_keyboard(ui: Any, sb: Any, cloud: Any,
                                                                   tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = tmp_path / "id_ed25519"
    key.write_private_key(str(key_path))
    key_path.chmod(0o600)
    cloud.import_keypair("cluster-key", key.export_public_key().decode())
    ui.launch(cloud, "alpha", "m1.tiny")
    app = ui.app_factory(sb)(
        ssh=SSHSettings(key_path=str(key_path), use_ssh_config=False),
        setup=SetupSettings(env_path=sys.prefix),
        cluster=ClusterSettings(workers=1, head_worker=False, scheduler_port=free_port(), dashboard_port=free_port(),
                                auto_dashboard_tunnel=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.wait_for(pilot, lambda: bool(app.query_one(InstancesTable).instances) and app.engine is not None)
        rows = {d: a for _k, d, _t, a in app.binding_rows()}
        assert rows["Cluster"] == "app.cluster" and rows["Add worker"] == "app.cluster_grow"  # palette entries

        await pilot.press("k")
        screen = await ui.screen(pilot, ClusterScreen)
        status = screen.query_one("#cluster-status", Static)

        def no_cluster() -> bool:
            """the screen to say there is no cluster yet"""
            return "no cluster" in _text(status)
        await ui.wait_for(pilot, no_cluster)

        await pilot.press("n")
        prompt = await ui.screen(pilot, WorkerCount)  # how many: the profile's 1, which fits
        assert prompt.query_one("#workers-count", Input).value == "1"
        await pilot.press("enter")
        table = screen.query_one("#cluster-workers", DataTable)

        def one_worker() -> bool:
            """the new worker in the table, live from the scheduler"""
            return table.row_count == 1 and "1 workers" in _text(status)
        await ui.wait_for(pilot, one_worker, timeout=180)
        assert table.get_row_at(0)[0] == "alpha-w1"
        log = "\n".join(app.query_one("#setup-log").lines)
        assert "Dask cluster on alpha" in log and "alpha-w1" in log and "is ACTIVE" in log
        assert "alpha-w1 connected" in "\n".join(screen.query_one("#cluster-log").lines)
        assert cloud.get_instance("alpha-w1").public_ip == ""

        await pilot.press("ctrl+d")
        dialog = await ui.screen(pilot, TypedConfirm)
        assert "alpha-w1" in _text(dialog.query_one(".dialog-body", Static))
        await pilot.press(*"alpha", "enter")

        def deleted() -> bool:
            """the worker instance gone and the screen saying there is no cluster"""
            return no_cluster() and not [i for i in cloud.list_instances() if i.name == "alpha-w1"]
        await ui.wait_for(pilot, deleted, timeout=60)
        await pilot.press("escape")
        assert not isinstance(app.screen, ClusterScreen)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_cluster_screen(ui: Any, scene_sandbox: tuple[Any, Any], snap_compare: Any, size: tuple[int, int]) -> None:
    sandbox, cloud = scene_sandbox
    if not cloud.list_instances():
        ui.launch(cloud, "alpha", "m1.small")
    alpha = cloud.get_instance("alpha")
    app = ui.app_factory(sandbox)(clock=ui.frozen_after(alpha))

    async def run_before(pilot: Any) -> None:
        await ui.wait_for(pilot, lambda: bool(app.query_one(InstancesTable).instances) and app.engine is not None)
        screen = app._cluster_screen = ClusterScreen(alpha.id, "alpha")
        await app.push_screen(screen)
        await pilot.pause()
        for event in cluster_events(alpha.id, "alpha"):
            app.bridge(event)  # progress: in the Setup log pane and below the workers
        await pilot.pause(0.3)
        now = time.time()
        screen.show(cluster_state(alpha.id, "alpha", now), now=now)
        await pilot.pause(0.2)
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
