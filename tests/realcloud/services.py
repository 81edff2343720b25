"""Real OpenStack services on 127.0.0.1 for the `realcloud` test tier — and by hand:

    .venv/bin/python -m tests.realcloud.services up [--dir DIR]    # prints a clouds.yaml; Ctrl+C stops them

Keystone, Glance, Placement, Nova, Neutron and Cinder of one release series (tests/realcloud/requirements.txt,
pinned exactly) are installed from PyPI into their own venv (`.venv-realcloud` in the repo, or
$CADES_REALCLOUD_VENV), kept across runs while it matches the pinned file. Each service gets its config, sqlite
databases and logs under one temp dir and runs as one process of its own (tests/realcloud/runner/serve.py);
`RealCloud.stop` ends every process it started.
"""
from __future__ import annotations

import argparse
import contextlib
import grp
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.realcloud import configs, seed
from tests.realcloud.configs import SERVICES, Layout

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
REQUIREMENTS = HERE / "requirements.txt"
RUNNER = HERE / "runner"
STAMP = ".cades-realcloud-requirements.sha256"
READY_S = 240.0  # a first start on 2 busy cores; each service answers well before


class StartError(RuntimeError):
    """A service could not be installed, set up or started (the message names it and its log's tail)."""


def venv_path() -> Path:
    return Path(os.environ.get("CADES_REALCLOUD_VENV") or REPO / ".venv-realcloud")


