"""`cades-tui list --json` vs `openstack server list -f json` against a sandbox holding 1,000 servers.

Both are whole processes, as a user runs them; same sandbox, same run. Goal: cades-tui faster than the CLI.
Run: .venv/bin/python tests/benchmarks/bench_list.py [--servers N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tui.sandbox import Sandbox


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, timeout=300)
    return time.perf_counter() - start, out.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Sandbox(Path(tmp) / "sandbox")
        sandbox.start()
        try:
            sandbox.seed_servers(args.servers, ssh_hosts=False)
            env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(sandbox.clouds_yaml), "OS_CLOUD": "sandbox",
                   "XDG_CONFIG_HOME": f"{tmp}/config", "XDG_STATE_HOME": f"{tmp}/state"}
            ours_cmd = [str(bindir / "cades-tui"), "list", "--json"]
            cli_cmd = [str(bindir / "openstack"), "server", "list", "-f", "json"]
            # warm-up, and check both see every server
            _, out = timed(ours_cmd, env)
            n_ours = len(json.loads(out))
            _, out = timed(cli_cmd, env)
            n_cli = len(json.loads(out))
            ours = [timed(ours_cmd, env)[0] for _ in range(args.runs)]
            cli = [timed(cli_cmd, env)[0] for _ in range(args.runs)]
        finally:
            sandbox.stop()
    o, c = statistics.median(ours), statistics.median(cli)
    print(f"servers listed: cades-tui {n_ours}, openstack CLI {n_cli}")
    print(f"openstack server list -f json: median {c:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in cli)})")
    print(f"cades-tui list --json:         median {o:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in ours)})")
    met = o / c < 1.0
    print(f"ratio cades-tui/openstack: {o / c:.2f}x  (goal < 1.00x): goal {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
