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

from screenshots.recorded import cluster_events, cluster_state
from tui.core.config import ClusterSettings, SetupSettings, SSHSettings
from tui.sandbox.sshhost import free_port
from tui.ui.keys import binding_rows
from tui.ui.screens.cluster import ClusterScreen
from tui.ui.screens.cluster_create import WorkerCount
from tui.ui.screens.confirm import Confirm, DeleteInstance, TypedConfirm
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
        rows = {d: a for _k, d, _t, a in binding_rows(app)}
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


@pytest.mark.timeout(240)
async def test_ctrl_d_on_a_head_says_it_runs_a_cluster_and_deletes_it_with_the_head(ui: Any, sb: Any, cloud: Any,
                                                                                   tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = tmp_path / "id_ed25519"
    key.write_private_key(str(key_path))
    key_path.chmod(0o600)
    cloud.import_keypair("cluster-key", key.export_public_key().decode())
    ui.launch(cloud, "beta", "m1.tiny")
    app = ui.app_factory(sb)(
        ssh=SSHSettings(key_path=str(key_path), use_ssh_config=False),
        setup=SetupSettings(env_path=sys.prefix),
        cluster=ClusterSettings(workers=1, head_worker=False, scheduler_port=free_port(), dashboard_port=free_port(),
                                auto_dashboard_tunnel=False))
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), message_hook=watch.hook) as pilot:
        await ui.wait_for(pilot, lambda: bool(app.query_one(InstancesTable).instances) and app.engine is not None)
        beta = cloud.get_instance("beta")
        summary = await app.engine.cluster.create(beta)
        assert summary.status.names == ("beta-w1",)
        await app.engine.cluster.dashboard(beta)
        assert [t for t in app.engine.tunnels() if t.instance == beta.id]

        table = app.query_one(InstancesTable)
        await ui.wait_for(pilot, lambda: beta.id in table.instances)
        table.move_cursor(row=table.get_row_index(beta.id))
        await pilot.press("ctrl+d")
        dialog = await ui.screen(pilot, DeleteInstance, timeout=30)
        said = _text(dialog.query_one("#cluster-lost", Static))
        assert "beta heads a Dask cluster" in said and "1 worker instance (beta-w1)" in said, said
        assert "boot volume of beta-w1, 16 GB" in said and "cades-dask-beta" in said, said
        assert "boot volume of beta, 16 GB" in _text(dialog.query_one("#volumes-fate", Static))
        dialog.query_one("#typed-name", Input).value = "beta"
        app.clear_notifications()
        await pilot.pause()
        await pilot.click("#confirm")

        def all_gone() -> bool:
            """no instance named beta*, no cluster group"""
            groups = [g.name for g in cloud.conn.network.security_groups()]
            return not [i for i in cloud.list_instances() if i.name.startswith("beta")] \
                and "cades-dask-beta" not in groups
        await ui.wait_for(pilot, all_gone, timeout=60)
        await ui.wait_for(pilot, lambda: any("beta is deleted" in n for n in watch.notes()), timeout=20)
        assert not [t for t in app.engine.tunnels() if t.instance == beta.id]  # the dashboard's tunnel too
        assert not [n for n in watch.notes() if "lost" in n], watch.notes()


