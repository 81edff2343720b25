"""Detached remote terminal sessions: GNU screen (preferred) or tmux (fallback).

A session runs one command in the background on the remote host, survives the SSH
connection, and logs its terminal output to a file that is flushed immediately (screen
otherwise flushes every 10 s). Every remote shell argument is quoted with shlex.quote.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from dataclasses import dataclass
from enum import StrEnum

import asyncssh

from tui.core.errors import CadesError

CTRL_C = "\x03"


class Multiplexer(StrEnum):
    SCREEN = "screen"
    TMUX = "tmux"


class SessionError(CadesError):
    """A remote session command failed."""


@dataclass(frozen=True, slots=True)
class RunOutput:
    exit_status: int
    stdout: str
    stderr: str


async def run(conn: asyncssh.SSHClientConnection, command: str, timeout: float = 30.0) -> RunOutput:
    """Run `command` on the remote host (through the login shell); never raises on exit status."""
    result = await asyncio.wait_for(conn.run(command, check=False), timeout)
    return RunOutput(
        exit_status=result.exit_status if result.exit_status is not None else -1,
        stdout=_text(result.stdout),
        stderr=_text(result.stderr),
    )


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data if isinstance(data, str) else ""


async def detect_multiplexer(conn: asyncssh.SSHClientConnection) -> Multiplexer:
    """screen when the remote host has it, else tmux; SessionError when it has neither."""
    res = await run(conn, "command -v screen >/dev/null 2>&1 && echo screen || "
                          "{ command -v tmux >/dev/null 2>&1 && echo tmux; }")
    found = res.stdout.strip()
    if found in (Multiplexer.SCREEN, Multiplexer.TMUX):
        return Multiplexer(found)
    raise SessionError("neither GNU screen nor tmux is installed on the remote host")


_SCREEN_LS = re.compile(r"^\s*\d+\.(?P<name>\S+)\s+\((?P<state>[^)]*)\)", re.MULTILINE)


class RemoteSession:
    """Start, inspect, talk to and stop named detached sessions of one multiplexer."""

    def __init__(self, conn: asyncssh.SSHClientConnection, kind: Multiplexer = Multiplexer.SCREEN) -> None:
        self.conn = conn
        self.kind = kind

    @classmethod
    async def detect(cls, conn: asyncssh.SSHClientConnection) -> RemoteSession:
        return cls(conn, await detect_multiplexer(conn))

    def start_command(self, name: str, command: str, cwd: str, logfile: str) -> str:
        """The remote shell line that starts `command` (a shell command line) detached in `cwd`.

        `cwd` and `logfile` may start with `~/` (expanded by the remote shell).
        """
        q = shlex.quote
        cwd_arg, log_arg = remote_path(cwd), remote_path(logfile)
        inner = f"exec {command}"
        # The log may hold secrets (Jupyter's token URL): 0600 in a 0700 directory, also when an older version left
        # them readable; $HOME itself is never chmod-ed. The session's own umask is left as the user has it.
        private = (f"D=$(dirname {log_arg}) && (umask 077 && mkdir -p \"$D\" && : > {log_arg}) && "
                   f"chmod 600 {log_arg} && {{ [ \"$D\" -ef \"$HOME\" ] || chmod 700 \"$D\"; }}")
        prepare = f"mkdir -p {cwd_arg} && {private} && cd {cwd_arg}"
        if self.kind is Multiplexer.SCREEN:
            rc = remote_path(logfile + ".screenrc")
            return (
                f"{prepare} && (umask 077 && printf '%s\\n' 'logfile flush 0' > {rc}) && "
                f"screen -c {rc} -dmS {q(name)} -L -Logfile {log_arg} bash -c {q(inner)}"
            )
        # A placeholder runs until the log pipe is attached, so no early output is lost.
        # tmux runs the pipe command with sh -c: the expanded log path is quoted again for it.
        run_cmd = q(f"bash -c {q(inner)}")
        requote = "sed \"s/'/'\\\\\\\\''/g\""
        return (
            f"{prepare} && L=$(printf '%s' {log_arg} | {requote}) && "
            f"tmux new-session -d -s {q(name)} -c {cwd_arg} 'sleep 60' "
            f"\\; pipe-pane -o \"cat >> '$L'\" \\; respawn-pane -k -c {cwd_arg} {run_cmd}"
        )

    async def start(self, name: str, command: str, cwd: str, logfile: str) -> None:
        if await self.is_running(name):
            raise SessionError(f"a {self.kind} session named {name!r} is already running")
        res = await run(self.conn, self.start_command(name, command, cwd, logfile))
        if res.exit_status != 0:
            raise SessionError(f"{self.kind} failed to start {name!r}: {res.stderr.strip() or res.stdout.strip()}")

    async def list(self) -> list[str]:
        """Names of the live sessions of this multiplexer."""
        if self.kind is Multiplexer.SCREEN:
            res = await run(self.conn, "screen -ls")
            return [m["name"] for m in _SCREEN_LS.finditer(res.stdout) if "dead" not in m["state"].lower()]
        res = await run(self.conn, "tmux list-sessions -F '#{session_name}'")
        return res.stdout.split() if res.exit_status == 0 else []

    async def is_running(self, name: str) -> bool:
        if self.kind is Multiplexer.SCREEN:
            return name in await self.list()
        res = await run(self.conn, f"tmux has-session -t {shlex.quote('=' + name)}")
        return res.exit_status == 0

    async def send_text(self, name: str, text: str) -> None:
        """Type `text` into the session (control characters such as \\x03 and \\r included)."""
        q = shlex.quote
        if self.kind is Multiplexer.SCREEN:
            cmd = f"screen -S {q(name)} -p 0 -X stuff {q(_screen_literal(text))}"
        else:
            cmd = _tmux_keys(name, text)
        res = await run(self.conn, cmd)
        if res.exit_status != 0:
            raise SessionError(f"cannot type into {self.kind} session {name!r}: {res.stderr.strip()}")

    async def send_interrupt(self, name: str) -> None:
        """Ctrl+C into the session."""
        await self.send_text(name, CTRL_C)

    async def kill(self, name: str) -> None:
        """Terminate the session and its process (last resort)."""
        q = shlex.quote
        if self.kind is Multiplexer.SCREEN:
            await run(self.conn, f"screen -S {q(name)} -X quit; screen -wipe >/dev/null 2>&1; true")
        else:
            await run(self.conn, f"tmux kill-session -t {q('=' + name)}")

    async def wait_gone(self, name: str, timeout: float, interval: float = 0.2) -> bool:
        """Poll until the session has ended; True when it did within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if not await self.is_running(name):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(interval)


def _screen_literal(text: str) -> str:
    """Escape what screen's command parser would interpret: backslash, $VAR and ^X."""
    return text.replace("\\", "\\\\").replace("$", "\\$").replace("^", "\\^")


def _tmux_keys(name: str, text: str) -> str:
    """tmux send-keys for `text`: literal runs with -l, control characters as key names."""
    q = shlex.quote
    target = q(f"={name}:")
    parts: list[str] = []
    for chunk in re.split(r"([\x00-\x1f])", text):
        if not chunk:
            continue
        if len(chunk) == 1 and ord(chunk) < 0x20:
            key = {"\r": "Enter", "\n": "Enter", "\t": "Tab", "\x1b": "Escape"}.get(
                chunk, "C-" + chr(ord(chunk) + 0x60)
            )
            parts.append(f"tmux send-keys -t {target} {key}")
        else:
            parts.append(f"tmux send-keys -t {target} -l {q(chunk)}")
    return " && ".join(parts) or "true"


def remote_path(path: str) -> str:
    """Quote a remote path, letting a leading `~/` expand to $HOME."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)
