"""The generated config used by the REAL OpenSSH client against the sandbox's real sshd hosts: `ssh -F CONFIG NAME`,
`scp`, a worker through its head (ProxyJump, proven by the head's sshd log), refused when the pinned key does not
match (checking is on), and the file following CLI launches and deletes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")


def cades(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def openssh(config: Path, *args: str, tool: str = "ssh") -> subprocess.CompletedProcess[str]:
    """The real client with only the generated file (-F) and no way to ask anything (BatchMode)."""
    return subprocess.run([tool, "-F", str(config), "-o", "BatchMode=yes", *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture
def env(sandbox: Any, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "OS_CLIENT_CONFIG_FILE": str(sandbox.clouds_yaml), "OS_CLOUD": "sandbox",
            "HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "config")}


def launch(env: dict[str, str], name: str) -> dict[str, Any]:
    r = cades(env, "launch", name, "--wait", "--json")
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


def private_worker(sandbox: Any, env: dict[str, str], head: dict[str, Any]) -> dict[str, Any]:
    """`HEAD-w1` as a cluster makes it: the head's key pair and network, no floating IP (reached through the head)."""
    import openstack
    from openstack.config import loader

    region = loader.OpenStackConfig(config_files=[str(sandbox.clouds_yaml)], vendor_files=[]).get_one("sandbox")
    conn = openstack.connection.Connection(config=region)
    try:
        image = conn.image.find_image("Ubuntu 22.04")
        net = conn.network.find_network("sandbox-net")
        flavor = conn.compute.find_flavor("m1.tiny")
        server = conn.compute.create_server(name=f"{head['name']}-w1", image_id=image.id, flavor_id=flavor.id,
                                            key_name=head["key_name"], networks=[{"uuid": net.id}])
        server = conn.compute.wait_for_server(server, interval=0.1, wait=60)
        return {"id": server.id, "name": server.name}
    finally:
        conn.close()


def test_openssh_by_name_with_pinned_keys(sandbox: Any, env: dict[str, str], tmp_path: Path) -> None:
    name = f"oc-{uuid.uuid4().hex[:6]}"
    inst = launch(env, name)
    worker: dict[str, Any] = {}
    try:
        known = tmp_path / "data" / "cades-tui" / "known_hosts"
        assert not known.exists()  # the app never logged in: ssh-config does, where the console log pins the key
        made = cades(env, "ssh-config")
        assert made.returncode == 0, made.stderr
        config = tmp_path / "home" / ".ssh" / "cades-tui" / "sandbox.config"
        assert f"Wrote {config}" in made.stdout and f"Host {name}" in config.read_text()
        assert "not verified" not in made.stderr and f"[{inst['ip']}]:{inst['ssh_port']} " in known.read_text()

        r = openssh(config, name, "echo", "by-name")
        assert r.returncode == 0 and r.stdout.strip() == "by-name", r.stderr
        payload = tmp_path / "payload.txt"
        payload.write_text("scp by name\n")
        r = openssh(config, str(payload), f"{name}:payload.txt", tool="scp")
        assert r.returncode == 0, r.stderr
        assert (sandbox.ssh_host(inst["id"]).home / "payload.txt").read_text() == "scp by name\n"
        if shutil.which("rsync"):  # rsync -e ssh by name (the VM's rsync too: the sandbox VM is this machine)
            (tmp_path / "tree" / "sub").mkdir(parents=True)
            (tmp_path / "tree" / "sub" / "f.txt").write_text("rsync by name\n")
            r = subprocess.run(["rsync", "-a", "-e", f"ssh -F {config} -o BatchMode=yes", f"{tmp_path / 'tree'}/",
                                f"{name}:tree/"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
            assert r.returncode == 0, r.stderr
            assert (sandbox.ssh_host(inst["id"]).home / "tree" / "sub" / "f.txt").read_text() == "rsync by name\n"

        # a worker of a cluster: private address, reached through its head
        worker = private_worker(sandbox, env, inst)
        made = cades(env, "ssh-config")  # its key pinned through the head, as the app does
        assert made.returncode == 0 and "not verified" not in made.stderr, made.stderr
        assert f"ProxyJump {name}" in config.read_text()
        r = openssh(config, worker["name"], "hostname", "-I", ";", "echo", "on-worker")
        assert r.returncode == 0 and "on-worker" in r.stdout, r.stderr
        w = sandbox.server_state(worker["id"])
        port = dict(w.get("metadata", {})).get("sandbox_ssh_port")
        assert f"port {port}" in sandbox.sshd_log_path(inst["id"]).read_text()  # the head forwarded to it

        # checking is on: another key pinned for that address is refused, and so is no key at all
        pinned = known.read_text()
        alias = f"[{inst['ip']}]:{inst['ssh_port']}"
        assert alias in pinned
        other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
        known.write_text("".join(f"{alias} {other}\n" if line.startswith(alias + " ") else line + "\n"
                                 for line in pinned.splitlines()))
        r = openssh(config, name, "true")
        assert r.returncode == 255 and "host key" in r.stderr.lower(), r.stderr
        known.write_text("".join(line + "\n" for line in pinned.splitlines() if not line.startswith(alias + " ")))
        r = openssh(config, name, "true")
        assert r.returncode == 255 and "host key" in r.stderr.lower(), r.stderr
        known.write_text(pinned)
        assert openssh(config, name, "true").returncode == 0
    finally:
        if worker:
            cades(env, "delete", worker["name"], "--yes", "--delete-volumes")
        cades(env, "delete", name, "--yes", "--delete-volumes")


def test_the_file_follows_cli_launch_and_delete(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "home" / ".ssh" / "cades-tui" / "sandbox.config"
    name = f"fo-{uuid.uuid4().hex[:6]}"
    launch(env, name)
    try:
        assert not config.exists()  # nobody asked for it: never written
        shown = cades(env, "ssh-config", "--print")
        assert shown.returncode == 0 and f"Host {name}\n" in shown.stdout and not config.exists()
        made = cades(env, "ssh-config", "--install", "--json")
        assert made.returncode == 0, made.stderr
        report = json.loads(made.stdout)
        assert report["installed"] and report["include_added"] and name in report["hosts"]
        user_config = tmp_path / "home" / ".ssh" / "config"
        assert user_config.read_text().splitlines()[0] == report["include"] == "Include ~/.ssh/cades-tui/*.config"
        assert f"Host {name}\n" in config.read_text()
        second = f"{name}-b"
        r = cades(env, "launch", second, "--wait")
        assert r.returncode == 0, r.stderr
        assert f"Host {second}\n" in config.read_text() and f"Updated {config}" in r.stderr
        r = cades(env, "delete", second, "--yes", "--delete-volumes")
        assert r.returncode == 0, r.stderr
        assert f"Host {second}\n" not in config.read_text() and f"Host {name}\n" in config.read_text()
        r = cades(env, "ssh-config", "--uninstall")
        assert r.returncode == 0 and not config.exists() and user_config.read_text() == ""
        cades(env, "delete", name, "--yes", "--delete-volumes")
        assert not config.exists()  # uninstalled: no longer followed
    finally:
        cades(env, "delete", name, "--yes", "--delete-volumes")
