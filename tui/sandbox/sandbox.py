"""The sandbox cloud: lifecycle, knobs, the state machine's side effects (SSH hosts), seeding.

The parts live next to it: the HTTP API's assembly and guard (api.py), the servers' SSH hosts (vms.py), the
credentials and clouds.yaml (credentials.py), seeding (seeding.py).
"""

from __future__ import annotations

import copy
import logging
import random
import time
from pathlib import Path
from typing import Any

from tui.sandbox import (
    actions,
    api,
    credentials,
    data,
    guestpower,
    identity,
    network,
    seeding,
    shelve,
    snapshot,
    volume,
)
from tui.sandbox.credentials import CLOUD_NAME  # noqa: F401  (re-exported)
from tui.sandbox.knobs import Delays, Faults
from tui.sandbox.router import HTTPService
from tui.sandbox.seeding import DEMO_SERVER  # noqa: F401  (re-exported)
from tui.sandbox.sshhost import SSHHost, port_is_free
from tui.sandbox.state import State
from tui.sandbox.vms import SSHD_LOG_LEVEL, VMs  # noqa: F401  (SSHD_LOG_LEVEL re-exported)

log = logging.getLogger("tui.sandbox")


class Sandbox:
    """A local OpenStack-compatible cloud on 127.0.0.1. See tui/sandbox/__init__.py."""

    def __init__(
        self,
        state_dir: Path,
        port: int = 0,
        delays: Delays | None = None,
        ssh_hosts: bool = True,
        seed_demo: bool = False,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.port = port
        self.delays = delays or Delays()
        self.ssh_hosts = ssh_hosts
        self.seed_demo = seed_demo
        self.faults = Faults()
        self.auth_modes = identity.AuthModes()  # noauth services, a trusted OpenID Connect provider (test knobs)
        self.state = State(self.state_dir / "state.json")
        self.clouds_yaml = self.state_dir / "clouds.yaml"
        self.demo_key_path = self.state_dir / "demo_key"
        self.instances_dir = self.state_dir / "instances"
        self.url = ""
        self.tokens = identity.Tokens(self.state)
        self.secrets: dict[str, str] = {}
        self._vms = VMs(self)
        self._rng = random.Random()
        self._http: HTTPService | None = None
        from tui.sandbox.scheduler import Scheduler

        self.scheduler = Scheduler()

    # -- lifecycle ------------------------------------------------------------------------------------

    @property
    def auth_url(self) -> str:
        return f"{self.url}/identity"

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.secrets = credentials.load_secrets(self.state_dir / "secrets.json")
        if not self.state.load():
            with self.state.lock:
                network.seed(self)
        with self.state.lock:
            network.migrate_fixed_ips(self)
        router = api.router(self, self._rng)
        port = self.port or int(self.state.data.get("api_port") or 0)
        if port and not port_is_free(port) and not self.port:
            port = 0
        self._http = HTTPService(router, port)
        self.port = self._http.port
        self.url = f"http://127.0.0.1:{self.port}"
        self.state.data["api_port"] = self.port
        self.scheduler.start()
        guestpower.watch(self)  # a guest's own poweroff (the watchdog's `stop`)
        self.state.start()
        if self.ssh_hosts:
            self._vms.end_leftovers()
        self._restore()
        if self.seed_demo and not self.state.data["demo_seeded"]:
            seeding.seed_demo(self)
        credentials.write_clouds_yaml(self.clouds_yaml, self.auth_url, self.secrets)
        self._http.start()
        self.state.touch()

    def stop(self, power_off: bool = True) -> None:
        """Stop serving and every SSH host; the state stays on disk. With power_off=False the VMs' own processes
        keep running (as a real cloud's VMs do while you are away): the demo uses that, so a Jupyter started in
        one session is found again in the next."""
        if self._http is not None:
            self._http.stop()
            self._http = None
        self.scheduler.stop()
        for host in self._vms.take_all():
            if power_off:
                host.stop()
            else:
                host.disconnect()
        self.state.stop()

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- for tests and benchmarks ---------------------------------------------------------------------

    def set_quota(self, **quota: int) -> None:
        self.faults.set_quota(**quota)

    def quota(self) -> dict[str, int]:
        q = dict(data.DEFAULT_QUOTA)
        q.update(self.faults.quota)
        return q

    def ssh_host(self, server_id: str) -> SSHHost | None:
        return self._vms.host(server_id)

    def server_state(self, server_id_or_name: str) -> dict[str, Any]:
        """A copy of a server's internal record (KeyError when unknown), plus its volumes' records."""
        with self.state.lock:
            servers = self.state.table("servers")
            srv = servers.get(server_id_or_name) or next(
                (s for s in servers.values() if s["name"] == server_id_or_name), None
            )
            if srv is None:
                raise KeyError(server_id_or_name)
            out = copy.deepcopy(srv)
            out["volume_records"] = [
                copy.deepcopy(self.state.table("volumes")[v["id"]])
                for v in srv["volumes"]
                if v["id"] in self.state.table("volumes")
            ]
            return out

    def seed_servers(self, n: int, ssh_hosts: bool = False, public_ip: bool = True) -> list[str]:
        """Create `n` ACTIVE servers at once (quota not enforced); returns their ids."""
        return seeding.seed_servers(self, n, ssh_hosts, public_ip)

    # -- used by the services -------------------------------------------------------------------------

    def later(self, delay: float, table: str, rid: str, action: str) -> None:
        """Record `action` as pending on `table[rid]`, with the wall-clock time it is due, and finish it after
        `delay` (see compute/volume.advance). The due time is saved: a sandbox started later (the next
        `cades-tui --demo …` command) finishes what fell due while none ran, instead of starting the delay over."""
        rec = self.state.table(table)[rid]
        rec["pending"] = action
        rec["pending_due"] = time.time() + max(0.0, delay)
        self.scheduler.call_later(delay, lambda: self._advance(table, rid, action))

    def _advance(self, table: str, rid: str, action: str) -> None:
        if table in ("images", "snapshots"):
            snapshot.advance(self, table, rid, action)
        else:
            (actions.advance if table == "servers" else volume.advance)(self, rid, action)

    def vm_on(self, sid: str) -> str | None:
        """Start the server's SSH host (not under the lock). Returns an error message, or None."""
        return self._vms.on(sid)

    def vm_relisten(self, sid: str) -> None:
        """A floating IP was bound to or taken from the server: its sshd serves where its addresses say."""
        self._vms.relisten(sid)

    def sshd_log_path(self, server_id_or_name: str) -> Path:
        """The server's sshd log (LogLevel DEBUG1: it names the target of every forwarded connection, e.g.
        `server_request_direct_tcpip: originator  port 0, target 127.0.0.3 port 40123` when it served as a jump
        host). KeyError when there is no such server."""
        return self.instances_dir / str(self.server_state(server_id_or_name)["id"]) / "etc" / "sshd.log"

    def vm_off(self, sid: str) -> None:
        self._vms.off(sid)

    def vm_destroy(self, sid: str) -> None:
        self._vms.destroy(sid)

    def host_public_key(self, sid: str) -> str | None:
        """The server's SSH host public key (what its console prints); None before its first boot."""
        return self._vms.host_public_key(sid)

    @staticmethod
    def generate_keypair(comment: str) -> tuple[str, str]:
        """(private key in OpenSSH format, public key line)."""
        import asyncssh

        key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
        return key.export_private_key().decode(), key.export_public_key().decode().strip()

    # -- internals ------------------------------------------------------------------------------------

    def _restore(self) -> None:
        """Resume pending transitions — those already due (by their saved wall-clock time) are finished now,
        before the API answers, in due order — and power on the SSH hosts of running servers."""
        durations = {
            "build": self.delays.build_s,
            "stop": self.delays.stop_s,
            "start": self.delays.start_s,
            "reboot": self.delays.reboot_s,
            "resize": self.delays.resize_s,
            "revert": self.delays.resize_s,
            "delete": self.delays.delete_s,
            **{step: self.delays.shelve_s / 2 for step in shelve.STEPS},
        }
        now = time.time()
        due_now: list[tuple[float, str, str, str]] = []
        with self.state.lock:
            running = []
            for table in ("servers", "volumes", "images", "snapshots"):
                for rec in self.state.table(table).values():
                    if rec.get("pending"):
                        full = durations.get(rec["pending"], self.delays.volume_s) if table == "servers" \
                            else self.delays.image_s if table == "images" else self.delays.volume_s
                        due = float(rec.get("pending_due") or now + full)
                        if due <= now:
                            due_now.append((due, table, rec["id"], rec["pending"]))
                        else:
                            self.later(due - now, table, rec["id"], rec["pending"])
                    elif table == "servers" and rec["ssh"] and rec["status"] in ("ACTIVE", "VERIFY_RESIZE"):
                        running.append(rec["id"])
        for _due, table, rid, action in sorted(due_now, key=lambda d: (d[0], d[1] != "volumes")):
            self._advance(table, rid, action)
        shelve.restore(self)
        for sid in running:
            error = self.vm_on(sid)
            if error:
                log.warning("sandbox: %s", error)
