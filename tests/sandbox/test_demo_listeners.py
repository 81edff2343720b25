"""The demo's SSH hosts end with the app, however it ends: the terminal closed (SIGHUP), SIGTERM, SIGINT, `q`; a
SIGKILL'd app's sshd ends with it (tied to it), and a start ends what an earlier run left (its pid files, each
verified on the process's command line; orphans of deleted VM folders) — never another process.

`cades-tui --demo` runs in a real terminal (a pty, the app its session leader: closing the terminal is closing the
pty's master). Listeners are read with `ss -ltnp`.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox.conftest import wait_for
from tui.sandbox import Delays, Sandbox, procs
from tui.sandbox.sshhost import MARKER_ENV, SSHD, SSHHost, free_port, sshd_args

pytestmark = [pytest.mark.timeout(240),
              pytest.mark.skipif(not (sys.platform.startswith("linux") and os.access(SSHD, os.X_OK)
                                      and shutil.which("ss")), reason="needs Linux, OpenSSH's sshd and ss")]


def sshd_pids(sandbox_dir: Path) -> list[int]:
    """Every sshd process serving one of the sandbox's VMs (listeners and connections)."""
    needle = f"{sandbox_dir}/instances/"
    return [pid for pid in procs.all_pids()
            if procs.comm(pid) == "sshd" and any(needle in arg for arg in procs.cmdline(pid))]


def listening(pids: list[int]) -> list[tuple[str, int, int]]:
    """(address, port, pid) of every TCP listener (`ss -ltnp`) held by one of `pids`."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True, timeout=30).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        host, _, port = fields[3].rpartition(":")
        for owner in line.split("pid=")[1:]:
            pid = int(owner.split(",")[0])
            if pid in pids:
                found.append((host, int(port), pid))
    return found


def sandbox_listeners(sandbox_dir: Path) -> list[tuple[str, int, int]]:
    return listening(sshd_pids(sandbox_dir))


class DemoApp:
    """`cades-tui --demo` in a pty, with its own state, data and config dirs; its screen is read (and thrown
    away) all along, as a terminal does, so the app never waits on a full pty."""

    def __init__(self, base: Path, **env: str) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("CADES_TUI_", "OS_"))} | env
        self.env |= {"TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30", "XDG_STATE_HOME": f"{base}/state",
                     "XDG_DATA_HOME": f"{base}/data", "XDG_CONFIG_HOME": f"{base}/config"}
        self.sandbox_dir = base / "state" / "cades-tui" / "sandbox"
        self.pid = 0
        self.fd = -1
        self.status: int | None = None
        self._reading = threading.Event()
        self._reader: threading.Thread | None = None

    def start(self) -> DemoApp:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the app, session leader of the pty
            os.execve(sys.executable, [sys.executable, "-m", "tui", "--demo"], self.env)
        self._reading.set()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        while self._reading.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    os.read(self.fd, 65536)
                except OSError:
                    return

    def close_terminal(self) -> None:
        """As closing the terminal window does: the pty's master closes, the kernel sends SIGHUP."""
        self._stop_reading()
        os.close(self.fd)
        self.fd = -1

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def _stop_reading(self) -> None:
        self._reading.clear()
        if self._reader is not None:
            self._reader.join(5)

    def exited(self) -> bool:
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
        return self.status is not None

    def wait_listening(self) -> list[tuple[str, int, int]]:
        """Until the demo VM's sshd listens (the app starts the sandbox after its first frame)."""
        return list(wait_for(lambda: sandbox_listeners(self.sandbox_dir), 90, "the demo VM's sshd listening"))

    def kill(self) -> None:
        """Teardown: the app, then whatever of its sandbox is left (sshd, processes in its VMs)."""
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            if not self.exited():
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        self._stop_reading()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        procs.end(sshd_pids(self.sandbox_dir))
        instances = self.sandbox_dir / "instances"
        for root in instances.iterdir() if instances.is_dir() else ():
            procs.terminate_marked(f"{MARKER_ENV}={root.resolve()}")


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[list[DemoApp]]:
    started: list[DemoApp] = []
    try:
        yield started
    finally:
        for app in started:
            app.kill()


