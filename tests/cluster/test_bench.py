"""Measurements, not checks: run with CADES_BENCH=1 (`pytest tests/cluster/test_bench.py -s`).

- time from `start()` to N workers connected, N = 1, 2, 3 (fresh VMs each time);
- a reference computation on the cluster (through a plain Client() on the head) vs the same in one local process.
"""

from __future__ import annotations

import os
import shlex
import textwrap
import time
from typing import Any

import pytest

from tests.cluster.conftest import PY

pytestmark = [pytest.mark.skipif(not os.environ.get("CADES_BENCH"), reason="set CADES_BENCH=1 to measure"),
              pytest.mark.timeout(900)]

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
    t = time.perf_counter(); c.gather(c.map(lambda x: x, range(1000))); t_tiny = time.perf_counter() - t
assert remote == local
print(f"local {t_local:.2f} s, cluster {t_cluster:.2f} s, 1000 tiny tasks {t_tiny:.2f} s")
"""


@pytest.mark.parametrize("n", [1, 2, 3])
async def test_time_to_n_workers(rig: Any, n: int) -> None:
    workers = [f"w{i}" for i in range(1, n + 1)]
    r = rig("head", *workers)
    cluster = r.cluster("head", workers)
    t0 = time.monotonic()
    status = await cluster.start(timeout=180)
    elapsed = time.monotonic() - t0
    assert len(status.workers) == n
    res = await r.run("head", f"{PY} -c {shlex.quote(textwrap.dedent(ON_CLUSTER))}", timeout=600)
    assert res.exit_status == 0, res.stderr
    print(f"\nN={n}: start → {n} connected in {elapsed:.1f} s; {str(res.stdout).strip()}")
