"""The scheduler's status while the cluster computes, on a real distributed scheduler (in-process, plain TCP).

distributed 2026.8.0's own `/json/identity.json` answers HTTP 500 once a worker has run a task since its last
heartbeat (its metrics are keyed by tuples, which JSON cannot encode): the app's status, its scale-down and its
cluster view then failed on every busy cluster. The preload that `scheduler_command` passes serves the identity
with string keys; `fetch_status` reads it there.
"""

from __future__ import annotations

import asyncio

import pytest

from tui.core.cluster.commands import _IDENTITY_PRELOAD
from tui.core.cluster.status import IDENTITY_PATH, fetch_status
from tui.core.jupyter.http import request, tcp_opener

distributed = pytest.importorskip("distributed")


async def _run_until_reported(client: object, scheduler: object) -> None:
    """Run tasks until a heartbeat has brought their metrics to the scheduler (the state that breaks JSON)."""
    for i in range(400):
        await client.submit(sum, [1, 2, i], pure=False)  # type: ignore[attr-defined]
        ws = next(iter(scheduler.workers.values()))  # type: ignore[attr-defined]
        if ws.metrics.get("digests_total_since_heartbeat"):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("no heartbeat brought task metrics in 400 tasks")


async def test_status_answers_while_the_workers_compute() -> None:
    cluster = distributed.LocalCluster(n_workers=1, processes=False, asynchronous=True,
                                       dashboard_address="127.0.0.1:0",
                                       scheduler_kwargs={"preload": [_IDENTITY_PRELOAD]})
    async with cluster, distributed.Client(cluster, asynchronous=True) as client:
        port = cluster.scheduler.http_server.port
        opener = tcp_opener("127.0.0.1", port)
        plain, ours = [], []
        for _ in range(3):
            await _run_until_reported(client, cluster.scheduler)
            plain.append((await request(opener, "GET", IDENTITY_PATH, timeout=5)).status)
            ours.append(len((await fetch_status(opener, port)).workers))
    assert 500 in plain, f"distributed's own route no longer fails ({plain}): the preload may be retired"
    assert ours == [1, 1, 1]
