"""Dask cluster: `cluster create` → N workers connected, N = 1, 2, 3, and a reference computation on the cluster vs
the same computation in one local process (same run). Then one worker whose environment must be installed, beside
the same worker started from the head's frozen image (`--from-image`), in one run.

Runs the real code path (`ClusterLifecycle.create` on a CoreEngine) against a sandbox cloud of its own: instances are
launched through the API, reached through the head as jump host, dask comes from the local venv (every sandbox VM's
environment, a warm package cache). Goal (issue 10): ≤ 15 s from the workers being ACTIVE to all of them connected,
for 3 workers. Goal (issue 23): one worker ACTIVE → connected from the frozen image ≤ 50 % of the time it takes with
the install (the head's environment in its home, `~/dask-env`; the install with uv from the machine's warm cache, as
a fair baseline). Exits 1 when a goal is missed.

    .venv/bin/python tests/benchmarks/bench_cluster.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

GOAL_S = 15.0
GOAL_FROZEN = 0.5  # from the frozen image / with the install, ACTIVE -> connected

REFERENCE = """
import time
def work(i):
    return sum(j * j for j in range(i, i + 300_000))
N = 48
t = time.perf_counter(); local = sum(map(work, range(N))); t_local = time.perf_counter() - t
"""

ON_CLUSTER = REFERENCE + """
from distributed import Client
with Client(timeout=20) as c:
    c.submit(work, 0).result()  # warm: the function travels once
    t = time.perf_counter(); remote = sum(c.gather(c.map(work, range(N)))); t_cluster = time.perf_counter() - t
