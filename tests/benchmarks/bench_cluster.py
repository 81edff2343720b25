"""Dask cluster: `cluster create` → N workers connected, N = 1, 2, 3, and a reference computation on the cluster vs
the same computation in one local process (same run).

Runs the real code path (`ClusterLifecycle.create` on a CoreEngine) against a sandbox cloud of its own: instances are
launched through the API, reached through the head as jump host, dask comes from the local venv (every sandbox VM's
environment, a warm package cache). Goal (issue 10): ≤ 15 s from the workers being ACTIVE to all of them connected,
for 3 workers. Exits 1 when the goal is missed.

    .venv/bin/python tests/benchmarks/bench_cluster.py
"""

from __future__ import annotations

import asyncio
import shlex
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

GOAL_S = 15.0

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
        engine.cluster.poll_s = 0.2
        t0 = time.monotonic()
        summary = await engine.cluster_create(head, n)
        done = time.monotonic()
        assert len(summary.status.workers) == n, summary
        conn = await engine.cluster.connect(head)
        res = await conn.run(f"{sys.executable} -c {shlex.quote(textwrap.dedent(ON_CLUSTER))}", check=True)
        t_local, t_cluster = (float(x) for x in str(res.stdout).split())
        return done - t0, done - max(active_at), t_local, t_cluster
    finally:
        if engine is not None:
            await engine.aclose()
        sandbox.stop()


def main() -> int:
    print(f"Dask cluster: create -> N workers connected (goal for 3: <= {GOAL_S:.0f} s after ACTIVE); reference "
          "compute on the cluster vs one local process, same run")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 2, 3):
            total, after_active, local, cluster = asyncio.run(one(n, Path(tmp)))
            goal = f"  goal {after_active / GOAL_S:.2f}x of {GOAL_S:.0f} s" if n == 3 else ""
            print(f"N={n}: create {total:5.1f} s, ACTIVE -> connected {after_active:5.1f} s{goal}; compute: local "
                  f"{local:.2f} s, cluster {cluster:.2f} s ({local / cluster:.2f}x faster)")
            if n == 3 and after_active > GOAL_S:
                ok = False
    print("goal met" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
