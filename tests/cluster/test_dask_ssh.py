"""DaskOverSSH (dask over SSH) against real parts: OpenSSH hosts on loopback, screen, dask from PyPI, mutual TLS."""

from __future__ import annotations

import asyncio
import shlex
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from typing import Any

import pytest

from tests.cluster.conftest import PY
from tui.core.cluster import commands as cmd
from tui.core.cluster.dask_ssh import PortTaken, read_manifest
from tui.core.jupyter.http import request, ssh_opener
from tui.core.remote.session import RemoteSession

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def dask_processes(r: Any) -> list[str]:
    """Command lines of the processes still running inside the rig's VMs that mention dask."""
    from pathlib import Path

    markers = {f"CADES_SANDBOX_VM={h.root}".encode() for h in r.hosts.values()}
    found = []
    for proc in Path("/proc").iterdir():
        try:
            env = set((proc / "environ").read_bytes().split(b"\0"))
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if env & markers and ("dask" in cmdline or "distributed" in cmdline):
            found.append(cmdline)
    return found


def py(code: str) -> str:
    return f"{PY} -c {shlex.quote(textwrap.dedent(code))}"


async def test_scheduler_and_two_workers_over_tls(rig: Any) -> None:
    r = rig("head", "w1", "w2")
    cluster = r.cluster("head", ["w1", "w2"])
    t0 = time.monotonic()
    status = await cluster.start(timeout=120)
    print(f"start → 2 workers connected: {time.monotonic() - t0:.1f} s")
    assert status.names == ("w1", "w2")
    assert status.scheduler == cluster.scheduler_address == f"tls://127.0.0.1:{cluster.config.scheduler_port}"
    assert all(w.threads == 1 and w.status == "running" and w.address.startswith("tls://") for w in status.workers)
    phases = {(e.instance, e.phase) for e in r.events}
    assert ("w1", "connected") in phases and ("w2", "connected") in phases

    # A plain Client() in a notebook on the head: the written config names the scheduler and the TLS files.
    res = await r.run("head", py("""
        from distributed import Client
        with Client(timeout=20) as c:
            names = sorted(w["name"] for w in c.scheduler_info()["workers"].values())
            total = c.submit(sum, c.map(lambda x: x * x, range(100))).result()
            print(names, total, c.scheduler.address)
    """))
    assert res.exit_status == 0, res.stderr
    assert res.stdout.split("]")[0] + "]" == "['w1', 'w2']"
    assert f" {sum(x * x for x in range(100))} tls://" in res.stdout

    # The files are private; the key never travelled on a command line.
    res = await r.run("head", f"stat -c '%a %n' {cmd.remote_path(cmd.DASK_DIR)} {cmd.remote_path(cmd.DASK_DIR)}/*")
    modes = dict(line.split(" ", 1)[::-1] for line in res.stdout.split("\n") if line)
    assert modes[next(k for k in modes if k.endswith("/dask"))] == "700"
    assert all(modes[k] == "600" for k in modes if k.endswith((".key", ".pem", "cluster.json")))

    # The dashboard answers on the head's 127.0.0.1 (through an SSH channel, as a tunnel would).
    head_conn = await r.connect(r.instances["head"])
    resp = await request(ssh_opener(head_conn, "127.0.0.1", cluster.config.dashboard_port), "GET", "/status")
    assert resp.status == 200

    # Plain TCP to the scheduler is refused, and so is TLS with certificates of another CA.
    port = cluster.config.scheduler_port
    plain = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from distributed import Client
        try:
            Client("tcp://127.0.0.1:{port}", timeout=4)
        except (OSError, TimeoutError) as exc:
            print("refused", type(exc).__name__)
        else:
            print("CONNECTED")
    """)], capture_output=True, text=True, timeout=60)
    assert plain.stdout.startswith("refused"), plain.stdout + plain.stderr
    other_ca = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from distributed import Client
        from distributed.security import Security
        try:
            Client("tls://127.0.0.1:{port}", security=Security.temporary(), timeout=4)
        except (OSError, TimeoutError) as exc:
            print("refused", type(exc).__name__)
        else:
            print("CONNECTED")
    """)], capture_output=True, text=True, timeout=60)
    assert other_ca.stdout.startswith("refused"), other_ca.stdout + other_ca.stderr

    # start() again adopts every running session (nothing doubled).
    again = await cluster.start(timeout=30)
    assert [w.address for w in again.workers] == [w.address for w in status.workers]
    manifest = await read_manifest(r.instances["head"], r.connect)
    assert manifest is not None and manifest.workers == ("w1", "w2") and manifest.scheduler_port == port

    assert len(dask_processes(r)) >= 5  # scheduler, 2 nannies and their 2 workers
    await cluster.stop()
    for name in ("head", "w1", "w2"):
        session = RemoteSession(await r.connect(r.instances[name]))
        assert await session.list() == []
    deadline = time.monotonic() + 15  # the nannies' worker processes end with their sessions
    while left := dask_processes(r):
        assert time.monotonic() < deadline, left
        await asyncio.sleep(0.2)
    res = await r.run("head", f"ls {cmd.remote_path(cmd.DASK_DIR)}; test -e {cmd.remote_path(cmd.CLIENT_CONFIG)}")
    assert ".key" not in res.stdout and res.exit_status != 0