@pytest.mark.parametrize("how", ["close the terminal", "SIGHUP", "SIGTERM", "SIGINT", "q", "two signals"])
def test_the_demos_ssh_hosts_end_with_the_app(apps: list[DemoApp], tmp_path: Path, how: str) -> None:
    app = DemoApp(tmp_path).start()
    apps.append(app)
    before = app.wait_listening()
    assert all(host == "127.0.0.1" or host.startswith("127.") for host, _, _ in before), before

    if how == "close the terminal":
        app.close_terminal()
    elif how == "q":
        app.type(b"q")
    elif how == "two signals":  # impatient: the second ends the app at once, the demo stopped first (two kinds:
        os.kill(app.pid, signal.SIGTERM)  # a second one of the same kind may merge with the first)
        os.kill(app.pid, signal.SIGHUP)
    else:
        os.kill(app.pid, getattr(signal, how))
    wait_for(app.exited, 30, "the app to end")
    expected = {"close the terminal": {129}, "q": {0}, "two signals": {129, 143}}.get(
        how, {128 + getattr(signal, how, 0)})
    assert app.status in expected, f"{how}: exit {app.status}"  # ended by itself, not by the signal's default

    # Nothing of the sandbox listens, and no sshd of it is left at all (nor its connections).
    assert sandbox_listeners(app.sandbox_dir) == []
    assert wait_for(lambda: not sshd_pids(app.sandbox_dir), 5, "no sshd of the sandbox")


def test_a_killed_apps_ssh_hosts_end_and_the_next_start_serves_alone(apps: list[DemoApp], tmp_path: Path) -> None:
    first = DemoApp(tmp_path).start()
    apps.append(first)
    (_, _, old), *_ = first.wait_listening()
    os.kill(first.pid, signal.SIGKILL)
    wait_for(first.exited, 30, "the app to end")
    # Tied to the app: its sshd ends with it, before any new start.
    assert wait_for(lambda: not procs.alive(old), 10, "the killed app's sshd to end")

    second = DemoApp(tmp_path).start()
    apps.append(second)
    now = second.wait_listening()
    pids = {pid for _, _, pid in now}
    assert len(pids) == 1 and old not in pids, now
    assert (procs.stat(next(iter(pids))) or ["", "", ""])[2] == str(second.pid)  # the new app's own sshd
    os.kill(second.pid, signal.SIGTERM)
    wait_for(second.exited, 30, "the second app to end")
    assert sandbox_listeners(second.sandbox_dir) == []


def test_a_start_ends_the_sshd_an_earlier_run_left_by_its_pid_file(tmp_path: Path) -> None:
    """An earlier run that could not tie its sshd (another system, an older version) left it listening: the next
    start ends it (its pid file, checked against the process's command line) and serves on the same port."""
    first = Sandbox(tmp_path / "sb", delays=Delays.fast())
    first.start()
    unrelated = subprocess.Popen(["sleep", "300"])
    leftover: subprocess.Popen[bytes] | None = None
    second = third = None
    try:
        (sid,) = first.seed_servers(1, ssh_hosts=True)
        host = first.ssh_host(sid)
        assert host is not None
        port, root = host.port, host.root
        first.stop(power_off=False)
        # What the earlier run left: its sshd, as it was started then (untied), still serving the VM on its port.
        leftover = subprocess.Popen([SSHD, *sshd_args(root)], start_new_session=True)
        wait_for(lambda: listening([leftover.pid]), 10, "the leftover sshd listening")
        assert (root / "etc" / "sshd.pid").read_text().split() == [str(leftover.pid)]

        second = Sandbox(tmp_path / "sb", delays=Delays.fast())
        second.start()
        assert leftover.wait(5) is not None  # ended
        host = second.ssh_host(sid)
        assert host is not None and host.running and host.port == port  # the VM serves on its port again
        second.stop(power_off=False)

        # A pid file naming another process (its number reused): that process is left alone.
        (root / "etc" / "sshd.pid").write_text(f"{unrelated.pid}\n")
        third = Sandbox(tmp_path / "sb", delays=Delays.fast())
        third.start()
        assert unrelated.poll() is None
        assert third.ssh_host(sid) is not None
    finally:
        for sb in (first, second, third):
            if sb is not None:
                sb.stop()
        for proc in (leftover, unrelated):
            if proc is not None:
                proc.kill()
                proc.wait()


