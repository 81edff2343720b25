"""Stream a remote log file live: `tail -F` in a long-running remote process.

Lines are cleaned (ANSI, \\x0e/\\x0f, CR stripped), tokens redacted, and handed out in batches
(at most every `interval` seconds, at most `max_batch` lines), so a flood becomes a few large
messages instead of thousands of small ones. Memory is bounded: the reader queue holds at most
`queue_chunks` chunks (the SSH window then slows the remote tail down) and `lines` keeps the last
`max_lines` lines for filtering and copying.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

import asyncssh

from tui.core.jupyter.logparse import clean_line, redact
from tui.core.remote.session import remote_path

_CHUNK = 64 * 1024


class LogTail:
    def __init__(
        self,
        conn: asyncssh.SSHClientConnection,
        path: str,
        *,
        history: int = 1000,
        max_lines: int = 10_000,
        interval: float = 0.1,
        max_batch: int = 2000,
        queue_chunks: int = 16,
        redact_tokens: bool = True,
    ) -> None:
        """`history`: how many existing lines to start with (tail -n). Keep `redact_tokens` on for
        anything shown or stored; only URL/token discovery reads raw lines."""
        self.conn = conn
        self.path = path
        self.history = history
        self.interval = interval
        self.max_batch = max_batch
        self.redact_tokens = redact_tokens
        self.lines: deque[str] = deque(maxlen=max_lines)
        self.total = 0
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=queue_chunks)
        self._process: asyncssh.SSHClientProcess[bytes] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        cmd = f"exec tail -n {int(self.history)} -F {remote_path(self.path)} 2>/dev/null"
        self._process = await self.conn.create_process(cmd, encoding=None)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._process is not None
        try:
            while chunk := await self._process.stdout.read(_CHUNK):
                await self._queue.put(chunk)
        except (OSError, asyncssh.Error):
            pass
        finally:
            await self._queue.put(None)

    async def batches(self) -> AsyncIterator[list[str]]:
        """Yield lists of new clean lines until the remote tail ends or `close()` is called."""
        if self._process is None:
            await self.start()
        loop = asyncio.get_running_loop()
        rest = b""
        pending: list[str] = []
        last = loop.time()
        ended = False
        while not ended or pending:
            if not ended:
                timeout = max(0.0, self.interval - (loop.time() - last)) if pending else None
                try:
                    chunk = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    chunk = b""
                if chunk is None:
                    ended = True
                    if rest:
                        pending.append(self._add(rest))
                        rest = b""
                elif chunk:
                    *complete, rest = (rest + chunk).split(b"\n")
                    pending.extend(self._add(raw) for raw in complete)
            due = loop.time() - last >= self.interval or ended or len(pending) >= self.max_batch
            if pending and due:
                batch, pending = pending[: self.max_batch], pending[self.max_batch :]
                last = loop.time()
                yield batch

    def _add(self, raw: bytes) -> str:
        line = clean_line(raw.decode("utf-8", "replace"))
        if self.redact_tokens:
            line = redact(line)
        self.lines.append(line)
        self.total += 1
        return line

    async def close(self) -> None:
        if self._process is not None:
            self._process.close()
            with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
                await asyncio.wait_for(self._process.wait_closed(), 2.0)
            self._process = None
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
