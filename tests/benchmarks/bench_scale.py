"""Scale: the app with 1,000 servers (key presses while polls continue), one poll's cost for 10 / 100 / 1,000 /
5,000 servers, and the app's memory with 5,000 — the sandbox cloud always in its own process.

1. Key presses. The real app (`CadesApp` around the real engine and openstacksdk, polling every second) against a
   sandbox holding 1,000 servers; once the Instances table shows them all, a key is posted every 50 ms for
   `--seconds`: cursor down/up, and the filter (`/`, a letter, backspace, escape). Latency: from posting the key to
   the first frame written that shows its effect (cursor moved, rows filtered). Baseline: the same keys on the same app
   with 10 servers. Goal: p99 ≤ 50 ms with 1,000.
2. Poll cost. `CoreEngine.poll` as the app runs it (a full listing with quota and volumes, then the polls between
   full listings that ask Nova only for changes), its wall time and this process's CPU, per server count. Goal:
   grows at most linearly — the full poll's CPU per server at 5,000 ≤ 1.3× that at 1,000.
3. Memory. RSS of a child process running the app headless with 5,000 servers in its table. Goal: ≤ 200 MB.

Run: .venv/bin/python tests/benchmarks/bench_scale.py [--seconds 10] [--skip-memory]
Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from textual import events

from tui.core.cloud.rest import SKEW_S

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Goals, pct, separate_sandbox

KEYS = ["down", "up", "down", "slash", "9", "backspace", "escape", "up"]  # the cursor stays near the top


def _settings(clouds_yaml: Path, refresh_s: float) -> Any:
    from tui.core.config import Settings, UISettings

    return Settings(cloud="sandbox", clouds_yaml=str(clouds_yaml), ui=UISettings(refresh_s=refresh_s))


def make_app(clouds_yaml: Path, refresh_s: float = 1.0) -> Any:
    from tui.core.cloud.openstack_cloud import OpenStackCloud
    from tui.core.engine import engine_factory
    from tui.ui.app import CadesApp

    settings = _settings(clouds_yaml, refresh_s)
    return CadesApp(settings, engine_factory(settings, lambda: OpenStackCloud.from_config("sandbox", clouds_yaml)))


async def wait_rows(app: Any, pilot: Any, servers: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        table = getattr(app.instances_pane, "table", None)
        if table is not None and table.row_count >= servers and app.engine is not None:
            return
        await pilot.pause(0.1)
    raise RuntimeError(f"the Instances table never showed {servers} rows")


async def key_latencies(clouds_yaml: Path, servers: int, seconds: float) -> tuple[list[float], int]:
    """(latency of each key press, polls done meanwhile).

    A key's latency runs from posting it to the first frame written (`App._display`) that shows its effect:
    each frame is stamped with the table's state (cursor row, filter, row count) as it was drawn. (Waiting for
    "a frame after the benchmark saw the state change" is wrong: the app often draws within a millisecond, before
    this coroutine wakes up to look, and the next frame comes with the next poll, ~1 s later.)"""
    app = make_app(clouds_yaml)
    frames: list[tuple[float, tuple[Any, ...]]] = []
    latencies: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_rows(app, pilot, servers)
        original = app._display
        table = app.instances_pane.table

        def state() -> tuple[Any, ...]:
            return table.cursor_row, table.filter_text, table.filtering, table.row_count

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is not None:
                frames.append((time.perf_counter(), state()))

        app._display = display
        polls_before = app.polling.polls
        deadline = time.perf_counter() + seconds
        i = 0
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
            key = KEYS[i % len(KEYS)]
            i += 1
            before, seen = state(), len(frames)
            t0 = time.perf_counter()
            app.post_message(events.Key(key, {"slash": "/", "9": "9"}.get(key)))
            while state() == before and time.perf_counter() - t0 < 2:
                await asyncio.sleep(0.0005)
            handled, after = time.perf_counter(), state()
            drawn = None
            while drawn is None and time.perf_counter() - t0 < 2:
                drawn = next((t for t, s in frames[seen:] if s == after), None)
                await asyncio.sleep(0.0005)
            latencies.append((drawn or time.perf_counter()) - t0)
            if os.environ.get("BENCH_DEBUG"):
                print(f"    {key:>9} {latencies[-1] * 1000:6.1f} ms (handled {(handled - t0) * 1000:5.1f} ms)  "
                      f"rows {table.row_count} filter {table.filter_text!r} polls {app.polling.polls}", file=sys.stderr)
        polls = app.polling.polls - polls_before
    return latencies, polls


def poll_costs(clouds_yaml: Path, rounds: int = 5) -> dict[str, float]:
    """Median wall and CPU seconds of a full poll and of a changes-only poll (the engine's own `poll`)."""
    from tui.core.cloud.openstack_cloud import OpenStackCloud
    from tui.core.engine import CoreEngine

    settings = _settings(clouds_yaml, 5.0)
    engine = CoreEngine(settings, OpenStackCloud.from_config("sandbox", clouds_yaml), lambda _e: None)
    out: dict[str, list[float]] = {"full_wall": [], "full_cpu": [], "quiet_wall": [], "quiet_cpu": []}
    engine.poll(True, full=True)  # warm: discovery, flavors
    time.sleep(SKEW_S + 1)  # servers seeded within SKEW_S still count as changed: let them settle
    for _ in range(rounds):
        for kind, full in (("full", True), ("quiet", False)):
            w0, c0 = time.perf_counter(), time.process_time()
            polled = engine.poll(False, full=full)
            out[f"{kind}_wall"].append(time.perf_counter() - w0)
            out[f"{kind}_cpu"].append(time.process_time() - c0)
    out["n"] = [len(polled.instances)]
    return {k: statistics.median(v) for k, v in out.items()}


MEMORY_CHILD = """
import asyncio, sys
sys.path.insert(0, {here!r})
from bench_scale import make_app, wait_rows
from _common import rss_mb
import os
async def run():
    app = make_app({clouds!r}, refresh_s=5.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_rows(app, pilot, {servers})
        await pilot.pause(2.0)
        print(rss_mb(os.getpid()), flush=True)
asyncio.run(run())
"""


def app_memory(clouds_yaml: Path, servers: int) -> float:
    code = MEMORY_CHILD.format(here=str(Path(__file__).resolve().parent), clouds=str(clouds_yaml), servers=servers)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    goals = Goals()
    with tempfile.TemporaryDirectory() as tmp:
        for var in ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
            os.environ[var] = f"{tmp}/{var.lower()}"
        print("1. key presses while polls continue (poll every 1 s)")
        results = {}
        for n in (10, 1000):
            with separate_sandbox(Path(tmp) / f"sb{n}", n) as clouds:
                lat, polls = asyncio.run(key_latencies(clouds, n, args.seconds))
            results[n] = lat
            print(f"  {n:>5} servers: {len(lat)} keys, {polls} polls  p50 {pct(lat, 50) * 1000:5.1f} ms  "
                  f"p99 {pct(lat, 99) * 1000:5.1f} ms  max {max(lat) * 1000:5.1f} ms")
        p99 = pct(results[1000], 99) * 1000
        goals.check("key p99 with 1,000 servers", p99 <= 50,
                    f"{p99:.1f} ms (goal ≤ 50; 10 servers: {pct(results[10], 99) * 1000:.1f} ms)")

        print("2. one poll's cost (CoreEngine.poll; sandbox in its own process)")
        costs = {}
        for n in (10, 100, 1000, 5000):
            with separate_sandbox(Path(tmp) / f"cost{n}", n) as clouds:
                costs[n] = c = poll_costs(clouds)
            print(f"  {n:>5} servers: full poll {c['full_wall'] * 1000:7.1f} ms wall {c['full_cpu'] * 1000:7.1f} ms "
                  f"CPU ({c['full_cpu'] / n * 1e6:6.1f} µs/server)   changes-only poll "
                  f"{c['quiet_wall'] * 1000:6.1f} ms wall {c['quiet_cpu'] * 1000:6.1f} ms CPU")
        per_1000, per_5000 = costs[1000]["full_cpu"] / 1000, costs[5000]["full_cpu"] / 5000
        goals.check("poll cost at most linear", per_5000 <= 1.3 * per_1000,
                    f"full poll CPU per server {per_5000 * 1e6:.1f} µs at 5,000 vs {per_1000 * 1e6:.1f} µs at "
                    f"1,000 ({per_5000 / per_1000:.2f}x, goal ≤ 1.3x)")

        if not args.skip_memory:
            print("3. memory with 5,000 servers (the app in a child process)")
            with separate_sandbox(Path(tmp) / "cost5000", 5000) as clouds:
                mb = app_memory(clouds, 5000)
            goals.check("RSS with 5,000 servers", mb <= 200, f"{mb:.0f} MB (goal ≤ 200 MB)")
    return goals.exit_code()


if __name__ == "__main__":
    sys.exit(main())
