"""Start-up: the first frame, and the time to data — all in real pseudo-terminals, baselines in the same run.

1. First frame: `cades-tui --demo` vs a bare Textual app; the moment the screen's text appears (a marker string).
   Goal ≤ 1.2×.
2. Time to data: against a sandbox cloud running separately (`cades-tui sandbox`, its own process) holding one
   server — `cades-tui` (the full-screen app) until the server's name is on screen, vs `cades-tui list` and
   `openstack server list` printing it. Goals: ≤ 1.1× `cades-tui list`, ≤ 0.5× `openstack server list`.
3. `--demo` with its VM already there: the first row's time after the first frame, in one start. Goal ≤ 1.5 s.
Every tool starts warm (one run before the timed ones: caches, .pyc, the token cache) as on a user's machine.
Run: .venv/bin/python tests/benchmarks/bench_startup.py [--runs N]      Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Goals, separate_sandbox

ROOT = Path(__file__).resolve().parents[2]
DEMO_VM = b"analytics-1"  # the demo's ready-made instance
BARE_APP = textwrap.dedent("""
    from textual.app import App
    from textual.widgets import Footer, Header, Static
    class Bare(App):
        def compose(self):
            yield Header()
            yield Static("BARE-READY")
            yield Footer()
    Bare().run()
""")


def first_frame(argv: list[str], marker: bytes, env: dict[str, str], timeout: float = 30.0) -> float:
    return markers(argv, [marker], env, timeout)[0]


def markers(argv: list[str], wanted: list[bytes], env: dict[str, str], timeout: float = 30.0) -> list[float]:
    """Seconds from the start of `argv` in a pty until each marker appears on its screen."""
    start = time.perf_counter()
    found: dict[bytes, float] = {}
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execvpe(argv[0], argv, env)
    seen = b""
    try:
        while time.perf_counter() - start < timeout:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            seen = (seen + chunk)[-200_000:]
            for marker in wanted:
                if marker not in found and marker in seen:
                    found[marker] = time.perf_counter() - start
            if len(found) == len(wanted):
                return [found[m] for m in wanted]
        raise RuntimeError(f"no {wanted!r} within {timeout} s: {seen[-500:]!r}")
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.close(fd)


def timed(argv: list[str], env: dict[str, str], marker: str) -> float:
    start = time.perf_counter()
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=True)
    took = time.perf_counter() - start
    if marker not in out.stdout:
        raise RuntimeError(f"{argv[0]} did not print {marker!r}: {out.stdout[-300:]!r}")
    return took


def ms(xs: list[float]) -> str:
    return ", ".join(f"{x * 1000:.0f}" for x in xs)


def time_to_data(runs: int, python: str, env: dict[str, str], tmp: str) -> dict[str, list[float]]:
    """The app, `cades-tui list` and `openstack server list` against one separately running sandbox."""
    bindir = Path(python).parent
    with separate_sandbox(Path(tmp) / "cloud", 1) as clouds:
        env = env | {"OS_CLIENT_CONFIG_FILE": str(clouds), "OS_CLOUD": "sandbox"}
        name = "bench-0000"
        app = [python, "-m", "tui"]
        tools = {"app": lambda: markers(app, [name.encode()], env)[0],
                 "list": lambda: timed([str(bindir / "cades-tui"), "list"], env, name),
                 "openstack": lambda: timed([str(bindir / "openstack"), "server", "list"], env, name)}
        for tool in tools.values():  # warm: page cache, .pyc, the token cache
            tool()
        out: dict[str, list[float]] = {k: [] for k in tools}
        for _ in range(runs):
            for key, tool in tools.items():
                out[key].append(tool())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        # As on a user's machine: Python keeps bytecode caches. (This workplace sets PYTHONDONTWRITEBYTECODE, which
        # would make every run of the editable checkout recompile tui/ from source: ~60 ms a start.)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env |= {"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40",
               "XDG_STATE_HOME": f"{tmp}/state", "XDG_DATA_HOME": f"{tmp}/data", "XDG_CONFIG_HOME": f"{tmp}/config"}
        bare_script = Path(tmp) / "bare.py"
        bare_script.write_text(BARE_APP)
        # warm both once (page cache, .pyc), and let the demo create its sandbox state
        first_frame([python, str(bare_script)], b"BARE-READY", env)
        first_frame([python, "-m", "tui", "--demo"], b"Instances", env)
        bare, app, demo_row = [], [], []
        for _ in range(args.runs):
            bare.append(first_frame([python, str(bare_script)], b"BARE-READY", env))
            frame, row = markers([python, "-m", "tui", "--demo"], [b"Instances", DEMO_VM], env)
            app.append(frame)
            demo_row.append(row - frame)
        data = time_to_data(args.runs, python, env, tmp)
    goals = Goals()
    b, a = statistics.median(bare), statistics.median(app)
    print(f"bare Textual app   first frame: median {b * 1000:.0f} ms  (runs: {ms(bare)})")
    print(f"cades-tui --demo   first frame: median {a * 1000:.0f} ms  (runs: {ms(app)})")
    goals.check("first frame", a / b <= 1.2, f"{a / b:.2f}x a bare Textual app (goal ≤ 1.20x)")
    t, li, osc = (statistics.median(data[k]) for k in ("app", "list", "openstack"))
    print(f"time to data, separate sandbox: app {t * 1000:.0f} ms ({ms(data['app'])})")
    print(f"  cades-tui list {li * 1000:.0f} ms ({ms(data['list'])})")
    print(f"  openstack server list {osc * 1000:.0f} ms ({ms(data['openstack'])})")
    goals.check("time to data vs cades-tui list", t / li <= 1.1, f"{t / li:.2f}x (goal ≤ 1.10x)")
    goals.check("time to data vs openstack server list", t / osc <= 0.5, f"{t / osc:.2f}x (goal ≤ 0.50x)")
    d = statistics.median(demo_row)
    print(f"--demo, VM existing: first row after the first frame: median {d * 1000:.0f} ms ({ms(demo_row)})")
    goals.check("--demo first row after the first frame", d <= 1.5, f"{d:.2f} s (goal ≤ 1.5 s)")
    return goals.exit_code()


if __name__ == "__main__":
    sys.exit(main())