async def test_what_deleted_heads_left_is_found_and_offered_for_deletion(ui: Any, sb: Any, cloud: Any) -> None:
    ui.launch(cloud, "gone-w1", "m1.tiny")  # a worker whose head "gone" was deleted elsewhere
    cloud.create_cluster_security_group("cades-dask-gone")
    cloud.create_cluster_security_group("cades-dask-ghost")  # a group with no member at all

    def groups() -> list[str]:
        return sorted(g.name for g in cloud.conn.network.security_groups() if g.name.startswith("cades-dask-"))

    app = ui.app_factory(sb)()
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), message_hook=watch.hook) as pilot:
        # Offered at start; declined: kept, and told how to delete them later.
        offer = await ui.screen(pilot, Confirm, timeout=30)
        said = _text(offer.query_one(".dialog-body", Static))
        assert "Left over from the Dask cluster of gone" in said and "gone-w1" in said, said
        assert "Left over from the Dask cluster of ghost" in said and "cades-dask-ghost" in said, said
        await pilot.press("escape")
        await ui.wait_for(pilot, lambda: any("ctrl+d on gone-w1" in n for n in watch.notes()))
        assert groups() == ["cades-dask-ghost", "cades-dask-gone"]

        # ctrl+d on the leftover worker says what goes with it, and deletes it with its group.
        worker = cloud.get_instance("gone-w1")
        table = app.query_one(InstancesTable)
        await ui.wait_for(pilot, lambda: worker.id in table.instances)
        table.move_cursor(row=table.get_row_index(worker.id))
        await pilot.press("ctrl+d")
        dialog = await ui.screen(pilot, DeleteInstance, timeout=30)
        said = _text(dialog.query_one("#cluster-lost", Static))
        assert "left over from the Dask cluster of gone" in said and "cades-dask-gone" in said, said
        dialog.query_one("#typed-name", Input).value = "gone-w1"
        app.clear_notifications()
        await pilot.pause()
        await pilot.click("#confirm")

        def worker_gone() -> bool:
            """no gone-w1, no cades-dask-gone"""
            return not [i for i in cloud.list_instances() if i.name == "gone-w1"] and groups() == ["cades-dask-ghost"]
        await ui.wait_for(pilot, worker_gone, timeout=60)

    # The next start offers the group left: accepted, deleted.
    app = ui.app_factory(sb)()
    async with app.run_test(size=(120, 40)) as pilot:
        offer = await ui.screen(pilot, Confirm, timeout=30)
        assert "cades-dask-ghost" in _text(offer.query_one(".dialog-body", Static))
        await pilot.click("#confirm")
        await ui.wait_for(pilot, lambda: groups() == [], timeout=30)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_cluster_screen(ui: Any, scene_sandbox: tuple[Any, Any], snap_compare: Any, size: tuple[int, int]) -> None:
    sandbox, cloud = scene_sandbox
    if not cloud.list_instances():
        ui.launch(cloud, "alpha", "m1.small")
    alpha = cloud.get_instance("alpha")
    app = ui.app_factory(sandbox)(clock=ui.frozen_after(alpha))

    async def run_before(pilot: Any) -> None:
        await ui.wait_for(pilot, lambda: bool(app.query_one(InstancesTable).instances) and app.engine is not None)
        screen = app.clusters.screen = ClusterScreen(alpha.id, "alpha")
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


async def test_the_cluster_screen_lists_lost_and_unjoined_workers(ui: Any, scene_sandbox: tuple[Any, Any]) -> None:
    from dataclasses import replace

    from tui.core.models import AbsentWorker

    sandbox, cloud = scene_sandbox
    if not cloud.list_instances():
        ui.launch(cloud, "alpha", "m1.small")
    alpha = cloud.get_instance("alpha")
    app = ui.app_factory(sandbox)(clock=ui.frozen_after(alpha))
    async with app.run_test(size=(80, 24)) as pilot:
        await ui.wait_for(pilot, lambda: bool(app.query_one(InstancesTable).instances) and app.engine is not None)
        screen = app.clusters.screen = ClusterScreen(alpha.id, "alpha")
        await app.push_screen(screen)
        await pilot.pause()
        now = time.time()
        state = replace(cluster_state(alpha.id, "alpha", now), absent=(
            AbsentWorker("alpha-w3", "lost", "its worker session ended"),
            AbsentWorker("alpha-w4", "unjoined", "instance ACTIVE; never joined the cluster")))
        screen.show(state, now=now)
        await pilot.pause()
        table = screen.query_one("#cluster-workers", DataTable)
        rows = {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)] for i in range(table.row_count)}
        assert rows["alpha-w3"][1] == "lost" and "session ended" in rows["alpha-w3"][3]
        assert rows["alpha-w4"][1] == "unjoined"
        assert "1 lost" in _text(screen.query_one("#cluster-status", Static))
        assert "1 unjoined" in _text(screen.query_one("#cluster-status", Static))

