"""The built-in SSH client's interactive session: what `ssh HOST [COMMAND]` does, over an asyncssh connection.

Used where OpenSSH's `ssh` is not on PATH (`cades-tui ssh NAME [-- CMD]`, and `ctrl+s` in the app through a child
`cades-tui ssh`). It runs on a connection the manager has already made, so the host key was checked (pinned,
known or accepted) before a byte of the session flows; host key checking is never disabled here.

- A login shell (no command) with stdin on a terminal: a PTY on the remote side (`$TERM`, else xterm-256color;
  the terminal's size), the local terminal in raw mode while the session runs (restored in `finally`, whatever
  ends it), keys go to the remote side as they are typed — Ctrl+C included — and its output comes back as bytes.
  Resizes follow: SIGWINCH on POSIX; on Windows, where there is none, the size is polled. Windows' console is
  switched to VT input and output (`ENABLE_VIRTUAL_TERMINAL_INPUT` / `_PROCESSING`) for the session, so arrow keys
  and colours pass through.
- A command, or stdin not a terminal (a script, a pipe, /dev/null): no PTY and no raw mode, as OpenSSH's
  `ssh HOST CMD` — stdin is piped to the command (EOF passed on), stdout and stderr come back apart and unchanged
  (no PTY rewriting line ends in a `cades-tui ssh VM -- cat FILE > copy`).

The result is the remote command's exit status; 255 when it ended by a signal or the connection was lost, as
OpenSSH's `ssh` returns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from tui.core.tasks import spawn

if TYPE_CHECKING:
    import asyncssh

    from tui.core.config import Settings

DEFAULT_TERM = "xterm-256color"
LOST = 255  # what OpenSSH returns when the connection fails or the remote command died of a signal
CHUNK = 65536
NOT_FOUND = "ssh not found: using the built-in SSH client"


def terminal_size(fd: int) -> tuple[int, int]:
    """(columns, rows) of the terminal on `fd`, else of whatever shutil finds (80x24 at worst)."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        size = shutil.get_terminal_size()
    return size.columns, size.lines


async def interactive_session(conn: asyncssh.SSHClientConnection, command: str | None = None, *,
                              stdin: BinaryIO | None = None, stdout: BinaryIO | None = None,
                              stderr: BinaryIO | None = None) -> int:
    """A shell (or `command`) on the connection's host, wired to this process's terminal or pipes; returns the
    remote exit status (255: killed by a signal, or the connection was lost)."""
    import asyncssh

    sin = stdin or sys.stdin.buffer
    sout = stdout or sys.stdout.buffer
    serr = stderr or sys.stderr.buffer
    tty = command is None and _isatty(sin)  # as OpenSSH's `ssh HOST CMD`: a PTY for a login shell only
    try:
        if tty:
            fd = sin.fileno()
            size_fd = sout.fileno() if os.isatty(sout.fileno()) else fd
            process = await conn.create_process(command, term_type=os.environ.get("TERM") or DEFAULT_TERM,
                                                term_size=terminal_size(size_fd), request_pty="force", encoding=None)
            with _raw_terminal(fd), _follow_resizes(process, size_fd):
                await _run(process, sin, sout, serr, tty=True)
        else:
            process = await conn.create_process(command, request_pty=False, encoding=None)
            await _run(process, sin, sout, serr, tty=False)
    except (asyncssh.Error, OSError) as exc:
        serr.write(f"cades-tui: the SSH session ended: {exc}\r\n".encode())
        serr.flush()
        return LOST
    status = process.exit_status
    return status if status is not None and status >= 0 else LOST


def _isatty(stream: BinaryIO) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (OSError, ValueError):  # no descriptor (a test's captured stdin)
        return False


