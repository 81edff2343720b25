"""Benchmark: fresh SSH host -> setup finished (uv, warm package cache), then the re-run.

Run on its own (not collected by pytest: the name matches neither test_*.py nor *_test.py):

    .venv/bin/python tests/benchmarks/bench_setup.py [--cache DIR] [--runs N]

With --clone (issue 23): a sandbox instance set up, frozen as an image, and an instance launched from it set up
too: the clone's setup finds everything and installs nothing (printed beside the first setup, same run).

Goals (issue 4): first run <= 30 s with a warm cache, re-run <= 3 s. A warm-up install on a throwaway host
fills the cache first; each measured run then uses a brand-new host (empty HOME, new host key).
Baseline, same run: the guide done by hand in one OpenSSH session on a fresh host (venv, pip install uv,
uv pip install the same packages, mkdir the workspace), with the same warm cache.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncssh

from tui.core.guide import SetupRunner, SetupSpec, SSHExecutor
from tui.core.remote.commands import CommandLog
from tui.core.remote.connection import ConnectionPool, SSHTarget, openssh_argv
from tui.sandbox.sshhost import SSHHost

GOAL_FIRST_S = 30.0
GOAL_RERUN_S = 3.0
BY_HAND = (
    "set -e; export SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt; python3 -m venv ~/jupyter-env; "
    "~/jupyter-env/bin/python -m pip install -q uv; "
    "~/jupyter-env/bin/uv pip install -q --python ~/jupyter-env/bin/python jupyterlab notebook ipywidgets nbconvert; "
    "mkdir -p ~/workspace"
)


async def by_hand(work: Path, cache: Path, key: tuple[Path, str], name: str) -> float:
    """Seconds for the baseline: one OpenSSH session running the guide's commands on a fresh host."""
    host = SSHHost(work / name, [key[1]])
    host.start()
    try:
        known = work / f"{name}-known_hosts"
        known.write_text(host.known_hosts_line() + "\n")
        target = SSHTarget("127.0.0.1", host.port, host.user, key[0], known)
        env = f"export UV_CACHE_DIR={cache / 'uv'} PIP_CACHE_DIR={cache / 'pip'}; "
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(*openssh_argv(target, env + BY_HAND, tty=False))
        if await proc.wait() != 0:
            raise SystemExit("baseline install failed")
        return time.perf_counter() - t0
    finally:
        host.stop()


async def one_host(work: Path, cache: Path, key: tuple[Path, str], name: str) -> tuple[float, float]:
    """(first run, re-run) seconds of the default pipeline on a fresh host."""
    host = SSHHost(work / name, [key[1]])
    host.start()
    pool = ConnectionPool()
    try:
        known = work / f"{name}-known_hosts"
        known.write_text(host.known_hosts_line() + "\n")
        target = SSHTarget("127.0.0.1", host.port, host.user, key[0], known)
        settings = SetupSpec(env=(("UV_CACHE_DIR", str(cache / "uv")), ("PIP_CACHE_DIR", str(cache / "pip"))))
        executor = SSHExecutor(pool, name, target, CommandLog(work / f"{name}.log"), settings.env)
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            result = await SetupRunner(settings, executor, lambda event: None).run()
            times.append(time.perf_counter() - t0)
            if not result.ok:
                raise SystemExit(f"setup failed: {result.summary}")
            await pool.close_all()  # a re-run starts from a new connection, like a new app session
        return times[0], times[1]
    finally:
        await pool.close_all()
        host.stop()


