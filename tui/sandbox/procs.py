"""Linux /proc helpers for the SSH hosts: process trees, environment markers, waiting for processes to end.

Without /proc (macOS, Windows) they see no processes: a VM's stop then ends its sshd (or asyncssh server) and the
sessions it started, not processes detached from them. Signals exist per platform: Windows has no SIGKILL (its
SIGTERM is already TerminateProcess) and no SIGHUP.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

if sys.platform == "win32":
    HARD_KILL = signal.SIGTERM  # TerminateProcess: as final as SIGKILL
else:
    HARD_KILL = signal.SIGKILL


def stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
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
    try:
        return [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:  # no /proc (macOS, Windows)
        return []


def descendants(root_pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        st = stat(pid)
        if st:
            children.setdefault(int(st[2]), []).append(pid)
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
            env = Path(f"/proc/{pid}/environ").read_bytes()
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
