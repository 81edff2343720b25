"""The Transfers view (`m`) in the real app against a sandbox instance (a real sshd): upload the workspace folder,
cancel a running transfer (the partial stays), retry it (it continues), download; and its queue object alone."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tui.core.cloud.base import LaunchSpec
from tui.core.cloud.openstack_cloud import OpenStackCloud
from tui.core.config import Settings, SSHSettings, UISettings
from tui.core.engine import engine_factory
from tui.core.keys import KeyStore
from tui.core.services import Services, launch_instance
from tui.ui.app import CadesApp
from tui.ui.screens.transfers import TransfersScreen, progress_text
from tui.ui.transfers import Job, TransferQueue

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from tui.sandbox import Delays, Sandbox

    base = tmp_path_factory.mktemp("transfers-ui")
    sandbox = Sandbox(base / "sandbox", delays=Delays.fast(), seed_demo=False)
    sandbox.start()
    cloud = OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sandbox.clouds_yaml)
    try:
        store = KeyStore(base / "data")
        image = max((i for i in cloud.list_images() if "24.04" in i.name), key=lambda i: i.name)
        network = next(n for n in cloud.list_networks() if not n.external)
        inst = launch_instance(cloud, LaunchSpec(name="alpha", image=image.id, flavor="m1.small", key_name="",
                                                 network=network.id), lambda _: None, store=store)
        settings = Settings(cloud="sandbox", clouds_yaml=str(sandbox.clouds_yaml), ui=UISettings(refresh_s=0.5),
                            ssh=SSHSettings(use_ssh_config=False))
        services = Services(settings, store, base / "state", base / "known_hosts")
        yield {"sandbox": sandbox, "settings": settings, "services": services, "inst": inst,
               "home": Path(sandbox.ssh_host(inst.id).home)}
        cloud.delete(inst.id, delete_volumes=True)
    finally:
        sandbox.stop()


def app_for(world: dict[str, Any]) -> CadesApp:
    sb, settings = world["sandbox"], world["settings"]
    return CadesApp(settings, engine_factory(
        settings, lambda: OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sb.clouds_yaml),
        services=world["services"]))


async def wait_for(pilot: Any, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {condition.__doc__ or condition}"
        await pilot.pause(0.05)


async def open_view(app: CadesApp, pilot: Any) -> TransfersScreen:
    """`m` on the first instance, once listed: the Transfers view, mounted."""
    await wait_for(pilot, lambda: app.instances_pane.table.selected is not None)
    await pilot.press("m")
    await wait_for(pilot, lambda: isinstance(app.screen, TransfersScreen) and app.screen.is_mounted)
    assert isinstance(app.screen, TransfersScreen)
    return app.screen


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("path", ["openssh", "asyncssh"])
async def test_upload_cancel_retry_and_download_from_the_view(world: dict[str, Any], path: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CADES_TUI_TRANSFER_PATH", path)  # both data paths stop cleanly on cancel
    shutil.rmtree(world["home"] / "workspace", ignore_errors=True)
    local = TransferQueue.local_folder("alpha")
    local.mkdir(parents=True)
    (local / "a.txt").write_text("up\n")
    big = local / "big.bin"
    with big.open("wb") as f:
        for _ in range(300):
            f.write(os.urandom(1 << 20))
    remote = world["home"] / "workspace"
    app = app_for(world)
    async with app.run_test(size=(80, 24)) as pilot:
        view = await open_view(app, pilot)
        await pilot.press("u")
        job = view.queue.jobs[0]

        def moving() -> bool:
            """the upload under way"""
            return job.progress is not None and job.progress.done > (20 << 20)

        await wait_for(pilot, moving)
        await pilot.press("x")
        await wait_for(pilot, lambda: job.state == "cancelled")
        assert (remote / ".big.bin.cades-part").exists() and not (remote / "big.bin").exists(), \
            [(p.name, p.stat().st_size) for p in remote.iterdir()] if remote.exists() else "no folder"
        await wait_for(pilot, lambda: "cancelled" in str(view.table.get_row_at(0)))  # the view's timer redraws
        await pilot.press("r")
        await wait_for(pilot, lambda: job.state == "done", 400)  # 300 MB through Python (asyncssh) on a busy 2-core CI
        assert job.summary is not None and job.summary.resumed > 0
        assert sha(remote / "big.bin") == sha(big) and (remote / "a.txt").read_text() == "up\n"
        await wait_for(pilot, lambda: "done" in str(view.table.get_row_at(0)))
        assert "transferred" in progress_text(job)

        (remote / "from-vm.txt").write_text("down\n")
        await pilot.press("d")
        down = view.queue.jobs[1]
        await wait_for(pilot, lambda: down.state == "done")
        assert (local / "from-vm.txt").read_text() == "down\n" and down.summary is not None
        assert down.summary.transferred == 1 and down.summary.skipped == 2
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, TransfersScreen))
        await pilot.press("m")  # the queue outlives the view
        await wait_for(pilot, lambda: isinstance(app.screen, TransfersScreen) and app.screen.is_mounted)
        assert [j.state for j in app.screen.queue.jobs] == ["done", "done"]


def test_the_queue_drops_a_queued_job_and_retries_only_failed_or_cancelled_ones() -> None:
    """Without an engine nothing starts: every job stays queued, so the queue's own rules are seen alone."""
    queue = TransferQueue(lambda: None, lambda job, name: pytest.fail("nothing may start"), lambda t, s: None)
    first = queue.add("one", TransferQueue._request("/tmp/x", "vm:y"))
    second = queue.add("two", TransferQueue._request("vm:y", "/tmp/x"))
    assert [j.state for j in queue.jobs] == ["queued", "queued"]
    assert "before it started" in queue.cancel(first) and first.state == "cancelled"
    assert "only a failed or cancelled one" in queue.retry(second)
    assert "queued again" in queue.retry(first) and first.state == "queued"
    assert Job(3, "x", first.request).percent() is None


