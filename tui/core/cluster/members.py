"""A Dask cluster's instances one at a time, for `DaskOverSSH`: the head (its Python and dask, the cluster's CA,
free ports, the scheduler's session) and each worker (versions matched to the head's, TLS files, its session).

`Members` keeps what they share: the config, the CA and the head's probe (read once per run), and which
multiplexer (screen or tmux) each instance has. Everything runs over the connections `connect` gives."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import asyncssh

from tui.core.cluster import commands as cmd
from tui.core.cluster.errors import ClusterError, DaskMissing, PortTaken, VersionMismatch, q_names, tail
from tui.core.cluster.manifest import MANIFEST, ClusterConfig
from tui.core.cluster.shell import ConnectFor, Probe, probe, run, tls_files, write
from tui.core.cluster.tls import ClusterCA, MemberTLS, issue, load_ca, new_ca
from tui.core.events import ClusterPhase as Phase
from tui.core.models import Instance
from tui.core.remote.session import Multiplexer, RemoteSession, detect_multiplexer, remote_path

Say = Callable[[str, Phase, str], None]  # (instance, phase, message)


class Members:
    """The per-instance steps of one cluster (see the module docstring); `say` reports progress."""

    def __init__(self, head: Instance, connect: ConnectFor, config: ClusterConfig, say: Say,
                 address_of: Callable[[Instance], str]) -> None:
        self.head = head
        self.config = config
        self._connect = connect
        self._emit = say
        self._address_of = address_of
        self._ca: ClusterCA | None = None
        self._head_probe: Probe | None = None
        self._mux: dict[str, Multiplexer] = {}

    def scheduler_args(self) -> cmd.SchedulerArgs:
        return cmd.SchedulerArgs(self._address_of(self.head), self.config.scheduler_port, self.config.dashboard_port)

    # -- the head -------------------------------------------------------------------------------------

    async def prepare_head(self, conn: asyncssh.SSHClientConnection, install_timeout: float,
                           check_only: bool = False) -> Probe:
        """The head's Python and dask (installed when missing and allowed), then the cluster's CA."""
        found = await probe(conn, self.config.env)
        have = found.python and found.packages.get("dask") and found.packages.get("distributed")
        if not have:
            where = f"{self.config.env} on {self.head.name}"
            if not self.config.install or check_only:
                raise DaskMissing(f"dask is not installed in {where}",
                                  "add dask[distributed] and bokeh to the setup packages, or allow installing")
            if not found.python:
                raise DaskMissing(f"no Python environment at {where}", "run setup on the head first")
            self._emit(self.head.name, "install", f"installing dask[distributed] and bokeh into {where}")
            res = await run(conn, cmd.install_command(self.config.env, found.python,
                                                      ["dask[distributed]", "bokeh>=3.1"]), timeout=install_timeout)
            if res.exit_status != 0:
                raise DaskMissing(f"installing dask into {where} failed: {tail(res.stderr or res.stdout)}")
            found = await probe(conn, self.config.env)
        self._head_probe = found
        self._emit(self.head.name, "probe", f"Python {found.python}, dask {found.packages.get('dask')}, "
                                            f"distributed {found.packages.get('distributed')}")
        self._ca = await self._ensure_ca(conn)
        return found

    async def _ensure_ca(self, conn: asyncssh.SSHClientConnection) -> ClusterCA:
        """The CA kept on the head (read back), or a fresh one written there (ca.pem, ca.key; 0600)."""
        res = await run(conn, cmd.read_ca_command())
        if res.exit_status == 0 and cmd.SEPARATOR in res.stdout:
            cert, _, key = res.stdout.partition(cmd.SEPARATOR + "\n")
            try:
                return load_ca(cert.encode(), key.encode())
            except ValueError:
                pass  # unreadable or mismatched: replace it (running members keep their loaded certs)
        self._emit(self.head.name, "tls", "creating the cluster's certificate authority")
        ca = new_ca(self.head.name)
        await write(conn, cmd.CA_CERT, ca.cert_pem)
        await write(conn, cmd.CA_KEY, ca.key_pem)
        return ca

    async def ensure_scheduler(self, conn: asyncssh.SSHClientConnection) -> None:
        """The scheduler's session (adopted when it runs) and the head's client config; not the manifest."""
        session = await self.session(self.head, conn)
        args = self.scheduler_args()
        found = self._head_probe or await probe(conn, self.config.env)
        if await session.is_running(cmd.SCHEDULER_SESSION):
            self._emit(self.head.name, "scheduler", "scheduler session already running: adopted")
        else:
            await self.check_ports(conn)
            await self._write_member(conn, self.head, found)
            self._emit(self.head.name, "scheduler", f"starting the scheduler at {args.address}")
            await session.start(cmd.SCHEDULER_SESSION, cmd.scheduler_command(self.config.env, args),
                                cmd.DASK_DIR, cmd.SCHEDULER_LOG)
        await write(conn, cmd.CLIENT_CONFIG, cmd.client_config(found.home, args.address).encode())

    async def scheduler_running(self, conn: asyncssh.SSHClientConnection) -> bool:
        return await (await self.session(self.head, conn)).is_running(cmd.SCHEDULER_SESSION)

    async def check_ports(self, conn: asyncssh.SSHClientConnection) -> None:
        """PortTaken when the scheduler's or the dashboard's port is in use on the head (unless our scheduler
        session is what runs there)."""
        if await self.scheduler_running(conn):
            return
        args = self.scheduler_args()
        for host, port, what in ((args.host, args.port, "scheduler"), ("127.0.0.1", args.dashboard_port, "dashboard")):
            res = await run(conn, cmd.port_check_command(self.config.env, host, port))
            if res.stdout.startswith("taken"):
                raise PortTaken(f"port {port} ({what}) on {self.head.name} ({host}) is already in use: "
                                f"{res.stdout.partition(':')[2].strip()}",
                                "stop what uses it, or choose another port for the cluster")

    async def _write_member(self, conn: asyncssh.SSHClientConnection, instance: Instance, found: Probe) -> None:
        assert self._ca is not None
        addresses = [self._address_of(instance), instance.ip, "127.0.0.1"]
        member: MemberTLS = issue(self._ca, instance.name, addresses)
        await write(conn, cmd.CA_CERT, member.ca_pem)
        await write(conn, cmd.MEMBER_KEY, member.key_pem)
        await write(conn, cmd.MEMBER_CERT, member.cert_pem)

    async def retire(self, conn: asyncssh.SSHClientConnection, names: list[str], timeout: float) -> None:
        """The scheduler retires the named (connected) workers, copying their data to the others first;
        ClusterError when it cannot, or keeps some (stopping them would lose their data)."""
        self._emit("", "retire", f"retiring {q_names(names)} (moving their data first)")
        res = await run(conn, cmd.retire_command(self.config.env, names, timeout=30), timeout=timeout)
        if res.exit_status != 0:
            raise ClusterError(f"the scheduler could not retire {q_names(names)}: "
                               f"{tail(res.stderr or res.stdout)}")
        try:
            retired = set(json.loads(res.stdout.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            retired = set()
        kept = sorted(set(names) - retired)
        if kept:  # their data could not be moved: stopping them would lose it
            raise ClusterError(f"the scheduler did not retire {q_names(kept)}: they keep running",
                               "their data could not be moved to the remaining workers (memory?); try again")

    async def stop_scheduler(self) -> None:
        """End the scheduler's session and remove the head's client config, TLS files and manifest."""
        head_conn = await self._connect(self.head)
        session = await self.session(self.head, head_conn)
        self._emit(self.head.name, "stop", "stopping the scheduler")
        await session.kill(cmd.SCHEDULER_SESSION)
        await run(head_conn, f"{cmd.remove_client_config_command()}; rm -f {tls_files(head=True)} "
                             f"{remote_path(MANIFEST)}")

    # -- workers ----------------------------------------------------------------------------------------

    async def session(self, instance: Instance, conn: asyncssh.SSHClientConnection) -> RemoteSession:
        kind = self._mux.get(instance.id)
        if kind is None:
            kind = self._mux[instance.id] = await detect_multiplexer(conn)
        return RemoteSession(conn, kind)

    async def worker_running(self, worker: Instance) -> bool:
        conn = await self._connect(worker)
        return await (await self.session(worker, conn)).is_running(cmd.WORKER_SESSION)

    async def ensure_worker(self, worker: Instance, install_timeout: float) -> None:
        """The worker's session (adopted when it runs), after its versions match the head's."""
        conn = await self._connect(worker)
        session = await self.session(worker, conn)
        if await session.is_running(cmd.WORKER_SESSION):
            self._emit(worker.name, "worker", "worker session already running: adopted")
            return
        found = await self._match_versions(worker, conn, install_timeout)
        if worker.id != self.head.id:  # on the head, the scheduler's member files serve the worker too
            # A worker started from the head's frozen image has the head's disk: the CA's key, the manifest and
            # the client config are the head's alone.
            await run(conn, f"rm -f {remote_path(cmd.CA_KEY)} {remote_path(MANIFEST)}; "
                            f"{cmd.remove_client_config_command()}")
            await self._write_member(conn, worker, found)
        nthreads = self.config.nthreads or max(1, worker.vcpus)
        line = cmd.worker_command(self.config.env, self.scheduler_args().address, host=self._address_of(worker),
                                  name=worker.name, nthreads=nthreads, memory_limit=self.config.memory_limit)
        self._emit(worker.name, "worker", f"starting the worker ({nthreads} thread{'s' if nthreads != 1 else ''})")
        await session.start(cmd.WORKER_SESSION, line, cmd.DASK_DIR, cmd.WORKER_LOG)

    def _differences(self, found: Probe) -> list[str]:
        head = self._head_probe
        assert head is not None
        diffs = []
        if found.minor != head.minor:
            diffs.append(f"Python {found.python or 'missing'} (head {head.python})")
        for name, version in head.packages.items():
            if version is not None and found.packages.get(name) != version:
                diffs.append(f"{name} {found.packages.get(name) or 'missing'} (head {version})")
        return diffs

    async def _match_versions(self, worker: Instance, conn: asyncssh.SSHClientConnection,
                              install_timeout: float) -> Probe:
        head = self._head_probe
        assert head is not None and head.python is not None
        found = await probe(conn, self.config.env)
        diffs = self._differences(found)
        if not diffs:
            self._emit(worker.name, "probe", f"Python {found.python} and dask {head.packages.get('dask')} as on "
                                             "the head")
            return found
        if found.python and found.minor != head.minor:
            raise VersionMismatch(f"{worker.name} has Python {found.python} in {self.config.env}, the head "
                                  f"{head.python}", "the cluster needs the same Python on every instance: launch "
                                  "workers from the head's image or remove that environment")
        if not self.config.install:
            raise VersionMismatch(f"{worker.name} differs from the head: {'; '.join(diffs)}", "allow installing")
        reqs = cmd.requirements(head.packages, self.config.extra_packages)
        self._emit(worker.name, "install", f"installing {' '.join(reqs)} into {self.config.env}")
        res = await run(conn, cmd.install_command(self.config.env, head.python, reqs), timeout=install_timeout)
        if res.exit_status != 0:
            raise VersionMismatch(f"installing on {worker.name} failed: {tail(res.stderr or res.stdout)}")
        found = await probe(conn, self.config.env)
        diffs = self._differences(found)
        if diffs:
            raise VersionMismatch(f"{worker.name} still differs from the head: {'; '.join(diffs)}")
        return found

    async def stop_worker(self, worker: Instance, *, graceful: bool) -> None:
        conn = await self._connect(worker)
        session = await self.session(worker, conn)
        if graceful:
            await session.wait_gone(cmd.WORKER_SESSION, timeout=10.0)  # close_workers ends it by itself
        self._emit(worker.name, "stop", "stopping the worker")
        await session.kill(cmd.WORKER_SESSION)
        if worker.id != self.head.id:  # a worker on the head shares the scheduler's (and notebooks') TLS files
            await run(conn, f"rm -f {tls_files(head=False)}")

    async def check_sessions(self, workers: Sequence[Instance], pending: set[str]) -> None:
        """Raise when the scheduler's session or a pending worker's session has ended (with its log's tail)."""
        head_conn = await self._connect(self.head)
        if not await self.scheduler_running(head_conn):
            log = (await run(head_conn, cmd.log_tail_command(cmd.SCHEDULER_LOG))).stdout
            if "already in use" in log or "Address in use" in log or "could not bind" in log.lower():
                raise PortTaken(f"the scheduler on {self.head.name} could not listen on port "
                                f"{self.config.scheduler_port}: it is already in use",
                                "stop what uses it, or choose another port for the cluster")
            raise ClusterError(f"the scheduler on {self.head.name} exited: {tail(log)}")
        for worker in workers:
            if worker.name in pending and not await self.worker_running(worker):
                conn = await self._connect(worker)
                log = (await run(conn, cmd.log_tail_command(cmd.WORKER_LOG))).stdout
                raise ClusterError(f"the worker on {worker.name} exited: {tail(log)}")
