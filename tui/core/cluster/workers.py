"""The cloud side of a Dask cluster: its worker instances (`HEAD-wN`: adopted or launched from the head's image,
key pair and network with no public address, then waited for until ACTIVE and reachable through the head) and
its security group (`cades-dask-HEAD`). Blocking cloud calls run in threads; failures are reported per worker
(the rest of the cluster goes on)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import asyncssh

from tui.core.cloud.base import Cloud, CloudError, Conflict, LaunchSpec
from tui.core.cluster.plan import plan_workers, worker_numbers, worker_prefix
from tui.core.errors import ManagerError, Unreachable
from tui.core.events import ClusterPhase
from tui.core.models import Instance
from tui.core.services import launch_instance

SG_PREFIX = "cades-dask-"

Say = Callable[[Instance, str, ClusterPhase, str], None]  # (head, instance, phase, message)


def security_group_name(head: str) -> str:
    return f"{SG_PREFIX}{head}"[:255]


def members(head: Instance, instances: Sequence[Instance]) -> list[Instance]:
    """The head's worker instances (`HEAD-wN`), numbered order."""
    return sorted((i for i in instances if worker_numbers(head.name, [i.name])),
                  key=lambda i: number(head, i.name))


def number(head: Instance, name: str) -> int:
    """N of a worker `HEAD-wN` (0 when it has none)."""
    m = re.search(r"(\d+)$", name[len(worker_prefix(head.name)):])
    return int(m.group(1)) if m else 0


class WorkerInstances:
    """A cluster's instances on `cloud`; `connect` reaches a worker through its head, `say` reports progress."""

    def __init__(self, cloud: Cloud, connect: Callable[[Instance], Awaitable[asyncssh.SSHClientConnection]],
                 say: Say, *, active_timeout: float, ssh_timeout: float, poll_s: float) -> None:
        self.cloud = cloud
        self._connect = connect
        self._say = say
        self.active_timeout = active_timeout
        self.ssh_timeout = ssh_timeout
        self.poll_s = poll_s

    async def grow(self, head: Instance, n: int, flavor: str,
                   image: str = "") -> tuple[list[Instance], tuple[str, ...]]:
        """The head's ACTIVE workers, n of them when everything goes well: existing ones adopted, the missing ones
        launched (private only, the cluster's security group; from `image`, else the head's) and waited for. Also
        what failed, with reasons."""
        instances = await asyncio.to_thread(self.cloud.list_instances)
        existing = members(head, instances)
        failed = [f"{w.name}: {w.status}" for w in existing if w.status not in ("ACTIVE", "BUILD")]
        for line in failed:
            self._say(head, line.split(":")[0], "failed", f"{line} — not used (delete it with `cluster delete`)")
        usable = [w for w in existing if w.status in ("ACTIVE", "BUILD")][:max(n, 0)]
        group = await asyncio.to_thread(self._security_group, head)
        launched: list[Instance] = []
        if n > len(usable):
            specs = await asyncio.to_thread(self._specs, head, n - len(usable), flavor, instances, group, image)
            launches = asyncio.gather(*(asyncio.to_thread(self._launch, head, s) for s in specs),
                                      return_exceptions=True)
            try:
                results = await asyncio.shield(launches)
            except asyncio.CancelledError:  # the requests already sent finish: every launched worker is findable
                await launches
                raise
            for spec, r in zip(specs, results, strict=True):
                if isinstance(r, BaseException):
                    failed.append(f"{spec.name}: {r}")
                    self._say(head, spec.name, "failed", f"launch failed: {r}")
                else:
                    launched.append(r)
        ready, not_ready = await self._wait_active(head, [*usable, *launched])
        reachable, unreachable = await self._wait_ssh(head, ready)
        return reachable, (*failed, *not_ready, *unreachable)

    def _security_group(self, head: Instance) -> str:
        """Blocking: the cluster's group exists and the head is in it (so workers reach its scheduler)."""
        name = security_group_name(head.name)
        self.cloud.create_cluster_security_group(name)
        self.cloud.add_security_group(head.id, name)
        return name

    def _specs(self, head: Instance, n: int, flavor: str, instances: Sequence[Instance],
               group: str, image: str = "") -> list[LaunchSpec]:
        """Blocking: plan n more workers against the remaining quota (refused up front, with the numbers)."""
        plan = plan_workers(head, n, self.cloud.list_flavors(), self.cloud.get_quota(), flavor,
                            existing=[i.name for i in instances])
        for note in plan.notes:
            self._say(head, "", "plan", note)
        network = next((a.network for a in head.addresses if a.kind == "fixed"), "")
        specs = plan.specs(image=image or self.cloud.boot_image(head.id), network=network, key_name=head.key_name,
                           security_groups=(group,))
        return [replace(s, public_ip=False) for s in specs]

    def _launch(self, head: Instance, spec: LaunchSpec) -> Instance:
        return launch_instance(self.cloud, spec, lambda line: self._say(head, spec.name, "launch", line), wait=False)

    async def _wait_active(self, head: Instance, pending: Sequence[Instance]) -> tuple[list[Instance], list[str]]:
        """Poll until each is ACTIVE with its private address; ERROR or the deadline: reported, the rest go on."""
        waiting = {w.id: w for w in pending}
        ready: list[Instance] = []
        failed: list[str] = []
        deadline = time.monotonic() + self.active_timeout
        while waiting:
            now = {i.id: i for i in await asyncio.to_thread(self.cloud.list_instances)}
            for wid, before in list(waiting.items()):
                inst = now.get(wid)
                if inst is None:
                    failed.append(f"{before.name}: deleted while starting")
                elif inst.status == "ACTIVE" and inst.private_ip:
                    ready.append(inst)
                    self._say(head, inst.name, "launch", f"{inst.name} is ACTIVE at {inst.private_ip} (private only)")
                elif inst.status == "ERROR":
                    failed.append(f"{inst.name}: went to ERROR ({inst.fault or 'no reason given'})")
                elif time.monotonic() > deadline:
                    failed.append(f"{inst.name}: not ACTIVE after {self.active_timeout:.0f} s (still {inst.status})")
                else:
                    continue
                waiting.pop(wid)
            if waiting:
                await asyncio.sleep(self.poll_s)
        for line in failed:
            self._say(head, line.split(":")[0], "failed", f"{line}; the cluster starts without it")
        return ready, failed

    async def _wait_ssh(self, head: Instance, workers: Sequence[Instance]) -> tuple[list[Instance], list[str]]:
        """Each worker answers SSH through the head (a fresh VM's sshd starts after ACTIVE): retried while
        unreachable; host-key and login failures are final."""
        async def one(w: Instance) -> str | None:
            deadline = time.monotonic() + self.ssh_timeout
            while True:
                try:
                    await self._connect(w)
                    return None
                except (ManagerError, CloudError) as exc:
                    retry = isinstance(exc, Unreachable | Conflict)  # a fresh VM: sshd not up, not ACTIVE
                    if not retry or time.monotonic() > deadline:
                        return f"{w.name}: {exc}"
                    await asyncio.sleep(self.poll_s)

        results = await asyncio.gather(*(one(w) for w in workers))
        failed = [r for r in results if r is not None]
        for line in failed:
            self._say(head, line.split(":")[0], "failed", f"{line}; the cluster starts without it")
        return [w for w, r in zip(workers, results, strict=True) if r is None], failed
