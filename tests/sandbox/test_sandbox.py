"""Sandbox lifecycle: persistence across restarts, the demo seed, 1,000 servers, the foreground CLI."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import asyncssh
import requests
import yaml

from tests.sandbox.conftest import connect, known_hosts_from_console, wait_for
from tui.core.models import META_SSH_PORT
from tui.sandbox import Delays, Sandbox


async def test_demo_seed_and_restart_keep_servers_and_hosts(tmp_path: Path) -> None:
    sb = Sandbox(tmp_path / "sb", delays=Delays.fast(), seed_demo=True)
    sb.start()
    try:
        demo = sb.server_state("analytics-1")
        assert demo["status"] == "ACTIVE" and demo["key_name"] == "sandbox-demo"
        assert [v["size"] for v in demo["volume_records"]] == [16]
        assert stat.S_IMODE(sb.demo_key_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(sb.clouds_yaml.stat().st_mode) == 0o600
        host = sb.ssh_host(demo["id"])
        assert host is not None
        (host.home / "notebook.ipynb").write_text("{}")
        port, api_port, fingerprint = host.port, sb.port, host.host_key_fingerprint
        password = yaml.safe_load(sb.clouds_yaml.read_text())["clouds"]["sandbox"]["auth"]["password"]
    finally:
        sb.stop()
    assert not host.running

    again = Sandbox(tmp_path / "sb", delays=Delays.fast(), seed_demo=True)
    again.start()
    try:
        assert again.port == api_port  # the previous port is reused when free
        assert yaml.safe_load(again.clouds_yaml.read_text())["clouds"]["sandbox"]["auth"]["password"] == password
        conn = connect(again)
        (server,) = list(conn.compute.servers())  # seeded once only
        assert server.name == "analytics-1" and server.status == "ACTIVE"
        assert int(server.metadata[META_SSH_PORT]) == port
        console = conn.compute.get_server_console_output(server.id)["output"]
        assert fingerprint in console
        key = asyncssh.read_private_key(str(again.demo_key_path))
        async with asyncssh.connect(
            "127.0.0.1",
            port,
            username=server.metadata["sandbox_ssh_user"],
            client_keys=[key],
            known_hosts=asyncssh.import_known_hosts(known_hosts_from_console(console, port)),
        ) as ssh:
            result = await ssh.run("cat notebook.ipynb", check=True)
        assert result.stdout == "{}"
    finally:
        again.stop()


def test_thousand_servers_list_fast_and_no_writes_on_get(tmp_path: Path) -> None:
    sb = Sandbox(tmp_path / "sb", delays=Delays.fast(), ssh_hosts=False)
    sb.start()
    try:
        sb.seed_servers(1000)
        conn = connect(sb)
        list(conn.compute.flavors())  # authenticate
        # The state writer saves what is pending and ends: from here a save would change the file's mtime, and a
        # request asking for one would set the writer's flag (no time window to wait out, however slow the disk).
        sb.state.stop()
        sb.state._dirty.clear()
        mtime = (sb.state_dir / "state.json").stat().st_mtime_ns
        t0 = time.monotonic()
        body = conn.compute.get("/servers/detail").json()
        elapsed = time.monotonic() - t0
        assert len(body["servers"]) == 1000 and "servers_links" not in body
        assert elapsed < 2.0, f"GET /servers/detail took {elapsed:.2f} s"
        page = conn.compute.get("/servers/detail?limit=300").json()
        assert len(page["servers"]) == 300 and page["servers_links"][0]["rel"] == "next"
        seen, url = [], "/servers?limit=400"
        while url:
            page = conn.compute.get(url).json()
            seen += [s["id"] for s in page["servers"]]
            url = page["servers_links"][0]["href"] if page.get("servers_links") else None
        assert len(set(seen)) == 1000
        assert len(list(conn.compute.servers(name="bench-00[0-4]"))) == 50
        assert not sb.state._dirty.is_set()  # no GET asked the writer for a save
        assert (sb.state_dir / "state.json").stat().st_mtime_ns == mtime
        saved = json.loads((sb.state_dir / "state.json").read_text())
        assert len(saved["servers"]) == 1000
    finally:
        sb.stop()


def test_foreground_cli_serves_until_sigterm(tmp_path: Path) -> None:
    code = "import sys; from pathlib import Path; from tui.sandbox import serve; sys.exit(serve(0, Path(sys.argv[1])))"
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "sb")], stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        assert proc.stdout is not None
        while not any("openstack server list" in line for line in lines):
            line = proc.stdout.readline()
            assert line, f"serve() exited early: {lines}"
            lines.append(line)
        text = "".join(lines)
        assert f"export OS_CLIENT_CONFIG_FILE={tmp_path / 'sb' / 'clouds.yaml'} OS_CLOUD=sandbox" in text
        url = text.split("listening on ", 1)[1].split()[0]
        assert requests.get(f"{url}/identity", timeout=5).status_code == 300
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 128 + signal.SIGTERM  # as every foreground command (Ctrl+C: 130)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
    state = json.loads((tmp_path / "sb" / "state.json").read_text())
    (demo,) = state["servers"].values()
    pidfile = tmp_path / "sb" / "instances" / demo["id"] / "etc" / "sshd.pid"
    assert not pidfile.exists() or not Path(f"/proc/{pidfile.read_text().strip()}").exists() or _zombie(pidfile)
    assert os.stat(tmp_path / "sb" / "secrets.json").st_mode & 0o077 == 0


def _zombie(pidfile: Path) -> bool:
    try:
        return Path(f"/proc/{pidfile.read_text().strip()}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_transitions_due_while_no_sandbox_ran_are_finished_by_the_next_start(tmp_path: Path) -> None:
    """`cades-tui --demo launch NAME` (no --wait) ends its process, and the sandbox with it, while the server is in
    BUILD: the next process that starts the sandbox finds it ACTIVE (its build fell due meanwhile), before the
    API answers — not BUILD for another full build delay from then on."""
    sb = Sandbox(tmp_path / "sb", delays=Delays(build_s=0.2, volume_s=0.1), ssh_hosts=False)
    sb.start()
    try:
        conn = connect(sb)
        image = next(iter(conn.image.images()))
        net = conn.network.find_network("sandbox-net")
        server = conn.compute.create_server(
            name="vm1", flavor_id=conn.compute.find_flavor("m1.tiny").id, networks=[{"uuid": net.id}],
            block_device_mapping=[{"boot_index": 0, "uuid": image.id, "source_type": "image",
                                   "destination_type": "volume", "volume_size": 16}])
        sb.scheduler.stop()  # the process ends before the build is due
        assert sb.server_state("vm1")["status"] == "BUILD"
    finally:
        sb.stop()
    due = time.time() + 0.5  # its volume and build fell due by then, while no sandbox ran
    wait_for(lambda: time.time() > due, what="the build to fall due")

    again = Sandbox(tmp_path / "sb", delays=Delays(build_s=600, volume_s=600), ssh_hosts=False)
    again.start()
    try:
        state = again.server_state("vm1")
        assert state["status"] == "ACTIVE", state["status"]
        assert [v["status"] for v in state["volume_records"]] == ["in-use"]
        assert connect(again).compute.get_server(server.id).status == "ACTIVE"
    finally:
        again.stop()


def test_transitions_not_yet_due_keep_their_remaining_time(tmp_path: Path) -> None:
    """A transition still running when the sandbox stopped resumes with the time it had left, by its saved due
    time — not with the delay of whichever sandbox starts next."""
    sb = Sandbox(tmp_path / "sb", delays=Delays(build_s=600), ssh_hosts=False)
    sb.start()
    try:
        sid = sb.seed_servers(1)[0]
        with sb.state.lock:
            sb.later(0.5, "servers", sid, "stop")
            sb.state.table("servers")[sid]["task_state"] = "powering-off"
    finally:
        sb.stop()
    again = Sandbox(tmp_path / "sb", delays=Delays(stop_s=600), ssh_hosts=False)
    again.start()
    try:
        wait_for(lambda: again.server_state(sid)["status"] == "SHUTOFF", what="the stop to finish")
    finally:
        again.stop()
