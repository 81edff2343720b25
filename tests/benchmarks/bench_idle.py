"""Idle cost: the app with 3 instances, Jupyter running on one and its tunnel open, doing nothing for a minute.

The sandbox cloud runs in its own process (its VMs are SSH hosts on this machine). The benchmark launches 3
instances through the cloud API with the app's own key (as `n` / `cades-tui launch` do), starts Jupyter on the
first with the real engine (`CoreEngine.jupyter.start`: screen session, tunnel, answering through it — the venv's
`jupyter` standing in for the VM's, as the tests run it) and leaves it running, as quitting the app does. Then the
app starts in a terminal (a pty at 120x40, `App.run`, the profile's default refresh), reattaches to that Jupyter and
re-opens its tunnel; once /api answers through the tunnel and the app has settled, its process's CPU time and RSS
are read from /proc over `--seconds`. Baseline, in the same run and at the same time: a bare Textual app (header,
a line, footer) idle in its own pty.

Goals (issue 12): ≤ 1 % of one core and ≤ 120 MB RSS. The tunnel's OpenSSH master (a child `ssh`, where it carries
the bytes) is shown apart.

Run: .venv/bin/python tests/benchmarks/bench_idle.py [--seconds 60]
Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import tempfile
import termios
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Goals, cpu_seconds, rss_mb, separate_sandbox, wait_for

JUPYTER = str(Path(sys.executable).parent / "jupyter")  # the venv's, standing in for the VM's ~/jupyter-env
GOAL_CPU_PCT = 1.0
GOAL_RSS_MB = 120.0

APP = textwrap.dedent("""
    import sys
    from tui.core.config import JupyterSettings, Settings, SSHSettings
    from tui.core.engine import engine_factory, open_cloud
    from tui.core.options import ManagerOptions
    from tui.ui.app import CadesApp
    clouds, port, jupyter = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    settings = Settings(cloud="sandbox", clouds_yaml=clouds, ssh=SSHSettings(use_ssh_config=False),
                        jupyter=JupyterSettings(port=port, local_port=0))
    CadesApp(settings, engine_factory(settings, lambda: open_cloud(settings),
                                      options=ManagerOptions(jupyter_command=jupyter))).run()
""")
BARE = textwrap.dedent("""
    from textual.app import App
    from textual.widgets import Footer, Header, Static
    class Bare(App):
        def compose(self):
            yield Header()
            yield Static("BARE-READY")
            yield Footer()
    Bare().run()
""")


def settings_for(clouds: Path, port: int):  # type: ignore[no-untyped-def]
    from tui.core.config import JupyterSettings, Settings, SSHSettings

    return Settings(cloud="sandbox", clouds_yaml=str(clouds), ssh=SSHSettings(use_ssh_config=False),
                    jupyter=JupyterSettings(port=port, local_port=0))


async def prepare(clouds: Path, port: int) -> tuple[str, int]:
    """3 instances; Jupyter started on the first with its tunnel; left running. (its name, the tunnel's port)"""
    from tui.core.cloud.launch import plan_launch
    from tui.core.engine import CoreEngine, open_cloud
    from tui.core.options import ManagerOptions
    from tui.core.services import Services, launch_instance

    settings = settings_for(clouds, port)
    services = Services(settings)
    cloud = await asyncio.to_thread(open_cloud, settings)
    instances = []
    for i in range(3):
        plan = plan_launch(f"idle-{i}", flavors=cloud.list_flavors(), images=cloud.list_images(),
                           networks=cloud.list_networks(), quota=cloud.get_quota(), key_name="")
        instances.append(await asyncio.to_thread(launch_instance, cloud, plan.spec, lambda _: None,
                                                 services.keystore, wait=True))
    engine = CoreEngine(settings, cloud, lambda _e: None, services=services,
                        options=ManagerOptions(jupyter_command=JUPYTER))
    try:
        state = await engine.jupyter.start(instances[0])
    finally:
        await engine.aclose()  # as quitting the app: Jupyter keeps running, the tunnel is on record
    assert state.state == "running", state
    return instances[0].name, state.local_port


@contextlib.contextmanager
def in_pty(argv: list[str], env: dict[str, str]) -> Iterator[int]:
    """`argv` on a 120x40 terminal whose output is read (and dropped) by a thread; yields its pid."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    done = threading.Event()

    def drain() -> None:
        while not done.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    os.read(fd, 1 << 16)
                except OSError:
                    return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        yield pid
    finally:
        done.set()
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        reader.join()
        os.close(fd)


def children_cpu(pid: int) -> float:
    """CPU seconds of the live child processes of `pid` (the tunnel's ssh master)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                total += cpu_seconds(int(stat.parent.name))
    return total


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after the tunnel answers")
    args = parser.parse_args()
    goals = Goals()
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        for var in ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
            os.environ[var] = f"{tmp}/{var.lower()}"
        from tui.sandbox.sshhost import free_port

        with separate_sandbox(Path(tmp) / "cloud", 0, ssh=True) as clouds:
            port = free_port()
            t0 = time.monotonic()
            name, local_port = asyncio.run(prepare(clouds, port))
            print(f"3 instances launched, Jupyter started on {name} with its tunnel on :{local_port} "
                  f"({time.monotonic() - t0:.1f} s); Jupyter left running")
            env = dict(os.environ, TERM="xterm-256color")
            with in_pty([sys.executable, "-c", APP, str(clouds), str(port), JUPYTER], env) as app, \
                    in_pty([sys.executable, "-c", BARE], env) as bare:
                t0 = time.monotonic()
                wait_for(lambda: answers(local_port), 90, "the app's reattached tunnel to answer")
                print(f"the app reattached: /api answers through its tunnel {time.monotonic() - t0:.1f} s after "
                      f"its start; settling {args.settle:.0f} s, then measuring {args.seconds:.0f} s")
                time.sleep(args.settle)
                start = {p: cpu_seconds(p) for p in (app, bare)}
                ssh0, w0 = children_cpu(app), time.monotonic()
                time.sleep(args.seconds)
                wall = time.monotonic() - w0
                pct = {p: (cpu_seconds(p) - start[p]) / wall * 100 for p in (app, bare)}
                ssh_pct = (children_cpu(app) - ssh0) / wall * 100
                mem = {p: rss_mb(p) for p in (app, bare)}
                still = answers(local_port)
    print(f"  machine load average (1 min) {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"  app:             {pct[app]:5.2f} % of a core, RSS {mem[app]:5.1f} MB "
          f"(its ssh children {ssh_pct:.2f} %; tunnel still answering: {still})")
    print(f"  bare Textual app {pct[bare]:5.2f} % of a core, RSS {mem[bare]:5.1f} MB (same run, same time)")
    goals.check("idle CPU", pct[app] <= GOAL_CPU_PCT,
                f"{pct[app]:.2f} % of a core (goal ≤ {GOAL_CPU_PCT:g} %; bare Textual {pct[bare]:.2f} %)")
    goals.check("idle RSS", mem[app] <= GOAL_RSS_MB,
                f"{mem[app]:.0f} MB (goal ≤ {GOAL_RSS_MB:g} MB; bare Textual {mem[bare]:.0f} MB)")
    return goals.exit_code()


if __name__ == "__main__":
    sys.exit(main())
