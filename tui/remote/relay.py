"""Byte-counting relay between two connected sockets, zero-copy with Linux splice(2).

Data goes socket → pipe → socket inside the kernel; Python only sees how many bytes moved, which is all
the tunnel's counters need. Each direction is a `_Pump` driven by the event loop's reader/writer
callbacks; half-close (EOF) is passed on with shutdown(SHUT_WR) and back-pressure is natural (a pump
stops reading while its pipe cannot be drained).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
from collections.abc import Callable

_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
_CHUNK = 1 << 20
_F_SETPIPE_SZ = 1031
_BURST = 8


def splice_available() -> bool:
    """True where os.splice exists (Linux, Python ≥ 3.10)."""
    return hasattr(os, "splice")


class _Pump:
    """One direction: src → pipe → dst, counting bytes into `count(n)`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        src: socket.socket,
        dst: socket.socket,
        count: Callable[[int], None],
        done: Callable[[_Pump, bool], None],
    ) -> None:
        self.loop = loop
        self.src = src
        self.dst = dst
        self.count = count
        self.done = done
        self.rpipe, self.wpipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        with contextlib.suppress(OSError):  # a bigger pipe moves more per call; the default is 64 KiB
            fcntl.fcntl(self.wpipe, _F_SETPIPE_SZ, _CHUNK)
        self.in_pipe = 0
        self.eof = False
        self.finished = False
        loop.add_reader(src.fileno(), self._readable)

    def _readable(self) -> None:
        # While data keeps streaming in, move a few chunks per wake-up (saves event-loop turns).
        for _ in range(_BURST):
            try:
                n = os.splice(self.src.fileno(), self.wpipe, _CHUNK, flags=_FLAGS)
            except BlockingIOError:
                return
            except OSError:
                self._finish(ok=False)
                return
            if n == 0:
                self.eof = True
                self.loop.remove_reader(self.src.fileno())
            else:
                self.count(n)
                self.in_pipe += n
            self._drain()
            if self.in_pipe or self.finished or self.eof:
                return

    def _writable(self) -> None:
        self.loop.remove_writer(self.dst.fileno())
        self._drain()
        if not self.in_pipe and not self.eof and not self.finished:
            self.loop.add_reader(self.src.fileno(), self._readable)

    def _drain(self) -> None:
        while self.in_pipe:
            try:
                n = os.splice(self.rpipe, self.dst.fileno(), self.in_pipe, flags=_FLAGS)
            except BlockingIOError:
                self.loop.remove_reader(self.src.fileno())  # back-pressure until dst drains
                self.loop.add_writer(self.dst.fileno(), self._writable)
                return
            except OSError:
                self._finish(ok=False)
                return
            self.in_pipe -= n
        if self.eof:
            with contextlib.suppress(OSError):
                self.dst.shutdown(socket.SHUT_WR)
            self._finish(ok=True)

    def _finish(self, ok: bool) -> None:
        if self.finished:
            return
        self.finished = True
        self.stop()
        self.done(self, ok)

    def stop(self) -> None:
        for fd, remove in ((self.src.fileno(), self.loop.remove_reader), (self.dst.fileno(), self.loop.remove_writer)):
            if fd >= 0:
                remove(fd)
        for fd in (self.rpipe, self.wpipe):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.rpipe = self.wpipe = -1


class SpliceRelay:
    """Relay `a` ⇄ `b` until both directions end (or one fails); then both sockets are closed.

    `a_to_b(n)` / `b_to_a(n)` are called with each chunk's byte count. `closed` is set when done.
    """

    def __init__(
        self,
        a: socket.socket,
        b: socket.socket,
        a_to_b: Callable[[int], None],
        b_to_a: Callable[[int], None],
    ) -> None:
        loop = asyncio.get_running_loop()
        self.a, self.b = a, b
        a.setblocking(False)
        b.setblocking(False)
        self.closed = asyncio.Event()
        self._pumps = [_Pump(loop, a, b, a_to_b, self._pump_done), _Pump(loop, b, a, b_to_a, self._pump_done)]

    def _pump_done(self, pump: _Pump, ok: bool) -> None:
        if not ok or all(p.finished for p in self._pumps):
            self.close()

    def close(self) -> None:
        if self.closed.is_set():
            return
        for pump in self._pumps:
            pump.finished = True
            pump.stop()
        self.a.close()
        self.b.close()
        self.closed.set()
