"""Time to first frame: `cades-tui --demo` vs a bare Textual app, both in a real pseudo-terminal, same run.

The first frame is the moment the app's screen text appears on the terminal (a marker string). Goal: ≤ 1.2×.
Run: .venv/bin/python tests/benchmarks/bench_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import signal
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
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
    start = time.perf_counter()
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
            if marker in seen:
                return time.perf_counter() - start
        raise RuntimeError(f"no first frame with {marker!r} within {timeout} s: {seen[-500:]!r}")
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.close(fd)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=11)
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
        bare, app = [], []
        for _ in range(args.runs):
            bare.append(first_frame([python, str(bare_script)], b"BARE-READY", env))
            app.append(first_frame([python, "-m", "tui", "--demo"], b"Instances", env))
    b, a = statistics.median(bare), statistics.median(app)
    def runs(xs: list[float]) -> str:
        return ", ".join(f"{x * 1000:.0f}" for x in xs)

    print(f"bare Textual app   first frame: median {b * 1000:.0f} ms  (runs: {runs(bare)})")
    print(f"cades-tui --demo   first frame: median {a * 1000:.0f} ms  (runs: {runs(app)})")
    print(f"ratio cades-tui/bare: {a / b:.2f}x  (goal <= 1.20x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