async def clone(work: Path, cache: Path, key: tuple[Path, str]) -> tuple[float, float]:
    """(setup of a fresh sandbox instance, setup of an instance launched from its image) in seconds."""
    import openstack
    from openstack.config import loader

    from tui.sandbox import Delays, Sandbox

    sandbox = Sandbox(work / "cloud", delays=Delays.fast())
    sandbox.start()
    settings = SetupSpec(env=(("UV_CACHE_DIR", str(cache / "uv")), ("PIP_CACHE_DIR", str(cache / "pip"))))
    try:
        config = loader.OpenStackConfig(config_files=[str(sandbox.clouds_yaml)], vendor_files=[])
        conn = openstack.connection.Connection(config=config.get_one("sandbox"))
        conn.compute.create_keypair(name="bench", public_key=key[1])
        times = []
        for name, image in (("fresh", "Ubuntu 24.04"), ("clone", "fresh-env")):
            server = conn.create_server(name, image=image, flavor="m1.small", network="sandbox-net", key_name="bench",
                                        boot_from_volume=True, volume_size=16, wait=True, auto_ip=False)
            host = sandbox.ssh_host(server.id)
            assert host is not None
            address = conn.compute.get_server(server.id).addresses["sandbox-net"][0]["addr"]
            known = work / f"{name}-known_hosts"
            known.write_text(host.known_hosts_line() + "\n")
            pool = ConnectionPool()
            executor = SSHExecutor(pool, name, SSHTarget(address, host.port, host.user, key[0], known),
                                   CommandLog(work / f"{name}.log"), settings.env)
            t0 = time.perf_counter()
            result = await SetupRunner(settings, executor, lambda event: None).run()
            times.append(time.perf_counter() - t0)
            await pool.close_all()
            if not result.ok:
                raise SystemExit(f"setup failed: {result.summary}")
            if name == "fresh":
                made = conn.compute.create_server_image(server.id, "fresh-env", wait=True, timeout=120)
                for snap in conn.block_storage.snapshots():
                    conn.block_storage.wait_for_status(snap, "available", wait=120)
                print(f"image {made.name}: {made.status}")
        conn.close()
        return times[0], times[1]
    finally:
        sandbox.stop()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "cades-tui-bench-cache")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clone", action="store_true", help="only: setup on an instance launched from an image")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.clone:
        with tempfile.TemporaryDirectory(prefix="bench-clone-") as tmp:
            private = asyncssh.generate_private_key("ssh-ed25519")
            key_path = Path(tmp) / "id_ed25519"
            private.write_private_key(str(key_path))
            key_path.chmod(0o600)
            fresh, cloned = await clone(Path(tmp), args.cache, (key_path, private.export_public_key().decode()))
        print(f"setup, fresh sandbox instance: {fresh:.2f} s; on an instance launched from its image: {cloned:.2f} s "
              f"({cloned / fresh:.2f}x)")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-setup-") as tmp:
        work = Path(tmp)
        private = asyncssh.generate_private_key("ssh-ed25519")
        key_path = work / "id_ed25519"
        private.write_private_key(str(key_path))
        key_path.chmod(0o600)
        key = (key_path, private.export_public_key().decode().strip())
        warm_first, _ = await one_host(work, args.cache, key, "warmup")
        print(f"warm-up (fills {args.cache}): {warm_first:.1f} s")
        firsts, reruns, hands = [], [], []
        for i in range(args.runs):
            first, rerun = await one_host(work, args.cache, key, f"vm{i}")
            hand = await by_hand(work, args.cache, key, f"hand{i}")
            firsts.append(first)
            reruns.append(rerun)
            hands.append(hand)
            print(f"run {i + 1}: first {first:.2f} s, re-run {rerun:.2f} s, by hand {hand:.2f} s")
    first_med, rerun_med = statistics.median(firsts), statistics.median(reruns)
    hand_med = statistics.median(hands)
    print(
        f"\nfresh host -> setup finished (warm cache): median {first_med:.2f} s"
        f"  (goal <= {GOAL_FIRST_S:.0f} s: {first_med / GOAL_FIRST_S:.0%} of the budget)"
    )
    print(
        f"re-run (everything already done):         median {rerun_med:.2f} s"
        f"  (goal <= {GOAL_RERUN_S:.0f} s: {rerun_med / GOAL_RERUN_S:.0%} of the budget)"
    )
    print(
        f"baseline, the same install by hand in one ssh session: median {hand_med:.2f} s"
        f"  (setup / by hand = {first_med / hand_med:.2f}x)"
    )
    return 0 if first_med <= GOAL_FIRST_S and rerun_med <= GOAL_RERUN_S else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
