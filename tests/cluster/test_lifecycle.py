"""The cluster end to end on the sandbox cloud: real instances (OpenSSH hosts), workers with private addresses only
reached through the head, real screen sessions, real dask/distributed from PyPI (the test venv is every VM's
environment), real TLS; the engine the app and the CLI drive.

One cloud for this module (its own sandbox, with room in its quota for a head and three workers).
"""

from __future__ import annotations

import asyncio
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.core.conftest import Events, launch
from tui.core.api import ManagerError
from tui.core.cloud.base import Cloud
from tui.core.cluster import commands as cmd
from tui.core.cluster.lifecycle import DASHBOARD, security_group_name
from tui.core.config import ClusterSettings, JupyterSettings, Settings, SetupSettings, SSHSettings
from tui.core.engine import CoreEngine, open_cloud
from tui.core.events import ClusterProgress, ConnectionState, IdleNudge
from tui.core.jupyter.idle import Tier
from tui.core.keys import KeyStore
from tui.core.models import Instance
from tui.core.services import Services
from tui.sandbox.sshhost import free_port

pytestmark = pytest.mark.timeout(400)


class Rig:
    def __init__(self, sandbox: Any, cloud: Cloud, settings: Settings, services: Services, head: Instance) -> None:
        self.sandbox, self.cloud, self.settings, self.services, self.head = sandbox, cloud, settings, services, head
        self.engines: list[CoreEngine] = []

    def engine(self, events: Events) -> CoreEngine:
        engine = CoreEngine(self.settings, self.cloud, events, services=self.services)
        engine.lifecycle.poll_s = 0.2
        engine.lifecycle.active_timeout = 20.0
        self.engines.append(engine)
        return engine

    def worker_names(self) -> list[str]:
        return sorted(i.name for i in self.cloud.list_instances() if i.name.startswith(f"{self.head.name}-w"))


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    from tui.sandbox import Delays, Sandbox

    base = tmp_path_factory.mktemp("cluster-svc")
    sandbox = Sandbox(base / "cloud", delays=Delays.fast())
    sandbox.start()
    sandbox.set_quota(ram_mb=64 * 1024, cores=64, instances=20, gigabytes=1000)
    settings = Settings(
        cloud="sandbox", clouds_yaml=str(sandbox.clouds_yaml), ssh=SSHSettings(use_ssh_config=False),
        jupyter=JupyterSettings(port=free_port(), local_port=0),
        setup=SetupSettings(env_path=sys.prefix),  # every VM's environment: the test venv, dask from PyPI in it
        cluster=ClusterSettings(workers=2, head_worker=False, scheduler_port=free_port(),
                                dashboard_port=free_port(), flavor="c1.small"),
    )
    app_data = base / "data"
    keystore = KeyStore(app_data)
    services = Services(settings, keystore, base / "state", app_data / "known_hosts")
    cloud = open_cloud(settings)
    head = launch(cloud, f"head-{uuid.uuid4().hex[:4]}", keystore)
    r = Rig(sandbox, cloud, settings, services, head)
    try:
        yield r
    finally:
        sandbox.stop()  # ends every VM, and every process in them


@pytest.fixture(autouse=True)
async def _close_engines(rig: Rig) -> AsyncIterator[None]:
    """Each test's engines are closed in its own event loop (their tunnels and connections live there)."""
    try:
        yield
    finally:
        for engine in rig.engines:
            try:
                await engine.aclose()
            except Exception as exc:  # teardown: report, go on
                print(f"engine close: {exc!r}")
        rig.engines.clear()


def _get_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=20) as resp:
        return int(resp.status)


async def _on(engine: CoreEngine, inst: Instance, command: str, timeout: float = 60) -> str:
    conn = await engine.lifecycle.connect(inst)
    res = await asyncio.wait_for(conn.run(command, check=False), timeout)
    assert res.exit_status == 0, (command, res.stdout, res.stderr)
    return str(res.stdout)


