"""One remote command at a time on a cluster member, over the SSH connection DaskOverSSH was given: run it, write
a file, read the Python environment. SSH failures and timeouts raise `ClusterError`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncssh

from tui.core.cluster import commands as cmd
from tui.core.cluster.errors import ClusterError, tail
from tui.core.models import Instance
from tui.core.remote.session import remote_path

ConnectFor = Callable[[Instance], Awaitable[asyncssh.SSHClientConnection]]


@dataclass(frozen=True, slots=True)
class Result:
    exit_status: int
    stdout: str
    stderr: str


@dataclass(frozen=True, slots=True)
class Probe:
    python: str | None
    home: str
    packages: dict[str, str | None] = field(default_factory=dict)

    @property
    def minor(self) -> str:
        return ".".join((self.python or "").split(".")[:2])


async def run(conn: asyncssh.SSHClientConnection, command: str, *, stdin: bytes | None = None,
              timeout: float = 30.0) -> Result:
    try:
        result = await asyncio.wait_for(
            conn.run(command, input=stdin.decode("ascii") if stdin is not None else None, check=False), timeout)
    except TimeoutError as exc:
        raise ClusterError(f"a remote command did not finish within {timeout:g} s") from exc
    except (OSError, asyncssh.Error) as exc:
        raise ClusterError(f"SSH failed: {exc}") from exc
    return Result(result.exit_status if result.exit_status is not None else -1,
                  str(result.stdout or ""), str(result.stderr or ""))


async def write(conn: asyncssh.SSHClientConnection, path: str, data: bytes) -> None:
    res = await run(conn, cmd.write_file_command(path), stdin=data)
    if res.exit_status != 0:
        raise ClusterError(f"cannot write {path}: {tail(res.stderr)}")


async def probe(conn: asyncssh.SSHClientConnection, env: str) -> Probe:
    res = await run(conn, cmd.probe_command(env))
    line = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    try:
        d = json.loads(line)
    except ValueError as exc:
        raise ClusterError(f"cannot read the Python environment {env}: {tail(res.stderr or res.stdout)}") from exc
    return Probe(python=d.get("python"), home=str(d.get("home") or ""), packages=dict(d.get("packages") or {}))


def tls_files(*, head: bool) -> str:
    files = [cmd.MEMBER_KEY, cmd.MEMBER_CERT, cmd.CA_CERT] + ([cmd.CA_KEY] if head else [])
    return " ".join(remote_path(f) for f in files)
