"""Write the README's screenshots (SVG + PNG, 120x40) from a demo sandbox.

    .venv/bin/python screenshots/make_screenshots.py [OUT_DIR]

Starts a private sandbox cloud with its demo data in a temporary directory, drives the real app through
`App.run_test`, saves main / wizard / help as SVG with `save_screenshot`, then setup-log / tunnels / jupyter-log
by posting recorded events to the app as its messages (what the remote manager would send), and converts each to
PNG with `rsvg-convert` (apt: librsvg2-bin) when it is installed.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from recorded import (  # screenshots/recorded.py, next to this script
    forward_events,
    jupyter_events,
    log_events,
    setup_events,
)

from tui.core.cloud.openstack_cloud import OpenStackCloud
from tui.core.config import Settings
from tui.core.engine import engine_factory
from tui.ui.app import CadesApp
from tui.ui.screens.help import HelpScreen
from tui.ui.screens.jupyter_log import JupyterLogScreen
from tui.ui.screens.wizard import LaunchWizard
from tui.ui.widgets.tables import FlavorsTable, InstancesTable

SIZE = (120, 40)


async def _until(pilot: object, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {condition.__doc__ or 'the app'}")
        await pilot.pause(0.1)  # type: ignore[attr-defined]


def _shot(app: CadesApp, out: Path, name: str) -> Path:
    app.clear_notifications()
    path = out / f"{name}.svg"
    app.save_screenshot(filename=path.name, path=str(out))
    return path


async def _capture(clouds_yaml: Path, out: Path) -> list[Path]:
    settings = Settings(cloud="sandbox", clouds_yaml=str(clouds_yaml))
    app = CadesApp(settings, engine_factory(
        settings, lambda: OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=clouds_yaml)))
    shots = []
    async with app.run_test(size=SIZE) as pilot:
        def loaded() -> bool:
            """the demo instances and flavors"""
            return bool(app.query_one(InstancesTable).instances) and app.query_one(FlavorsTable).row_count > 0

        await _until(pilot, loaded)
        await pilot.pause(0.3)
        shots.append(_shot(app, out, "main"))

        await pilot.press("n")
        await _until(pilot, lambda: isinstance(app.screen, LaunchWizard))
        await pilot.press(*"analytics-2", "enter", "enter")
        await pilot.pause(0.3)
        shots.append(_shot(app, out, "wizard"))
        await pilot.press("escape")

        await pilot.press("question_mark")
        await _until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause(0.3)
        shots.append(_shot(app, out, "help"))
        await pilot.press("escape")

        # the remote side, from recorded events (a real run needs a VM with PyPI access)
        inst = app.query_one(InstancesTable).selected
        assert inst is not None
        for event in setup_events(inst.id, 0.0):
            app.bridge(event)
        await pilot.press("3")
        await pilot.pause(0.3)
        shots.append(_shot(app, out, "setup-log"))

        for event in [*jupyter_events(inst.id, app.clock()), *forward_events(inst.id, app.clock())]:
            app.bridge(event)
        await pilot.press("4")
        await pilot.pause(0.3)
        shots.append(_shot(app, out, "tunnels"))

        screen = app.jupyter.log_screen = JupyterLogScreen(inst.id, inst.name)
        await app.push_screen(screen)
        for event in log_events(inst.id):
            app.bridge(event)
        await pilot.pause(0.5)
        shots.append(_shot(app, out, "jupyter-log"))
        await pilot.press("escape")

        # the Dask cluster screen, from a recorded scheduler view (its progress in the Setup log pane)
        import time

        from recorded import cluster_events, cluster_state

        from tui.ui.screens.cluster import ClusterScreen

        cluster = app.clusters.screen = ClusterScreen(inst.id, inst.name)
        await app.push_screen(cluster)
        await pilot.pause(0.2)
        for event in cluster_events(inst.id, inst.name):
            app.bridge(event)
        now = time.time()
        cluster.show(cluster_state(inst.id, inst.name, now), now=now)
        await pilot.pause(0.3)
        shots.append(_shot(app, out, "cluster"))
        await pilot.press("escape")

        # the Transfers view (m), its queue as a run leaves it: one download done, one upload moving, one queued
        await pilot.press("1", "m")
        await _until(pilot, lambda: type(app.screen).__name__ == "TransfersScreen")
        _transfers_queue(app, inst.name)
        await pilot.pause(1.2)  # the view's timer redraws the queue
        shots.append(_shot(app, out, "transfers"))
    return shots


def _transfers_queue(app: CadesApp, name: str) -> None:
    """Jobs as a run leaves them (recorded numbers, no VM): the queue's own records, shown by the view."""
    from tui.core.transfer.models import TransferProgress, TransferSummary
    from tui.ui.transfers import Job, TransferQueue

    queue = app.remote.transfers
    assert queue is not None
    local, remote = TransferQueue.local_folder(name), "~/workspace"
    done = Job(1, f"↓ {remote} → {local.name}/", TransferQueue._request(f"{name}:{remote}", str(local)), "done",
               summary=TransferSummary(files=214, transferred=12, skipped=202, bytes=48_211_967, seconds=3.1,
                                       via="openssh"))
    moving = Job(2, f"↑ {local.name}/ → {remote}", TransferQueue._request(str(local), f"{name}:{remote}"), "running",
                 progress=TransferProgress("data/run-42.h5", 312 << 20, 1 << 30, 356 << 20, 1210 << 20,
                                           118e6, 7.6, 9, 31))
    queued = Job(3, f"↑ notebooks/ → {remote}/notebooks",
                 TransferQueue._request(f"{local}/notebooks", f"{name}:{remote}/notebooks"))
    queue.jobs[:] = [done, moving, queued]


def main(argv: list[str]) -> int:
    from tui.sandbox import Sandbox

    out = Path(argv[0]) if argv else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cades-shots-") as state:
        sandbox = Sandbox(Path(state), seed_demo=True)
        sandbox.start()
        try:
            shots = asyncio.run(_capture(Path(sandbox.clouds_yaml), out))
        finally:
            sandbox.stop()
    converter = shutil.which("rsvg-convert")
    for svg in shots:
        if converter:
            to_png(converter, svg)
        print(svg, "+ png" if converter else "(no rsvg-convert: SVG only)")
    return 0


def to_png(converter: str, svg: Path) -> Path:
    """PNG beside `svg`. Textual draws each run of cells as its own <text>: without xml:space="preserve" librsvg
    trims the spaces at either end of a run ("cades-tui — sandbox" became "cades-tui— sandbox")."""
    text = svg.read_text(encoding="utf-8")
    if 'xml:space="preserve"' not in text:
        text = text.replace("<svg ", '<svg xml:space="preserve" ', 1)
    png = svg.with_suffix(".png")
    subprocess.run([converter, "-o", str(png), "/dev/stdin"], input=text.encode(), check=True)
    return png


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
