"""Shelving the head of a Dask cluster and unshelving it, on a sandbox of its own (real OpenSSH hosts, real dask):
the confirmation says the cluster loses its scheduler, the head's power-off ends its sessions, and the unshelve
restarts them (the reattach of the app's start), so a plain Client() on the head computes again."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.core.conftest import Events, launch
from tui.core.cluster import commands as cmd
from tui.core.config import ClusterSettings, JupyterSettings, Settings, SetupSettings, SSHSettings
from tui.core.engine import CoreEngine, open_cloud
from tui.core.keys import KeyStore
from tui.core.models import Instance
from tui.core.services import Services
from tui.sandbox.sshhost import free_port

pytestmark = pytest.mark.timeout(400)


@pytest.fixture
async def head_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[CoreEngine, Instance]]:
    from tui.sandbox import Delays, Sandbox

    monkeypatch.setattr("tui.core.cloud.openstack_cloud.POLL_S", 0.05)
    sandbox = Sandbox(tmp_path / "cloud", delays=Delays.fast())
    sandbox.start()
    engine = None
    try:
        sandbox.set_quota(ram_mb=64 * 1024, cores=64, instances=20, gigabytes=1000)
        settings = Settings(
            cloud="sandbox", clouds_yaml=str(sandbox.clouds_yaml), ssh=SSHSettings(use_ssh_config=False),
            jupyter=JupyterSettings(port=free_port(), local_port=0), setup=SetupSettings(env_path=sys.prefix),
            cluster=ClusterSettings(workers=1, head_worker=False, scheduler_port=free_port(),
                                    dashboard_port=free_port(), flavor="c1.small"))
        keystore = KeyStore(tmp_path / "data")
        services = Services(settings, keystore, tmp_path / "state", tmp_path / "data" / "known_hosts")
        cloud = open_cloud(settings)
        head = launch(cloud, f"head-{uuid.uuid4().hex[:4]}", keystore)
        engine = CoreEngine(settings, cloud, Events(), services=services)
        engine.lifecycle.poll_s = 0.2
        engine.lifecycle.active_timeout = 20.0
        yield engine, head
    finally:
        if engine is not None:
            await engine.aclose()
        sandbox.stop()  # ends every VM, and every process in them


async def _on(engine: CoreEngine, inst: Instance, command: str) -> str:
    conn = await engine.lifecycle.connect(inst)
    res = await asyncio.wait_for(conn.run(command, check=False), 120)
    return str(res.stdout)


async def test_unshelving_a_head_restarts_its_cluster(head_engine: tuple[CoreEngine, Instance]) -> None:
    engine, head = head_engine
    summary = await engine.cluster.create(head, 1)
    assert summary.failed == ()
    asked: list[str] = []

    async def yes(text: str) -> bool:
        asked.append(text)
        return True

    shelved = await engine.shelving.shelve(head, yes)
    assert shelved.status == "SHELVED_OFFLOADED"
    assert f"the Dask cluster it heads loses its scheduler ({head.name}-w1 keeps running and billing" in asked[0]

    back = await engine.shelving.unshelve(shelved)
    assert back.instance.status == "ACTIVE" and back.clusters == (head.name,)
    assert cmd.SCHEDULER_SESSION in await _on(engine, back.instance, "screen -ls || true")  # started again
    out = await _on(engine, back.instance, f"{sys.executable} -c 'from distributed import Client; "
                    "c = Client(timeout=30); c.wait_for_workers(1, timeout=60); print(c.submit(sum, [1, 2]).result())'")
    assert out.split()[-1:] == ["3"], out
