"""Run a Dask cluster (dask.distributed) across instances over SSH: one scheduler on the head, one worker per
worker instance, each in a detached screen (or tmux) session that outlives the app. No UI here.

The engine gets an async `connect(instance)` provider (the manager's pool, jump hosts and pinned host keys
included) and never closes what it gets. Secure by default: mutual TLS only (a fresh CA per cluster), the
scheduler and workers listen on private addresses, the dashboard on the head's 127.0.0.1 only.

Progress is reported to a plain callable taking a `ClusterProgress`; failures raise `ClusterError` (with a
hint). A manifest on the head (`~/.cades-tui/dask/cluster.json`: ports, environment, worker names) lets a later
run re-attach with `read_manifest` without the app saving anything about the cluster.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from tui.core.cluster import commands as cmd
from tui.core.cluster.status import ClusterStatus, StatusError, fetch_status
from tui.core.cluster.tls import ClusterCA, MemberTLS, issue, load_ca, new_ca
from tui.core.events import ClusterPhase as Phase
from tui.core.events import ClusterProgress
from tui.core.jupyter.http import ssh_opener
from tui.core.models import Instance
from tui.core.remote.session import Multiplexer, RemoteSession, SessionError, detect_multiplexer, remote_path

ConnectFor = Callable[[Instance], Awaitable[asyncssh.SSHClientConnection]]
MANIFEST = f"{cmd.DASK_DIR}/cluster.json"
_FAILURES = (OSError, asyncssh.Error, TimeoutError, SessionError)


Progress = Callable[[ClusterProgress], None]


class ClusterError(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class PortTaken(ClusterError):
    """The scheduler's (or dashboard's) port on the head is used by another process."""


class DaskMissing(ClusterError):
    """The head's environment has no dask/distributed (and installing was not allowed or failed)."""


class VersionMismatch(ClusterError):
    """A worker's Python or packages differ from the head's and could not be made equal."""


class StartTimeout(ClusterError):
    """Not every worker connected to the scheduler in time."""


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


@dataclass(frozen=True, slots=True)
class Found:
    """Which sessions run (after `find`), and which of the missing ones were started again."""

    scheduler: bool
    running: tuple[str, ...]
    missing: tuple[str, ...]
    restarted: tuple[str, ...] = ()
    scheduler_restarted: bool = False


@dataclass(frozen=True, slots=True)
class Probe:
    python: str | None
    home: str
    packages: dict[str, str | None] = field(default_factory=dict)

    @property
    def minor(self) -> str:
        return ".".join((self.python or "").split(".")[:2])


def private_address(instance: Instance) -> str:
    """The instance's private (fixed) IPv4 address; the scheduler and workers listen there only."""
    for a in instance.addresses:
        if a.kind == "fixed" and a.version == 4:
            return a.addr
    return instance.ip


def _q_names(names: Iterable[str]) -> str:
    return ", ".join(names) or "none"