async def test_find_restarts_only_the_missing_worker(rig: Any) -> None:
    r = rig("head", "w1", "w2")
    cluster = r.cluster("head", ["w1", "w2"])
    before = {w.name: w.address for w in (await cluster.start(timeout=120)).workers}
    await RemoteSession(await r.connect(r.instances["w1"])).kill(cmd.WORKER_SESSION)
    deadline = time.monotonic() + 30
    while "w1" in (await cluster.status()).names:
        assert time.monotonic() < deadline, "the scheduler kept the killed worker"
        await asyncio.sleep(0.3)

    found = await cluster.find(restart=False)
    assert found.scheduler and found.running == ("w2",) and found.missing == ("w1",)

    found = await cluster.find()
    assert found.restarted == ("w1",) and not found.scheduler_restarted
    after = {w.name: w.address for w in (await cluster.status()).workers}
    assert set(after) == {"w1", "w2"}
    assert after["w2"] == before["w2"]  # untouched
    assert after["w1"] != before["w1"]  # a new process


async def test_scale_down_keeps_held_data(rig: Any) -> None:
    r = rig("head", "w1", "w2")
    cluster = r.cluster("head", ["w1", "w2"])
    status = await cluster.start(timeout=120)
    w1 = status.worker("w1")
    assert w1 is not None
    head_conn = await r.connect(r.instances["head"])
    script = py(f"""
        import sys
        from distributed import Client
        c = Client(timeout=20)
        data = c.scatter(list(range(1000)), workers=[{w1.address!r}])
        total = c.submit(sum, data, workers=[{w1.address!r}], pure=False)
        total.result()
        print("held", sorted(c.who_has([data, total]).values()), flush=True)
        sys.stdin.readline()
        print("after", len(c.gather(data)), total.result(), sorted(c.who_has([data, total]).values()), flush=True)
        c.close()
    """)
    async with head_conn.create_process(script) as proc:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.startswith("held") and w1.address in line, line + await proc.stderr.read()
        after = await cluster.scale_down(["w1"])
        assert any(e.phase == "retire" and "w1" in e.message for e in r.events)  # retired, not just stopped
        assert after.names == ("w2",)
        assert cluster.worker_names == ("w2",)
        proc.stdin.write("go\n")
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        w2 = after.worker("w2")
        assert w2 is not None
        assert line.startswith(f"after 1000 {sum(range(1000))} ") and w2.address in line, (
            line + await asyncio.wait_for(proc.stderr.read(), 30))
        proc.stdin.write_eof()
    assert not await RemoteSession(await r.connect(r.instances["w1"])).is_running(cmd.WORKER_SESSION)
    manifest = await read_manifest(r.instances["head"], r.connect)
    assert manifest is not None and manifest.workers == ("w2",)


async def test_a_taken_scheduler_port_is_reported_as_such(rig: Any) -> None:
    r = rig("head", "w1")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cluster = r.cluster("head", ["w1"], scheduler_port=busy.getsockname()[1])
        with pytest.raises(PortTaken, match=r"port \d+ \(scheduler\) on head .* already in use"):
            await cluster.start(timeout=30)
    for name, session_name in (("head", cmd.SCHEDULER_SESSION), ("w1", cmd.WORKER_SESSION)):
        assert not await RemoteSession(await r.connect(r.instances[name])).is_running(session_name)


async def test_a_worker_without_dask_gets_the_heads_versions(rig: Any) -> None:
    """The worker's environment is missing: it is created and given the head's Python minor version and the
    head's dask/distributed (and serialization packages) pinned, from PyPI, with uv as setup does."""
    r = rig("head", "w1")
    await r.run("head", f"ln -s {shlex.quote(sys.prefix)} ~/env")
    cluster = r.cluster("head", ["w1"])
    cluster.config = replace(cluster.config, env="~/env")
    t0 = time.monotonic()
    status = await cluster.start(timeout=120, install_timeout=600)
    print(f"install + start → 1 worker connected: {time.monotonic() - t0:.1f} s")
    assert status.names == ("w1",)
    assert any(e.instance == "w1" and e.phase == "install" for e in r.events)
    res = await r.run("w1", "~/env/bin/python -c 'import distributed, sys; print(distributed.__version__)'")
    import distributed

    assert res.stdout.strip() == distributed.__version__


async def test_the_head_can_run_a_worker_too(rig: Any) -> None:
    r = rig("head", "w1")
    cluster = r.cluster("head", ["head", "w1"], memory_limit="0.5")
    status = await cluster.start(timeout=120)
    assert status.names == ("head", "w1")
    assert all(w.memory_limit > 0 for w in status.workers)
    assert (await cluster.scale_down(["head"])).names == ("w1",)
    res = await r.run("head", py("""
        from distributed import Client
        with Client(timeout=20) as c:
            print(c.submit(lambda: 6 * 7).result())
    """))
    assert res.stdout.strip() == "42", res.stderr  # the head's TLS files stayed for notebooks