async def test_a_transfer_goes_on_after_the_connection_is_cut(world: dict[str, Any],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A network cut mid-way (the VM's sshd and its connections SIGKILLed): the job says it will try again, and
    once sshd is back it reconnects and continues the partial file."""
    monkeypatch.setattr("tui.ui.transfers.RETRY_AFTER_S", (1.0, 1.0, 1.0, 1.0))
    shutil.rmtree(world["home"] / "workspace", ignore_errors=True)
    local = TransferQueue.local_folder("alpha")
    local.mkdir(parents=True)
    big = local / "big.bin"
    with big.open("wb") as f:
        for _ in range(300):
            f.write(os.urandom(1 << 20))
    host = world["sandbox"].ssh_host(world["inst"].id)
    app = app_for(world)
    async with app.run_test(size=(80, 24)) as pilot:
        view = await open_view(app, pilot)
        await pilot.press("u")
        job = view.queue.jobs[0]
        await wait_for(pilot, lambda: job.progress is not None and job.progress.done > (20 << 20))
        host.kill()
        try:
            await wait_for(pilot, lambda: job.state == "retrying")
            assert "trying again" in job.error
        finally:
            host.start()
        await wait_for(pilot, lambda: job.state == "done", 180)
        assert job.summary is not None and job.summary.resumed > 0, job.summary
        assert sha(world["home"] / "workspace" / "big.bin") == sha(big)


async def test_the_vm_folder_can_be_another_than_the_workspace(world: dict[str, Any]) -> None:
    """The VM side is the Jupyter workspace unless edited: `data/in` typed (relative to the VM's home), `u` syncs
    the local folder into it and the workspace gets nothing."""
    shutil.rmtree(world["home"] / "workspace", ignore_errors=True)
    shutil.rmtree(world["home"] / "data", ignore_errors=True)
    local = TransferQueue.local_folder("alpha")
    shutil.rmtree(local, ignore_errors=True)
    local.mkdir(parents=True)
    (local / "x.csv").write_text("1,2\n")
    app = app_for(world)
    async with app.run_test(size=(80, 24)) as pilot:
        view = await open_view(app, pilot)
        assert view.remote == world["settings"].jupyter.workspace
        view.vm.focus()
        view.vm.value = ""
        await pilot.press(*"data/in")
        assert view.remote == "data/in"
        view.table.focus()
        await pilot.press("u")
        job = view.queue.jobs[-1]
        await wait_for(pilot, lambda: job.state == "done")
        assert (world["home"] / "data" / "in" / "x.csv").read_text() == "1,2\n"
        assert not (world["home"] / "workspace" / "x.csv").exists()