def test_a_start_ends_orphaned_sshd_of_deleted_vm_folders(tmp_path: Path) -> None:
    """What older versions left (seven after seven benchmark starts): sshd with parent 1, its VM folder gone."""
    root = tmp_path / "gone-vm"
    host = SSHHost(root, [])
    host.port = free_port()
    host._write_config()
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory, as root
    # Started as an older run did, then orphaned (its parent, the shell, exits at once).
    subprocess.run(["sh", "-c", f"{SSHD} {' '.join(sshd_args(host.root))} </dev/null >/dev/null 2>&1 &"],
                   check=True, timeout=10)
    orphan = wait_for(lambda: [p for p in procs.all_pids() if procs.runs_with(p, "sshd", *sshd_args(host.root))],
                      10, "the orphan sshd")[0]
    keeper = None
    try:
        wait_for(lambda: listening([orphan]), 10, "the orphan listening")
        assert (procs.stat(orphan) or ["", "", ""])[2] == "1"
        # An orphan whose folder still exists is not touched (someone may still own that VM).
        keeper = Sandbox(tmp_path / "sb", delays=Delays.fast())
        keeper.start()
        assert procs.alive(orphan)
        keeper.stop()
        shutil.rmtree(root)
        keeper = Sandbox(tmp_path / "sb", delays=Delays.fast())
        keeper.start()
        assert wait_for(lambda: not procs.alive(orphan), 5, "the orphan to end")
    finally:
        if keeper is not None:
            keeper.stop()
        with contextlib.suppress(ProcessLookupError):
            os.kill(orphan, signal.SIGKILL)


WILDCARDS = {"0.0.0.0", "*", "[::]", "::", "[::ffff:0.0.0.0]"}


def test_nothing_the_demo_app_starts_listens_on_a_wildcard(apps: list[DemoApp], tmp_path: Path) -> None:
    """With Jupyter running on the demo VM and the app's tunnel to it open (and used, so the OpenSSH forwarder's
    master and a multiplexing client run): every listener of the app's process tree (the app itself: the sandbox's
    API, the tunnel; its children: the VMs' sshd, ssh) and of the processes in the VM (Jupyter) is on 127.x."""
    import urllib.request

    profile = tmp_path / "profile.yaml"
    profile.write_text(f"setup:\n  env_path: {sys.prefix}\njupyter:\n  port: {free_port()}\n  local_port: 0\n")
    app = DemoApp(tmp_path, CADES_TUI_CONFIG=str(profile))
    apps.append(app)  # (its teardown also ends what runs in the VM: Jupyter)
    # Jupyter started on the demo VM by the command line (which owns the sandbox meanwhile); the app finds it.
    started = subprocess.run([sys.executable, "-m", "tui", "--demo", "jupyter", "start", "analytics-1"], env=app.env,
                             capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stdout + started.stderr
    app.start()
    app.wait_listening()
    log = tmp_path / "state" / "cades-tui" / "cades-tui.log"
    wait_for(lambda: "Jupyter answers at port" in log.read_text(), 90, "the app to find Jupyter")
    app.type(b"t")  # open the tunnel (the only instance is the selected one)
    api_port = int(json.loads((app.sandbox_dir / "state.json").read_text())["api_port"])

    def tunnel_ports() -> list[int]:
        return [port for host, port, _ in listening([app.pid]) if port != api_port]

    (port, *_) = wait_for(tunnel_ports, 90, "the app's tunnel to Jupyter")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=30) as resp:
        assert resp.status == 200  # through the tunnel: the forwarder's master and a client have run

    tree = [app.pid, *procs.descendants(app.pid)]
    if shutil.which("ssh"):  # the OpenSSH forwarder carries the tunnel: its master runs (and listens nowhere)
        assert "ssh" in {procs.comm(p) for p in tree}, [(p, procs.comm(p)) for p in tree]
    vm = [p for root in (app.sandbox_dir / "instances").iterdir()
          for p in procs.marked_pids(f"{MARKER_ENV}={root.resolve()}")]
    found = listening(tree + vm)
    print("\n".join(f"{h}:{p} {procs.comm(pid)} {' '.join(procs.cmdline(pid))[:80]}" for h, p, pid in found))
    assert {procs.comm(pid) for _, _, pid in found} >= {"python", "sshd"}, found  # not vacuous
    assert any(pid in vm for _, _, pid in found), found  # Jupyter in the VM
    wild = [(h, p, procs.comm(pid)) for h, p, pid in found if h in WILDCARDS]
    assert not wild, f"listening on a wildcard: {wild}"
    assert all(h.startswith("127.") for h, _, _ in found), found
