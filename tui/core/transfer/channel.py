"""The VM's end of a transfer: `helper.py` run there with `python3 -c`, over the app's verified connection.

Small questions (stat, hash, delete) go over an exec channel of the pooled asyncssh connection. A data stream goes
over that connection too, or over OpenSSH (`ssh` with the app's key, its pinned known_hosts and strict checking —
`openssh_argv`) when it is on PATH and there is much to move: OpenSSH's ciphers are faster than asyncssh's here.
Either way the stream is a pair of blocking file objects for the thread that pumps it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import shlex
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import asyncssh

from tui.core.transfer import helper
from tui.core.transfer.models import TransferCut, TransferError

NO_PYTHON = 127


def _boot() -> str:
    source = Path(helper.__file__).read_bytes()
    packed = base64.b64encode(zlib.compress(source, 9)).decode()
    return f"import base64,zlib;exec(compile(zlib.decompress(base64.b64decode('{packed}')),'cades-transfer','exec'))"


_BOOT: list[str] = []


def helper_command(mode: str, root: str) -> str:
    """The shell command that runs the helper on the VM (every argument quoted)."""
    if not _BOOT:
        _BOOT.append(_boot())
    return f"python3 -S -c {shlex.quote(_BOOT[0])} {mode} {shlex.quote(root or '~')}"  # -S: starts faster


class Stream:
    """One running helper with a data stream: `stdin` and `stdout` are blocking binary files (for a thread)."""

    def __init__(self, stdin: IO[bytes], stdout: IO[bytes], close: Callable[[], None],
                 wait: Callable[[], tuple[int | None, str]], via: str) -> None:
        self.stdin, self.stdout, self.via = stdin, stdout, via
        self.close, self.wait = close, wait


class RemoteEnd:
    """The helper on one instance: `name` for messages, `conn` the verified connection, `openssh` the pinned
    OpenSSH argv for a command (None without `ssh` on PATH)."""

    def __init__(self, name: str, conn: asyncssh.SSHClientConnection,
                 openssh: Callable[[str], list[str]] | None) -> None:
        self.name, self.conn, self.openssh = name, conn, openssh

    async def call(self, mode: str, root: str, ask: Any) -> Any:
        """One question, one JSON answer."""
        try:
            result = await self.conn.run(helper_command(mode, root), input=json.dumps(ask) + "\n",
                                         encoding="utf-8")
        except (OSError, asyncssh.Error) as exc:
            raise TransferCut(f"{self.name}: the connection failed ({exc}) — run the command again") from exc
        self._check(result.exit_status, str(result.stderr or ""))
        try:
            return json.loads(str(result.stdout))
        except ValueError as exc:
            raise TransferError(f"{self.name}: unexpected answer from the transfer helper: "
                                f"{str(result.stdout)[:200]!r}") from exc

    def _check(self, status: int | None, stderr: str) -> None:
        if status == NO_PYTHON:
            raise TransferError(f"{self.name} has no python3 on its PATH: transfers run a small python3 helper "
                                "there — install python3 on the VM (e.g. run setup)")
        if status not in (0, None):
            last = stderr.strip().splitlines()[-1:] or [f"exit status {status}"]
            raise TransferError(f"{self.name}: the transfer helper failed: {last[0]}")

    async def stream(self, mode: str, root: str, use_openssh: bool) -> Stream:
        command = helper_command(mode, root)
        if use_openssh and self.openssh is not None:
            return _openssh_stream(self.openssh(command))
        try:
            proc = await self.conn.create_process(command, encoding=None)
        except (OSError, asyncssh.Error) as exc:
            raise TransferCut(f"{self.name}: the connection failed ({exc}) — run the command again") from exc
        return _channel_stream(proc, asyncio.get_running_loop())

    def check_exit(self, status: int | None, stderr: str) -> None:
        self._check(status, stderr)


def _openssh_stream(argv: list[str]) -> Stream:
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            bufsize=helper.CHUNK)
    assert proc.stdin is not None and proc.stdout is not None
    helper.big_pipes(proc.stdin.fileno(), proc.stdout.fileno())

    def close() -> None:
        if proc.poll() is None:
            proc.kill()

    def wait() -> tuple[int | None, str]:
        code = proc.wait()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        for f in (proc.stdin, proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                if f is not None:
                    f.close()
        if code == 255:  # ssh itself failed (host key, login): its own words
            raise TransferCut(f"ssh failed: {err.strip().splitlines()[-1] if err.strip() else 'exit 255'}")
        return code, err

    return Stream(proc.stdin, proc.stdout, close, wait, "openssh")


class _ChannelRaw(io.RawIOBase):
    """A blocking file over an asyncssh process's stdin or stdout, for a worker thread (never the loop's)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, proc: Any, writing: bool) -> None:
        self._loop, self._proc, self._writing = loop, proc, writing

    def readable(self) -> bool:
        return not self._writing

    def writable(self) -> bool:
        return self._writing

    def readinto(self, b: Any) -> int:
        data: bytes = asyncio.run_coroutine_threadsafe(self._proc.stdout.read(len(b)), self._loop).result()
        b[:len(data)] = data
        return len(data)

    def write(self, b: Any) -> int:
        data = bytes(b)

        async def put() -> None:
            self._proc.stdin.write(data)
            await self._proc.stdin.drain()

        asyncio.run_coroutine_threadsafe(put(), self._loop).result()
        return len(data)

    def close(self) -> None:
        if self._writing and not self.closed:
            with contextlib.suppress(Exception):
                self._loop.call_soon_threadsafe(self._proc.stdin.write_eof)
        super().close()


def _channel_stream(proc: Any, loop: asyncio.AbstractEventLoop) -> Stream:
    stdin = io.BufferedWriter(_ChannelRaw(loop, proc, True), helper.CHUNK)
    stdout = io.BufferedReader(_ChannelRaw(loop, proc, False), helper.CHUNK)

    def close() -> None:  # abort, not close: close would still send what asyncssh holds buffered
        loop.call_soon_threadsafe(proc.channel.abort)

    def wait() -> tuple[int | None, str]:
        async def done() -> tuple[int | None, str]:
            await proc.wait_closed()
            err = await proc.stderr.read()
            return proc.exit_status, err.decode(errors="replace") if isinstance(err, bytes) else str(err)

        return asyncio.run_coroutine_threadsafe(done(), loop).result()

    return Stream(stdin, stdout, close, wait, "asyncssh")
