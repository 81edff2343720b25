"""Only what must listen, listens: every listener of a running Dask cluster's processes (scheduler, nannies,
workers, their HTTP servers) binds the VM's private address or 127.0.0.1 — never a wildcard.

The VMs are real OpenSSH hosts whose private addresses are 127.0.0.N (N > 1), as on the sandbox cloud, so a
listener on the private address, on 127.0.0.1 and on 0.0.0.0 are told apart. Listeners are read with `ss -ltnp`.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import Rig
from tui.conventions import META_SSH_PORT, META_SSH_USER
from tui.core.models import Address, Instance
from tui.sandbox.sshhost import SSHHost

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300),
              pytest.mark.skipif(shutil.which("ss") is None or not Path("/proc").is_dir(), reason="needs ss, /proc")]

WILDCARDS = {"0.0.0.0", "*", "[::]", "::", "[::ffff:0.0.0.0]"}


def listeners() -> list[tuple[str, int, set[int]]]:
    """(local address, port, pids) of every listening TCP socket, from `ss -ltnpH`."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True, timeout=30).stdout
    rows = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        host, _, port = fields[3].rpartition(":")
        pids = {int(p.split(",")[0]) for p in line.split("pid=")[1:]}
        rows.append((host.split("%")[0], int(port), pids))
    return rows


def vm_pids(roots: list[Path]) -> dict[int, Path]:
    """pid -> VM root of every process started inside one of these VMs (their environment carries the marker)."""
    markers = {f"CADES_SANDBOX_VM={root}".encode(): root for root in roots}
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for entry in env:
            if entry in markers:
                found[int(proc.name)] = markers[entry]
    return found


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.fixture
async def private_rig(tmp_path: Path, client_key: Any) -> AsyncIterator[Callable[..., Rig]]:
    """`private_rig("head", "w1")`: VMs whose private address is 127.0.0.N (sshd also on 127.0.0.1, as with a
    floating IP, which is where the rig's SSH connections go)."""
    made: list[Rig] = []
    hosts: list[SSHHost] = []
    octets = random.sample(range(20, 250), 8)

    def make(*names: str) -> Rig:
        instances = {}
        by_name = {}
        for name in names:
            private = f"127.0.0.{octets.pop()}"
            host = SSHHost(tmp_path / name, [client_key.export_public_key().decode()], listen=[private, "127.0.0.1"])
            hosts.append(host)
            host.start()
            by_name[name] = host
            instances[name] = Instance(
                id=f"id-{name}", name=name, status="ACTIVE", vcpus=1,
                addresses=(Address("private", private, "fixed"),),
                metadata=((META_SSH_PORT, str(host.port)), (META_SSH_USER, host.user)))
        r = Rig(by_name, client_key, instances)
        made.append(r)
        return r

    try:
        yield make
    finally:
        for r in made:
            await r.close()
        for host in hosts:
            host.stop()


async def test_no_dask_process_listens_on_a_wildcard(private_rig: Callable[..., Rig]) -> None:
    from tui.sandbox.sshhost import free_port

    r = private_rig("head", "w1")
    privates = {name: inst.private_ip for name, inst in r.instances.items()}
    cluster = r.cluster("head", ["head", "w1"], scheduler_port=free_port([privates["head"]]),
                        dashboard_port=free_port())
    status = await cluster.start(timeout=120)
    assert sorted(status.names) == ["head", "w1"]
    assert status.scheduler == f"tls://{privates['head']}:{cluster.config.scheduler_port}"

    roots = {host.root: name for name, host in r.hosts.items()}
    # Every process in the VMs (the nannies' worker processes are `python -c from multiprocessing...`).
    dask = {pid: roots[root] for pid, root in vm_pids(list(roots)).items()}
    found = [(host, port, pid) for host, port, owners in listeners() for pid in owners if pid in dask]
    print("\n".join(f"{dask[pid]:5} {host}:{port}  {cmdline(pid)[:90]}" for host, port, pid in found))

    wild = [(host, port, cmdline(pid)) for host, port, pid in found if host in WILDCARDS]
    assert not wild, f"listening on a wildcard: {wild}"
    allowed = [(host, port, pid) for host, port, pid in found if host in (privates[dask[pid]], "127.0.0.1")]
    assert allowed == found, f"listening elsewhere than the VM's private address or 127.0.0.1: {found}"
    # Not vacuous: the scheduler, the dashboard, each VM's nanny, worker and worker HTTP server are there.
    assert ("127.0.0.1", cluster.config.dashboard_port) in {(h, p) for h, p, _ in found}
    assert (privates["head"], cluster.config.scheduler_port) in {(h, p) for h, p, _ in found}
    for name in ("head", "w1"):
        assert len([h for h, _, pid in found if dask[pid] == name]) >= 3, (name, found)
    await cluster.stop()
