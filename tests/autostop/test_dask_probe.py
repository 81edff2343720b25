"""The watchdog's Dask probe against a real distributed scheduler (in-process, its dashboard on 127.0.0.1, the app's
identity preload): a task running keeps the VM; none, and nothing is said. The head's manifest names the port."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tui.core.autostop import watchdog
from tui.core.cluster.commands import _IDENTITY_PRELOAD

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow  # a scheduler and a worker in threads, ~10 s: not for the fast tier


async def test_a_running_dask_task_keeps_the_vm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watchdog, "HOME", str(tmp_path))
    cluster = distributed.LocalCluster(n_workers=1, processes=False, asynchronous=True,
                                       dashboard_address="127.0.0.1:0",
                                       scheduler_kwargs={"preload": [_IDENTITY_PRELOAD]})
    async with cluster, distributed.Client(cluster, asynchronous=True) as client:
        manifest = tmp_path / ".cades-tui" / "dask" / "cluster.json"
        manifest.parent.mkdir(parents=True)
        manifest.write_text(json.dumps({"dashboard_port": cluster.scheduler.http_server.port}))
        assert await asyncio.to_thread(watchdog.dask_activity, time.time()) is None  # no task: nothing keeps it
        task = client.submit(time.sleep, 8, pure=False)  # a thread cannot be cut short: the end waits for it
        seen = None
        for _ in range(70):  # the worker's heartbeat brings its task counts to the scheduler
            seen = await asyncio.to_thread(watchdog.dask_activity, time.time())
            if seen is not None:
                break
            await asyncio.sleep(0.1)
        assert seen is not None and "1 Dask task(s) running" in seen[1]
        await client.cancel(task)
