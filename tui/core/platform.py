"""What differs between Linux, macOS and Windows, behind `sys.platform` guards the type checker understands.

The app runs on the user's laptop — Linux, macOS or Windows — and every module must import on each of them, so
nothing here (or in any module of the app) imports `fcntl`, `termios` or `msvcrt` at module level; each is imported
inside the branch of the platform that has it. `mypy --platform linux|darwin|win32 tui` checks every branch.

- File locks: `fcntl.flock` on POSIX, `msvcrt.locking` on Windows (`try_lock`; `held_lock` waits for one, with a
  deadline: the saved state's writers take turns with it).
- Signals that end a command: SIGINT, SIGTERM, SIGHUP on POSIX; on Windows SIGINT (Ctrl+C) and SIGBREAK (Ctrl+Break,
  and closing the console: CTRL_CLOSE_EVENT reaches Python as SIGBREAK) — there is no SIGHUP (`stop_signals`,
  `on_stop_signals`).
- Private files: mode 0600 on POSIX; on Windows an ACL granting only the current user, without inherited entries —
  what OpenSSH for Windows demands of a private key (`restrict_to_owner`).
- Tunnels: the OpenSSH hand-off (an accepted socket passed to an `ssh` master, byte counts from the kernel's
  TCP_INFO) on Linux only; the asyncssh forwarder everywhere else, or on Linux too when `CADES_TUI_FORWARDER=asyncssh`
  (`openssh_handoff_possible`) — which is how the tests run the other platforms' data path on Linux.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

FORWARDER_ENV = "CADES_TUI_FORWARDER"
FORWARDERS = ("auto", "openssh", "asyncssh")
WSL_NOTE = ("the demo's cloud panes work here, but its SSH VMs need a Linux-like host (sshd, screen): "
            "run `cades-tui --demo` inside WSL for setup, Jupyter and tunnels")


def forwarder() -> str:
    """The tunnel data path asked for in CADES_TUI_FORWARDER: "auto" (the default), "openssh" or "asyncssh"."""
    value = os.environ.get(FORWARDER_ENV, "").strip().lower() or "auto"
    return value if value in FORWARDERS else "auto"


def openssh_handoff_possible() -> bool:
    """Whether a tunnel may hand its connections to OpenSSH: Linux only (SCM_RIGHTS through `ssh -W` and the
    kernel's TCP_INFO byte counts), and not when CADES_TUI_FORWARDER=asyncssh forces the asyncssh forwarder."""
    if sys.platform != "linux":
        return False
    return forwarder() != "asyncssh"


def try_lock(fh: IO[Any]) -> bool:
    """Take an exclusive lock on the open file `fh` without waiting. True: held until `fh` is closed; False:
    another process (or another open of the same file) holds it."""
    if sys.platform == "win32":
        import msvcrt

        fh.seek(0)
        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # byte 0, which may lie past the end: allowed
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def held_lock(path: Path, timeout: float = 10.0) -> Iterator[None]:
    """Hold the exclusive lock of the file `path` (created mode 0600) for the `with` block, waiting for it up to
    `timeout` seconds — TimeoutError after that. Another process, and another open of the same file in this one,
    waits; a holder that dies releases it (the kernel closes its files)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a+") as fh:
        deadline = time.monotonic() + timeout
        pause = 0.001
        while not try_lock(fh):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{path} stayed locked by another process for {timeout:g} s")
            time.sleep(pause)  # holders keep it for milliseconds: a short, growing pause
            pause = min(pause * 2, 0.05)
        yield  # closing the file releases the lock


def stop_signals() -> tuple[signal.Signals, ...]:
    """The signals that end a headless command the way Ctrl+C does."""
    if sys.platform == "win32":
        return (signal.SIGINT, signal.SIGBREAK)
    return (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def on_stop_signals(loop: asyncio.AbstractEventLoop, callback: Callable[[int], None]) -> Callable[[], None]:
    """Call `callback(signum)` on `loop` when a stop signal arrives (main thread only). Returns the undo.
    POSIX: the loop's own signal handlers. Windows' event loops have none (`add_signal_handler` is not
    implemented there): plain `signal.signal` handlers that hand over to the loop, which the signal wakes."""
    if sys.platform == "win32":
        previous: dict[signal.Signals, Any] = {}

        def handler(signum: int, _frame: object) -> None:
            loop.call_soon_threadsafe(callback, signum)

        for sig in stop_signals():
            previous[sig] = signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore
    for sig in stop_signals():
        loop.add_signal_handler(sig, callback, int(sig))

    def remove() -> None:
        for sig in stop_signals():
            loop.remove_signal_handler(sig)

    return remove


def windows_user() -> str:
    """DOMAIN\\user of the current Windows user (the name icacls grants to)."""
    user = getpass.getuser()
    domain = os.environ.get("USERDOMAIN", "")
    return f"{domain}\\{user}" if domain else user


def owner_only_acl_argv(path: Path, user: str) -> list[str]:
    """icacls: drop inherited entries, then grant `user` alone full control (replacing any grant it had)."""
    return ["icacls", str(path), "/inheritance:r", "/grant:r", f"{user}:F"]


def restrict_to_owner(path: Path) -> None:
    """Make `path` readable and writable by the current user alone: mode 0600 on POSIX, an owner-only ACL on
    Windows. Raises OSError when that cannot be done."""
    if sys.platform == "win32":
        result = subprocess.run(owner_only_acl_argv(path, windows_user()), capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise OSError(f"icacls could not restrict {path}: {(result.stdout + result.stderr).strip()}")
        return
    os.chmod(path, 0o600)


def private_key_problem(path: Path) -> str | None:
    """Why OpenSSH would refuse to use the private key at `path` for its permissions, with the fix; None when it
    would not (or when that cannot be told cheaply: on Windows the app sets the ACL itself, see restrict_to_owner).
    """
    if sys.platform == "win32":
        return None
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return None  # missing: the connection says so
    if mode & 0o077:
        return f"private key {path} is readable by others (mode {mode:04o}); OpenSSH refuses to use it"
    return None


def fix_private_key_hint(path: Path) -> str:
    if sys.platform == "win32":
        return " ".join(owner_only_acl_argv(path, windows_user()))
    return f"chmod 600 {path}"