def _uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def ensure_venv(venv: Path | None = None) -> float:
    """Install the pinned services into `venv` unless it already holds exactly them; returns the seconds spent."""
    venv = venv or venv_path()
    want = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = venv / STAMP
    if (venv / "bin" / "python").exists() and stamp.exists() and stamp.read_text().strip() == want:
        return 0.0
    began = time.monotonic()
    stamp.unlink(missing_ok=True)
    for argv in ([*_uv(), "venv", "-q", "--clear", "-p", sys.executable, str(venv)],
                 [*_uv(), "pip", "install", "-q", "-p", str(venv / "bin" / "python"), "-r", str(REQUIREMENTS)]):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise StartError(f"installing the real services failed: {' '.join(argv)}\n{done.stderr[-3000:]}")
    stamp.write_text(want + "\n")
    return time.monotonic() - began


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class RealCloud:
    """The six services of one run: set up, started, seeded; `stop()` ends them all."""

    def __init__(self, base: Path | None = None, venv: Path | None = None) -> None:
        self.own_base = base is None
        base = Path(tempfile.mkdtemp(prefix="cades-realcloud-")) if base is None else base
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.layout = Layout(base=base, ports={s: _free_port() for s in SERVICES},
                             admin_password=secrets.token_urlsafe(16), service_password=secrets.token_urlsafe(16),
                             venv=venv or venv_path())
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.setups: dict[str, subprocess.Popen[bytes]] = {}
        self.timings: dict[str, float] = {}
        self.seeded: dict[str, Any] = {}
        (base / "logs").mkdir(exist_ok=True)

    # --- processes -------------------------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "VIRTUAL_ENV", "PYTHON"))}
        env["PATH"] = f"{self.layout.venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        env["PYTHONPATH"] = str(RUNNER)  # the ML2 driver and its entry point
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.layout.base / "logs" / f"{name}.log").open("ab")
        try:
            return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=self._env(), cwd=self.layout.base, start_new_session=True)
        finally:
            log.close()

    def _setup_script(self, service: str, conf: Path) -> str:
        bin_ = self.layout.venv / "bin"
        c = f"--config-file {conf}"
        user = pwd.getpwuid(os.getuid()).pw_name  # keystone-manage chowns its key repositories to these
        group = grp.getgrgid(os.getgid()).gr_name
        lay = self.layout
        steps = {
            "keystone": [f"{bin_}/keystone-manage {c} db_sync",
                         f"{bin_}/keystone-manage {c} fernet_setup --keystone-user {user} "
                         f"--keystone-group {group}",
                         f"{bin_}/keystone-manage {c} receipt_setup --keystone-user {user} "
                         f"--keystone-group {group}",
                         f"{bin_}/keystone-manage {c} credential_setup --keystone-user {user} "
                         f"--keystone-group {group}",
                         f"{bin_}/keystone-manage {c} bootstrap --bootstrap-password \"$ADMIN_PASSWORD\" "
                         f"--bootstrap-region-id {configs.REGION} --bootstrap-public-url {lay.keystone} "
                         f"--bootstrap-internal-url {lay.keystone} --bootstrap-admin-url {lay.keystone}"],
            "glance": [f"{bin_}/glance-manage {c} db_sync"],
            "placement": [f"{bin_}/placement-manage {c} db sync"],
            "neutron": [f"{bin_}/python {RUNNER / 'neutron_db.py'} {lay.db('neutron')}",
                        f"{bin_}/neutron-db-manage {c} stamp heads"],
            "cinder": [f"{bin_}/cinder-manage {c} db sync"],
            "nova": [f"{bin_}/nova-manage {c} api_db sync",
                     f"{bin_}/nova-manage {c} cell_v2 map_cell0 --database_connection {lay.db('nova_cell0')}",
                     f"{bin_}/nova-manage {c} cell_v2 create_cell --name cell1",
                     f"{bin_}/nova-manage {c} db sync"],
        }
        return "set -e\n" + "\n".join(steps[service]) + "\n"

    def _run_setups(self, confs: dict[str, Path]) -> None:
        """Start every service's database setup at once (they are independent)."""
        for service in SERVICES:
            script = self._setup_script(service, confs[service])
            self.setups[service] = self._spawn(f"{service}-setup", ["bash", "-c", script])

    def _await_setup(self, service: str) -> None:
        proc = self.setups[service]
        rc = proc.wait(timeout=READY_S)
        if rc != 0:
            raise StartError(f"{service}: database setup failed (exit {rc}); log tail:\n"
                             + _tail(self.layout.base / "logs" / f"{service}-setup.log"))

    def _serve(self, service: str) -> None:
        conf_dir = self.layout.dir(service)
        self.procs[service] = self._spawn(service, [str(self.layout.venv / "bin" / "python"),
                                                    str(RUNNER / "serve.py"), service, str(conf_dir),
                                                    str(self.layout.ports[service])])

    def _await_http(self, service: str, deadline: float) -> None:
        url = self.layout.url(service) + "/"
        while True:
            proc = self.procs[service]
            if proc.poll() is not None:
                raise StartError(f"{service} exited ({proc.returncode}) before answering; log tail:\n"
                                 + _tail(self.layout.base / "logs" / f"{service}.log"))
            try:
                with urllib.request.urlopen(url, timeout=5):
                    return
            except urllib.error.HTTPError:
                return  # it answered (300 version lists, 401)
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise StartError(f"{service} did not answer on {url} in {READY_S:.0f} s; log tail:\n"
                                 + _tail(self.layout.base / "logs" / f"{service}.log"))
            time.sleep(0.25)

    # --- the whole start -------------------------------------------------------------------------------------
    def start(self) -> RealCloud:
        """Set up, start and seed everything; on any failure, stop what started and raise StartError."""
        began = time.monotonic()
        try:
            confs = configs.write_all(self.layout)
            self._run_setups_with_secret(confs)
            self._await_setup("keystone")
            self._serve("keystone")
            self._await_http("keystone", time.monotonic() + READY_S)
            seed.identity(self.layout)
            self.timings["keystone"] = time.monotonic() - began
            for service in SERVICES[1:]:
                self._await_setup(service)
                self._serve(service)
            deadline = time.monotonic() + READY_S
            for service in SERVICES[1:]:
                self._await_http(service, deadline)
            self.timings["answering"] = time.monotonic() - began
            self.seeded = seed.resources(self.layout)
            self.timings["ready"] = time.monotonic() - began
            self._save_layout()
        except BaseException:
            self.stop()
            raise
        return self

    def _run_setups_with_secret(self, confs: dict[str, Path]) -> None:
        # keystone-manage bootstrap reads the admin password from the environment, never from argv.
        os.environ["ADMIN_PASSWORD"] = self.layout.admin_password
        try:
            self._run_setups(confs)
        finally:
            os.environ.pop("ADMIN_PASSWORD", None)

    def stop(self) -> None:
        """End every process this run started (setup tools and services): SIGTERM, then SIGKILL after 10 s."""
        procs = [*self.setups.values(), *self.procs.values()]
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def remove(self) -> None:
        if self.own_base:
            shutil.rmtree(self.layout.base, ignore_errors=True)

    def _save_layout(self) -> None:
        path = self.layout.base / "layout.json"
        path.write_text(json.dumps({"ports": self.layout.ports, "admin_password": self.layout.admin_password,
                                    "service_password": self.layout.service_password, "extra": self.layout.extra,
                                    "seeded": self.seeded}))
        path.chmod(0o600)

    @classmethod
    def attach(cls, base: Path) -> RealCloud:
        """The services an `up --dir BASE` started and still runs (to debug tests against: CADES_REALCLOUD_ATTACH)."""
        saved = json.loads((base / "layout.json").read_text())
        cloud = cls(base)
        cloud.own_base = False
        lay = cloud.layout
        lay.ports, lay.admin_password, lay.service_password = (saved["ports"], saved["admin_password"],
                                                               saved["service_password"])
        lay.extra, cloud.seeded = saved["extra"], saved["seeded"]
        return cloud

    # --- what tests use --------------------------------------------------------------------------------------
    def clouds_yaml(self) -> Path:
        return self.layout.base / "clouds.yaml"

    def log(self, service: str) -> str:
        return _tail(self.layout.base / "logs" / f"{service}.log", 5000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.realcloud.services")
    parser.add_argument("command", choices=["up", "install"])
    parser.add_argument("--dir", type=Path, help="where configs, databases and logs go (default: a temp dir)")
    args = parser.parse_args(argv)
    spent = ensure_venv()
    print(f"venv {venv_path()}: ready ({spent:.0f} s to install)", file=sys.stderr)
    if args.command == "install":
        return 0
    cloud = RealCloud(args.dir)
    try:
        cloud.start()
        print(cloud.clouds_yaml().read_text())
        print(f"# {cloud.clouds_yaml()}; logs in {cloud.layout.base / 'logs'}; started in "
              f"{cloud.timings['ready']:.0f} s. Ctrl+C stops the services.", file=sys.stderr)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cloud.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