class DaskCluster:
    """One cluster: `head` runs the scheduler, each of `workers` one worker. See the module docstring.

    The head may be one of `workers` too (settings `cluster.head_worker`): it then runs both sessions.
    `ClusterConfig.memory_limit` takes what `dask worker --memory-limit` does: "auto", "4GiB", or a fraction of the
    instance's RAM such as "0.9" (settings `cluster.memory_fraction`)."""

    def __init__(self, head: Instance, workers: Sequence[Instance], connect: ConnectFor, config: ClusterConfig,
                 *, progress: Progress | None = None,
                 address_of: Callable[[Instance], str] = private_address) -> None:
        self.head = head
        self.workers: list[Instance] = list(workers)
        self.config = config
        self._connect = connect
        self._progress = progress or (lambda _p: None)
        self._address_of = address_of
        self._ca: ClusterCA | None = None
        self._head_probe: Probe | None = None
        self._mux: dict[str, Multiplexer] = {}

    # -- what the caller sees ---------------------------------------------------------------------------

    @property
    def scheduler_address(self) -> str:
        return cmd.SchedulerArgs(self._address_of(self.head), self.config.scheduler_port).address

    @property
    def worker_names(self) -> tuple[str, ...]:
        return tuple(w.name for w in self.workers)

    def manifest(self) -> Manifest:
        return Manifest(head=self.head.name, scheduler=self.scheduler_address, env=self.config.env,
                        scheduler_port=self.config.scheduler_port, dashboard_port=self.config.dashboard_port,
                        workers=self.worker_names)

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
        await self._prepare_head(conn, install_timeout)
        await self._check_ports(conn)

    async def start(self, *, timeout: float = 180.0, install_timeout: float = 900.0) -> ClusterStatus:
        """Make the cluster run: check the head's versions, bring each worker's environment to the same versions,
        hand out TLS material, start the scheduler and every worker in parallel (running sessions are adopted,
        never doubled), then wait until every worker is connected. Idempotent."""
        t0 = time.monotonic()
        head_conn = await self._connect(self.head)
        await self._prepare_head(head_conn, install_timeout)
        await self._check_ports(head_conn)  # before any worker starts: a taken port is reported as that
        results = await asyncio.gather(*self._start_all(head_conn, self.workers, install_timeout),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise _first(errors)
        status = await self.wait_for_workers(self.worker_names, timeout=max(1.0, timeout - (time.monotonic() - t0)))
        self._emit("", "connected", f"{len(status.workers)} workers connected in {time.monotonic() - t0:.1f} s")
        return status

    async def add_workers(self, instances: Sequence[Instance], *, timeout: float = 180.0,
                          install_timeout: float = 900.0) -> ClusterStatus:
        """Scale up: prepare and start workers on `instances` (already launched and reachable), wait for them."""
        new = [w for w in instances if w.name not in self.worker_names]
        self.workers.extend(new)
        head_conn = await self._connect(self.head)
        await self._prepare_head(head_conn, install_timeout)
        results = await asyncio.gather(*(self._ensure_worker(w, install_timeout) for w in new),
                                       return_exceptions=True)
        await self._write_manifest(head_conn)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise _first(errors)
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
                await self._check_sessions(wanted - seen)
            if now >= deadline:
                missing = sorted(wanted - seen)
                raise StartTimeout(
                    f"{len(missing)} of {len(wanted)} workers not connected after {timeout:.0f} s: "
                    f"{_q_names(missing)}" if up else f"the scheduler on {self.head.name} did not answer in "
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
            raise ClusterError(f"not workers of this cluster: {_q_names(unknown)}")
        head_conn = await self._connect(self.head)
        try:
            connected = set((await self.status(timeout=20.0)).names)
        except StatusError as exc:
            if not force:
                raise ClusterError(f"the scheduler does not answer ({exc}): cannot retire {_q_names(names)} safely",
                                   "try again, or scale down with force (the data only they hold is lost)") from exc
            connected = set()
        to_retire = [n for n in names if n in connected]
        if to_retire:
            self._emit("", "retire", f"retiring {_q_names(to_retire)} (moving their data first)")
            res = await _run(head_conn, cmd.retire_command(self.config.env, to_retire, timeout=30), timeout=timeout)
            if res.exit_status != 0:
                raise ClusterError(f"the scheduler could not retire {_q_names(to_retire)}: "
                                   f"{_tail(res.stderr or res.stdout)}")
            try:
                retired = set(json.loads(res.stdout.strip().splitlines()[-1]))
            except (ValueError, IndexError):
                retired = set()
            kept = sorted(set(to_retire) - retired)
            if kept:  # their data could not be moved: stopping them would lose it
                raise ClusterError(f"the scheduler did not retire {_q_names(kept)}: they keep running",
                                   "their data could not be moved to the remaining workers (memory?); try again")
        leaving = [w for w in self.workers if w.name in names]
        await asyncio.gather(*(self._stop_worker(w, graceful=True) for w in leaving))
        self.workers = [w for w in self.workers if w.name not in names]
        await self._write_manifest(head_conn)
        return await self.status(timeout=20.0)

    async def stop(self) -> None:
        """End every session (workers first, then the scheduler) and remove the TLS keys and the head's client
        config; logs stay."""
        await asyncio.gather(*(self._stop_worker(w, graceful=False) for w in self.workers),
                             return_exceptions=True)
        head_conn = await self._connect(self.head)
        session = await self._session(self.head, head_conn)
        self._emit(self.head.name, "stop", "stopping the scheduler")
        await session.kill(cmd.SCHEDULER_SESSION)
        await _run(head_conn, f"{cmd.remove_client_config_command()}; rm -f {_tls_files(head=True)} "
                              f"{remote_path(MANIFEST)}")

    async def find(self, *, restart: bool = True, wait: bool = True, timeout: float = 120.0) -> Found:
        """Which sessions run (after the app was away). With `restart`, start only the missing ones (the scheduler
        too) and, with `wait`, wait until they are connected again."""
        head_conn = await self._connect(self.head)
        head_session = await self._session(self.head, head_conn)
        scheduler_up = await head_session.is_running(cmd.SCHEDULER_SESSION)
        running_flags = await asyncio.gather(*(self._worker_running(w) for w in self.workers))
        running = tuple(w.name for w, up in zip(self.workers, running_flags, strict=True) if up)
        missing = tuple(w.name for w, up in zip(self.workers, running_flags, strict=True) if not up)
        self._emit("", "found", f"scheduler {'running' if scheduler_up else 'missing'}; workers running: "
                                f"{_q_names(running)}; missing: {_q_names(missing)}")
        if not restart or (scheduler_up and not missing):
            return Found(scheduler_up, running, missing)
        await self._prepare_head(head_conn, 900.0, check_only=True)
        todo = [w for w in self.workers if w.name in missing]
        results = await asyncio.gather(*self._start_all(head_conn, todo, 900.0), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise _first(errors)
        if wait:
            await self.wait_for_workers(self.worker_names, timeout=timeout)
        return Found(scheduler_up, running, missing, restarted=missing, scheduler_restarted=not scheduler_up)

    def _start_all(self, head_conn: asyncssh.SSHClientConnection, workers: Sequence[Instance],
                   install_timeout: float) -> list[Awaitable[None]]:
        """The scheduler (then a worker on the head, which needs the scheduler's TLS files) in parallel with the
        other workers (they retry until the scheduler is up)."""
        on_head = [w for w in workers if w.id == self.head.id]

        async def head_side() -> None:
            await self._ensure_scheduler(head_conn)
            for w in on_head:
                await self._ensure_worker(w, install_timeout)

        return [head_side(), *(self._ensure_worker(w, install_timeout) for w in workers if w.id != self.head.id)]

    # -- the head -------------------------------------------------------------------------------------

    async def _prepare_head(self, conn: asyncssh.SSHClientConnection, install_timeout: float,
                            check_only: bool = False) -> Probe:
        probe = await _probe(conn, self.config.env)
        have = probe.python and probe.packages.get("dask") and probe.packages.get("distributed")
        if not have:
            where = f"{self.config.env} on {self.head.name}"
            if not self.config.install or check_only:
                raise DaskMissing(f"dask is not installed in {where}",
                                  "add dask[distributed] and bokeh to the setup packages, or allow installing")
            if not probe.python:
                raise DaskMissing(f"no Python environment at {where}", "run setup on the head first")
            self._emit(self.head.name, "install", f"installing dask[distributed] and bokeh into {where}")
            res = await _run(conn, cmd.install_command(self.config.env, probe.python,
                                                       ["dask[distributed]", "bokeh>=3.1"]), timeout=install_timeout)
            if res.exit_status != 0:
                raise DaskMissing(f"installing dask into {where} failed: {_tail(res.stderr or res.stdout)}")
            probe = await _probe(conn, self.config.env)
        self._head_probe = probe
        self._emit(self.head.name, "probe", f"Python {probe.python}, dask {probe.packages.get('dask')}, "
                                            f"distributed {probe.packages.get('distributed')}")
        self._ca = await self._ensure_ca(conn)
        return probe

    async def _ensure_ca(self, conn: asyncssh.SSHClientConnection) -> ClusterCA:
        """The CA kept on the head (read back), or a fresh one written there (ca.pem, ca.key; 0600)."""
        res = await _run(conn, cmd.read_ca_command())
        if res.exit_status == 0 and cmd.SEPARATOR in res.stdout:
            cert, _, key = res.stdout.partition(cmd.SEPARATOR + "\n")
            try:
                return load_ca(cert.encode(), key.encode())
            except ValueError:
                pass  # unreadable or mismatched: replace it (running members keep their loaded certs)
        self._emit(self.head.name, "tls", "creating the cluster's certificate authority")
        ca = new_ca(self.head.name)
        await _write(conn, cmd.CA_CERT, ca.cert_pem)
        await _write(conn, cmd.CA_KEY, ca.key_pem)
        return ca

    async def _ensure_scheduler(self, conn: asyncssh.SSHClientConnection) -> None:
        session = await self._session(self.head, conn)
        args = cmd.SchedulerArgs(self._address_of(self.head), self.config.scheduler_port, self.config.dashboard_port)
        probe = self._head_probe or await _probe(conn, self.config.env)
        if await session.is_running(cmd.SCHEDULER_SESSION):
            self._emit(self.head.name, "scheduler", "scheduler session already running: adopted")
        else:
            await self._check_ports(conn)
            await self._write_member(conn, self.head, probe)
            self._emit(self.head.name, "scheduler", f"starting the scheduler at {args.address}")
            await session.start(cmd.SCHEDULER_SESSION, cmd.scheduler_command(self.config.env, args),
                                cmd.DASK_DIR, cmd.SCHEDULER_LOG)
        await _write(conn, cmd.CLIENT_CONFIG, cmd.client_config(probe.home, args.address).encode())
        await self._write_manifest(conn)

    async def _check_ports(self, conn: asyncssh.SSHClientConnection) -> None:
        """PortTaken when the scheduler's or the dashboard's port is in use on the head (unless our scheduler
        session is what runs there)."""
        if await (await self._session(self.head, conn)).is_running(cmd.SCHEDULER_SESSION):
            return
        args = cmd.SchedulerArgs(self._address_of(self.head), self.config.scheduler_port, self.config.dashboard_port)
        for host, port, what in ((args.host, args.port, "scheduler"), ("127.0.0.1", args.dashboard_port, "dashboard")):
            res = await _run(conn, cmd.port_check_command(self.config.env, host, port))
            if res.stdout.startswith("taken"):
                raise PortTaken(f"port {port} ({what}) on {self.head.name} ({host}) is already in use: "
                                f"{res.stdout.partition(':')[2].strip()}",
                                "stop what uses it, or choose another port for the cluster")

    async def _write_manifest(self, conn: asyncssh.SSHClientConnection) -> None:
        await _write(conn, MANIFEST, self.manifest().to_json().encode())

    async def _write_member(self, conn: asyncssh.SSHClientConnection, instance: Instance, probe: Probe) -> None:
        assert self._ca is not None
        addresses = [self._address_of(instance), instance.ip, "127.0.0.1"]
        member: MemberTLS = issue(self._ca, instance.name, addresses)
        await _write(conn, cmd.CA_CERT, member.ca_pem)
        await _write(conn, cmd.MEMBER_KEY, member.key_pem)
        await _write(conn, cmd.MEMBER_CERT, member.cert_pem)

    # -- workers ----------------------------------------------------------------------------------------

    async def _session(self, instance: Instance, conn: asyncssh.SSHClientConnection) -> RemoteSession:
        kind = self._mux.get(instance.id)
        if kind is None:
            kind = self._mux[instance.id] = await detect_multiplexer(conn)
        return RemoteSession(conn, kind)

    async def _worker_running(self, worker: Instance) -> bool:
        conn = await self._connect(worker)
        return await (await self._session(worker, conn)).is_running(cmd.WORKER_SESSION)

    async def _ensure_worker(self, worker: Instance, install_timeout: float) -> None:
        conn = await self._connect(worker)
        session = await self._session(worker, conn)
        if await session.is_running(cmd.WORKER_SESSION):
            self._emit(worker.name, "worker", "worker session already running: adopted")
            return
        probe = await self._match_versions(worker, conn, install_timeout)
        if worker.id != self.head.id:  # on the head, the scheduler's member files serve the worker too
            await self._write_member(conn, worker, probe)
        nthreads = self.config.nthreads or max(1, worker.vcpus)
        line = cmd.worker_command(self.config.env, self.scheduler_address, host=self._address_of(worker),
                                  name=worker.name, nthreads=nthreads, memory_limit=self.config.memory_limit)
        self._emit(worker.name, "worker", f"starting the worker ({nthreads} thread{'s' if nthreads != 1 else ''})")
        await session.start(cmd.WORKER_SESSION, line, cmd.DASK_DIR, cmd.WORKER_LOG)

    def _differences(self, probe: Probe) -> list[str]:
        head = self._head_probe
        assert head is not None
        diffs = []
        if probe.minor != head.minor:
            diffs.append(f"Python {probe.python or 'missing'} (head {head.python})")
        for name, version in head.packages.items():
            if version is not None and probe.packages.get(name) != version:
                diffs.append(f"{name} {probe.packages.get(name) or 'missing'} (head {version})")
        return diffs

    async def _match_versions(self, worker: Instance, conn: asyncssh.SSHClientConnection,
                              install_timeout: float) -> Probe:
        head = self._head_probe
        assert head is not None and head.python is not None
        probe = await _probe(conn, self.config.env)
        diffs = self._differences(probe)
        if not diffs:
            self._emit(worker.name, "probe", f"Python {probe.python} and dask {head.packages.get('dask')} as on "
                                             "the head")
            return probe
        if probe.python and probe.minor != head.minor:
            raise VersionMismatch(f"{worker.name} has Python {probe.python} in {self.config.env}, the head "
                                  f"{head.python}", "the cluster needs the same Python on every instance: launch "
                                  "workers from the head's image or remove that environment")
        if not self.config.install:
            raise VersionMismatch(f"{worker.name} differs from the head: {'; '.join(diffs)}", "allow installing")
        reqs = cmd.requirements(head.packages, self.config.extra_packages)
        self._emit(worker.name, "install", f"installing {' '.join(reqs)} into {self.config.env}")
        res = await _run(conn, cmd.install_command(self.config.env, head.python, reqs), timeout=install_timeout)
        if res.exit_status != 0:
            raise VersionMismatch(f"installing on {worker.name} failed: {_tail(res.stderr or res.stdout)}")
        probe = await _probe(conn, self.config.env)
        diffs = self._differences(probe)
        if diffs:
            raise VersionMismatch(f"{worker.name} still differs from the head: {'; '.join(diffs)}")
        return probe

    async def _stop_worker(self, worker: Instance, *, graceful: bool) -> None:
        conn = await self._connect(worker)
        session = await self._session(worker, conn)
        if graceful:
            await session.wait_gone(cmd.WORKER_SESSION, timeout=10.0)  # close_workers ends it by itself
        self._emit(worker.name, "stop", "stopping the worker")
        await session.kill(cmd.WORKER_SESSION)
        if worker.id != self.head.id:  # a worker on the head shares the scheduler's (and notebooks') TLS files
            await _run(conn, f"rm -f {_tls_files(head=False)}")

    async def _check_sessions(self, pending: set[str]) -> None:
        """Raise when the scheduler's session or a pending worker's session has ended (with its log's tail)."""
        head_conn = await self._connect(self.head)
        if not await (await self._session(self.head, head_conn)).is_running(cmd.SCHEDULER_SESSION):
            log = (await _run(head_conn, cmd.log_tail_command(cmd.SCHEDULER_LOG))).stdout
            if "already in use" in log or "Address in use" in log or "could not bind" in log.lower():
                raise PortTaken(f"the scheduler on {self.head.name} could not listen on port "
                                f"{self.config.scheduler_port}: it is already in use",
                                "stop what uses it, or choose another port for the cluster")
            raise ClusterError(f"the scheduler on {self.head.name} exited: {_tail(log)}")
        for worker in self.workers:
            if worker.name in pending and not await self._worker_running(worker):
                conn = await self._connect(worker)
                log = (await _run(conn, cmd.log_tail_command(cmd.WORKER_LOG))).stdout
                raise ClusterError(f"the worker on {worker.name} exited: {_tail(log)}")

    def _emit(self, instance: str, phase: Phase, message: str) -> None:
        self._progress(ClusterProgress(instance, phase, message))


async def read_manifest(head: Instance, connect: ConnectFor) -> Manifest | None:
    """The cluster the head remembers (None when it has none): build a DaskCluster from it to re-attach."""
    conn = await connect(head)
    res = await _run(conn, f"cat {remote_path(MANIFEST)}")
    if res.exit_status != 0:
        return None
    try:
        return Manifest.from_json(res.stdout)
    except (ValueError, KeyError, TypeError):
        return None


# -- helpers ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Result:
    exit_status: int
    stdout: str
    stderr: str


async def _run(conn: asyncssh.SSHClientConnection, command: str, *, stdin: bytes | None = None,
               timeout: float = 30.0) -> _Result:
    try:
        result = await asyncio.wait_for(
            conn.run(command, input=stdin.decode("ascii") if stdin is not None else None, check=False), timeout)
    except TimeoutError as exc:
        raise ClusterError(f"a remote command did not finish within {timeout:g} s") from exc
    except (OSError, asyncssh.Error) as exc:
        raise ClusterError(f"SSH failed: {exc}") from exc
    return _Result(result.exit_status if result.exit_status is not None else -1,
                   str(result.stdout or ""), str(result.stderr or ""))


async def _write(conn: asyncssh.SSHClientConnection, path: str, data: bytes) -> None:
    res = await _run(conn, cmd.write_file_command(path), stdin=data)
    if res.exit_status != 0:
        raise ClusterError(f"cannot write {path}: {_tail(res.stderr)}")


async def _probe(conn: asyncssh.SSHClientConnection, env: str) -> Probe:
    res = await _run(conn, cmd.probe_command(env))
    line = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    try:
        d = json.loads(line)
    except ValueError as exc:
        raise ClusterError(f"cannot read the Python environment {env}: {_tail(res.stderr or res.stdout)}") from exc
    return Probe(python=d.get("python"), home=str(d.get("home") or ""), packages=dict(d.get("packages") or {}))


def _tls_files(*, head: bool) -> str:
    files = [cmd.MEMBER_KEY, cmd.MEMBER_CERT, cmd.CA_CERT] + ([cmd.CA_KEY] if head else [])
    return " ".join(remote_path(f) for f in files)


def _tail(text: str, lines: int = 6) -> str:
    kept = [ln for ln in text.strip().splitlines() if ln.strip()][-lines:]
    return " | ".join(kept) or "no output"


def _first(errors: list[BaseException]) -> BaseException:
    """The most telling error: a port taken beats a version mismatch beats anything else."""
    for kind in (PortTaken, DaskMissing, VersionMismatch, ClusterError):
        for e in errors:
            if isinstance(e, kind):
                return e
    return errors[0]
