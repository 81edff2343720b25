"""Run a Dask cluster (dask.distributed) across instances over SSH: one scheduler on the head, one worker per
worker instance, each in a detached screen (or tmux) session that outlives the app. No UI here.

`DaskOverSSH` gets an async `connect(instance)` provider (the manager's pool, jump hosts and pinned host keys
included) and never closes what it gets. Secure by default: mutual TLS only (a fresh CA per cluster), the
scheduler and workers listen on private addresses, the dashboard on the head's 127.0.0.1 only.

Progress is reported to a plain callable taking a `ClusterProgress`; failures raise `ClusterError` (with a
hint). A manifest on the head (`~/.cades-tui/dask/cluster.json`: ports, environment, worker names) lets a later
run re-attach with `read_manifest` without the app saving anything about the cluster.

`DaskOverSSH` orchestrates (start, scale, wait, find, stop); its parts, re-exported here: `members` (the steps on
one instance: the head's environment, CA and scheduler; a worker's versions, TLS files and session), `manifest`
(`ClusterConfig`, `Manifest`, `read_manifest`), `shell` (one remote command), `errors` (`ClusterError` and kinds).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import asyncssh

from tui.core.cluster.errors import (
    ClusterError,
    DaskMissing,
    PortTaken,
    StartTimeout,
    VersionMismatch,
    first_error,
    q_names,
)
from tui.core.cluster.manifest import MANIFEST, ClusterConfig, Manifest, read_manifest
from tui.core.cluster.members import Members
from tui.core.cluster.shell import ConnectFor, Probe, write
from tui.core.cluster.status import ClusterStatus, StatusError, fetch_status
from tui.core.events import ClusterPhase as Phase
from tui.core.events import ClusterProgress
from tui.core.jupyter.http import ssh_opener
from tui.core.models import Instance

__all__ = [
    "MANIFEST",
    "ClusterConfig",
    "ClusterError",
    "ClusterProgress",
    "ConnectFor",
    "DaskMissing",
    "DaskOverSSH",
    "Found",
    "Manifest",
    "PortTaken",
    "Probe",
    "Progress",
    "StartTimeout",
    "VersionMismatch",
    "private_address",
    "read_manifest",
]

Progress = Callable[[ClusterProgress], None]


@dataclass(frozen=True, slots=True)
class Found:
    """Which sessions run (after `find`), and which of the missing ones were started again."""

    scheduler: bool
    running: tuple[str, ...]
    missing: tuple[str, ...]
    restarted: tuple[str, ...] = ()
    scheduler_restarted: bool = False


def private_address(instance: Instance) -> str:
    """The instance's private (fixed) IPv4 address; the scheduler and workers listen there only."""
    for a in instance.addresses:
        if a.kind == "fixed" and a.version == 4:
            return a.addr
    return instance.ip


