"""The sandbox cloud: lifecycle, knobs, the state machine's side effects (SSH hosts), seeding."""

from __future__ import annotations

import copy
import json
import logging
import random
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from tui.conventions import META_SSH_PORT, META_SSH_USER
from tui.sandbox import actions, compute, data, identity, image, network, seeding, volume
from tui.sandbox.knobs import Delays, Faults
from tui.sandbox.router import HTTPError, HTTPService, Request, Router
from tui.sandbox.seeding import DEMO_SERVER  # noqa: F401  (re-exported)
from tui.sandbox.sshhost import SSHHost, SSHHostError, port_is_free, remove_runtime_dir
from tui.sandbox.state import State, write_private

log = logging.getLogger("tui.sandbox")

# OpenSSH 9.2 logs the target of a forwarded (direct-tcpip) connection at DEBUG1 only (measured): the sandbox's
# servers log at that level so a test can prove a connection went through one of them as a jump host.
SSHD_LOG_LEVEL = "DEBUG1"

CLOUD_NAME = "sandbox"


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
        self.state = State(self.state_dir / "state.json")
        self.clouds_yaml = self.state_dir / "clouds.yaml"
        self.demo_key_path = self.state_dir / "demo_key"
        self.instances_dir = self.state_dir / "instances"
        self.url = ""
        self.tokens = identity.Tokens(self.state)
        self.secrets: dict[str, str] = {}
        self._hosts: dict[str, SSHHost] = {}
        self._hosts_lock = threading.Lock()
        self._vm_locks: dict[str, threading.Lock] = {}  # one per server: its power actions never overlap
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
        self.secrets = self._load_secrets()
        if not self.state.load():
            with self.state.lock:
                network.seed(self)
        with self.state.lock:
            network.migrate_fixed_ips(self)
        router = Router(self._guard)
        for service in (identity, compute, image, network, volume):
            service.register(router, self)
        port = self.port or int(self.state.data.get("api_port") or 0)
        if port and not port_is_free(port) and not self.port:
            port = 0
        self._http = HTTPService(router, port)
        self.port = self._http.port
        self.url = f"http://127.0.0.1:{self.port}"
        self.state.data["api_port"] = self.port
        self.scheduler.start()
        self.state.start()
        self._restore()
        if self.seed_demo and not self.state.data["demo_seeded"]:
            seeding.seed_demo(self)
        self._write_clouds_yaml()
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
        with self._hosts_lock:
            hosts, self._hosts = list(self._hosts.values()), {}
        for host in hosts:
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
        with self._hosts_lock:
            return self._hosts.get(server_id)

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
        """Record `action` as pending on `table[rid]` and finish it after `delay` (see compute/volume.advance)."""
        self.state.table(table)[rid]["pending"] = action
        self.scheduler.call_later(delay, lambda: self._advance(table, rid, action))

    def _advance(self, table: str, rid: str, action: str) -> None:
        (actions.advance if table == "servers" else volume.advance)(self, rid, action)

    def _vm_lock(self, sid: str) -> threading.Lock:
        with self._hosts_lock:
            return self._vm_locks.setdefault(sid, threading.Lock())

    def vm_on(self, sid: str) -> str | None:
        """Start the server's SSH host (not under the lock). Returns an error message, or None."""
        with self._vm_lock(sid):  # two transitions of one server (e.g. a seeded build) must not start two hosts
            return self._vm_on(sid)

    def _vm_on(self, sid: str) -> str | None:
        with self.state.lock:
            srv = self.state.table("servers").get(sid)
            if srv is None or not srv["ssh"]:
                return None
            keys = [srv["public_key"]] if srv["public_key"] else []
            port = int(srv["ssh_port"] or 0)
            listen = network.listen_addresses(self, srv["port_id"])
        with self._hosts_lock:
            host = self._hosts.get(sid)
        try:
            if host is None:
                host = SSHHost(self.instances_dir / sid, keys, port, listen=listen, log_level=SSHD_LOG_LEVEL)
            host.set_listen(listen)
            host.start()
        except (SSHHostError, OSError) as e:
            log.warning("sandbox: SSH host of %s failed: %s", sid, e)
            return f"Build of instance {sid} aborted: the SSH host could not start: {e}"
        with self._hosts_lock:
            self._hosts[sid] = host
        with self.state.lock:
            srv = self.state.table("servers").get(sid)
            if srv is not None:
                srv["ssh_port"] = host.port
                srv["metadata"][META_SSH_PORT] = str(host.port)
                srv["metadata"][META_SSH_USER] = host.user
                self.state.touch()
        return None

    def vm_relisten(self, sid: str) -> None:
        """A floating IP was bound to or taken from the server: its sshd serves where its addresses say."""
        with self._vm_lock(sid):
            with self.state.lock:
                srv = self.state.table("servers").get(sid)
                listen = network.listen_addresses(self, srv["port_id"]) if srv else []
            with self._hosts_lock:
                host = self._hosts.get(sid)
            if host is None or not listen:
                return
            try:
                host.set_listen(listen)
            except (SSHHostError, OSError) as e:
                log.warning("sandbox: SSH host of %s cannot listen on %s: %s", sid, listen, e)

    def sshd_log_path(self, server_id_or_name: str) -> Path:
        """The server's sshd log (LogLevel DEBUG1: it names the target of every forwarded connection, e.g.
        `server_request_direct_tcpip: originator  port 0, target 127.0.0.3 port 40123` when it served as a jump
        host). KeyError when there is no such server."""
        return self.instances_dir / str(self.server_state(server_id_or_name)["id"]) / "etc" / "sshd.log"

    def vm_off(self, sid: str) -> None:
        with self._vm_lock(sid):
            with self._hosts_lock:
                host = self._hosts.get(sid)
            if host is not None:
                host.stop()

    def vm_destroy(self, sid: str) -> None:
        with self._vm_lock(sid):
            with self._hosts_lock:
                host = self._hosts.pop(sid, None)
                self._vm_locks.pop(sid, None)
            if host is not None:
                host.stop()
        remove_runtime_dir(self.instances_dir / sid)
        shutil.rmtree(self.instances_dir / sid, ignore_errors=True)

    def host_public_key(self, sid: str) -> str | None:
        """The server's SSH host public key (what its console prints); None before its first boot."""
        with self._hosts_lock:
            host = self._hosts.get(sid)
        if host is not None:
            return host.host_public_key
        pub = self.instances_dir / sid / "etc" / "ssh_host_ed25519_key.pub"
        if pub.exists():
            return " ".join(pub.read_text().split()[:2])
        with self.state.lock:
            srv = self.state.table("servers").get(sid)
            if srv is None or not srv["boots"]:
                return None
            if not srv.get("host_key"):  # a server without an SSH host still has a host key on its console
                srv["host_key"] = self.generate_keypair(srv["name"])[1]
            return str(srv["host_key"])

    @staticmethod
    def generate_keypair(comment: str) -> tuple[str, str]:
        """(private key in OpenSSH format, public key line)."""
        import asyncssh

        key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
        return key.export_private_key().decode(), key.export_public_key().decode().strip()

    # -- internals ------------------------------------------------------------------------------------

    def _guard(self, req: Request) -> None:
        f = self.faults
        if f.latency_s:
            time.sleep(f.latency_s)
        identity.authenticate(self, req)
        if f.rate_limit_rate and self._rng.random() < f.rate_limit_rate:
            raise HTTPError(
                429,
                {"overLimit": {"code": 429, "message": "This request was rate-limited.", "retryAfter": "1"}},
                {"Retry-After": "1"},
            )
        if f.error_rate and self._rng.random() < f.error_rate:
            raise HTTPError(
                500,
                {
                    "computeFault": {
                        "code": 500,
                        "message": "Unexpected API Error. Please report "
                        "this at http://bugs.launchpad.net/nova/ and attach the Nova API "
                        "log if possible.\n<class 'sandbox.InjectedFault'>",
                    }
                },
            )

    def _load_secrets(self) -> dict[str, str]:
        path = self.state_dir / "secrets.json"
        if path.exists():
            loaded: dict[str, str] = json.loads(path.read_text())
            return loaded
        values = {
            "password": secrets.token_urlsafe(18),
            "app_cred_id": secrets.token_hex(16),
            "app_cred_name": "cades-tui",
            "app_cred_secret": secrets.token_urlsafe(24),
        }
        write_private(path, json.dumps(values, indent=2))
        return values

    def _write_clouds_yaml(self) -> None:
        import yaml

        common = {"region_name": "RegionOne", "identity_api_version": 3, "interface": "public"}
        clouds = {
            CLOUD_NAME: {
                "auth": {
                    "auth_url": self.auth_url,
                    "username": identity.USER,
                    "password": self.secrets["password"],
                    "project_name": identity.PROJECT,
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                **common,
            },
            f"{CLOUD_NAME}-appcred": {
                "auth_type": "v3applicationcredential",
                "auth": {
                    "auth_url": self.auth_url,
                    "application_credential_id": self.secrets["app_cred_id"],
                    "application_credential_secret": self.secrets["app_cred_secret"],
                },
                **common,
            },
        }
        text = yaml.safe_dump({"clouds": clouds}, sort_keys=False)
        try:
            unchanged = self.clouds_yaml.read_text() == text
        except OSError:
            unchanged = False
        if not unchanged:  # rewritten only when it changes: clients key their token caches by its mtime
            write_private(self.clouds_yaml, text)

    def _restore(self) -> None:
        """Resume pending transitions and power on the SSH hosts of running servers."""
        durations = {
            "build": self.delays.build_s,
            "stop": self.delays.stop_s,
            "start": self.delays.start_s,
            "reboot": self.delays.reboot_s,
            "resize": self.delays.resize_s,
            "revert": self.delays.resize_s,
            "delete": self.delays.delete_s,
        }
        with self.state.lock:
            running = []
            for table in ("servers", "volumes"):
                for rec in self.state.table(table).values():
                    if rec.get("pending"):
                        delay = (
                            durations.get(rec["pending"], self.delays.volume_s)
                            if table == "servers"
                            else self.delays.volume_s
                        )
                        self.later(delay, table, rec["id"], rec["pending"])
                    elif table == "servers" and rec["ssh"] and rec["status"] in ("ACTIVE", "VERIFY_RESIZE"):
                        running.append(rec["id"])
        for sid in running:
            error = self.vm_on(sid)
            if error:
                log.warning("sandbox: %s", error)
