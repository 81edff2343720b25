"""Benchmark: fresh SSH host -> setup finished (uv, warm package cache), then the re-run.

Run on its own (not collected by pytest: the name matches neither test_*.py nor *_test.py):

    .venv/bin/python tests/benchmarks/bench_setup.py [--cache DIR] [--runs N]

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


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "cades-tui-bench-cache")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
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