class DaskOverSSH:
    """One cluster: `head` runs the scheduler, each of `workers` one worker. See the module docstring.

    The head may be one of `workers` too (settings `cluster.head_worker`): it then runs both sessions.
    `ClusterConfig.memory_limit` takes what `dask worker --memory-limit` does: "auto", "4GiB", or a fraction of the
    instance's RAM such as "0.9" (settings `cluster.memory_fraction`)."""

    def __init__(self, head: Instance, workers: Sequence[Instance], connect: ConnectFor, config: ClusterConfig,
                 *, progress: Progress | None = None,
                 address_of: Callable[[Instance], str] = private_address) -> None:
        self.head = head
        self.workers: list[Instance] = list(workers)
        self._connect = connect
        self._progress = progress or (lambda _p: None)
        self._members = Members(head, connect, config, self._emit, address_of)

    # -- what the caller sees ---------------------------------------------------------------------------

    @property
    def config(self) -> ClusterConfig:
        return self._members.config

    @config.setter
    def config(self, config: ClusterConfig) -> None:
        self._members.config = config

    @property
    def scheduler_address(self) -> str:
        return self._members.scheduler_args().address

    @property
    def worker_names(self) -> tuple[str, ...]:
        return tuple(w.name for w in self.workers)

    def manifest(self) -> Manifest:
        return Manifest(head=self.head.name, scheduler=self.scheduler_address, env=self.config.env,
                        scheduler_port=self.config.scheduler_port, dashboard_port=self.config.dashboard_port,
                        workers=self.worker_names)

    async def session_running(self, worker: Instance) -> bool:
        """Whether the worker's session runs on `worker` (asked over SSH)."""
        return await self._members.worker_running(worker)

    async def status(self, timeout: float = 5.0) -> ClusterStatus:
        """The scheduler's view, through an SSH channel to the head's dashboard port (no tunnel needed).
        StatusError when the scheduler does not answer."""
        conn = await self._connect(self.head)
        return await fetch_status(ssh_opener(conn, "127.0.0.1", self.config.dashboard_port),
                                  self.config.dashboard_port, timeout=timeout)

    # -- start / scale up -------------------------------------------------------------------------------

    async def prepare(self, *, install_timeout: float = 900.0) -> None:
        """Before any worker instance is launched: the head's Python and dask (installed when missing), the
        cluster's CA, and the scheduler's and dashboard's ports free (PortTaken when not). Fails fast and cheap."""
        conn = await self._connect(self.head)
        await self._members.prepare_head(conn, install_timeout)
        await self._members.check_ports(conn)

    async def start(self, *, timeout: float = 180.0, install_timeout: float = 900.0) -> ClusterStatus:
        """Make the cluster run: check the head's versions, bring each worker's environment to the same versions,
        hand out TLS material, start the scheduler and every worker in parallel (running sessions are adopted,
        never doubled), then wait until every worker is connected. Idempotent."""
        t0 = time.monotonic()
        head_conn = await self._connect(self.head)
        await self._members.prepare_head(head_conn, install_timeout)
        await self._members.check_ports(head_conn)  # before any worker starts: a taken port is reported as that
        results = await asyncio.gather(*self._start_all(head_conn, self.workers, install_timeout),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise first_error(errors)
        status = await self.wait_for_workers(self.worker_names, timeout=max(1.0, timeout - (time.monotonic() - t0)))
        self._emit("", "connected", f"{len(status.workers)} workers connected in {time.monotonic() - t0:.1f} s")
        return status

    async def add_workers(self, instances: Sequence[Instance], *, timeout: float = 180.0,
                          install_timeout: float = 900.0) -> ClusterStatus:
        """Scale up: prepare and start workers on `instances` (already launched and reachable), wait for them."""
        new = [w for w in instances if w.name not in self.worker_names]
        self.workers.extend(new)
        head_conn = await self._connect(self.head)
        await self._members.prepare_head(head_conn, install_timeout)
        results = await asyncio.gather(*(self._members.ensure_worker(w, install_timeout) for w in new),
                                       return_exceptions=True)
        await self._write_manifest(head_conn)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise first_error(errors)
        return await self.wait_for_workers(self.worker_names, timeout=timeout)

    async def wait_for_workers(self, names: Iterable[str], *, timeout: float = 120.0,
                               interval: float = 0.5) -> ClusterStatus:
        """Poll the scheduler until every named worker is connected. Meanwhile a scheduler session that ended
        is reported (PortTaken when its log says the address is in use), as is a worker session that ended."""
        wanted = set(names)
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        last_check = 0.0
        up = False
        while True:
            try:
                status = await self.status(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
            except StatusError:
                status = None
            if status is not None:
                if not up:
                    up = True
                    self._emit(self.head.name, "scheduler", f"scheduler answering at {status.scheduler}")
                for name in sorted(wanted & set(status.names) - seen):
                    seen.add(name)
                    self._emit(name, "connected", f"{name} connected ({len(seen)}/{len(wanted)})")
                if wanted <= set(status.names):
                    return status
            now = time.monotonic()
            if now - last_check >= 2.0 or now >= deadline:
                last_check = now
                await self._members.check_sessions(self.workers, wanted - seen)
            if now >= deadline:
                missing = sorted(wanted - seen)
                raise StartTimeout(
                    f"{len(missing)} of {len(wanted)} workers not connected after {timeout:.0f} s: "
                    f"{q_names(missing)}" if up else f"the scheduler on {self.head.name} did not answer in "
                    f"{timeout:.0f} s", "see the session logs in ~/.cades-tui/dask on each instance")
            await asyncio.sleep(interval)

    # -- scale down / stop / reattach -------------------------------------------------------------------

    async def scale_down(self, names: Iterable[str], *, timeout: float = 120.0, force: bool = False) -> ClusterStatus:
        """Retire the named workers gracefully (the scheduler first copies the data they hold to the remaining
        workers), then end their sessions and remove their keys. Returns the scheduler's view afterwards.

        When the scheduler does not answer, nothing is stopped (ClusterError) unless `force` — then the workers'
        sessions end without retiring and the data only they held is lost."""
        names = sorted(set(names))
        unknown = sorted(set(names) - set(self.worker_names))
        if unknown:
            raise ClusterError(f"not workers of this cluster: {q_names(unknown)}")
        head_conn = await self._connect(self.head)
        try:
            connected = set((await self.status(timeout=20.0)).names)
        except StatusError as exc:
            if not force:
                raise ClusterError(f"the scheduler does not answer ({exc}): cannot retire {q_names(names)} safely",
                                   "try again, or scale down with force (the data only they hold is lost)") from exc
            connected = set()
        to_retire = [n for n in names if n in connected]
        if to_retire:
            await self._members.retire(head_conn, to_retire, timeout)
        leaving = [w for w in self.workers if w.name in names]
        await asyncio.gather(*(self._members.stop_worker(w, graceful=True) for w in leaving))
        self.workers = [w for w in self.workers if w.name not in names]
        await self._write_manifest(head_conn)
        return await self.status(timeout=20.0)

    async def stop(self) -> None:
        """End every session (workers first, then the scheduler) and remove the TLS keys and the head's client
        config; logs stay."""
        await asyncio.gather(*(self._members.stop_worker(w, graceful=False) for w in self.workers),
                             return_exceptions=True)
        await self._members.stop_scheduler()

    async def find(self, *, restart: bool = True, wait: bool = True, timeout: float = 120.0) -> Found:
        """Which sessions run (after the app was away). With `restart`, start only the missing ones (the scheduler
        too) and, with `wait`, wait until they are connected again."""
        head_conn = await self._connect(self.head)
        scheduler_up = await self._members.scheduler_running(head_conn)
        running_flags = await asyncio.gather(*(self._members.worker_running(w) for w in self.workers))
        running = tuple(w.name for w, up in zip(self.workers, running_flags, strict=True) if up)
        missing = tuple(w.name for w, up in zip(self.workers, running_flags, strict=True) if not up)
        self._emit("", "found", f"scheduler {'running' if scheduler_up else 'missing'}; workers running: "
                                f"{q_names(running)}; missing: {q_names(missing)}")
        if not restart or (scheduler_up and not missing):
            return Found(scheduler_up, running, missing)
        await self._members.prepare_head(head_conn, 900.0, check_only=True)
        todo = [w for w in self.workers if w.name in missing]
        results = await asyncio.gather(*self._start_all(head_conn, todo, 900.0), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise first_error(errors)
        if wait:
            await self.wait_for_workers(self.worker_names, timeout=timeout)
        return Found(scheduler_up, running, missing, restarted=missing, scheduler_restarted=not scheduler_up)

    def _start_all(self, head_conn: asyncssh.SSHClientConnection, workers: Sequence[Instance],
                   install_timeout: float) -> list[Awaitable[None]]:
        """The scheduler (then a worker on the head, which needs the scheduler's TLS files) in parallel with the
        other workers (they retry until the scheduler is up)."""
        on_head = [w for w in workers if w.id == self.head.id]

        async def head_side() -> None:
            await self._members.ensure_scheduler(head_conn)
            await self._write_manifest(head_conn)
            for w in on_head:
                await self._members.ensure_worker(w, install_timeout)

        return [head_side(), *(self._members.ensure_worker(w, install_timeout)
                               for w in workers if w.id != self.head.id)]

    async def _write_manifest(self, conn: asyncssh.SSHClientConnection) -> None:
        await write(conn, MANIFEST, self.manifest().to_json().encode())

    def _emit(self, instance: str, phase: Phase, message: str) -> None:
        self._progress(ClusterProgress(instance, phase, message))