async def test_create_use_reattach_scale_delete(rig: Rig) -> None:
    events = Events()
    engine = rig.engine(events)
    head = rig.head

    summary = await engine.cluster.create(head, 2)
    names = [f"{head.name}-w1", f"{head.name}-w2"]
    assert sorted(summary.status.names) == names and summary.failed == ()
    workers = [rig.cloud.get_instance(n) for n in names]

    # Private only, in the cluster's group alone; the head joined that group too.
    group = security_group_name(head.name)
    for w in workers:
        assert w.public_ip == "" and w.ip == w.private_ip
    servers = {s.name: s for s in rig.cloud.conn.compute.servers()}  # type: ignore[attr-defined]
    assert [g["name"] for g in servers[names[0]].security_groups] == [group]
    assert group in [g["name"] for g in servers[head.name].security_groups]

    # The app reached each worker through the head: the head's sshd logged the forwarded connections.
    log = rig.sandbox.sshd_log_path(head.id).read_text()
    for w in workers:
        assert f"target {w.private_ip} port {w.ssh_port}" in log
        assert "direct-tcpip" not in rig.sandbox.sshd_log_path(w.id).read_text()

    # A plain Client() on the head (the dask config names the scheduler and the TLS files) computes.
    out = await _on(engine, head, f"{sys.executable} -c "
                    "'from distributed import Client; c = Client(timeout=20); "
                    "print(len(c.scheduler_info()[\"workers\"])); print(c.submit(sum, [1, 2, 3]).result())'")
    assert out.split() == ["2", "6"]

    # The dashboard through the tunnel.
    assert summary.dashboard.startswith("http://127.0.0.1:") and summary.dashboard.endswith("/status")
    assert await asyncio.to_thread(_get_status, summary.dashboard) == 200
    assert engine.manager.tunnel_info(head.id, DASHBOARD) is not None

    # Quit the app (the cluster keeps running) and start again: found, nothing started twice.
    await engine.aclose()
    events2 = Events()
    engine2 = rig.engine(events2)
    instances = rig.cloud.list_instances()
    await engine2.fleet.reattach(instances)
    found = [e.message for e in events2.of(ClusterProgress) if e.phase == "found"]
    assert found == [f"scheduler running; workers running: {', '.join(names)}; missing: none"]
    assert not [e for e in events2.of(ClusterProgress) if e.phase in ("scheduler", "worker")]
    assert engine2.manager.tunnel_info(head.id, DASHBOARD) is not None  # re-opened: it was on record

    # One worker's session ends: re-attaching restarts only that one.
    await _on(engine2, workers[0], f"screen -S {cmd.WORKER_SESSION} -X quit")
    result = await engine2.lifecycle.find(head)
    assert result is not None and result.restarted == (names[0],) and not result.scheduler_restarted
    state = await engine2.cluster.status(head)
    deadline = asyncio.get_running_loop().time() + 60
    while state.status is None or len(state.status.workers) < 2:
        assert asyncio.get_running_loop().time() < deadline, state
        await asyncio.sleep(0.5)
        state = await engine2.cluster.status(head)

    # Scale down to one: asked first (what will be lost), then w2 retired and deleted.
    asked: list[str] = []

    async def yes(text: str) -> bool:
        asked.append(text)
        return True

    summary = await engine2.cluster.scale(head, 1, confirm=yes)
    assert summary.removed == (names[1],) and summary.status.names == (names[0],)
    assert f"Retire and delete 1 worker instance: {names[1]}" in asked[0], asked[0]
    assert f"1 volume (boot volume of {names[1]}, 16 GB)" in asked[0], asked[0]
    assert rig.worker_names() == [names[0]]

    # Delete: no worker instance, no session, no security group; the head stays.
    async def no(text: str) -> bool:
        return False

    with pytest.raises(ManagerError, match="cancelled"):
        await engine2.cluster.delete(head, confirm=no)
    assert rig.worker_names() == [names[0]]
    deleted = await engine2.cluster.delete(head, confirm=yes)
    assert deleted == [names[0]] and rig.worker_names() == []
    said = asked[-1]  # names each volume with its server; no Jupyter runs on the head, so none is claimed
    assert f"1 worker instance ({names[0]})" in said and f"boot volume of {names[0]}, 16 GB" in said, said
    assert "Jupyter" not in said and f"{head.name} stays" in said, said
    assert rig.cloud.conn.network.find_security_group(group) is None  # type: ignore[attr-defined]
    sessions = await _on(engine2, head, "screen -ls || true")
    assert cmd.SCHEDULER_SESSION not in sessions
    assert engine2.manager.tunnel_info(head.id, DASHBOARD) is None
    assert rig.cloud.get_instance(head.id).status == "ACTIVE"
    # Deliberate: the scale-down and the delete closed their connections first, so none was "lost".
    lost = [e for e in events2.of(ConnectionState) if e.state == "lost"]
    assert lost == [], lost


async def test_a_worker_that_never_becomes_active_is_reported_and_the_rest_start(rig: Rig) -> None:
    events = Events()
    engine = rig.engine(events)
    rig.sandbox.faults.never_active = f"{rig.head.name}-w2"
    rig.sandbox.faults.never_active_status = "ERROR"
    try:
        summary = await engine.cluster.create(rig.head, 2)
    finally:
        rig.sandbox.faults.never_active = ""
    w1, w2 = f"{rig.head.name}-w1", f"{rig.head.name}-w2"
    assert summary.status.names == (w1,)
    assert len(summary.failed) == 1 and summary.failed[0].startswith(f"{w2}: went to ERROR")
    failed = [e for e in events.of(ClusterProgress) if e.phase == "failed"]
    assert failed and failed[0].instance == w2 and failed[0].head_id == rig.head.id

    # Idle: no task since the first check -> nudged to scale down, later to delete (thresholds in hours).
    now = 1_000_000.0
    assert await engine.lifecycle.check_idle(rig.head, now) is None
    cs = rig.settings.cluster
    assert await engine.lifecycle.check_idle(rig.head, now + cs.idle_scale_down_hours * 3600 + 1) is Tier.RESIZE
    assert await engine.lifecycle.check_idle(rig.head, now + cs.idle_delete_hours * 3600 + 1) is Tier.DELETE
    nudges = [e for e in events.of(IdleNudge) if e.instance_id == rig.head.id]
    assert [n.tier for n in nudges] == [Tier.RESIZE, Tier.DELETE] and "no task" in nudges[0].message
    assert nudges[0].key == "k"  # the key that opens the cluster screen
    checked = await engine.fleet.check_idle(rig.cloud.list_instances(), datetime.now(UTC))  # the app's idle round
    assert f"{rig.head.name} (cluster)" in checked

    await engine.cluster.delete(rig.head)  # w2 in ERROR goes too
    assert rig.worker_names() == []


async def test_too_many_workers_are_refused_up_front(rig: Rig) -> None:
    """Refused before anything happens on the head: no dask probed or installed, no CA made, no instance."""
    events = Events()
    engine = rig.engine(events)
    rig.sandbox.set_quota(instances=3)
    try:
        with pytest.raises(ManagerError, match=r"do not fit the remaining quota: .*need 5 instances"):
            await engine.cluster.create(rig.head, 5)
    finally:
        rig.sandbox.set_quota(instances=20)
    assert rig.worker_names() == []
    assert [e.phase for e in events.of(ClusterProgress)] == []  # nothing probed, installed or made first
