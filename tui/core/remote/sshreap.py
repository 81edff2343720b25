"""The `ssh` masters of tunnels whose process is gone, ended by the next start of the app or of any command.

Each OpenSSH tunnel (tui.core.remote.openssh_forward) keeps its master's control socket in a private directory
`cades-fwd-*` in the temporary folder, with the file `owner` naming the process that runs the tunnel (its pid and
start time, so a reused pid is not taken for it). A process killed with SIGKILL has no chance to stop its master,
which stays logged in to the VM; `reap_orphans` (run at every start, and before each new OpenSSH tunnel) finds the
directories whose owner is gone and ends the ssh processes that use that very control path — verified by their
command line (`ControlPath=<dir>/control`, or the pid the directory recorded, named `ssh`) — then removes the
directory. Nothing else is ever signalled. Light on purpose (no asyncssh): it runs before every command.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

PREFIX = "cades-fwd-"


def start_time(pid: int) -> str:
    """The start time of `pid` in clock ticks since boot (Linux /proc), "" when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def owner_line() -> str:
    """What a tunnel's directory records of the process that runs it."""
    return f"{os.getpid()} {start_time(os.getpid())}".strip()


def _owner_alive(text: str) -> bool:
    parts = text.split()
    pid = int(parts[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return len(parts) < 2 or start_time(pid) in ("", parts[1])  # a reused pid is another process


def _cmdline(pid: str) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def _is_ssh(argv: list[bytes]) -> bool:
    return bool(argv) and os.path.basename(argv[0]) == b"ssh"


def _masters(d: Path) -> set[int]:
    """The ssh processes using `d`'s control path, and the one `d` recorded (if its command line names `d`)."""
    found: set[int] = set()
    control = f"ControlPath={d / 'control'}".encode()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        argv = _cmdline(entry)
        if _is_ssh(argv) and control in argv:
            found.add(int(entry))
    with contextlib.suppress(OSError, ValueError):
        recorded = int((d / "ssh.pid").read_text())
        argv = _cmdline(str(recorded))
        if argv and str(d).encode() in b"\0".join(argv) and b"ssh" in os.path.basename(argv[0]):
            found.add(recorded)
    return found


def reap_orphans(tmp: Path | None = None) -> int:
    """End the ssh processes of tunnels whose process is gone and remove their directories; how many were ended.
    Linux only (elsewhere no OpenSSH tunnel runs); never raises."""
    if sys.platform != "linux":
        return 0
    reaped = 0
    try:
        dirs = list(Path(tmp or tempfile.gettempdir()).glob(f"{PREFIX}*"))
    except OSError:
        return 0
    for d in dirs:
        try:
            if _owner_alive((d / "owner").read_text()):
                continue
        except (OSError, ValueError, IndexError):
            continue
        for pid in _masters(d):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
                reaped += 1
        shutil.rmtree(d, ignore_errors=True)
    return reaped
