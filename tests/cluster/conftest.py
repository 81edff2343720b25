"""A rig for cluster tests: real OpenSSH hosts on 127.0.0.1 as the head and workers, the test venv's own Python
(with dask from PyPI) as each VM's environment, real screen, real TLS.

`rig(n_workers)` builds a fresh set of VMs and a DaskOverSSH over them; everything it starts is stopped in the
fixture's teardown (the cluster's sessions, then the SSH hosts, which also end any process left in a VM).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from tui.conventions import META_SSH_PORT, META_SSH_USER
from tui.core.cluster.dask_ssh import ClusterConfig, ClusterProgress, DaskOverSSH
from tui.core.models import Address, Instance

GCM = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
ENV = sys.prefix  # the test venv: dask and distributed are installed there


def instance_for(name: str, host: Any, vcpus: int = 1) -> Instance:
    return Instance(id=f"id-{name}", name=name, status="ACTIVE", vcpus=vcpus,
                    addresses=(Address("private", "127.0.0.1", "fixed"),),
                    metadata=((META_SSH_PORT, str(host.port)), (META_SSH_USER, host.user)))


@dataclass
class Rig:
    hosts: dict[str, Any]
    client_key: Any
    instances: dict[str, Instance] = field(default_factory=dict)
    conns: dict[str, asyncssh.SSHClientConnection] = field(default_factory=dict)
    events: list[ClusterProgress] = field(default_factory=list)
    clusters: list[DaskOverSSH] = field(default_factory=list)

    async def connect(self, instance: Instance) -> asyncssh.SSHClientConnection:
        conn = self.conns.get(instance.name)
        if conn is None or conn.is_closed():
            host = self.hosts[instance.name]
            conn = await asyncssh.connect(
                "127.0.0.1", host.port, username=host.user, client_keys=[self.client_key],
                known_hosts=asyncssh.import_known_hosts(host.known_hosts_line()),
                encryption_algs=GCM, config=[], agent_path=None, connect_timeout=5)
            self.conns[instance.name] = conn
        return conn

    def cluster(self, head: str, workers: list[str], **config: Any) -> DaskOverSSH:
        from tui.sandbox.sshhost import free_port

        config.setdefault("scheduler_port", free_port())
        config.setdefault("dashboard_port", free_port())
        cluster = DaskOverSSH(self.instances[head], [self.instances[w] for w in workers], self.connect,
                              ClusterConfig(env=ENV, **config), progress=self.events.append)
        self.clusters.append(cluster)
        return cluster

    async def run(self, name: str, command: str, timeout: float = 60) -> asyncssh.SSHCompletedProcess:
        conn = await self.connect(self.instances[name])
        return await asyncio.wait_for(conn.run(command, check=False), timeout)

    async def close(self) -> None:
        for cluster in self.clusters:
            try:
                await asyncio.wait_for(cluster.stop(), 30)
            except Exception as exc:  # teardown: report, go on
                print(f"cluster stop failed: {exc!r}")
        for conn in self.conns.values():
            conn.close()


@pytest.fixture
async def rig(tmp_path: Path, client_key: Any) -> AsyncIterator[Callable[..., Rig]]:
    """`rig("head", "w1", ...)`: fresh SSH hosts of those names (instances with 127.0.0.1 as private address)."""
    from tui.sandbox.sshhost import SSHHost

    made: list[Rig] = []
    started: list[Any] = []

    def make(*names: str) -> Rig:
        hosts = {}
        for name in names:
            host = SSHHost(tmp_path / name, [client_key.export_public_key().decode()])
            started.append(host)
            host.start()
            hosts[name] = host
        r = Rig(hosts, client_key, {n: instance_for(n, h) for n, h in hosts.items()})
        made.append(r)
        return r

    try:
        yield make
    finally:
        for r in made:
            await r.close()
        for host in started:
            host.stop()


PY = f"{ENV}/bin/python"
