"""Benchmark: Jupyter start, reattach, and the tunnel against OpenSSH `ssh -L`, on one sandbox SSH host.

Run on its own (not collected by pytest):

    .venv/bin/python tests/benchmarks/bench_jupyter.py [--mb 256] [--pings 2000]

Goals (issue 5), each with a baseline measured in the same run:
- Jupyter start → answering through the tunnel <= 5 s   (baseline: the same `jupyter lab` run locally,
  no SSH, no screen, until GET /api answers)
- reattach (new connection, state file, find the server, open the tunnel) → tunnel serving <= 2 s
- tunnel throughput >= 0.8x `ssh -N -L` (OpenSSH, aes128-gcm) up and down; latency (ping-pong p50/p99)
The traffic generator and the service behind the tunnel run in their own processes (like a browser and
Jupyter), so the app's event loop only forwards.
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
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncssh

from tui.core.jupyter import http
from tui.core.jupyter.reattach import control_for, reattach, record_for
from tui.core.jupyter.server import JupyterControl, JupyterSettings, answers
from tui.core.remote.connection import SSHTarget
from tui.core.remote.tunnel import Tunnel
from tui.core.state import AppState, TunnelRecord
from tui.sandbox.sshhost import SSHHost

JUPYTER = str(Path(sys.executable).parent / "jupyter")
GCM = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
Connect = Callable[[], Awaitable[asyncssh.SSHClientConnection]]
GOAL_START_S = 5.0
GOAL_REATTACH_S = 2.0
GOAL_THROUGHPUT = 0.8

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


async def measure_path(port: int, size: int, pings: int) -> dict[str, float]:
    await run_client(port, "down", 16 << 20)  # warm-up
    down = min([float(str((await run_client(port, "down", size))["seconds"])) for _ in range(2)])
    up = min([float(str((await run_client(port, "up", size))["seconds"])) for _ in range(2)])
    lat_raw = (await run_client(port, "ping", pings))["lat"]
    lat = sorted(float(x) for x in lat_raw)  # type: ignore[attr-defined]
    return {
        "down_MBps": size / down / 1e6,
        "up_MBps": size / up / 1e6,
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
    }


async def jupyter_cycle(connect: Connect, target: SSHTarget, state_file: Path) -> tuple[float, float, float, str]:
    """Start → tunnel answering (s); a new app: state + new connection → tunnel answering (s); stop (s)."""
    settings = JupyterSettings(command=JUPYTER, port=8889)
    t0 = time.monotonic()
    conn = await connect()

    async def shared() -> asyncssh.SSHClientConnection:  # as the app's connection pool would
        return conn if not conn.is_closed() else await connect()

    control = await JupyterControl.create(conn, settings)
    # as the app's manager does it: the tunnel opens while Jupyter boots, then follows it to the port it bound
    tunnel = Tunnel("bench", shared, settings.port, local_port=8889, close_connection=False, openssh=target)
    opening = asyncio.create_task(tunnel.open())
    handle = await control.start()
    await opening
    tunnel.retarget(handle.port)
    assert await answers(http.tcp_opener("127.0.0.1", tunnel.local_port), handle.token)
    start_s = time.monotonic() - t0
    saved = AppState.load(state_file)
    saved.put(record_for("bench", handle, settings))
    saved.put_tunnel(TunnelRecord("bench", "jupyter", tunnel.local_port, remote_port=handle.port))
    await tunnel.close()
    conn.close()
    await conn.wait_closed()

    t0 = time.monotonic()
    state = AppState.load(state_file)
    conn2 = await connect()
    found = await reattach(state, "bench", conn2, settings)
    assert found is not None
    last = state.tunnel("bench", "jupyter")  # the last local port used for the instance
    assert last is not None
    tunnel2 = Tunnel("bench", connect, found.port, local_port=last.local_port, openssh=target)
    await tunnel2.open()
    assert await answers(http.tcp_opener("127.0.0.1", tunnel2.local_port), found.token)
    reattach_s = time.monotonic() - t0
    await tunnel2.close()
    stop = await control_for(conn2, state.servers["bench"], settings).stop(found)
    conn2.close()
    return start_s, reattach_s, stop.seconds, stop.method


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=256, help="bytes per throughput transfer (MB)")
    ap.add_argument("--pings", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tunnel-only", action="store_true", help="only throughput and latency (no Jupyter)")
    args = ap.parse_args()
    size = args.mb * 1_000_000

    with tempfile.TemporaryDirectory(prefix="bench-jupyter-") as tmp:
        work = Path(tmp)
        key = asyncssh.generate_private_key("ssh-ed25519")
        key_path = work / "id_ed25519"
        key.write_private_key(str(key_path))
        os.chmod(key_path, 0o600)
        host = SSHHost(work / "vm", [key.export_public_key().decode()])
        host.start()
        (work / "known_hosts").write_text(host.known_hosts_line() + "\n")
        service = subprocess.Popen([sys.executable, "-c", SERVICE], stdout=subprocess.PIPE, text=True)
        ssh_l: subprocess.Popen[bytes] | None = None
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

            # 1+2. Jupyter start -> answering through the tunnel; a new app reattaches; stop.
            if not args.tunnel_only:
                bare = [baseline_jupyter_start(work / f"bare{i}") for i in range(args.rounds)]
                cycles = [await jupyter_cycle(connect, target, work / f"state{i}.json") for i in range(args.rounds)]

            # 3. throughput and latency: our tunnel vs OpenSSH ssh -L, same host, same service, alternated
            ours_tunnel = Tunnel("bench", connect, service_port, openssh=target)  # as the app opens it
            await ours_tunnel.open()
            asyncssh_tunnel = Tunnel("bench", connect, service_port)  # the pure-asyncssh path, for reference
            await asyncssh_tunnel.open()
            lport = _free_port()
            ssh_l = subprocess.Popen(
                ["ssh", "-N", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                 "-o", f"UserKnownHostsFile={work / 'known_hosts'}", "-o", "StrictHostKeyChecking=yes",
                 "-o", "Ciphers=aes128-gcm@openssh.com", "-i", str(key_path), "-p", str(host.port),
                 "-L", f"127.0.0.1:{lport}:127.0.0.1:{service_port}", f"{host.user}@127.0.0.1"],
                stdin=subprocess.DEVNULL,
            )
            _wait_port(lport)
            runs: dict[str, list[dict[str, float]]] = {"direct": [], "ours": [], "asyncssh": [], "openssh": []}
            for _ in range(args.rounds):
                runs["direct"].append(await measure_path(service_port, size, args.pings))
                runs["ours"].append(await measure_path(ours_tunnel.local_port, size, args.pings))
                runs["asyncssh"].append(await measure_path(asyncssh_tunnel.local_port, size, args.pings))
                runs["openssh"].append(await measure_path(lport, size, args.pings))
            counted = ours_tunnel.info
            await ours_tunnel.close()
            await asyncssh_tunnel.close()
        finally:
            if ssh_l is not None:
                ssh_l.terminate()
                ssh_l.wait()
            service.kill()
            service.wait()
            host.stop()

    direct, ours, pure, openssh = (best(runs[k]) for k in ("direct", "ours", "asyncssh", "openssh"))
    ratios = [(r["down_MBps"] / o["down_MBps"], r["up_MBps"] / o["up_MBps"])
              for r, o in zip(runs["ours"], runs["openssh"], strict=True)]
    print(f"machine load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"medians of {args.rounds} rounds, throughput best of {args.rounds}")
    jupyter_met = True
    if not args.tunnel_only:
        start_s = statistics.median(c[0] for c in cycles)
        reattach_s = statistics.median(c[1] for c in cycles)
        stop_s = statistics.median(c[2] for c in cycles)
        bare_s = statistics.median(bare)
        print(f"Jupyter start -> answering through the tunnel: {start_s:5.2f} s  (goal <= {GOAL_START_S:g} s; "
              f"bare local jupyter lab -> /api: {bare_s:.2f} s, ratio {start_s / bare_s:.2f}x)")
        print(f"Reattach (new app) -> tunnel serving:          {reattach_s:5.2f} s  "
              f"(goal <= {GOAL_REATTACH_S:g} s)")
        print(f"Stop (Ctrl+C, y) verified:                     {stop_s:5.2f} s  "
              f"({', '.join(c[3] for c in cycles)})")
        jupyter_met = start_s <= GOAL_START_S and reattach_s <= GOAL_REATTACH_S
    print(f"Tunnel ({ours_tunnel.backend} path) counters after the throughput runs: "
          f"in {counted.bytes_in / 1e6:.0f} MB, out {counted.bytes_out / 1e6:.0f} MB")
    print(f"{'path':<22}{'down MB/s':>10}{'up MB/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    rows = (("direct (no SSH)", direct), ("cades-tui tunnel", ours), ("  asyncssh-only path", pure),
            ("OpenSSH ssh -L", openssh))
    for name, r in rows:
        print(f"{name:<22}{r['down_MBps']:>10.0f}{r['up_MBps']:>10.0f}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}")
    down_ratio = ours["down_MBps"] / openssh["down_MBps"]
    up_ratio = ours["up_MBps"] / openssh["up_MBps"]
    print("per-round ratios tunnel / ssh -L (down, up): "
          + ", ".join(f"({d:.2f}, {u:.2f})" for d, u in ratios))
    print(f"tunnel / ssh -L throughput: down {down_ratio:.2f}x, up {up_ratio:.2f}x (goal >= {GOAL_THROUGHPUT}x); "
          f"latency p50 {ours['p50_ms'] / openssh['p50_ms']:.2f}x")
    met = jupyter_met and min(down_ratio, up_ratio) >= GOAL_THROUGHPUT
    print("goals met" if met else "some goals NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
