"""Benchmark: Jupyter start and reattach through the real engine, and the tunnel's two data paths against `ssh -L`.

Run on its own (not collected by pytest):

    .venv/bin/python tests/benchmarks/bench_jupyter.py [--mb 256] [--pings 2000] [--rounds 3] [--jupyter-rounds 5]
                                                       [--tunnel-only]

Goals (issue 12), each against a baseline measured in the same run; exits 1 when one is missed:
- Jupyter start → answering through the tunnel ≤ 1.1x a bare local `jupyter lab` start → GET /api 200 (no SSH,
  no screen). Timed is the app's own path: `CoreEngine.jupyter.start` (RemoteManager: SSH login with the pinned
  host key, a detached screen session, the tunnel opened while Jupyter boots, the server recognised and answering
  through it) on an instance of a sandbox cloud running in its own process (its VMs are SSH hosts here; the
  venv's `jupyter` stands in for the VM's). Reported beside it: reattach — a new engine (as a new app start)
  finding the server from the state file and re-opening the tunnel (`CoreEngine.fleet.reattach`) until /api answers
  through it (goal ≤ 2 s) — and the verified stop.
- Tunnel throughput, up and down, against OpenSSH `ssh -N -L` (aes128-gcm) to the same host and service: the
  OpenSSH hand-off (the Linux data path) ≥ 0.8x; the asyncssh forwarder (what macOS/Windows users get, forced
  here with CADES_TUI_FORWARDER=asyncssh) ≥ 0.8x (issue 22). Latency (ping-pong p50/p99) is shown, and the CPU
  the forwarding process (this one for the asyncssh forwarder, `ssh` for `ssh -L`) spends per GB.
The traffic generator and the service behind the tunnel run in their own processes (like a browser and
Jupyter), so the benchmark's event loop only forwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncssh

from tui.core.platform import FORWARDER_ENV
from tui.core.remote.connection import SSHTarget
from tui.core.remote.tunnel import Tunnel
from tui.sandbox.sshhost import SSHHost

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Goals, separate_sandbox

JUPYTER = str(Path(sys.executable).parent / "jupyter")
GCM = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
Connect = Callable[[], Awaitable[asyncssh.SSHClientConnection]]
GOAL_START_RATIO = 1.1
GOAL_REATTACH_S = 2.0
GOAL_OPENSSH = 0.8
GOAL_ASYNCSSH = 0.8

# The service on the "VM": D<size> sends size bytes, U<size> reads size bytes then answers K, E echoes.
SERVICE = r"""
import socket, sys, threading
def serve(c):
    with c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = c.recv(1)
        if head == b"E":
            while d := c.recv(65536):
                c.sendall(d)
            return
        size = int.from_bytes(c.recv(8, socket.MSG_WAITALL), "big")
        if head == b"D":
            block = b"x" * 262144
            while size > 0:
                size -= c.send(block[:min(size, len(block))])
        else:
            while size > 0:
                d = c.recv(262144)
                if not d:
                    return
                size -= len(d)
            c.sendall(b"K")
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

# The client (a browser's stand-in): prints JSON with seconds per transfer and ping-pong latencies.
CLIENT = r"""
import json, socket, sys, time
port, mode, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = socket.create_connection(("127.0.0.1", port))
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
t0 = time.perf_counter()
if mode == "down":
    c.sendall(b"D" + n.to_bytes(8, "big"))
    got = 0
    while got < n:
        d = c.recv(1 << 20)
        if not d:
            raise SystemExit("short read")
        got += len(d)
    print(json.dumps({"seconds": time.perf_counter() - t0}))
elif mode == "up":
    c.sendall(b"U" + n.to_bytes(8, "big"))
    block = b"y" * (1 << 20)
    left = n
    while left > 0:
        left -= c.send(block[:min(left, len(block))])
    assert c.recv(1) == b"K"
    print(json.dumps({"seconds": time.perf_counter() - t0}))
else:
    c.sendall(b"E")
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        c.sendall(b"p" * 64)
        got = 0
        while got < 64:
            got += len(c.recv(64 - got))
        lat.append(time.perf_counter() - t)
    print(json.dumps({"lat": lat}))
"""


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {port}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_client(port: int, mode: str, n: int) -> dict[str, object]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, str(port), mode, str(n), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"client {mode} failed")
    result: dict[str, object] = json.loads(out)
    return result