assert remote == local
print(f"{t_local:.3f} {t_cluster:.3f}")
"""


async def one(n: int, base: Path) -> tuple[float, float, float, float]:
    """(seconds create → connected, seconds ACTIVE → connected, local compute s, cluster compute s)."""
    from tui.core.cloud.launch import plan_launch
    from tui.core.config import ClusterSettings, Settings, SetupSettings, SSHSettings
    from tui.core.engine import CoreEngine, open_cloud
    from tui.core.events import ClusterProgress, Event
    from tui.core.keys import KeyStore
    from tui.core.services import Services, launch_instance
    from tui.sandbox import Delays, Sandbox
    from tui.sandbox.sshhost import free_port

    sandbox = Sandbox(base / f"cloud{n}", delays=Delays.fast())
    sandbox.start()
    engine = None
    try:
        sandbox.set_quota(ram_mb=64 * 1024, cores=64, instances=20, gigabytes=1000)
        settings = Settings(cloud="sandbox", clouds_yaml=str(sandbox.clouds_yaml),
                            ssh=SSHSettings(use_ssh_config=False), setup=SetupSettings(env_path=sys.prefix),
                            cluster=ClusterSettings(workers=n, head_worker=False, flavor="c1.small",
                                                    scheduler_port=free_port(), dashboard_port=free_port(),
                                                    auto_dashboard_tunnel=False))
        store = KeyStore(base / f"data{n}")
        services = Services(settings, store, base / f"state{n}", base / f"data{n}" / "known_hosts")
        cloud = open_cloud(settings)
        plan = plan_launch("head", flavors=cloud.list_flavors(), images=cloud.list_images(),
                           networks=cloud.list_networks(), quota=cloud.get_quota(), key_name="")
        head = launch_instance(cloud, plan.spec, lambda _l: None, store, wait=True)
        active_at: list[float] = []

        def emit(event: Event) -> None:
            if isinstance(event, ClusterProgress) and "is ACTIVE" in event.message:
                active_at.append(time.monotonic())

        engine = CoreEngine(settings, cloud, emit, services=services)
        engine.lifecycle.poll_s = 0.2
        t0 = time.monotonic()
        summary = await engine.cluster.create(head, n)
        done = time.monotonic()
        assert len(summary.status.workers) == n, summary
        conn = await engine.lifecycle.connect(head)
        res = await conn.run(f"{sys.executable} -c {shlex.quote(textwrap.dedent(ON_CLUSTER))}", check=True)
        t_local, t_cluster = (float(x) for x in str(res.stdout).split())
        return done - t0, done - max(active_at), t_local, t_cluster
    finally:
        if engine is not None:
            await engine.aclose()
        sandbox.stop()


def _warm_installs(on: bool) -> None:
    """`on`: the VMs' installs use this machine's uv and its warm cache (a generous baseline: a fresh VM has
    neither); off: the install as written, as a fresh VM runs it (venv, pip install uv, then every package from
    PyPI into the VM's own empty cache)."""
    import shutil
    import subprocess

    from tui.core.cluster import commands as cmd

    plain = getattr(cmd, "_plain_install_command", cmd.install_command)
    cmd._plain_install_command = plain  # type: ignore[attr-defined]
    if not on:
        cmd.install_command = plain  # type: ignore[assignment]
        return
    uv = Path(shutil.which("uv") or Path(sys.executable).with_name("uv")).resolve()
    cache = subprocess.run([str(uv), "cache", "dir"], capture_output=True, text=True, check=True).stdout.strip()

    def install_command(env: str, python_version: str, reqs: object) -> str:
        return (f"export PATH={shlex.quote(str(uv.parent))}:$PATH UV_CACHE_DIR={shlex.quote(cache)}\n"
                + plain(env, python_version, reqs))  # type: ignore[arg-type]

    cmd.install_command = install_command  # type: ignore[assignment]


async def frozen_vs_install(base: Path) -> dict[str, float]:
    """A running cluster (the head's worker only) grows by one worker instance: with the install (warm cache, then
    as a fresh VM does it), then from the head's frozen image. Seconds from ACTIVE to connected, each."""
    from importlib.metadata import PackageNotFoundError, version

    from tui.core.cloud.launch import plan_launch
    from tui.core.cluster import commands as cmd
    from tui.core.config import ClusterSettings, Settings, SetupSettings, SSHSettings
    from tui.core.engine import CoreEngine, open_cloud
    from tui.core.events import ClusterProgress, Event
    from tui.core.keys import KeyStore
    from tui.core.services import Services, launch_instance
    from tui.sandbox import Delays, Sandbox
    from tui.sandbox.sshhost import free_port

    sandbox = Sandbox(base / "frozen", delays=Delays.fast())
    sandbox.start()
    engine = None
    out: dict[str, float] = {}
    try:
        sandbox.set_quota(ram_mb=64 * 1024, cores=64, instances=20, gigabytes=1000)
        settings = Settings(cloud="sandbox", clouds_yaml=str(sandbox.clouds_yaml),
                            ssh=SSHSettings(use_ssh_config=False), setup=SetupSettings(env_path="~/dask-env"),
                            cluster=ClusterSettings(workers=0, head_worker=True, flavor="c1.small",
                                                    scheduler_port=free_port(), dashboard_port=free_port(),
                                                    auto_dashboard_tunnel=False))
        store = KeyStore(base / "frozen-data")
        services = Services(settings, store, base / "frozen-state", base / "frozen-data" / "known_hosts")
        cloud = open_cloud(settings)
        plan = plan_launch("head", flavors=cloud.list_flavors(), images=cloud.list_images(),
                           networks=cloud.list_networks(), quota=cloud.get_quota(), key_name="")
        head = launch_instance(cloud, plan.spec, lambda _l: None, store, wait=True)
        active_at: list[float] = []

        def emit(event: Event) -> None:
            if isinstance(event, ClusterProgress) and "is ACTIVE" in event.message:
                active_at.append(time.monotonic())
            if isinstance(event, ClusterProgress) and os.environ.get("BENCH_DEBUG"):
                print(f"{time.monotonic():10.2f} {event.instance:10} {event.phase:10} {event.message[:90]}")

        engine = CoreEngine(settings, cloud, emit, services=services)
        engine.lifecycle.poll_s = 0.2
        engine.images.poll_s = 0.2
        local: dict[str, str | None] = {}
        for name in (*cmd.PINNED_PACKAGES, "bokeh"):
            with contextlib.suppress(PackageNotFoundError):
                local[name] = version(name)
        py = ".".join(map(str, sys.version_info[:3]))
        _warm_installs(True)
        conn = await engine.lifecycle.connect(head)
        await conn.run(cmd.install_command("~/dask-env", py, cmd.requirements(local)), check=True)  # the head's
        await engine.lifecycle.create(head.id, 0, dashboard=False)

        async def grow(key: str, from_image: str | None = None) -> None:
            t0 = time.monotonic()
            summary = await engine.lifecycle.scale(head.id, 1, dashboard=False, from_image=from_image)
            out[key], out[f"{key}_total"] = time.monotonic() - active_at[-1], time.monotonic() - t0
            assert not summary.failed and "head-w1" in summary.status.names, summary
            if from_image is None:
                await engine.lifecycle.scale(head.id, 0, dashboard=False)
                while any(i.name == "head-w1" for i in cloud.list_instances()):
                    await asyncio.sleep(0.2)

        await grow("warm")
        _warm_installs(False)
        await grow("cold")
        await grow("frozen", from_image="")
        return out
    finally:
        _warm_installs(False)
        if engine is not None:
            await engine.aclose()
        sandbox.stop()


def main() -> int:
    print(f"Dask cluster: create -> N workers connected (goal for 3: <= {GOAL_S:.0f} s after ACTIVE); reference "
          "compute on the cluster vs one local process, same run")
    ok = True
    only_frozen = "--frozen-only" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        for n in () if only_frozen else (1, 2, 3):
            total, after_active, local, cluster = asyncio.run(one(n, Path(tmp)))
            goal = f"  goal {after_active / GOAL_S:.2f}x of {GOAL_S:.0f} s" if n == 3 else ""
            print(f"N={n}: create {total:5.1f} s, ACTIVE -> connected {after_active:5.1f} s{goal}; compute: local "
                  f"{local:.2f} s, cluster {cluster:.2f} s ({local / cluster:.2f}x faster)")
            if n == 3 and after_active > GOAL_S:
                ok = False
        f = asyncio.run(frozen_vs_install(Path(tmp)))
    ratio = f["frozen"] / f["cold"]
    print(f"scale-up by one worker, ACTIVE -> connected: with the install as a fresh VM runs it {f['cold']:5.1f} s "
          f"(scale {f['cold_total']:.1f} s); with this machine's uv and warm cache {f['warm']:5.1f} s (scale "
          f"{f['warm_total']:.1f} s); from the head's frozen image {f['frozen']:5.1f} s (scale {f['frozen_total']:.1f}"
          f" s, the image made in it): {ratio:.2f}x of the fresh VM's (goal <= {GOAL_FROZEN:.2f}x), "
          f"{f['frozen'] / f['warm']:.2f}x of the warm-cache one")
    ok = ok and ratio <= GOAL_FROZEN
    print("goal met" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
