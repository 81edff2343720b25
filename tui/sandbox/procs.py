"""Linux /proc helpers for the SSH hosts: process trees, environment markers, waiting for processes to end.

Without /proc (macOS) the process table comes from `ps` (state, parent, command name), so a network cut still ends
sshd's connections; environments cannot be read there, so a VM's stop ends its sshd and sessions but not processes
detached from them (a Jupyter in screen). Windows has neither: no processes are seen. Signals exist per platform:
Windows has no SIGKILL (its SIGTERM is already TerminateProcess) and no SIGHUP.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

if sys.platform == "win32":
    HARD_KILL = signal.SIGTERM  # TerminateProcess: as final as SIGKILL
else:
    HARD_KILL = signal.SIGKILL


PROC = Path("/proc")


def _ps(*args: str) -> list[list[str]]:
    """Rows of `ps` output, split on whitespace; [] when there is no `ps` (Windows) or it fails."""
    try:
        out = subprocess.run(["ps", *args], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split() for line in out.splitlines() if line.strip()]


def stat(pid: int) -> list[str] | None:
    """[command name, state letter, parent pid, ...] as in /proc/PID/stat; None when there is no such process."""
    if not PROC.is_dir():
        rows = _ps("-o", "stat=,ppid=,comm=", "-p", str(pid))
        if not rows or len(rows[0]) < 3:
            return None
        state, ppid, *name = rows[0]
        return [os.path.basename(" ".join(name)), state[:1], ppid]
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return [raw[raw.index("(") + 1 : raw.rindex(")")], *raw[raw.rindex(")") + 2 :].split()]


def comm(pid: int) -> str:
    st = stat(pid)
    return st[0] if st else ""


def alive(pid: int) -> bool:
    st = stat(pid)
    return st is not None and st[1] != "Z"


def all_pids() -> list[int]:
    if not PROC.is_dir():  # macOS: ps; Windows: none
        return [int(row[0]) for row in _ps("-A", "-o", "pid=") if row[0].isdigit()]
    return [int(p) for p in os.listdir(PROC) if p.isdigit()]


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process."""
    if not PROC.is_dir():
        return {int(r[0]): int(r[1]) for r in _ps("-A", "-o", "pid=,ppid=") if len(r) == 2 and r[0].isdigit()
                and r[1].isdigit()}
    parents = {}
    for pid in all_pids():
        st = stat(pid)
        if st:
            parents[pid] = int(st[2])
    return parents


def descendants(root_pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    out: list[int] = []
    todo = [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def marked_pids(env_entry: str) -> list[int]:
    """Processes (other than this one) whose environment holds `env_entry` ("NAME=value")."""
    needle = env_entry.encode()
    me = os.getpid()
    out = []
    for pid in all_pids():
        if pid == me:
            continue
        try:
            env = (PROC / str(pid) / "environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            out.append(pid)
    return out


def wait_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [p for p in pids if alive(p)]
        if not pids:
            return True
        time.sleep(0.02)
    return False


def terminate_marked(env_entry: str) -> None:
    """SIGTERM, then SIGKILL, every process whose environment holds `env_entry` (all started inside one VM)."""
    pids = marked_pids(env_entry)
    for sig in (signal.SIGTERM, HARD_KILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        if wait_gone(pids, 2.0):
            return