def own_cpu() -> float:
    """CPU seconds this process has used (the asyncssh forwarder runs in it)."""
    times = os.times()
    return times.user + times.system


def process_cpu(pid: int) -> Callable[[], float]:
    """CPU seconds process `pid` has used (Linux /proc: `ssh -L`'s)."""
    ticks = os.sysconf("SC_CLK_TCK")

    def used() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    return used


async def timed(port: int, mode: str, size: int, cpu: Callable[[], float] | None) -> tuple[float, float]:
    """(seconds, CPU seconds of the forwarding process) of one transfer."""
    before = cpu() if cpu else 0.0
    seconds = float(str((await run_client(port, mode, size))["seconds"]))
    return seconds, (cpu() - before) if cpu else float("nan")


async def measure_path(port: int, size: int, pings: int, cpu: Callable[[], float] | None) -> dict[str, float]:
    await run_client(port, "down", 16 << 20)  # warm-up
    down = [await timed(port, "down", size, cpu) for _ in range(2)]
    up = [await timed(port, "up", size, cpu) for _ in range(2)]
    lat_raw = (await run_client(port, "ping", pings))["lat"]
    lat = sorted(float(x) for x in lat_raw)  # type: ignore[attr-defined]
    return {
        "down_MBps": size / min(s for s, _ in down) / 1e6,
        "up_MBps": size / min(s for s, _ in up) / 1e6,
        "down_cpu_per_GB": min(c for _, c in down) / size * 1e9,
        "up_cpu_per_GB": min(c for _, c in up) / size * 1e9,
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000,
    }


def baseline_jupyter_start(work: Path) -> float:
    """Bare `jupyter lab` on this machine (no SSH, no screen) until GET /api answers."""
    work.mkdir()
    port = _free_port()
    env = {**os.environ, "HOME": str(work), "JUPYTER_RUNTIME_DIR": str(work / "rt")}
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [JUPYTER, "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--allow-root"],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    if s.recv(12).endswith(b"200"):
                        return time.monotonic() - t0
            except OSError:
                time.sleep(0.05)
            if time.monotonic() - t0 > 60:
                raise TimeoutError("jupyter lab did not answer")
    finally:
        proc.terminate()
        proc.wait()


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    """Best of several rounds per metric: the least disturbed by other load on the machine."""
    return {
        "down_MBps": max(r["down_MBps"] for r in runs),
        "up_MBps": max(r["up_MBps"] for r in runs),
        "p50_ms": min(r["p50_ms"] for r in runs),
        "p99_ms": min(r["p99_ms"] for r in runs),
        "down_cpu_per_GB": min(r["down_cpu_per_GB"] for r in runs),
        "up_cpu_per_GB": min(r["up_cpu_per_GB"] for r in runs),
    }


def api_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


async def jupyter_cycles(work: Path, rounds: int,
                         bare: list[float] | None = None) -> list[tuple[float, float, float, bool]]:
    """On a sandbox cloud in its own process, with the app's engine: per round, a new instance; Jupyter start →
    answering through the tunnel (s); a new engine reattaches → /api answers through the tunnel (s); stop (s).
    With `bare`: a bare `jupyter lab` start is timed just before each round's start (appended to it), so the two
    alternate and meet the same load on the machine."""
    from tui.core.cloud.launch import plan_launch
    from tui.core.config import JupyterSettings, Settings, SSHSettings
    from tui.core.engine import CoreEngine, open_cloud
    from tui.core.options import ManagerOptions
    from tui.core.services import Services, launch_instance
    from tui.sandbox.sshhost import free_port

    for var in ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        os.environ[var] = str(work / var.lower())
    out = []
    with separate_sandbox(work / "cloud", 0, ssh=True) as clouds:
        settings = Settings(cloud="sandbox", clouds_yaml=str(clouds), ssh=SSHSettings(use_ssh_config=False),
                            jupyter=JupyterSettings(port=free_port(), local_port=0))
        services = Services(settings)
        options = ManagerOptions(jupyter_command=JUPYTER)
        cloud = await asyncio.to_thread(open_cloud, settings)
        for i in range(rounds):
            plan = plan_launch(f"jup-{i}", flavors=cloud.list_flavors(), images=cloud.list_images(),
                               networks=cloud.list_networks(), quota=cloud.get_quota(), key_name="")
            inst = await asyncio.to_thread(launch_instance, cloud, plan.spec, lambda _: None, services.keystore)
            engine = CoreEngine(settings, cloud, lambda _e: None, services=services, options=options)
            if bare is not None:
                bare.append(await asyncio.to_thread(baseline_jupyter_start, work / f"bare{i}"))
            t0 = time.monotonic()
            state = await engine.jupyter.start(inst)
            start_s = time.monotonic() - t0
            assert state.state == "running" and await asyncio.to_thread(api_answers, state.local_port), state
            await engine.aclose()  # as quitting the app: Jupyter keeps running, its tunnel on record

            t0 = time.monotonic()
            engine = CoreEngine(settings, cloud, lambda _e: None, services=services, options=options)
            assert await engine.fleet.reattach([inst]) == [inst.id]
            tunnel = next(t for t in engine.tunnels() if t.instance == inst.id)
            while not await asyncio.to_thread(api_answers, tunnel.local_port):  # the loop serves the tunnel
                await asyncio.sleep(0.01)
            reattach_s = time.monotonic() - t0
            t0 = time.monotonic()
            stop = await engine.jupyter.stop(inst)
            stop_s = time.monotonic() - t0
            await engine.aclose()
            await asyncio.to_thread(cloud.delete, inst.id, True)
            out.append((start_s, reattach_s, stop_s, stop.stopped))
    return out


