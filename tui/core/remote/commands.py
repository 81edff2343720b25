"""Run remote commands, streaming their output lines as they come, and keep a per-instance command log."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncssh

from tui.core.masking import mask_secrets
from tui.core.paths import ensure_private_dir
from tui.core.remote.connection import CommandTimeout, ConnectionDropped, RemoteError

LineSink = Callable[[list[str]], None]
TAIL_LINES = 30
MAX_OUTPUT_CHARS = 1_000_000


@dataclass(frozen=True, slots=True)
class CommandResult:
    command: str
    exit_status: int
    seconds: float
    output: str = ""  # stdout and stderr interleaved (the last MAX_OUTPUT_CHARS)
    tail: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class _LineSplitter:
    """Bytes-ish text chunks in, complete lines out; a carriage return keeps only the last rewrite."""

    def __init__(self) -> None:
        self._partial = ""

    def feed(self, chunk: str) -> list[str]:
        parts = (self._partial + chunk).split("\n")
        self._partial = parts.pop()
        return [p.rsplit("\r", 1)[-1] if "\r" in p.rstrip("\r") else p.rstrip("\r") for p in parts]

    def flush(self) -> list[str]:
        rest, self._partial = self._partial, ""
        return [rest.rsplit("\r", 1)[-1]] if rest else []


async def stream(
    conn: asyncssh.SSHClientConnection,
    command: str,
    on_lines: LineSink | None = None,
    *,
    input: str | None = None,
    timeout: float | None = None,
    log: CommandLog | None = None,
) -> CommandResult:
    """Run `command` (a shell string, built with `shlex.quote`), calling `on_lines` with each batch of
    output lines as it arrives (stderr merged into stdout). Returns when the command exits.

    Raises `ConnectionDropped` when the connection goes away, `CommandTimeout` after `timeout` seconds.
    """
    started = datetime.now(UTC)
    t0 = time.monotonic()
    splitter = _LineSplitter()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    chunks: list[str] = []
    size = 0

    def emit(lines: list[str]) -> None:
        if lines:
            tail.extend(lines)
            if on_lines is not None:
                on_lines(lines)

    def lost(status: int | None) -> None:
        if log is not None:
            log.record(command, status, time.monotonic() - t0, started)

    proc: asyncssh.SSHClientProcess[str] | None = None
    try:
        async with asyncio.timeout(timeout):
            proc = await conn.create_process(
                command, input=input, stderr=asyncssh.STDOUT, encoding="utf-8", errors="replace"
            )
            while chunk := await proc.stdout.read(65536):
                chunks.append(chunk)
                size += len(chunk)
                while size > MAX_OUTPUT_CHARS and len(chunks) > 1:
                    size -= len(chunks.pop(0))
                emit(splitter.feed(chunk))
            emit(splitter.flush())
            completed = await proc.wait()
    except TimeoutError:
        _abandon(proc)
        lost(None)
        raise CommandTimeout(f"command did not finish within {timeout:g} s: {_short(command)}") from None
    except (OSError, asyncssh.Error) as exc:
        _abandon(proc)
        lost(None)
        if conn.is_closed() or isinstance(exc, asyncssh.ConnectionLost | asyncssh.ChannelOpenError):
            raise ConnectionDropped(f"connection lost while running: {_short(command)}") from None
        raise RemoteError(f"{_short(command)}: {exc}") from None
    except BaseException:  # cancelled: do not leave the remote command attached to the channel
        _abandon(proc)
        raise
    if completed.exit_status is None and completed.exit_signal is None:
        lost(None)
        raise ConnectionDropped(f"connection lost while running: {_short(command)}")
    exit_status = _status(completed.exit_status, completed.exit_signal)
    seconds = time.monotonic() - t0
    if log is not None:
        log.record(command, exit_status, seconds, started)
    return CommandResult(command, exit_status, seconds, "".join(chunks), tuple(tail))


async def run(
    conn: asyncssh.SSHClientConnection,
    command: str,
    *,
    input: str | None = None,
    timeout: float | None = None,
    log: CommandLog | None = None,
) -> CommandResult:
    """Run `command` and collect its output (see `stream`)."""
    return await stream(conn, command, None, input=input, timeout=timeout, log=log)


def _abandon(proc: asyncssh.SSHClientProcess[str] | None) -> None:
    """Stop waiting for a command: ask the server to kill it and close the channel without waiting."""
    if proc is None:
        return
    with contextlib.suppress(OSError, asyncssh.Error):
        proc.kill()
    proc.close()


def _status(exit_status: int | None, exit_signal: tuple[str, bool, str, str] | None) -> int:
    """The exit code, or 128 + signal number like a shell reports a killed command."""
    if exit_status is not None:
        return exit_status
    if exit_signal is not None and f"SIG{exit_signal[0]}" in signal.Signals.__members__:
        return 128 + signal.Signals[f"SIG{exit_signal[0]}"].value
    return 255


def _short(command: str, limit: int = 120) -> str:
    one = " ".join(command.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def quote_args(args: Iterable[str]) -> str:
    """A shell command line from argv, every argument quoted."""
    return " ".join(shlex.quote(a) for a in args)


# -- secrets ----------------------------------------------------------------------------------------------

# -- command log ------------------------------------------------------------------------------------------


class CommandLog:
    """Append-only log of the commands run on one instance: time, exit code, duration, masked command."""

    def __init__(self, path: Path, secrets: Iterable[str] = ()) -> None:
        self.path = path
        self.secrets: set[str] = set(secrets)

    @classmethod
    def for_instance(cls, state_dir: Path, instance_id: str) -> CommandLog:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", instance_id) or "_"
        return cls(state_dir / "commands" / f"{safe}.log")

    def add_secret(self, value: str) -> None:
        """A value that must never appear in the log (e.g. a generated token)."""
        if value:
            self.secrets.add(value)

    def record(self, command: str, exit_status: int | None, seconds: float, started: datetime) -> None:
        ensure_private_dir(self.path.parent)
        status = "lost" if exit_status is None else str(exit_status)
        stamp = started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = "\n".join("    " + line for line in mask_secrets(command, self.secrets).splitlines())
        with self.path.open("a", encoding="utf-8") as f:
            f.write(f"{stamp} exit={status} {seconds:.2f}s\n{body}\n")

    def read(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""