async def _run(process: asyncssh.SSHClientProcess[bytes], sin: BinaryIO, sout: BinaryIO, serr: BinaryIO, *,
               tty: bool) -> None:
    """Pump until the remote side has closed its output (and exited)."""
    stop_input = _feed_input(process, sin, tty)
    try:
        pumps = [_pump(process.stdout, sout)]
        if not tty:
            pumps.append(_pump(process.stderr, serr))
        await asyncio.gather(*pumps)
        await process.wait_closed()
    finally:
        stop_input()


async def _pump(reader: asyncssh.SSHReader[bytes], out: BinaryIO) -> None:
    while data := await reader.read(CHUNK):
        out.write(data)
        out.flush()


def _feed_input(process: asyncssh.SSHClientProcess[bytes], sin: BinaryIO, tty: bool) -> Callable[[], None]:
    """Send what arrives on `sin` to the remote side as it arrives, no faster than the channel takes it (a big
    file piped in is not read into memory); EOF is passed on. Returns the undo.

    POSIX terminals and pipes: the event loop watches the descriptor, paused while the channel drains. Regular
    files, /dev/null and anything on Windows (whose loops watch sockets only): a daemon thread reads, waiting for
    each chunk to drain — it may stay blocked in a read after the session, which the process's exit ends."""
    loop = asyncio.get_running_loop()
    writer = process.stdin
    done = threading.Event()

    def send(data: bytes) -> None:
        if done.is_set() or writer.is_closing():
            return
        with contextlib.suppress(Exception):  # the remote side went away meanwhile: its output says the rest
            if data:
                writer.write(data)
            else:
                writer.write_eof()

    async def forward(data: bytes) -> None:
        send(data)
        if data:
            with contextlib.suppress(Exception):
                await writer.drain()

    if sys.platform == "win32" and tty:
        return _windows_keys(loop, send, done)
    try:
        fd = sin.fileno()
    except (OSError, ValueError):  # no descriptor (a test's captured stdin): nothing to send
        send(b"")
        return done.set
    if sys.platform != "win32":
        def ready() -> None:
            try:
                data = os.read(fd, CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            loop.remove_reader(fd)  # until this chunk is on its way

            async def go() -> None:
                await forward(data)
                if data and not done.is_set():
                    loop.add_reader(fd, ready)

            spawn(go(), name="forwarding the terminal's input", emit=None)  # held until done

        try:
            loop.add_reader(fd, ready)
        except (OSError, ValueError, NotImplementedError):
            pass  # not pollable (a regular file, /dev/null): a thread below
        else:
            def remove() -> None:
                done.set()
                loop.remove_reader(fd)

            return remove

    def read() -> None:
        while not done.is_set():
            try:
                data = os.read(fd, CHUNK)
            except OSError:
                data = b""
            try:
                asyncio.run_coroutine_threadsafe(forward(data), loop).result()
            except (RuntimeError, concurrent.futures.CancelledError):  # the loop is closed: the session is over
                return
            if not data:
                return

    threading.Thread(target=read, name="ssh-stdin", daemon=True).start()
    return done.set


@contextlib.contextmanager
def _raw_terminal(fd: int) -> Iterator[None]:
    """The local terminal in raw mode (POSIX) or VT mode (Windows' console) for the session; restored after."""
    if sys.platform == "win32":
        with _windows_console():
            yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def _follow_resizes(process: asyncssh.SSHClientProcess[bytes], fd: int) -> Iterator[None]:
    """Tell the remote PTY the terminal's new size when it changes: SIGWINCH on POSIX (main thread only), a poll
    twice a second elsewhere."""
    last = terminal_size(fd)

    def resized() -> None:
        nonlocal last
        size = terminal_size(fd)
        if size != last:
            last = size
            with contextlib.suppress(Exception):
                process.change_terminal_size(*size)

    loop = asyncio.get_running_loop()
    if sys.platform != "win32" and threading.current_thread() is threading.main_thread():
        loop.add_signal_handler(signal.SIGWINCH, resized)
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGWINCH)
        return

    async def poll() -> None:
        while True:
            await asyncio.sleep(0.5)
            resized()

    task = spawn(poll(), name="following the terminal's size", emit=None)
    try:
        yield
    finally:
        task.cancel()