async def tunnel_paths(work: Path, size: int, pings: int, rounds: int) -> dict[str, list[dict[str, float]]]:
    """Throughput and latency to one service behind one SSH host: direct, the app's tunnel on its OpenSSH data path
    and on its asyncssh forwarder (forced as on macOS/Windows), and OpenSSH `ssh -N -L` — alternated per round."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = work / "id_ed25519"
    key.write_private_key(str(key_path))
    os.chmod(key_path, 0o600)
    host = SSHHost(work / "vm", [key.export_public_key().decode()])
    host.start()
    (work / "known_hosts").write_text(host.known_hosts_line() + "\n")
    service = subprocess.Popen([sys.executable, "-c", SERVICE], stdout=subprocess.PIPE, text=True)
    ssh_l: subprocess.Popen[bytes] | None = None
    tunnels: dict[str, Tunnel] = {}
    try:
        assert service.stdout is not None
        service_port = int(service.stdout.readline())

        async def connect() -> asyncssh.SSHClientConnection:
            return await asyncssh.connect(
                "127.0.0.1", host.port, username=host.user, client_keys=[key],
                known_hosts=asyncssh.import_known_hosts(host.known_hosts_line()),
                encryption_algs=GCM, config=[], agent_path=None,
            )

        target = SSHTarget("127.0.0.1", host.port, host.user, key_path, work / "known_hosts")
        for path, forced in (("openssh", ""), ("asyncssh", "asyncssh")):
            os.environ[FORWARDER_ENV] = forced  # the choice is made when the tunnel is made, as in the app
            tunnels[path] = Tunnel("bench", connect, service_port, openssh=target)
            await tunnels[path].open()
            assert tunnels[path].backend == path, (path, tunnels[path].backend)
        os.environ.pop(FORWARDER_ENV, None)
        lport = _free_port()
        ssh_l = subprocess.Popen(
            ["ssh", "-N", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
             "-o", f"UserKnownHostsFile={work / 'known_hosts'}", "-o", "StrictHostKeyChecking=yes",
             "-o", "Ciphers=aes128-gcm@openssh.com", "-i", str(key_path), "-p", str(host.port),
             "-L", f"127.0.0.1:{lport}:127.0.0.1:{service_port}", f"{host.user}@127.0.0.1"],
            stdin=subprocess.DEVNULL,
        )
        _wait_port(lport)
        ports = {"direct": service_port, "openssh": tunnels["openssh"].local_port,
                 "asyncssh": tunnels["asyncssh"].local_port, "ssh -L": lport}
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in ports}
        cpus = {"asyncssh": own_cpu, "ssh -L": process_cpu(ssh_l.pid)}  # the forwarding process's own CPU
        for _ in range(rounds):
            for name, port in ports.items():
                runs[name].append(await measure_path(port, size, pings, cpus.get(name)))
        counted = tunnels["openssh"].info
        print(f"  the OpenSSH path's counters after its runs: in {counted.bytes_in / 1e6:.0f} MB, "
              f"out {counted.bytes_out / 1e6:.0f} MB")
        return runs
    finally:
        for tunnel in tunnels.values():
            await tunnel.close()
        if ssh_l is not None:
            ssh_l.terminate()
            ssh_l.wait()
        service.kill()
        service.wait()
        host.stop()


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=256, help="bytes per throughput transfer (MB)")
    ap.add_argument("--pings", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3, help="throughput rounds (best of)")
    ap.add_argument("--jupyter-rounds", type=int, default=5, help="Jupyter starts, each beside a bare one (median)")
    ap.add_argument("--tunnel-only", action="store_true", help="only throughput and latency (no Jupyter)")
    args = ap.parse_args()
    goals = Goals()
    with tempfile.TemporaryDirectory(prefix="bench-jupyter-") as tmp:
        work = Path(tmp)
        if not args.tunnel_only:
            print("1. Jupyter start and reattach (CoreEngine / RemoteManager) vs a bare local jupyter lab")
            bare: list[float] = []  # alternating with the app's starts
            cycles = await jupyter_cycles(work, args.jupyter_rounds, bare)
            start_s, bare_s = statistics.median(c[0] for c in cycles), statistics.median(bare)
            reattach_s = statistics.median(c[1] for c in cycles)
            print(f"  start -> answering through the tunnel: {', '.join(f'{c[0]:.2f}' for c in cycles)} s; "
                  f"bare jupyter lab -> /api: {', '.join(f'{b:.2f}' for b in bare)} s")
            print(f"  reattach (new engine) -> /api through the tunnel: {', '.join(f'{c[1]:.2f}' for c in cycles)} s;"
                  f" stop: {', '.join(f'{c[2]:.2f} s' + ('' if c[3] else ' NOT stopped') for c in cycles)}")
            goals.check("Jupyter start", start_s <= GOAL_START_RATIO * bare_s,
                        f"{start_s:.2f} s vs bare {bare_s:.2f} s: {start_s / bare_s:.2f}x (goal ≤ {GOAL_START_RATIO}x)")
            goals.check("reattach", reattach_s <= GOAL_REATTACH_S, f"{reattach_s:.2f} s (goal ≤ {GOAL_REATTACH_S} s)")
        print("2. tunnel throughput and latency: the app's two data paths vs OpenSSH ssh -L")
        runs = await tunnel_paths(work, args.mb * 1_000_000, args.pings, args.rounds)
    print(f"  {'path':<30}{'down MB/s':>10}{'up MB/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    names = {"direct": "direct (no SSH)", "openssh": "app tunnel, OpenSSH hand-off",
             "asyncssh": "app tunnel, asyncssh forwarder", "ssh -L": "OpenSSH ssh -N -L"}
    best_of = {k: best(v) for k, v in runs.items()}
    for key, r in best_of.items():
        print(f"  {names[key]:<30}{r['down_MBps']:>10.0f}{r['up_MBps']:>10.0f}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}")
    base = best_of["ssh -L"]
    mine = best_of["asyncssh"]
    print(f"  CPU per GB of the forwarding process (least of the runs; shown, no goal): asyncssh forwarder "
          f"{mine['down_cpu_per_GB']:.2f} s down, {mine['up_cpu_per_GB']:.2f} s up; ssh -L "
          f"{base['down_cpu_per_GB']:.2f} s down, {base['up_cpu_per_GB']:.2f} s up "
          f"({mine['down_cpu_per_GB'] / base['down_cpu_per_GB']:.2f}x / "
          f"{mine['up_cpu_per_GB'] / base['up_cpu_per_GB']:.2f}x): less swayed by the machine's other load "
          f"than throughput")
    for key, goal in (("openssh", GOAL_OPENSSH), ("asyncssh", GOAL_ASYNCSSH)):
        r = best_of[key]
        down, up = r["down_MBps"] / base["down_MBps"], r["up_MBps"] / base["up_MBps"]
        goals.check(f"{names[key]} throughput", min(down, up) >= goal,
                    f"down {down:.2f}x, up {up:.2f}x ssh -L (goal ≥ {goal}x; best of {args.rounds} rounds); "
                    f"latency p50 {r['p50_ms'] / base['p50_ms']:.2f}x")
    print(f"  machine load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return goals.exit_code()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
