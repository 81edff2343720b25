"""A Dask cluster's settings (`ClusterConfig`) and what its head remembers about it (`Manifest`, kept in
`~/.cades-tui/dask/cluster.json`: ports, environment, worker names; no secrets), read back with `read_manifest`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tui.core.cluster import commands as cmd
from tui.core.cluster.shell import ConnectFor, run
from tui.core.models import Instance
from tui.core.remote.session import remote_path

MANIFEST = f"{cmd.DASK_DIR}/cluster.json"


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    env: str  # the head's Python environment (e.g. setup's prefix); workers get one at the same path
    scheduler_port: int = cmd.DEFAULT_SCHEDULER_PORT
    dashboard_port: int = cmd.DEFAULT_DASHBOARD_PORT
    nthreads: int = 0  # per worker; 0 = the instance's vCPUs
    memory_limit: str = "auto"
    extra_packages: tuple[str, ...] = ()  # also installed on workers (e.g. what notebooks import)
    install: bool = True  # install dask on the head when missing, and the head's versions on workers


@dataclass(frozen=True, slots=True)
class Manifest:
    """What the head remembers about its cluster (no secrets)."""

    head: str
    scheduler: str
    env: str
    scheduler_port: int
    dashboard_port: int
    workers: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps({"head": self.head, "scheduler": self.scheduler, "env": self.env,
                           "scheduler_port": self.scheduler_port, "dashboard_port": self.dashboard_port,
                           "workers": list(self.workers)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        d = json.loads(text)
        return cls(head=str(d["head"]), scheduler=str(d["scheduler"]), env=str(d["env"]),
                   scheduler_port=int(d["scheduler_port"]), dashboard_port=int(d["dashboard_port"]),
                   workers=tuple(str(w) for w in d.get("workers", ())))

    def config(self, **overrides: Any) -> ClusterConfig:
        return ClusterConfig(env=self.env, scheduler_port=self.scheduler_port, dashboard_port=self.dashboard_port,
                             **overrides)


async def read_manifest(head: Instance, connect: ConnectFor) -> Manifest | None:
    """The cluster the head remembers (None when it has none): build a DaskOverSSH from it to re-attach."""
    conn = await connect(head)
    res = await run(conn, f"cat {remote_path(MANIFEST)}")
    if res.exit_status != 0:
        return None
    try:
        return Manifest.from_json(res.stdout)
    except (ValueError, KeyError, TypeError):
        return None