# -- Windows' console ---------------------------------------------------------------------------------------------

ENABLE_PROCESSED_INPUT = 0x0001
ENABLE_LINE_INPUT = 0x0002
ENABLE_ECHO_INPUT = 0x0004
ENABLE_VIRTUAL_TERMINAL_INPUT = 0x0200
ENABLE_VIRTUAL_TERMINAL_PROCESSING = 0x0004
DISABLE_NEWLINE_AUTO_RETURN = 0x0008


def windows_modes(in_mode: int, out_mode: int) -> tuple[int, int]:
    """The console modes of a session: keys as VT sequences, unprocessed (Ctrl+C is a key), unechoed, unbuffered;
    output interpreted as VT sequences."""
    raw_in = (in_mode & ~(ENABLE_PROCESSED_INPUT | ENABLE_LINE_INPUT | ENABLE_ECHO_INPUT)) \
        | ENABLE_VIRTUAL_TERMINAL_INPUT
    return raw_in, out_mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING | DISABLE_NEWLINE_AUTO_RETURN


@contextlib.contextmanager
def _windows_console() -> Iterator[None]:
    if sys.platform != "win32":
        yield
        return
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.windll.kernel32
    handles = [kernel32.GetStdHandle(-10), kernel32.GetStdHandle(-11)]  # STD_INPUT_HANDLE, STD_OUTPUT_HANDLE
    saved: list[int] = []
    for handle in handles:
        mode = wintypes.DWORD()
        if not kernel32.GetConsoleMode(handle, ctypes.byref(mode)):
            raise OSError("not a console: the built-in SSH client needs Windows Terminal or a console window")
        saved.append(mode.value)
    for handle, mode_value in zip(handles, windows_modes(*saved), strict=True):
        kernel32.SetConsoleMode(handle, mode_value)
    try:
        yield
    finally:
        for handle, mode_value in zip(handles, saved, strict=True):
            kernel32.SetConsoleMode(handle, mode_value)


def _windows_keys(loop: asyncio.AbstractEventLoop, send: Callable[[bytes], None],
                  done: threading.Event) -> Callable[[], None]:
    """Keys from Windows' console (in VT input mode arrows etc. arrive as escape sequences) on a daemon thread."""
    if sys.platform != "win32":
        return done.set
    import msvcrt

    def read() -> None:
        while not done.is_set():
            key = msvcrt.getwch()
            if "\ud800" <= key <= "\udbff":  # the first half of a UTF-16 surrogate pair (an emoji): the rest
                key += msvcrt.getwch()
            if done.is_set():
                return  # typed after the session: lost, as the session is over
            data = key.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace").encode("utf-8")
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(send, data)

    threading.Thread(target=read, name="ssh-keys", daemon=True).start()
    return done.set


# -- the app's hand-off without OpenSSH -----------------------------------------------------------------------------

def builtin_client_argv(settings: Settings, instance_id: str, command: str | None = None) -> list[str]:
    """`cades-tui ssh ID` in a child process with the same profile and cloud as `settings`: what the app runs
    (suspended) for a shell when there is no `ssh`. With --demo the child finds the running sandbox by its owner
    lock (tui.core.demo) and talks to it; its keys, known_hosts and state are found through the same environment.
    """
    from pathlib import Path

    from tui.core.config import DEFAULTS
    from tui.core.demo import demo_state_dir

    argv = [sys.executable, "-m", "tui", "ssh", instance_id]
    if settings.source != DEFAULTS.source:
        argv += ["--config", settings.source]
    demo = bool(settings.clouds_yaml) and Path(settings.clouds_yaml) == demo_state_dir() / "clouds.yaml"
    argv += ["--demo"] if demo else ["--cloud", settings.cloud]
    if command is not None:
        argv += ["--", command]
    return argv

