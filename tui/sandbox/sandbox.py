"""The sandbox cloud: lifecycle, knobs, the state machine's side effects (SSH hosts), seeding."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import random
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tui.conventions import DEMO_KEY, META_SSH_PORT, META_SSH_USER
from tui.sandbox import compute, data, identity, image, network, volume
from tui.sandbox.router import HTTPError, HTTPService, Request, Router
from tui.sandbox.sshhost import SSHHost, SSHHostError, port_is_free, remove_runtime_dir
from tui.sandbox.state import State, now_iso, now_usec

log = logging.getLogger("tui.sandbox")

CLOUD_NAME = "sandbox"
DEMO_SERVER = "analytics-1"


@dataclass
class Delays:
    """Seconds each transition takes."""

    build_s: float = 3.0
    resize_s: float = 2.0
    stop_s: float = 1.0
    start_s: float = 1.5
    reboot_s: float = 1.5
    delete_s: float = 1.0
    volume_s: float = 0.5

    @classmethod
    def fast(cls) -> Delays:
        return cls(build_s=0.1, resize_s=0.1, stop_s=0.05, start_s=0.05, reboot_s=0.05, delete_s=0.05, volume_s=0.05)


@dataclass
class Faults:
    """Test knobs; change them at any time (not persisted)."""

    latency_s: float = 0.0  # added to every request
    error_rate: float = 0.0  # probability of a 500 on an authenticated call
    rate_limit_rate: float = 0.0  # probability of a 429 (Retry-After: 1) on an authenticated call
    fail_next_create: bool = False  # the next server goes to ERROR with a fault
    console_host_keys: bool = True  # False: console logs omit cloud-init's host-key block (as many real clouds do)
    quota: dict[str, int] = field(default_factory=dict)  # overrides of data.DEFAULT_QUOTA

    def set_quota(
        self,
        *,
        ram_mb: int | None = None,
        cores: int | None = None,
        instances: int | None = None,
        gigabytes: int | None = None,
        volumes: int | None = None,
        key_pairs: int | None = None,
    ) -> None:
        """Override project quotas (-1 = unlimited)."""
        values = {
            "ram_mb": ram_mb,
            "cores": cores,
            "instances": instances,
            "gigabytes": gigabytes,
            "volumes": volumes,
            "key_pairs": key_pairs,
        }
        self.quota.update({k: v for k, v in values.items() if v is not None})

    def reset(self) -> None:
        """Back to no faults and the default quota."""
        fresh = Faults()
        for f in fields(self):
            setattr(self, f.name, getattr(fresh, f.name))


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
        self.tokens: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, str] = {}
        self._hosts: dict[str, SSHHost] = {}
        self._hosts_lock = threading.Lock()
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
            self._seed_demo()
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

    def seed_servers(self, n: int, ssh_hosts: bool = False) -> list[str]:
        """Create `n` ACTIVE servers at once (quota not enforced); returns their ids."""
        net = network.network_by_name(self, data.PRIVATE_NET)
        assert net is not None
        flavor = data.flavor_by_ref("m1.tiny")
        image_id = data.stable_id("image:Ubuntu 22.04")
        assert flavor is not None
        ids = []
        with self.state.lock:
            start = len(self.state.table("servers"))
            for i in range(n):
                body = {
                    "name": f"bench-{start + i:04d}",
                    "flavorRef": flavor["id"],
                    "imageRef": image_id,
                    "networks": [{"uuid": net["id"]}],
                }
                srv = compute.create_server(self, body, enforce_quota=False)
                srv["ssh"] = ssh_hosts and self.ssh_hosts
                srv["pending"] = None
                ids.append(srv["id"])
                if not srv["ssh"]:
                    compute._set(srv, "ACTIVE")
                    srv["launched_at"] = now_usec()
                    srv["boots"].append(now_iso())
                    network.set_port_status(self, srv["port_id"], True)
                else:
                    srv["pending"] = "build"
            self.state.touch()
        for sid in ids:
            if self.server_state(sid)["pending"] == "build":
                compute.advance(self, sid, "build")
        return ids

    # -- used by the services -------------------------------------------------------------------------

    def later(self, delay: float, table: str, rid: str, action: str) -> None:
        """Record `action` as pending on `table[rid]` and finish it after `delay` (see compute/volume.advance)."""
        self.state.table(table)[rid]["pending"] = action
        self.scheduler.call_later(delay, lambda: self._advance(table, rid, action))

    def _advance(self, table: str, rid: str, action: str) -> None:
        (compute.advance if table == "servers" else volume.advance)(self, rid, action)

    def vm_on(self, sid: str) -> str | None:
        """Start the server's SSH host (not under the lock). Returns an error message, or None."""
        with self.state.lock:
            srv = self.state.table("servers").get(sid)
            if srv is None or not srv["ssh"]:
                return None
            keys = [srv["public_key"]] if srv["public_key"] else []
            port = int(srv["ssh_port"] or 0)
        with self._hosts_lock:
            host = self._hosts.get(sid)
        if host is None:
            host = SSHHost(self.instances_dir / sid, keys, port)
        try:
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

    def vm_off(self, sid: str) -> None:
        with self._hosts_lock:
            host = self._hosts.get(sid)
        if host is not None:
            host.stop()

    def vm_destroy(self, sid: str) -> None:
        with self._hosts_lock:
            host = self._hosts.pop(sid, None)
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
        _write_private(path, json.dumps(values, indent=2))
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
        _write_private(self.clouds_yaml, yaml.safe_dump({"clouds": clouds}, sort_keys=False))

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

    def _seed_demo(self) -> None:
        private, public = self.generate_keypair(DEMO_KEY)
        _write_private(self.demo_key_path, private)
        net = network.network_by_name(self, data.PRIVATE_NET)
        flavor = data.flavor_by_ref("m1.small")
        assert net is not None and flavor is not None
        with self.state.lock:
            fingerprint = compute._fingerprint(public)
            kps = self.state.table("keypairs")
            kps[DEMO_KEY] = {
                "name": DEMO_KEY,
                "public_key": public,
                "fingerprint": fingerprint,
                "type": "ssh",
                "created_at": now_usec(),
                "id": len(kps) + 1,
            }
            srv = compute.create_server(
                self,
                {
                    "name": DEMO_SERVER,
                    "flavorRef": flavor["id"],
                    "imageRef": "",
                    "key_name": DEMO_KEY,
                    "networks": [{"uuid": net["id"]}],
                    "block_device_mapping_v2": [
                        {
                            "boot_index": 0,
                            "uuid": data.stable_id("image:Ubuntu 24.04"),
                            "source_type": "image",
                            "destination_type": "volume",
                            "volume_size": 16,
                            "delete_on_termination": False,
                        }
                    ],
                },
            )
            vol_ids = [v["id"] for v in srv["volumes"]]
            self.state.data["demo_seeded"] = True
        for vid in vol_ids:
            volume.advance(self, vid, "create")
        compute.advance(self, srv["id"], "build")


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
