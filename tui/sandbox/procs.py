"""Linux /proc helpers for the SSH hosts: process trees, environment markers, waiting for processes to end.

Without /proc (macOS) the process table comes from `ps` (state, parent, command name), so a network cut still ends
sshd's connections; environments cannot be read there, so a VM's stop ends its sshd and sessions but not processes
detached from them (a Jupyter in screen). Windows has neither: no processes are seen. Signals exist per platform:
Windows has no SIGKILL (its SIGTERM is already TerminateProcess) and no SIGHUP.

`popen_tied` starts a child that ends with this process however it ends (SIGKILL included): on Linux the child
asks the kernel for a signal when its parent dies (prctl PR_SET_PDEATHSIG). The kernel sends it when the *thread*
that forked the child ends, so every tied child is forked by one long-lived thread of this process (the sandbox
starts SSH hosts from short-lived ones: an app worker, an HTTP request). Elsewhere it is a plain Popen: the pid
files (`ours`) let the next start find what was left.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

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


def cmdline(pid: int) -> list[str]:
    """The process's argv ([] when unknown). sshd rewrites its title to one string (`sshd: /usr/sbin/sshd -D -f
    CONFIG ... [listener] ...`): that comes back as one element, as does `ps`'s answer where there is no /proc."""
    if not PROC.is_dir():
        rows = _ps("-o", "args=", "-p", str(pid))
        return [" ".join(rows[0])] if rows else []
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")] if raw else []


def owned(pid: int) -> bool:
    """Whether the process runs as this user (never end another user's process, even as root)."""
    if sys.platform == "win32" or not PROC.is_dir():
        return True  # ps -p of another user's process still answers; kill() then refuses
    try:
        return bool((PROC / str(pid)).stat().st_uid == os.getuid())
    except OSError:
        return False


def runs_with(pid: int, name: str, *args: str) -> bool:
    """Whether process `pid` is program `name` (its command name) run with `args` in a row — checked on its
    command line, so that a pid read from a pid file is never taken for another process that got the number."""
    if pid <= 1 or pid == os.getpid() or comm(pid) != name[:15] or not owned(pid):
        return False
    argv = cmdline(pid)
    if len(argv) == 1:  # a rewritten title (sshd) or ps: the words, space-separated
        return f" {' '.join(args)} " in f" {argv[0]} "
    return any(argv[i:i + len(args)] == list(args) for i in range(len(argv) - len(args) + 1))


def end(pids: Sequence[int], timeout: float = 3.0) -> bool:
    """SIGTERM, then (after `timeout`) SIGKILL, each of `pids`; whether all are gone."""
    pids = list(pids)
    for sig in (signal.SIGTERM, HARD_KILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        if wait_gone(pids, timeout):
            return True
    return False


# -- children tied to this process ------------------------------------------------------------------------

PR_SET_PDEATHSIG = 1


def _death_signal_setter(sig: int) -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to send `sig` to the child when its parent thread ends (Linux); None
    elsewhere. The libc function is looked up here, before the fork: the child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def tie() -> None:
        prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl: nobody would send it now
            os.kill(os.getpid(), sig)

    return tie


class _Spawner:
    """The one thread that forks every tied child; it lives as long as the process (daemon)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Future[subprocess.Popen[bytes]], list[str], dict[str, Any]]] = (
            queue.SimpleQueue())
        self._thread: threading.Thread | None = None

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # first use, or in a forked child
                self._jobs = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._run, args=(self._jobs,), name="cades-spawner",
                                                daemon=True)
                self._thread.start()
            jobs = self._jobs
        done: Future[subprocess.Popen[bytes]] = Future()
        jobs.put((done, argv, kwargs))
        return done.result()

    @staticmethod
    def _run(jobs: queue.SimpleQueue[tuple[Future[subprocess.Popen[bytes]], list[str], dict[str, Any]]]) -> None:
        while True:
            done, argv, kwargs = jobs.get()
            try:
                done.set_result(subprocess.Popen(argv, **kwargs))
            except BaseException as exc:  # handed to the caller, who raises it
                done.set_exception(exc)


_SPAWNER = _Spawner()


def popen_tied(argv: list[str], death_signal: int = signal.SIGTERM, **kwargs: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen(argv, **kwargs)` whose child gets `death_signal` when this process ends, however it
    ends (Linux; a plain Popen elsewhere). In a session of its own: a terminal's signals (SIGHUP when it closes,
    SIGINT) reach this process, which decides, and never the child directly."""
    tie = _death_signal_setter(int(death_signal))
    kwargs.setdefault("start_new_session", True)
    if tie is None:
        return subprocess.Popen(argv, **kwargs)
    return _SPAWNER.popen(argv, preexec_fn=tie, **kwargs)
