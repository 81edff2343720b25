"""What the benchmarks share: a sandbox cloud in its own process (as `cades-tui sandbox` runs it, so its CPU is
never counted as the app's), percentiles, a process's CPU and RSS from /proc, and the goal check."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

SANDBOX = textwrap.dedent("""
    import sys
    from pathlib import Path
    from tui.sandbox import Sandbox
    state, servers, ssh = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "ssh"
    sb = Sandbox(state, ssh_hosts=ssh, seed_demo=False)
    sb.start()
    have = len(sb.state.table("servers"))
    if servers > have:
        sb.seed_servers(servers - have, ssh_hosts=ssh)
    print(sb.clouds_yaml, flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
    sb.stop()
""")


@contextlib.contextmanager
def separate_sandbox(state_dir: Path, servers: int = 0, ssh: bool = False) -> Iterator[Path]:
    """A sandbox cloud in a child process holding `servers` servers; yields its clouds.yaml."""
    proc = subprocess.Popen([sys.executable, "-c", SANDBOX, str(state_dir), str(servers), "ssh" if ssh else "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line:
            raise RuntimeError("the sandbox process did not start")
        yield Path(line)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pct(xs: list[float], p: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its reaped children: none here) from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


class Goals:
    """Each goal checked is printed as met or MISSED; `exit_code()` is 1 when any was missed."""

    def __init__(self) -> None:
        self.missed: list[str] = []

    def check(self, name: str, ok: bool, detail: str) -> None:
        print(f"  goal {'met   ' if ok else 'MISSED'}  {name}: {detail}")
        if not ok:
            self.missed.append(name)

    def exit_code(self) -> int:
        if self.missed:
            print(f"goals missed: {', '.join(self.missed)}")
            return 1
        print("all goals met")
        return 0
