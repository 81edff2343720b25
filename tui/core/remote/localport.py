"""A tunnel's local end: a listener on 127.0.0.1 (never another address), and who holds a busy port.

`bind_loopback` picks the port: the one wanted when free, else any free one, unless the user asked for exactly
that port (`strict`): then `PortBusyError` names the process holding it (Linux /proc; None elsewhere or when not
permitted).
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Set
from pathlib import Path

import asyncssh

LOOPBACK = "127.0.0.1"
# A port someone holds: EADDRINUSE; on Windows also WSAEACCES (a port held exclusively, or reserved by the system).
_IN_USE = {errno.EADDRINUSE, getattr(errno, "WSAEACCES", errno.EADDRINUSE)}


class PortBusyError(OSError):
    """The user asked for a local port that another process holds."""

    def __init__(self, port: int, holder: str | None) -> None:
        self.port = port
        self.holder = holder
        who = f"by {holder}" if holder else "by another process"
        super().__init__(errno.EADDRINUSE, f"local port {port} is already in use {who}")


# -- who holds a port (Linux /proc; None elsewhere or when not permitted) ----------------------------


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def find_port_holder(port: int) -> str | None:
    """"pid 1234 (python3 -m http.server)" for the process listening on TCP `port`, when discoverable."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}") in targets:
                    return f"pid {pid} ({_cmdline(pid)})"
            except OSError:
                continue
    return None


def _cmdline(pid: str) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
        text = raw.decode("utf-8", "replace") or Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"
    return text if len(text) <= 80 else text[:77] + "..."


# -- the listener -------------------------------------------------------------------------------------


def bind_loopback(requested: int | None, *, strict: bool, avoid: Set[int]) -> socket.socket:
    """A listener on 127.0.0.1: `requested` when free, else any free port never in `avoid`.

    With `strict`, a busy `requested` port raises PortBusyError instead of another port being chosen.
    """
    candidates: list[int] = []
    if requested:
        if strict and requested in avoid:
            raise PortBusyError(requested, "the remote server itself (SSH host is this machine)")
        if requested not in avoid:
            candidates.append(requested)
    candidates.append(0)
    for port in candidates:
        for _attempt in range(5):
            try:
                lsock = _listen(port)
            except OSError as exc:
                if exc.errno not in _IN_USE:
                    raise
                if port and strict:
                    raise PortBusyError(port, find_port_holder(port)) from exc
                break
            if lsock.getsockname()[1] in avoid:  # the OS handed out the remote port number: try again
                lsock.close()
                continue
            return lsock
    raise OSError(errno.EADDRINUSE, "no free local port on 127.0.0.1")


def _listen(port: int) -> socket.socket:
    """A non-blocking TCP listener on 127.0.0.1:port (0: any free port)."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if sys.platform == "win32":  # Windows' SO_REUSEADDR would let another program bind the same port too
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        else:  # POSIX: rebind at once after a restart (TIME_WAIT), never alongside a listener
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((LOOPBACK, port))
        lsock.listen(128)
        lsock.setblocking(False)
    except BaseException:
        lsock.close()
        raise
    return lsock


def is_loopback_peer(conn: asyncssh.SSHClientConnection) -> bool:
    """True when SSH reaches this very machine (a one-host rig): its remote port numbers are taken locally too."""
    peer = conn.get_extra_info("peername")
    host = str(peer[0]) if peer else ""
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")
